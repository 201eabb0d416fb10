"""The agent node: the worker side runs the agent program (``workers.agent.program``) and follows its output."""

from workers.agent._budget import TokenBudget
from workers.agent._handler import AgentHandler, agent_handler
from workers.agent._logs import NodeLog
from workers.agent._redact import Redactor
from workers.agent._runtimes import AgentRuntime, RuntimeFactory, RuntimeFailure, RuntimeJob
from workers.agent._settings import AgentWorkerSettings

__all__ = [
    "AgentHandler",
    "AgentRuntime",
    "AgentWorkerSettings",
    "NodeLog",
    "Redactor",
    "RuntimeFactory",
    "RuntimeFailure",
    "RuntimeJob",
    "TokenBudget",
    "agent_handler",
]
