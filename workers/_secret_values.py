"""The values of the secrets a node's config refers to, read only here, in the worker, at execution time."""

from __future__ import annotations

from typing import Any

from common.errors import NodeFailed
from common.secrets import SecretStore, SecretsUnavailable
from workers._handler import NodeContext


async def secret_values(store: SecretStore | None, ctx: NodeContext, value: Any) -> dict[str, str]:
    """Name → value of each secret whose placeholder is in ``value``; a non-retryable failure naming any unknown."""
    names = ctx.secret_slots.names(value)
    if not names:
        return {}
    if store is None:
        raise NodeFailed("config: secrets are not available to this worker", retryable=False, error_type="secret")
    try:
        values = await store.values(ctx.tenant_id, names)
    except SecretsUnavailable as exc:
        raise NodeFailed(f"config: {exc.message}", retryable=False, error_type="secret") from None
    missing = sorted(names - values.keys())
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise NodeFailed(
            f"config: unknown secret {listed} (set it with `aob secrets set NAME`)",
            retryable=False,
            error_type="unknown_secret",
        )
    return values
