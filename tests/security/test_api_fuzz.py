"""Hostile values in every body field, path and query parameter of every operation get a 4xx, never a 5xx.

The random fuzz (``tests/integration/orchestrator/test_fuzz.py``) explores; this sweep is its deterministic floor.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.api_fuzz import (
    HOSTILE,
    HOSTILE_CORE,
    HOSTILE_PATH,
    HOSTILE_QUERY,
    ApiUnderFuzz,
    Operation,
    check_answer,
    is_stream,
    json_content,
)

ANSWER_TIMEOUT_S = 10.0
# A live stream of a run that has not ended (nothing runs it here) answers with its first frame and stays open.
STREAM_TIMEOUT_S = 0.2


async def test_a_nul_in_a_key_name_is_refused_naming_the_field() -> None:
    async with ApiUnderFuzz() as api:
        for name in ("a\x00b", "\ud800"):
            response = await api.client.post("/api/v1/api-keys", **json_content({"name": name}))
            assert response.status_code == 422, response.text
            assert response.json()["error"]["details"][0]["path"] == "body.name"


async def test_non_standard_numbers_are_refused() -> None:
    async with ApiUnderFuzz() as api:
        for value in (float("nan"), float("inf"), 1e400):
            body = {"workflow_id": "fz/one", "inputs": {"deep": [value]}}
            response = await api.client.post("/api/v1/runs", **json_content(body))
            assert response.status_code == 422, response.text
            assert response.json()["error"]["details"][0]["path"] == "body.inputs.deep.0"


def _base_values(api: ApiUnderFuzz, operation: Operation) -> dict[str, str]:
    workflow_id, _, run_id, key_id, digest = api.known
    by_name = {"run_id": run_id, "key_id": key_id, "digest": digest}
    return {name: by_name.get(name, workflow_id) for name in operation.path_params}


async def test_every_operation_answers_hostile_values_with_a_4xx() -> None:
    async with ApiUnderFuzz() as api:
        for operation in api.operations():
            base = _base_values(api, operation)
            cases: list[tuple[str, dict[str, Any]]] = []
            for name in operation.path_params:
                cases += [(operation.url(base | {name: value}), {}) for value in HOSTILE_PATH]
            url = operation.url(base)
            for name in operation.query_params:
                cases += [(url, {"params": {name: value}}) for value in HOSTILE_QUERY]
            if operation.body_properties is not None:
                cases += [(url, json_content(value)) for value in HOSTILE]
                for prop in operation.body_properties:
                    cases += [(url, json_content({prop: value})) for value in HOSTILE_CORE]
            # Concurrently, as clients would: the sweep stays fast, and races between requests are fair game.
            await asyncio.gather(*(_check(api, operation.method, target, kwargs) for target, kwargs in cases))


async def _check(api: ApiUnderFuzz, method: str, target: str, kwargs: dict[str, Any]) -> None:
    timeout_s = STREAM_TIMEOUT_S if is_stream(target) else ANSWER_TIMEOUT_S
    response = await api.answer(method, target, timeout_s, **kwargs)
    check_answer(response, target, f"{method} {target} {str(kwargs)[:300]}")
