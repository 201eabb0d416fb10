"""``aob validate``: ok summary with warnings, every error on stderr, unreadable and malformed files."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import validate

EXAMPLES = Path(__file__).parents[4] / "docs" / "examples"


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="aob")
    validate.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["validate", *argv])
    return int(args.func(args))


def _write(tmp_path: Path, definition: Any) -> str:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(definition))
    return str(path)


@pytest.mark.parametrize("name", ["hello.json", "approve_fetch.json"])
def test_examples_are_valid(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(str(EXAMPLES / name)) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ok: ")
    assert err == ""


def test_ok_prints_counts_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    definition = {
        "nodes": [{"id": "a", "type": "noop"}, {"id": "f", "type": "function"}],
        "edges": [{"from": "a", "to": "f"}],
    }
    assert _run(_write(tmp_path, definition)) == 0
    out, err = capsys.readouterr()
    assert out == "ok: 2 nodes, 1 edges\n"
    assert err == "warning: nodes[1].type: unknown type 'function'; the node will be skipped at run time\n"


def test_errors_each_on_their_own_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    definition = {
        "nodes": [{"id": "fetch", "type": "http", "config": {"url": "ftp//x"}}, {"id": "fetch", "type": "noop"}],
        "edges": [{"from": "fetch", "to": "store"}],
    }
    assert _run(_write(tmp_path, definition)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "error: nodes[0].config.url: not a valid URL (got 'ftp//x'); expected http:// or https://",
        "error: nodes[1].id: duplicate id 'fetch' (first at nodes[0])",
        "error: edges[0].to: unknown node 'store' (known: fetch)",
    ]


def test_max_agents_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    definition = {"nodes": [{"id": "g", "type": "agent", "config": {"prompt": "hi"}}]}
    assert _run("--max-agents", "0", _write(tmp_path, definition)) == 1
    assert capsys.readouterr().err == "error: too many agent nodes: 1 (limit 0)\n"


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"nodes": [{"id": "a", "type": "noop"}]})))
    assert _run("-") == 0
    assert capsys.readouterr().out == "ok: 1 nodes, 0 edges\n"


def test_bad_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wf.json"
    path.write_text('{"nodes": [}')
    assert _run(str(path)) == 1
    assert capsys.readouterr().err == f"error: {path} is not valid JSON: Expecting value at line 1 column 12\n"


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.json"
    assert _run(str(path)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read {path}: ")
    assert err.count("\n") == 1


def test_not_an_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(_write(tmp_path, [1, 2])) == 1
    assert capsys.readouterr().err.startswith("error: definition: Input should be a valid dictionary")


def test_map_limits_of_the_api_apply_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOB_MAX_MAP_CONCURRENCY", "5")
    body = {"nodes": [{"id": "n", "type": "noop"}]}
    definition = {"nodes": [{"id": "each", "type": "map", "config": {"items": [1], "body": body, "concurrency": 6}}]}
    assert _run(_write(tmp_path, definition)) == 1
    assert "nodes[0].config.concurrency: 6 is above the limit of 5 (AOB_MAX_MAP_CONCURRENCY)" in capsys.readouterr().err


def test_definition_size_limits_of_the_api_apply_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOB_MAX_DEFINITION_NODES", "2")
    definition = {"nodes": [{"id": f"n{i}", "type": "noop"} for i in range(3)]}
    assert _run(_write(tmp_path, definition)) == 1
    assert "3 is over the limit of 2 (AOB_MAX_DEFINITION_NODES)" in capsys.readouterr().err
