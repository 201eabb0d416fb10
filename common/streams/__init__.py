"""Redis Streams plumbing: consumer groups and the one consumer loop every consumer group runs on."""

from common.streams.batch import Batch, Entry, Slots, Undeliverable
from common.streams.consumer import BatchHandler, DeadLetter, StreamConsumer, StreamSource
from common.streams.groups import ensure_group

__all__ = [
    "Batch",
    "BatchHandler",
    "DeadLetter",
    "Entry",
    "Slots",
    "StreamConsumer",
    "StreamSource",
    "Undeliverable",
    "ensure_group",
]
