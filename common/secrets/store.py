"""Secrets in Postgres: one encrypted value per (tenant, name); values go in and, inside a worker, come out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

import asyncpg
from pydantic import BaseModel

from common.secrets.keyring import Keyring

SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
SECRET_NAME_RULE = "a letter or '_', then letters, digits or '_' (at most 64 characters)"
# Shorter values cannot be told apart from ordinary text, so redaction could not find them in outputs and logs.
MIN_VALUE_CHARS = 8
MAX_VALUE_CHARS = 65_536


class SecretInfo(BaseModel):
    """What may be shown about a secret: never its value."""

    name: str
    created_at: datetime
    updated_at: datetime
    updated_by: str | None


class SecretStore:
    """The secrets of every tenant in ``db`` (a pool, or a connection inside the caller's transaction)."""

    def __init__(self, db: asyncpg.Pool | asyncpg.Connection, keyring: Keyring) -> None:
        self._db = db
        self._keyring = keyring

    async def put(self, tenant_id: str, name: str, value: str, *, by: str | None) -> tuple[SecretInfo, bool]:
        """Create or replace ``name``; returns its info and whether it is new."""
        row = await self._db.fetchrow(
            "INSERT INTO secrets (tenant_id, name, ciphertext, updated_by) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (tenant_id, name) DO UPDATE"
            " SET ciphertext = EXCLUDED.ciphertext, updated_by = EXCLUDED.updated_by, updated_at = now()"
            " RETURNING name, created_at, updated_at, updated_by, (xmax = 0) AS created",
            tenant_id,
            name,
            self._keyring.encrypt(value),
            by,
        )
        return SecretInfo.model_validate(dict(row)), bool(row["created"])

    async def list(self, tenant_id: str) -> list[SecretInfo]:
        """The tenant's secrets by name."""
        rows = await self._db.fetch(
            "SELECT name, created_at, updated_at, updated_by FROM secrets WHERE tenant_id = $1 ORDER BY name",
            tenant_id,
        )
        return [SecretInfo.model_validate(dict(row)) for row in rows]

    async def delete(self, tenant_id: str, name: str) -> bool:
        """Delete ``name``; False when the tenant has no such secret."""
        done: str = await self._db.execute("DELETE FROM secrets WHERE tenant_id = $1 AND name = $2", tenant_id, name)
        return done != "DELETE 0"

    async def values(self, tenant_id: str, names: Iterable[str]) -> dict[str, str]:
        """The decrypted values of those of ``names`` the tenant has (a missing name is simply absent)."""
        rows = await self._db.fetch(
            "SELECT name, ciphertext FROM secrets WHERE tenant_id = $1 AND name = ANY($2::text[])",
            tenant_id,
            sorted(set(names)),
        )
        return {row["name"]: self._keyring.decrypt(row["ciphertext"]) for row in rows}

    async def rotate(self, tenant_id: str | None) -> int:
        """Re-encrypt the tenant's secrets (every tenant's when None) under the first key; returns how many.

        Run it after putting a new key first in ``AOB_SECRETS_KEYS``; the old key may go once it has run.
        """
        rows = await self._db.fetch(
            "SELECT tenant_id, name, ciphertext FROM secrets WHERE $1::text IS NULL OR tenant_id = $1", tenant_id
        )
        updates = [
            (row["tenant_id"], row["name"], self._keyring.rotate(row["ciphertext"]), row["ciphertext"]) for row in rows
        ]
        # Only a value nobody replaced meanwhile is rewritten: a concurrent put is never undone.
        await self._db.executemany(
            "UPDATE secrets SET ciphertext = $3 WHERE tenant_id = $1 AND name = $2 AND ciphertext = $4", updates
        )
        return len(updates)
