"""Webhook triggers as stored: the ``triggers`` rows, their secrets (at most two active), and their API shape.

A bearer secret is stored as its sha256 only; an HMAC secret must be read back to verify signatures, so it is
stored encrypted with the secrets keyring (``AOB_SECRETS_KEYS``), and an HMAC trigger cannot be made without one.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.secrets import Keyring, SecretsUnavailable
from common.workflow.templates import check_syntax
from orchestrator._errors import ApiError, not_found

T = TypeVar("T")
SecretEntries = list[dict[str, str]]

MAX_ACTIVE_SECRETS = 2
HOOK_PATH = "/api/v1/hooks/{id}"
# Headers that carry credentials never reach run inputs, whatever a trigger selects.
_UNSELECTABLE = frozenset({"authorization", "proxy-authorization", "cookie"})
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$")

TRIGGER_COLUMNS = (
    "id, name, workflow_id, version, auth, secrets, input_mapping, headers, rate_per_min, paused, created_by,"
    " created_at, updated_at"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriggerFields(_Strict):
    """What a trigger's owner may change after creating it."""

    version: int | None = Field(default=None, ge=1, le=2**31 - 1, description="pinned version; null: the latest")
    input_mapping: dict[str, Any] = Field(
        default_factory=dict,
        description="run input name -> template over 'body' and 'headers'; empty: the body is the inputs",
    )
    headers: list[str] = Field(default_factory=list, max_length=20, description="request headers templates see")
    rate_per_min: int = Field(default=60, ge=1, le=1_000_000, description="hook requests per rate-limit window")
    paused: bool = False

    @field_validator("input_mapping")
    @classmethod
    def _templates_parse(cls, mapping: dict[str, Any]) -> dict[str, Any]:
        errors = check_syntax(mapping)
        if errors:
            raise ValueError("; ".join(errors))
        return mapping

    @field_validator("headers")
    @classmethod
    def _headers_selectable(cls, names: list[str]) -> list[str]:
        bad = [name for name in names if not _HEADER_NAME.match(name)]
        if bad:
            raise ValueError(f"not header names: {', '.join(bad)}")
        lowered = [name.lower() for name in names]
        refused = sorted(set(lowered) & _UNSELECTABLE)
        if refused:
            raise ValueError(f"headers {', '.join(refused)} carry credentials and cannot be passed to runs")
        return lowered


class TriggerCreate(TriggerFields):
    """The body of ``POST /triggers``."""

    workflow: str = Field(min_length=1, max_length=300, description="workflow id or name")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    auth: Literal["bearer", "hmac"] = "hmac"


class TriggerUpdate(_Strict):
    """The body of ``PATCH /triggers/{id}``: only the fields given change."""

    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    input_mapping: dict[str, Any] | None = Field(default=None, description="replaces the whole mapping")
    headers: list[str] | None = Field(default=None, max_length=20)
    rate_per_min: int | None = Field(default=None, ge=1, le=1_000_000)
    paused: bool | None = None

    def merged(self, current: Trigger) -> TriggerFields:
        """``current``'s fields with this update's applied, validated as a whole."""
        fields: dict[str, Any] = {
            "version": current.version,
            "input_mapping": current.input_mapping,
            "headers": current.headers,
            "rate_per_min": current.rate_per_min,
            "paused": current.paused,
        }
        for key, value in self.model_dump(exclude_unset=True).items():
            # An explicit null version unpins; a null anywhere else leaves the field as it is.
            if value is not None or key == "version":
                fields[key] = value
        return TriggerFields.model_validate(fields)


@dataclass(frozen=True)
class Trigger:
    """One stored trigger."""

    id: str
    tenant_id: str
    name: str
    workflow_id: str
    version: int | None
    auth: str
    secrets: list[dict[str, str]]
    input_mapping: dict[str, Any]
    headers: list[str]
    rate_per_min: int
    paused: bool
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record, tenant_id: str) -> Trigger:
        return cls(
            tenant_id=tenant_id,
            **{key: row[key] for key in TRIGGER_COLUMNS.replace(" ", "").split(",")},
        )

    def shown(self) -> dict[str, Any]:
        """The API shape: never a secret, only each active secret's id and age."""
        return {
            "id": self.id,
            "name": self.name,
            "workflow_id": self.workflow_id,
            "version": self.version,
            "auth": self.auth,
            "hook_path": HOOK_PATH.format(id=self.id),
            "secrets": [{"id": s["id"], "created_at": s["created_at"]} for s in self.secrets],
            "input_mapping": self.input_mapping,
            "headers": self.headers,
            "rate_per_min": self.rate_per_min,
            "paused": self.paused,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def new_trigger_id() -> str:
    """128 random bits: the id is the URL, and the URL is only as private as it is unguessable."""
    return "trg_" + secrets.token_hex(16)


def new_secret(auth: str, keyring: Keyring) -> tuple[str, dict[str, str]]:
    """A fresh secret and its stored entry; 409 for an HMAC secret when no keyring is configured."""
    raw = "whsec_" + secrets.token_urlsafe(32)
    entry = {"id": secrets.token_hex(4), "created_at": datetime.now(UTC).isoformat()}
    if auth == "bearer":
        return raw, entry | {"sha256": hashlib.sha256(raw.encode()).hexdigest()}
    try:
        return raw, entry | {"ciphertext": keyring.encrypt(raw)}
    except SecretsUnavailable as exc:
        raise ApiError(
            409,
            f"hmac triggers keep their secret encrypted, and {exc.message}; use auth 'bearer' or configure it",
            code="secrets_unavailable",
        ) from None


async def load_trigger(db: asyncpg.Pool | asyncpg.Connection, tenant_id: str, trigger_id: str) -> Trigger:
    """The tenant's trigger ``trigger_id``; 404 otherwise."""
    row = await db.fetchrow(
        f"SELECT {TRIGGER_COLUMNS} FROM triggers WHERE id = $1 AND tenant_id = $2", trigger_id, tenant_id
    )
    if row is None:
        raise not_found("trigger", trigger_id)
    return Trigger.of(row, tenant_id)


async def find_hook_trigger(db: asyncpg.Pool, trigger_id: str) -> Trigger | None:
    """The trigger a hook URL names, whichever tenant owns it."""
    row = await db.fetchrow(f"SELECT tenant_id, {TRIGGER_COLUMNS} FROM triggers WHERE id = $1", trigger_id)
    return Trigger.of(row, row["tenant_id"]) if row is not None else None


async def insert_trigger(
    db: asyncpg.Pool, tenant_id: str, workflow_id: str, body: TriggerCreate, entry: dict[str, str], by: str
) -> Trigger:
    """Store a new trigger with its first secret."""
    trigger_id = new_trigger_id()
    row = await db.fetchrow(
        f"INSERT INTO triggers (id, tenant_id, name, workflow_id, version, auth, secrets, input_mapping, headers,"
        f" rate_per_min, paused, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb, $9,"
        f" $10, $11, $12) RETURNING {TRIGGER_COLUMNS}",
        trigger_id,
        tenant_id,
        body.name or trigger_id,
        workflow_id,
        body.version,
        body.auth,
        json.dumps([entry]),
        json.dumps(body.input_mapping),
        body.headers,
        body.rate_per_min,
        body.paused,
        by,
    )
    return Trigger.of(row, tenant_id)


async def update_trigger(db: asyncpg.Pool, trigger: Trigger, fields: TriggerFields) -> Trigger:
    """Write ``fields`` over ``trigger``'s."""
    row = await db.fetchrow(
        f"UPDATE triggers SET version = $3, input_mapping = $4::text::jsonb, headers = $5, rate_per_min = $6,"
        f" paused = $7, updated_at = now() WHERE id = $1 AND tenant_id = $2 RETURNING {TRIGGER_COLUMNS}",
        trigger.id,
        trigger.tenant_id,
        fields.version,
        json.dumps(fields.input_mapping),
        fields.headers,
        fields.rate_per_min,
        fields.paused,
    )
    if row is None:
        raise not_found("trigger", trigger.id)
    return Trigger.of(row, trigger.tenant_id)


async def replace_secrets(
    conn: asyncpg.Connection,
    tenant_id: str,
    trigger_id: str,
    change: Callable[[SecretEntries], tuple[SecretEntries, T]],
) -> tuple[Trigger, T]:
    """Apply ``change(secrets) -> (new secrets, result)`` to the trigger's secrets under a row lock, so two
    rotations at once cannot both see one active secret and leave three."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {TRIGGER_COLUMNS} FROM triggers WHERE id = $1 AND tenant_id = $2 FOR UPDATE", trigger_id, tenant_id
        )
        if row is None:
            raise not_found("trigger", trigger_id)
        secrets_now, result = change(list(row["secrets"]))
        updated = await conn.fetchrow(
            f"UPDATE triggers SET secrets = $2::text::jsonb, updated_at = now() WHERE id = $1 RETURNING"
            f" {TRIGGER_COLUMNS}",
            trigger_id,
            json.dumps(secrets_now),
        )
    return Trigger.of(updated, tenant_id), result
