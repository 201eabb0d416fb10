"""``POST /api/v1/hooks/{trigger_id}``: a webhook starts a run. Authenticated by the trigger's own secret (never an
API key), rate-limited per trigger, and submitted through the same path as ``POST /runs``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from common.auth import Principal
from common.errors import TemplateError
from common.runs.admission import Admission, Limit
from common.workflow.templates import TemplateScope, render_value
from orchestrator._errors import ApiError, not_found
from orchestrator._json import OrjsonResponse
from orchestrator._models import RunCreate
from orchestrator._ratelimit import DeferredCount
from orchestrator._schemas.triggers import HookAcceptedAnswer
from orchestrator._state import AppState
from orchestrator._submit import submit_run
from orchestrator._triggers import Trigger, find_hook_trigger
from orchestrator._triggers_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, check_bearer, check_signature

router = APIRouter(prefix="/api/v1", tags=["triggers"])

# Room left in the 200 characters of a run's idempotency key for the trigger's namespace.
_MAX_IDEMPOTENCY_KEY = 120

_HOOK_OPENAPI: dict[str, Any] = {
    "parameters": [
        {"name": "Authorization", "in": "header", "required": False, "schema": {"type": "string"}},
        {"name": "X-Aob-Timestamp", "in": "header", "required": False, "schema": {"type": "string"}},
        {"name": "X-Aob-Signature", "in": "header", "required": False, "schema": {"type": "string"}},
        {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}},
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "free-form: any JSON object, mapped to the run's inputs by the trigger's"
                    " input_mapping (without one, it is the inputs)",
                }
            }
        },
    },
}


@router.post("/hooks/{trigger_id}", status_code=202, response_model=HookAcceptedAnswer, openapi_extra=_HOOK_OPENAPI)
async def hook(trigger_id: str, request: Request) -> Response:
    """Start a run of the trigger's workflow from a JSON body (202 with the run id); the same
    ``Idempotency-Key`` again answers with the same run."""
    state: AppState = request.app.state.aob
    trigger = await find_hook_trigger(state.pool, trigger_id) if len(trigger_id) <= 100 else None
    if trigger is None:
        raise not_found("trigger", trigger_id[:100])
    raw = await request.body()
    if trigger.auth == "bearer":
        check_bearer(trigger, request.headers.get("authorization"))
    else:
        await check_signature(
            trigger,
            state.keyring,
            state.redis,
            state.keys,
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            presented=request.headers.get(SIGNATURE_HEADER),
            body=raw,
        )
    if trigger.paused:
        raise ApiError(409, f"trigger {trigger.id} is paused; unpause it to accept deliveries", code="paused")
    body = _json_object(raw)
    verdict = await Admission(state.redis, state.keys, state.settings).count(
        [Limit(f"trigger:{trigger.id}", trigger.rate_per_min, "deliveries per trigger")]
    )
    if not verdict.allowed:
        raise ApiError(
            429,
            f"rate limit: trigger {trigger.id} accepts {verdict.limit} deliveries per {state.settings.rate_window_s} s;"
            f" retry in {verdict.retry_after_s} s",
            headers=verdict.headers(),
        )
    inputs = _mapped(trigger, body, request)
    # The trigger acts as an editor of its tenant; its id stands in for a key in limits and in ``started_by``.
    caller = Principal(key_id=f"trigger:{trigger.id}", tenant_id=trigger.tenant_id, role="editor", name=trigger.name)
    run = RunCreate(workflow_id=trigger.workflow_id, version=trigger.version, inputs=inputs)
    submitted = await submit_run(
        state,
        caller,
        run,
        _idempotency_key(trigger, request),
        DeferredCount(state.limiter, caller),
        trigger_id=trigger.id,
    )
    answer = {"run_id": submitted.body["id"], "status": submitted.body["status"], "replayed": not submitted.created}
    return OrjsonResponse(answer, status_code=202, headers=verdict.headers())


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"request body: expected a JSON object, it does not parse ({exc})") from None
    if not isinstance(body, dict):
        got = "nothing" if body is None else type(body).__name__
        raise ApiError(422, f"request body: expected a JSON object, got {got}")
    return body


def _mapped(trigger: Trigger, body: dict[str, Any], request: Request) -> dict[str, Any]:
    """The run's inputs: the body itself without a mapping, else the mapping rendered over ``body`` and the
    selected ``headers``, one sandboxed evaluation under the template budget (as the coordinator renders configs)."""
    if not trigger.input_mapping:
        return body
    headers = {name: request.headers[name] for name in trigger.headers if name in request.headers}
    scope = TemplateScope(inputs={}, nodes={}, extra={"body": body, "headers": headers})
    try:
        rendered = render_value(trigger.input_mapping, scope)
    except TemplateError as exc:
        raise ApiError(422, f"trigger {trigger.id}: input mapping: {exc.message}", code="invalid_inputs") from None
    return dict(rendered)


def _idempotency_key(trigger: Trigger, request: Request) -> str | None:
    """The sender's ``Idempotency-Key``, namespaced by trigger so it never meets a key used with ``POST /runs``."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 0 < len(key) <= _MAX_IDEMPOTENCY_KEY:
        raise ApiError(422, f"Idempotency-Key: expected 1-{_MAX_IDEMPOTENCY_KEY} characters, got {len(key)}")
    return f"hook:{trigger.id}:{key}"
