"""The agent node: the worker side runs the agent program (``workers.agent.program``) and follows its output.

Public names load on first use: the agent program lives in this package too, and each agent process should
start without importing the worker side.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.agent._budget import TokenBudget
    from workers.agent._handler import AgentHandler, agent_handler
    from workers.agent._logs import NodeLog
    from workers.agent._runtime_api import AgentRuntime, RuntimeFailure, RuntimeJob
    from workers.agent._runtime_factory import RuntimeFactory

__all__ = [
    "AgentHandler",
    "AgentRuntime",
    "NodeLog",
    "RuntimeFactory",
    "RuntimeFailure",
    "RuntimeJob",
    "TokenBudget",
    "agent_handler",
]

_HOMES = {
    "TokenBudget": "workers.agent._budget",
    "AgentHandler": "workers.agent._handler",
    "agent_handler": "workers.agent._handler",
    "NodeLog": "workers.agent._logs",
    "AgentRuntime": "workers.agent._runtime_api",
    "RuntimeFactory": "workers.agent._runtime_factory",
    "RuntimeFailure": "workers.agent._runtime_api",
    "RuntimeJob": "workers.agent._runtime_api",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'workers.agent' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
