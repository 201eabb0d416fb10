"""The orchestrator: aob's REST API, SSE streams and the ``aob`` command line."""

from orchestrator._app import ROUTERS, create_app
from orchestrator._serve import run_api
from orchestrator._settings import OrchestratorSettings

__all__ = ["ROUTERS", "OrchestratorSettings", "create_app", "run_api"]
