"""``aob up --scale``: which processes a scale names, and the ports extra API and fanout instances take."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from devstack.scale import parse_scale, scaled_children
from devstack.supervisor import SERVICES

PORTS = {"AOB_API_PORT": 8080, "AOB_FANOUT_PORT": 8081}


def test_a_scale_names_services_and_counts() -> None:
    scale = parse_scale("coordinator=2, worker.builtin=3,fanout=1", SERVICES)
    assert scale == {("coordinator",): 2, ("worker", "builtin"): 3, ("fanout",): 1}
    assert parse_scale("", SERVICES) == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("worker=2", "unknown service 'worker'"),
        ("worker.gpu=2", "unknown service 'worker.gpu'"),
        ("coordinator=0", "expected a count from 1 to 16, got '0'"),
        ("coordinator=two", "expected a count from 1 to 16, got 'two'"),
        ("coordinator", "expected a count from 1 to 16, got ''"),
    ],
)
def test_a_wrong_scale_says_which_item_and_why(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_scale(value, SERVICES)


def test_extra_instances_are_named_and_listen_on_the_next_ports() -> None:
    services = [("coordinator",), ("orchestrator",), ("fanout",)]
    scale = {("coordinator",): 2, ("orchestrator",): 3, ("fanout",): 2}
    children = scaled_children(services, scale, PORTS)
    assert [(child.name, dict(child.env)) for child in children] == [
        ("coordinator", {}),
        ("coordinator #2", {}),
        ("orchestrator", {}),
        ("orchestrator #2", {"AOB_API_PORT": "8090"}),
        ("orchestrator #3", {"AOB_API_PORT": "8100"}),
        ("fanout", {}),
        ("fanout #2", {"AOB_FANOUT_PORT": "8091"}),
    ]
    assert children[0].argv == children[1].argv
