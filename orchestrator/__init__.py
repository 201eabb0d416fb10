"""The orchestrator: aob's REST API, SSE streams and the ``aob`` command line."""

from orchestrator._app import ROUTERS, create_app
from orchestrator._serve import run_api

__all__ = ["ROUTERS", "create_app", "run_api"]
