"""The agent program, run as its own process (``python -m workers.agent.program``): one job in on stdin, the
output protocol out on stdout. The job model and the protocol are exported for the worker that runs it."""

from workers.agent.program._job import AgentJob, ApiAccess, HttpAccess, JobContext, LlmAccess
from workers.agent.program._protocol import (
    RESULT_PREFIX,
    AgentError,
    AgentResult,
    ProtocolWriter,
    Usage,
    classify_line,
    parse_result_line,
)

__all__ = [
    "RESULT_PREFIX",
    "AgentError",
    "AgentJob",
    "AgentResult",
    "ApiAccess",
    "HttpAccess",
    "JobContext",
    "LlmAccess",
    "ProtocolWriter",
    "Usage",
    "classify_line",
    "parse_result_line",
]
