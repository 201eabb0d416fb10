"""Secret references: only the author's ``{{ secrets.NAME }}`` in the allowed fields become fillable placeholders."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.secrets import SECRET_FIELDS, SecretSlots, is_secret_reference
from common.workflow.node_configs import AgentConfig
from common.workflow.templates import TemplateScope, render_value

FIELDS = ("url", "headers", "json")


def test_references_in_allowed_fields_survive_rendering_and_fill() -> None:
    slots = SecretSlots()
    config = {
        "url": "https://api.example.com/{{ inputs.path }}?k={{secrets.KEY}}",
        "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}"},
        "json": {"items": ["{{- secrets.KEY -}}", 1]},
        "timeout_s": 5,
    }
    rendered = render_value(slots.shield(config, FIELDS), TemplateScope(inputs={"path": "v1"}, nodes={}))
    assert slots.names(rendered) == {"KEY", "TOKEN"}
    filled = slots.fill(rendered, {"KEY": "k-1", "TOKEN": "t-2"})
    assert filled == {
        "url": "https://api.example.com/v1?k=k-1",
        "headers": {"Authorization": "Bearer t-2"},
        "json": {"items": ["k-1", 1]},
        "timeout_s": 5,
    }


def test_a_reference_that_came_from_data_stays_text() -> None:
    slots = SecretSlots()
    config = {"url": "https://x.example/?q={{ inputs.q }}"}
    rendered = render_value(slots.shield(config, FIELDS), TemplateScope(inputs={"q": "{{ secrets.KEY }}"}, nodes={}))
    assert slots.names(rendered) == set()
    assert slots.fill(rendered, {"KEY": "k-1"}) == {"url": "https://x.example/?q={{ secrets.KEY }}"}


def test_placeholders_of_another_execution_do_not_fill() -> None:
    first, second = SecretSlots(), SecretSlots()
    shielded = first.shield({"url": "{{ secrets.KEY }}"}, FIELDS)
    assert second.names(shielded) == set()


def test_fields_that_do_not_take_secrets_are_left_to_templates() -> None:
    shielded = SecretSlots().shield({"output": "{{ secrets.KEY }}"}, FIELDS)
    assert shielded == {"output": "{{ secrets.KEY }}"}


@pytest.mark.parametrize("api_key", ["{{ secrets.MODEL_KEY }}", "{{secrets.MODEL_KEY}}"])
def test_an_agent_credential_is_a_secret_reference(api_key: str) -> None:
    assert AgentConfig(prompt="go", api_key=api_key).api_key == api_key


@pytest.mark.parametrize("api_key", ["sk-live-0123456789", "Bearer {{ secrets.MODEL_KEY }}", "{{ inputs.key }}"])
def test_an_agent_credential_is_never_a_literal_or_another_template(api_key: str) -> None:
    with pytest.raises(ValidationError, match=r"secrets\.NAME"):
        AgentConfig(prompt="go", api_key=api_key)


def test_the_worker_placeholder_of_a_credential_still_validates() -> None:
    shielded = SecretSlots().shield({"api_key": "{{ secrets.MODEL_KEY }}"}, SECRET_FIELDS["agent"])
    assert is_secret_reference(shielded["api_key"]) and "MODEL_KEY" in shielded["api_key"]
