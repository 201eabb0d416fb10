"""Workers: the shared runtime and one handler per node type.

Public names load on first use, so a program that only needs one piece (the agent program uses the HTTP
guard) does not pay for importing the whole runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers._handler import NodeContext, NodeHandler, NodeResult
    from workers._runtime import Worker
    from workers._service import run_worker

__all__ = ["NodeContext", "NodeHandler", "NodeResult", "Worker", "run_worker"]

_HOMES = {
    "NodeContext": "workers._handler",
    "NodeHandler": "workers._handler",
    "NodeResult": "workers._handler",
    "Worker": "workers._runtime",
    "run_worker": "workers._service",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'workers' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
