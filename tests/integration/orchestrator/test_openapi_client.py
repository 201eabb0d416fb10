"""A typed client generated from the live OpenAPI document works: ``openapi-python-client`` generates it, ``mypy
--strict`` accepts a program written against its models (openapi_client_program.py) and refuses one that misreads
a field's type, and the program creates a workflow, runs it and reads its nodes against a real API and engine."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from tests.support.api import served_api
from tests.support.deployment import ADMIN_KEY, Deployment
from tests.support.engine import Engine

PROGRAM = Path(__file__).with_name("openapi_client_program.py")
BIN = Path(sys.executable).parent
# client.py is the generator's own wrapper around httpx, the same for every document: its __exit__ signatures do
# not satisfy current mypy. What it generated from aob's document (models, operations) is checked strictly.
MYPY_CONFIG = "[mypy]\nstrict = True\n\n[mypy-aob_client.client]\nignore_errors = True\n"
# If the document left a node's attempt untyped, the client would hand out Any and mypy would accept this.
MISREAD = (
    "from aob_client.models import NodeState\n\n\n"
    "def attempt_label(node: NodeState) -> str:\n"
    "    label: str = node.attempt\n"
    "    return label\n"
)


async def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *map(str, argv),
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _generate(document: bytes, into: Path) -> None:
    (into / "openapi.json").write_bytes(document)
    code, out = await _run(
        BIN / "openapi-python-client", "generate", "--path", "openapi.json", "--meta", "none",
        "--output-path", "aob_client", cwd=into,
    )  # fmt: skip
    assert code == 0, out
    # The generator names what it could not understand; a typed document leaves nothing out.
    assert "Warning(s) encountered" not in out, out


async def _mypy(into: Path, program: str) -> tuple[int, str]:
    (into / "program.py").write_text(program)
    (into / "mypy.ini").write_text(MYPY_CONFIG)
    return await _run(
        sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", ".mypy_cache", "program.py", cwd=into
    )


@pytest.mark.timeout(600)
async def test_a_generated_client_type_checks_and_runs_a_workflow(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    assert shutil.which("openapi-python-client", path=str(BIN)), "openapi-python-client: pip install -e '.[dev]'"
    async with Engine(deployment, redis, pool=pg_pool), served_api(deployment.api(), redis, pg_pool) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            document = (await http.get("/openapi.json")).content
        await _generate(document, tmp_path)

        code, out = await _mypy(tmp_path, PROGRAM.read_text())
        assert code == 0, f"mypy --strict refused the client program:\n{out}"
        code, out = await _mypy(tmp_path, MISREAD)
        assert code != 0 and 'has type "int"' in out, f"mypy accepted a str read from an int field:\n{out}"

        (tmp_path / "program.py").write_text(PROGRAM.read_text())
        code, out = await _run(sys.executable, "program.py", url, ADMIN_KEY, "typed/greeting", cwd=tmp_path)
        assert code == 0, out
        result = json.loads(out.strip().splitlines()[-1])
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as http:
            stored = (await http.get(f"/api/v1/runs/{result['run_id']}")).json()
    assert result["status"] == stored["status"] == "succeeded"
    assert result["nodes"] == {"greet": "succeeded", "start": "succeeded"}
    assert result["greeting"] == stored["nodes"]["greet"]["output"] == {"greeting": "hello typed world"}
    assert stored["workflow_id"] == result["workflow_id"]
