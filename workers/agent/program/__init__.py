"""The agent program, run as its own process (``python -m workers.agent.program``): one job in on stdin, the
output protocol (``common.agent_protocol``) out on stdout. The job model is exported for the worker that runs it."""

from workers.agent.program._job import AgentJob, ApiAccess, HttpAccess, JobContext, LlmAccess

__all__ = ["AgentJob", "ApiAccess", "HttpAccess", "JobContext", "LlmAccess"]
