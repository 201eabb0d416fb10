"""The orchestrator: aob's REST API, SSE streams and the ``aob`` command line."""
