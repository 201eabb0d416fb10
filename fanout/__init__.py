"""The fanout process: live run events over WebSocket (the streaming core it serves lives in ``common.events``)."""

from fanout._app import create_fanout_app, run_fanout
from fanout._settings import FanoutServiceSettings

__all__ = ["FanoutServiceSettings", "create_fanout_app", "run_fanout"]
