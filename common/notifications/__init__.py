"""Notifications: tenant subscriptions to run and approval events, delivered by webhook or e-mail."""

from common.notifications.models import EVENT_TYPES, TEST_EVENT, Delivery, Subscription, SubscriptionCreate, TestQueued
from common.notifications.send import Sender, sign
from common.notifications.store import NotificationStore
from common.notifications.targets import check_webhook_url

__all__ = [
    "EVENT_TYPES",
    "TEST_EVENT",
    "Delivery",
    "NotificationStore",
    "Sender",
    "Subscription",
    "SubscriptionCreate",
    "TestQueued",
    "check_webhook_url",
    "sign",
]
