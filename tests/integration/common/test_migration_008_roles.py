"""Migration 008 on a schema with keys: ``member`` becomes ``editor``, every key gets an owner, roles are checked."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from common.db import migrate, migration_files


@pytest.fixture
async def schema(database_url: str) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await conn.close()


async def test_member_keys_become_editors_owned_by_their_name(database_url: str, schema: str, tmp_path: Path) -> None:
    for path in migration_files():
        if path.name < "008":
            shutil.copy(path, tmp_path / path.name)
    await migrate(database_url, schema, directory=tmp_path)
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        await conn.execute("INSERT INTO tenants (id, name) VALUES ('t', 't')")
        keys = [("k1", "alice", "member"), ("k2", "alice", "admin"), ("k3", "admin", "member"), ("k4", "", "member")]
        for key_id, name, role in keys:
            await conn.execute(
                "INSERT INTO api_keys (id, tenant_id, name, role, key_hash) VALUES ($1, 't', $2, $3, $1)",
                key_id,
                name,
                role,
            )
        assert await migrate(database_url, schema) == [p.stem for p in migration_files() if p.name >= "008"]
        rows = await conn.fetch("SELECT id, role, owner FROM api_keys ORDER BY id")
        # Keys that shared a name are one person now (the safe reading); a role-like or empty name is no identity.
        assert [tuple(r) for r in rows] == [
            ("k1", "editor", "alice"),
            ("k2", "admin", "alice"),
            ("k3", "editor", "k3"),
            ("k4", "editor", "k4"),
        ]
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO api_keys (tenant_id, name, owner, role, key_hash) VALUES ('t', 'x', 'x', 'member', 'h')"
            )
    finally:
        await conn.close()
