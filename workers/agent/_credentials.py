"""Run-scoped API tokens for agents: minted per execution, stored hashed in Redis with a TTL, revoked at the end."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from common.auth import generate_agent_token, hash_api_key
from common.keys import Keys
from common.workflow.node_configs import DEFAULT_PATCH_TYPES


class AgentCredentials:
    """Mints and revokes the token an agent's ``patch_workflow`` uses to patch its own run (and nothing else)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def mint(
        self,
        *,
        tenant_id: str,
        run_id: str,
        node_id: str,
        ttl_s: float,
        patch_types: Sequence[str] = DEFAULT_PATCH_TYPES,
    ) -> str:
        """A new token valid for ``ttl_s`` seconds; only its sha256 is stored, with the agent's node and the node
        types its patches may add."""
        token = generate_agent_token()
        ttl_ms = max(1000, int(ttl_s * 1000))
        grant = {
            "tenant_id": tenant_id,
            "run_id": run_id,
            "node_id": node_id,
            "patch_types": list(patch_types),
            "expires": time.time() + ttl_ms / 1000,
        }
        await self._redis.set(self._keys.agent_token(hash_api_key(token)), json.dumps(grant), px=ttl_ms)
        return token

    async def revoke(self, token: str) -> None:
        """Make ``token`` unusable at once."""
        await self._redis.delete(self._keys.agent_token(hash_api_key(token)))
