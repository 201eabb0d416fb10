"""Notifications: tenant subscriptions to run and approval events, delivered by webhook or e-mail."""

from common.notifications.models import EVENT_TYPES, Delivery, Subscription, SubscriptionCreate
from common.notifications.send import Sender, sign
from common.notifications.store import NotificationStore
from common.notifications.targets import check_webhook_url

__all__ = [
    "EVENT_TYPES",
    "Delivery",
    "NotificationStore",
    "Sender",
    "Subscription",
    "SubscriptionCreate",
    "check_webhook_url",
    "sign",
]
