"""The job model and parse_job: defaults, refusals by path, secrets kept out of reprs and messages."""

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
        "llm": {"base_url": "http://llm/v1", "api_key": KEY},
        "api": {"url": "http://api", "token": "tok-SECRET"},
        **overrides,
    }


def test_defaults() -> None:
    job = AgentJob.model_validate(raw_job())
    assert (job.attempt, job.max_steps, job.max_tokens, job.timeout_s) == (1, 10, 100_000, 300.0)
    assert job.tools is None and job.output_schema is None and job.context.inputs == {}
    assert (job.llm.max_retries, job.llm.breaker_threshold) == (4, 5)
    assert "/admin" in job.http.deny_paths and job.http.allowlist == []


def test_secrets_stay_out_of_reprs_and_dumps() -> None:
    job = AgentJob.model_validate(raw_job())
    for shown in (repr(job), str(job), job.model_dump_json()):
        assert KEY not in shown and "tok-SECRET" not in shown
    assert job.llm.api_key.get_secret_value() == KEY


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"v": 2}, "v"),
        ({"surprise": 1}, "surprise"),
        ({"max_steps": 0}, "max_steps"),
        ({"timeout_s": -1}, "timeout_s"),
        ({"llm": {"base_url": "http://llm/v1"}}, "llm.api_key"),
        ({"output_schema": {"type": "nonsense"}}, "output_schema"),
    ],
)
def test_invalid_jobs_are_refused_by_path(overrides: dict[str, Any], location: str) -> None:
    with pytest.raises(ValueError, match=rf"invalid job: .*\b{location}\b") as caught:
        parse_job(json.dumps(raw_job(**overrides)).encode())
    assert KEY not in str(caught.value)


def test_parse_job_never_echoes_values() -> None:
    broken = raw_job(llm={"base_url": "http://llm/v1", "api_key": {"nested": KEY}})
    with pytest.raises(ValueError, match=r"llm\.api_key") as caught:
        parse_job(json.dumps(broken).encode())
    assert KEY not in str(caught.value)
    with pytest.raises(ValueError, match=r"invalid job: \(job\)"):
        parse_job(b"not json " + KEY.encode())


def test_the_output_schema_must_be_a_json_schema() -> None:
    with pytest.raises(ValidationError, match="type: not a valid JSON Schema"):
        AgentJob.model_validate(raw_job(output_schema={"type": "nonsense"}))
