"""The agent program, run as its own process (``python -m workers.agent.program``): the job in on stdin, the
protocol (``common.agent_protocol``) out on stdout, call replies in on stdin. The job model is exported for the worker
that runs it."""

from workers.agent.program._hardening import forbid_inspection
from workers.agent.program._job import AgentJob, JobContext

__all__ = ["AgentJob", "JobContext", "forbid_inspection"]
