"""Migrations: idempotent, safe under concurrency, all-or-nothing per file; pools see the schema and decode JSONB."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from common.db import create_pool, migrate, migration_files
from common.errors import AobError, ConfigError
from tests.support.processes import run_aob

EXPECTED_TABLES = {
    "schema_migrations",
    "tenants",
    "api_keys",
    "workflows",
    "workflow_versions",
    "runs",
    "run_steps",
    "patches",
    "approvals",
    "blobs",
    "node_logs",
    "run_events",
    "audit_log",
    "secrets",
    "triggers",
    "schedules",
    "notification_subscriptions",
    "notification_outbox",
    "notification_deliveries",
}


@pytest.fixture
async def fresh_schema(database_url: str) -> AsyncIterator[str]:
    """A schema name that does not exist yet; dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def _tables(database_url: str, schema: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
        return {r["table_name"] for r in rows}
    finally:
        await conn.close()


async def _applied(database_url: str, schema: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [r["name"] for r in await conn.fetch(f"SELECT name FROM {schema}.schema_migrations ORDER BY name")]
    finally:
        await conn.close()


async def test_migrate_creates_schema_and_is_idempotent(database_url: str, fresh_schema: str) -> None:
    all_names = [p.stem for p in migration_files()]

    first = await migrate(database_url, fresh_schema)
    second = await migrate(database_url, fresh_schema)

    assert first == all_names
    assert second == []
    assert await _tables(database_url, fresh_schema) == EXPECTED_TABLES
    assert await _applied(database_url, fresh_schema) == all_names


async def test_concurrent_migrations_apply_each_file_once(database_url: str, fresh_schema: str) -> None:
    results = await asyncio.gather(*(migrate(database_url, fresh_schema) for _ in range(4)))

    all_names = [p.stem for p in migration_files()]
    assert sorted(results, key=len) == [[], [], [], all_names]
    assert await _tables(database_url, fresh_schema) == EXPECTED_TABLES
    assert await _applied(database_url, fresh_schema) == all_names


async def _aob_migrate(database_url: str, schema: str) -> tuple[int, str, str]:
    return await run_aob("migrate", env={"AOB_DATABASE_URL": database_url, "AOB_DB_SCHEMA": schema})


async def test_aob_migrate_command_twice_concurrently(database_url: str, fresh_schema: str) -> None:
    results = await asyncio.gather(_aob_migrate(database_url, fresh_schema), _aob_migrate(database_url, fresh_schema))

    assert [code for code, _, _ in results] == [0, 0], results
    outputs = sorted(out for _, out, _ in results)
    assert outputs[0].startswith("applied 001_initial"), outputs
    assert outputs[1].startswith("no pending migrations"), outputs
    again = await _aob_migrate(database_url, fresh_schema)
    assert again[0] == 0
    assert "no pending migrations" in again[1]
    assert await _applied(database_url, fresh_schema) == [p.stem for p in migration_files()]


async def test_failed_migration_rolls_back_and_is_not_recorded(
    database_url: str, fresh_schema: str, tmp_path: Path
) -> None:
    (tmp_path / "001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE half (id int); SELECT * FROM no_such_table;")

    with pytest.raises(AobError, match=r"migration 002_bad.sql on schema t_\w+: .*no_such_table"):
        await migrate(database_url, fresh_schema, directory=tmp_path)

    assert await _tables(database_url, fresh_schema) == {"schema_migrations", "good"}
    assert await _applied(database_url, fresh_schema) == ["001_good"]


async def test_migrate_rejects_unsafe_schema_name(database_url: str) -> None:
    with pytest.raises(ConfigError, match="db schema: expected a lower-case identifier"):
        await migrate(database_url, 'x"; DROP SCHEMA public; --')


async def test_pool_uses_schema_and_maps_jsonb(database_url: str, migrated_schema: str) -> None:
    pool = await create_pool(database_url, migrated_schema, max_size=2)
    try:
        await pool.execute(
            "INSERT INTO runs (id, tenant_id, status, inputs) VALUES ($1, $2, 'queued', $3)",
            "r1",
            "acme",
            {"city": "Oslo", "n": [1, 2]},
        )
        row = await pool.fetchrow("SELECT inputs, outputs, created_at FROM runs WHERE id = 'r1'")
    finally:
        await pool.close()

    assert row is not None
    assert row["inputs"] == {"city": "Oslo", "n": [1, 2]}
    assert row["outputs"] is None
    assert row["created_at"].tzinfo is not None
