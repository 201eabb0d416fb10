"""Property test from the live OpenAPI schema: random requests to every operation never get a 5xx, and every answer
is what the schema says (its status, media type and body: checked by the client of ``ApiUnderFuzz``).

Valid-ish values (ids that exist, JSON of every shape) mixed with hostile ones (NUL, lone surrogates, huge and
non-finite numbers, deep nesting, long strings) in every path parameter, query parameter and body field.
``AOB_FUZZ_EXAMPLES`` sets the number of requests (default 300, about 10 s; CI runs the default).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import chain_definition
from tests.support.api_fuzz import (
    HOSTILE,
    HOSTILE_PATH,
    HOSTILE_QUERY,
    ApiUnderFuzz,
    Operation,
    check_answer,
    is_stream,
    json_content,
    shaped,
)

EXAMPLES = int(os.environ.get("AOB_FUZZ_EXAMPLES", "300"))
ANSWER_TIMEOUT_S = 10.0
# A live event stream of a run that has not ended never completes: after this long it counts as an answer.
STREAM_TIMEOUT_S = 0.5

# Any code point, lone surrogates included (hypothesis leaves them out of text by default).
_ANY_CHAR = st.characters(codec=None, exclude_categories=())
_TEXT = (
    st.text(max_size=20) | st.text(_ANY_CHAR, max_size=8) | st.sampled_from([v for v in HOSTILE if isinstance(v, str)])
)
_JSON_LEAVES = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | _TEXT
JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_PATH_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)
# A URL cannot carry a lone surrogate (httpx cannot encode one), so queries draw from what UTF-8 can encode.
_QUERY = (
    st.text(st.characters(codec="utf-8"), max_size=20) | st.integers(-5, 300).map(str) | st.sampled_from(HOSTILE_QUERY)
)


def _request(data: st.DataObject, api: ApiUnderFuzz, operation: Operation) -> tuple[str, dict[str, Any]]:
    values = {
        name: data.draw(st.sampled_from(api.known) | _PATH_TEXT | st.sampled_from(HOSTILE_PATH), label=name)
        for name in operation.path_params
    }
    params = {name: data.draw(_QUERY, label=name) for name in operation.query_params if data.draw(st.booleans())}
    kwargs: dict[str, Any] = {"params": params}
    if operation.body_properties is not None:
        field_value = JSON | st.sampled_from(api.known) | st.sampled_from(HOSTILE)
        loose = st.fixed_dictionaries({}, optional={name: field_value for name in operation.body_properties})
        body = loose | JSON | st.sampled_from(HOSTILE)
        if operation.body_schema is not None:
            # Bodies of the right shape reach past the request validation; free-form objects get valid definitions too.
            free = JSON | st.sampled_from(api.known) | st.just(chain_definition(2)) | st.sampled_from(HOSTILE)
            body = shaped(operation.body_schema, api.components, free) | body
        kwargs |= json_content(data.draw(body, label="body"))
    return operation.url(values), kwargs


# The suite's per-test timeout fits the default; longer runs get about a second per request.
@pytest.mark.timeout(max(120, 60 + EXAMPLES))
def test_random_requests_never_get_a_5xx() -> None:
    with asyncio.Runner() as runner:
        api = runner.run(ApiUnderFuzz().__aenter__())
        try:
            operations = api.operations()

            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(data=st.data())
            def check(data: st.DataObject) -> None:
                operation = data.draw(st.sampled_from(operations), label="operation")
                url, kwargs = _request(data, api, operation)
                timeout_s = STREAM_TIMEOUT_S if is_stream(url) else ANSWER_TIMEOUT_S
                response = runner.run(api.answer(operation.method, url, timeout_s, **kwargs))
                check_answer(response, url, f"{operation.method} {url} {str(kwargs)[:500]}")

            check()
        finally:
            runner.run(api.__aexit__(None, None, None))
