"""The job model and parse_job: defaults, refusals by path, no credentials, values kept out of messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from workers.agent.program import AgentJob
from workers.agent.program.__main__ import parse_job

KEY = "sk-jobtest-SECRET-0123456789"


def raw_job(**overrides: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "run_id": "r1",
        "node_id": "agent",
        "prompt": "p",
        "model": "m",
        **overrides,
    }


def test_defaults() -> None:
    job = AgentJob.model_validate(raw_job())
    assert (job.attempt, job.max_steps, job.max_tokens, job.timeout_s) == (1, 10, 100_000, 300.0)
    assert job.tools is None and job.output_schema is None and job.context.inputs == {}
    assert job.patch is False and job.max_call_bytes == 1024 * 1024


@pytest.mark.parametrize("field", ["llm", "api", "http"])
def test_a_job_carries_no_credentials_or_network_settings(field: str) -> None:
    with pytest.raises(ValueError, match=rf"invalid job: {field}: Extra inputs are not permitted"):
        parse_job(json.dumps(raw_job(**{field: {"api_key": KEY}})).encode())


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"v": 2}, "v"),
        ({"surprise": 1}, "surprise"),
        ({"max_steps": 0}, "max_steps"),
        ({"timeout_s": -1}, "timeout_s"),
        ({"max_call_bytes": 10}, "max_call_bytes"),
        ({"output_schema": {"type": "nonsense"}}, "output_schema"),
    ],
)
def test_invalid_jobs_are_refused_by_path(overrides: dict[str, Any], location: str) -> None:
    with pytest.raises(ValueError, match=rf"invalid job: .*\b{location}\b") as caught:
        parse_job(json.dumps(raw_job(**overrides)).encode())
    assert KEY not in str(caught.value)


def test_parse_job_never_echoes_values() -> None:
    broken = raw_job(prompt={"nested": KEY})
    with pytest.raises(ValueError, match=r"prompt") as caught:
        parse_job(json.dumps(broken).encode())
    assert KEY not in str(caught.value)
    with pytest.raises(ValueError, match=r"invalid job: \(job\)"):
        parse_job(b"not json " + KEY.encode())


def test_the_output_schema_must_be_a_json_schema() -> None:
    with pytest.raises(ValidationError, match="type: not a valid JSON Schema"):
        AgentJob.model_validate(raw_job(output_schema={"type": "nonsense"}))
