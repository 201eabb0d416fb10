"""Built-in steps: noop, transform, delay and branch, served by one handler on ``wf.tasks.builtin``."""

from workers.builtin._handler import BuiltinHandler

__all__ = ["BuiltinHandler"]
