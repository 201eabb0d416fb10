"""``aob prune`` (dry run first, then for real) and ``aob audit list`` against a served API."""

from __future__ import annotations

import json

import asyncpg
import pytest

from tests.support.cli import aob


async def test_prune_dry_run_then_for_real(
    api_url: str, pg_pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    await pg_pool.execute(
        "INSERT INTO runs (id, tenant_id, status, ended_at) VALUES"
        " ('old', 'default', 'failed', now() - interval '3 hours'), ('new', 'default', 'failed', now())"
    )
    code, out, _ = await aob(capsys, "prune", "--older-than", "2h", "--dry-run")
    assert code == 0 and "would delete" in out and "  runs: 1" in out
    assert await pg_pool.fetchval("SELECT count(*) FROM runs") == 2

    code, out, _ = await aob(capsys, "prune", "--older-than", "90m")
    assert code == 0 and "deleted" in out and "  runs: 1" in out and "  blobs: 0" in out
    assert [r["id"] for r in await pg_pool.fetch("SELECT id FROM runs")] == ["new"]
    code, out, _ = await aob(capsys, "audit", "list", "--action", "runs.prune")
    assert code == 0 and out.splitlines()[0].split() == ["AT", "ACTION", "TARGET", "KEY_ID", "TENANT_ID"]
    assert len(out.splitlines()) == 2 and "runs.prune" in out and "bootstrap" in out

    code, out, _ = await aob(capsys, "prune", "--older-than", "1d", "--all-tenants", "-o", "json")
    assert code == 0 and json.loads(out)["runs"] == 0 and json.loads(out)["dry_run"] is False


async def test_a_bad_duration_fails_before_any_request(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        await aob(capsys, "prune", "--older-than", "30 days")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--older-than: duration: expected a whole number and a unit d, h or m, e.g. 30d, 12h, 90m" in err
