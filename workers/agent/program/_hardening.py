"""Making a process uninspectable by its peers: no reading its memory, environment or open files through ``/proc``."""

from __future__ import annotations

import ctypes
import sys

_PR_SET_DUMPABLE = 4


def forbid_inspection() -> None:
    """Mark this process non-dumpable (Linux ``prctl(PR_SET_DUMPABLE, 0)``); elsewhere, do nothing.

    Its ``/proc/<pid>`` files then belong to root and need ``CAP_SYS_PTRACE``: a process of the same user (an agent
    program) can no longer read its ``environ``, ``mem`` or ``fd/`` (another agent's stdin). An ``execve`` resets it.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
