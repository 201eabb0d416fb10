"""aob fanout: live run events over WebSocket, the shared streaming core, and the event archive."""

from fanout._app import create_fanout_app, run_fanout
from fanout._archive import EventArchiver
from fanout._events import TERMINAL_EVENT_TYPES, WireEvent
from fanout._feed import Delivery, EventFeed
from fanout._history import EventHistory
from fanout._hub import Overflowed
from fanout._metrics import StreamMetrics
from fanout._settings import FanoutServiceSettings
from fanout._streams import EventStreams

__all__ = [
    "TERMINAL_EVENT_TYPES",
    "Delivery",
    "EventArchiver",
    "EventFeed",
    "EventHistory",
    "EventStreams",
    "FanoutServiceSettings",
    "Overflowed",
    "StreamMetrics",
    "WireEvent",
    "create_fanout_app",
    "run_fanout",
]
