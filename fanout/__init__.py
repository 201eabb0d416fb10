"""The fanout process: live run events over WebSocket (the streaming core it serves lives in ``common.events``)."""

from fanout._app import create_fanout_app, run_fanout

__all__ = ["create_fanout_app", "run_fanout"]
