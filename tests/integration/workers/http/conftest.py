"""The HTTP node's fixtures: a local server, a handler factory and a one-node runner (from ``tests.support``)."""

from tests.support.http_servers import make_handler, run_node, server

__all__ = ["make_handler", "run_node", "server"]
