"""Workers: the shared runtime and one handler per node type."""

from workers._handler import NodeContext, NodeHandler, NodeResult
from workers._runtime import Worker
from workers._service import run_worker

__all__ = ["NodeContext", "NodeHandler", "NodeResult", "Worker", "run_worker"]
