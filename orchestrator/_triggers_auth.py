"""How a hook request proves it comes from the trigger's sender: a bearer secret, or an HMAC-SHA256 signature over
``timestamp + "." + body`` with a fresh timestamp, each signature accepted once.

Every comparison is constant-time and runs against every active secret (at most two), so neither the answer nor
its timing tells which secret, or how much of one, matched.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import redis.asyncio as aioredis

from common.keys import Keys
from common.secrets import Keyring, SecretsUnavailable
from orchestrator._errors import ApiError
from orchestrator._triggers import Trigger

TIMESTAMP_HEADER = "x-aob-timestamp"
SIGNATURE_HEADER = "x-aob-signature"
SIGNATURE_SCHEME = "sha256="
# Older or newer signatures are refused; replays within the window are caught by remembering signatures as long.
TOLERANCE_S = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Aob-Signature`` value a sender computes: ``sha256=`` and the hex HMAC of ``timestamp.body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_SCHEME + digest


def _unauthorized(message: str, code: str = "unauthorized") -> ApiError:
    return ApiError(401, message, code=code)


def check_bearer(trigger: Trigger, authorization: str | None) -> None:
    """401 unless ``Authorization: Bearer <secret>`` holds one of the trigger's active secrets."""
    scheme, _, raw = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise _unauthorized(f"trigger {trigger.id}: expected 'Authorization: Bearer <trigger secret>'")
    presented = hashlib.sha256(raw.strip().encode()).hexdigest()
    matched = False
    for entry in trigger.secrets:
        matched |= hmac.compare_digest(presented, entry["sha256"])
    if not matched:
        raise _unauthorized(f"trigger {trigger.id}: the bearer secret is not one of the trigger's active secrets")


async def check_signature(
    trigger: Trigger,
    keyring: Keyring,
    redis: aioredis.Redis,
    keys: Keys,
    *,
    timestamp: str | None,
    presented: str | None,
    body: bytes,
) -> None:
    """401 for a missing or wrong signature or a stale timestamp, 409 for a signature seen before."""
    if not timestamp or not presented:
        raise _unauthorized(
            f"trigger {trigger.id}: expected headers X-Aob-Timestamp (unix seconds) and"
            f" X-Aob-Signature ({SIGNATURE_SCHEME}<hex HMAC-SHA256 of timestamp + '.' + body>)"
        )
    matched = False
    for entry in trigger.secrets:
        try:
            secret = keyring.decrypt(entry["ciphertext"])
        except SecretsUnavailable as exc:
            raise ApiError(503, f"trigger {trigger.id}: {exc.message}", code="secrets_unavailable") from None
        matched |= hmac.compare_digest(signature(secret, timestamp, body), presented.strip())
    if not matched:
        raise _unauthorized(f"trigger {trigger.id}: the signature does not match the body and timestamp")
    # Checked once the signature holds, so the age is the signer's and not an attacker's.
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise _unauthorized(f"X-Aob-Timestamp: expected unix seconds, got {timestamp[:40]!r}") from None
    skew = int(time.time()) - signed_at
    if abs(skew) > TOLERANCE_S:
        when = f"{skew} s old" if skew > 0 else f"{-skew} s in the future"
        raise _unauthorized(
            f"X-Aob-Timestamp: the signature is {when}; at most {TOLERANCE_S} s either way is accepted"
            " (re-sign with the current time)",
            code="stale_timestamp",
        )
    seen = f"{keys.prefix}hook:seen:{trigger.id}:{presented.strip()}"
    # Remembered for both halves of the window: a timestamp up to TOLERANCE_S ahead stays acceptable that much longer.
    if not await redis.set(seen, "1", nx=True, ex=2 * TOLERANCE_S + 1):
        raise ApiError(
            409, f"trigger {trigger.id}: this signature was already used; sign each delivery anew", code="replayed"
        )
