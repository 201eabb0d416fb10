"""Postgres access: asyncpg pools bound to one schema, and the migrations that build that schema."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import asyncpg

from common.errors import AobError, ConfigError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# First half of the two-key advisory lock; the second half is a hash of the schema name, so migrations of
# different schemas (one per test) never wait for each other.
_MIGRATE_LOCK_CLASS = 0x0A0B


def _checked_schema(schema: str) -> str:
    # Schema names are spliced into SQL, so only plain lower-case identifiers are allowed.
    if not _SCHEMA_RE.match(schema):
        raise ConfigError(f"db schema: expected a lower-case identifier matching {_SCHEMA_RE.pattern}, got {schema!r}")
    return schema


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A pool's reset that leaves the session as it is (asyncpg still rolls back an open transaction)."""


async def create_pool(
    url: str, schema: str = "public", *, min_size: int = 1, max_size: int = 10, reset_session: bool = True
) -> asyncpg.Pool:
    """Return a pool whose connections use ``schema`` and map json/jsonb columns to Python objects.

    ``reset_session=False`` skips the query that resets a released connection's session (advisory locks, settings,
    listeners): one round trip per query fewer, for callers that leave no such state behind.
    """
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": _checked_schema(schema)},
        init=_init_connection,
        reset=None if reset_session else _keep_session,
    )
    return pool


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The ``NNN_name.sql`` files of ``directory`` in the order they apply."""
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise ConfigError(f"migrations: expected NNN_name.sql files in {directory}, found none")
    return files


async def migrate(url: str, schema: str = "public", *, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations to ``schema`` (created if missing), each in its own transaction.

    Safe to run concurrently: an advisory lock per schema serialises migrators. Returns the names applied.
    """
    schema = _checked_schema(schema)
    files = migration_files(directory)
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", _MIGRATE_LOCK_CLASS, schema)
        try:
            return await _apply_pending(conn, schema, files)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _MIGRATE_LOCK_CLASS, schema)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, schema: str, files: list[Path]) -> list[str]:
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    await conn.execute(f"SET search_path TO {schema}")
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
    applied: list[str] = []
    for path in files:
        name = path.stem
        if name in done:
            continue
        started = time.monotonic()
        try:
            async with conn.transaction():
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
        except asyncpg.PostgresError as exc:
            raise AobError(f"migration {path.name} on schema {schema}: {exc}") from exc
        logger.info("applied migration %s to schema %s in %.0f ms", name, schema, (time.monotonic() - started) * 1000)
        applied.append(name)
    return applied
