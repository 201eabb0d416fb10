"""Notification subscriptions of the caller's tenant (editors write, readers read) and their delivery logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from common.notifications import NotificationStore, SubscriptionCreate, TestQueued, check_webhook_url
from common.notifications.models import SubscriptionPatch
from common.secrets import SecretsUnavailable
from orchestrator._audit import audited
from orchestrator._errors import ApiError, not_found
from orchestrator._schemas.notifications import DeliveryPageAnswer, SubscriptionAnswer, SubscriptionPageAnswer
from orchestrator._state import AppState, Editor, Reader, State

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

SubscriptionId = Annotated[str, Path(max_length=64)]


def _store(state: AppState) -> NotificationStore:
    return NotificationStore(state.pool, state.keyring)


@router.post("/subscriptions", status_code=201)
async def create_subscription(body: SubscriptionCreate, state: State, caller: Editor) -> SubscriptionAnswer:
    """Subscribe to events; a webhook's answer carries its signing secret (``secret``), shown this once only."""
    if body.url is not None:
        await check_webhook_url(body.url, state.settings.notify_allowlist)
    detail = {"channel": body.channel, "events": list(body.events)}
    async with audited(state, caller, "notification.create", "subscription", tenant_id=caller.tenant_id, detail=detail):
        try:
            subscription = await _store(state).create(caller.tenant_id, body, by=caller.key_id)
        except SecretsUnavailable as exc:
            # A 409 like the secrets API: the signing secret is only ever stored encrypted.
            raise ApiError(409, exc.message, code="secrets_unavailable") from None
    return subscription.model_dump(mode="json")


@router.get("/subscriptions")
async def list_subscriptions(state: State, caller: Reader) -> SubscriptionPageAnswer:
    """The tenant's subscriptions, oldest first."""
    items = await _store(state).subscriptions(caller.tenant_id)
    return {"items": [item.model_dump(mode="json", exclude={"secret"}) for item in items], "next_cursor": None}


@router.get("/subscriptions/{subscription_id}")
async def get_subscription(subscription_id: SubscriptionId, state: State, caller: Reader) -> SubscriptionAnswer:
    """One subscription (never its secret)."""
    subscription = await _store(state).get(caller.tenant_id, subscription_id)
    if subscription is None:
        raise not_found("subscription", subscription_id)
    return subscription.model_dump(mode="json", exclude={"secret"})


@router.patch("/subscriptions/{subscription_id}")
async def patch_subscription(
    subscription_id: SubscriptionId, body: SubscriptionPatch, state: State, caller: Editor
) -> SubscriptionAnswer:
    """Pause or resume a subscription; events while paused are not delivered later."""
    subscription = await _store(state).set_paused(caller.tenant_id, subscription_id, body.paused)
    if subscription is None:
        raise not_found("subscription", subscription_id)
    return subscription.model_dump(mode="json", exclude={"secret"})


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(subscription_id: SubscriptionId, state: State, caller: Editor) -> Response:
    """Delete a subscription with its pending deliveries and its delivery log."""
    async with audited(state, caller, "notification.delete", subscription_id, tenant_id=caller.tenant_id, detail={}):
        if not await _store(state).delete(caller.tenant_id, subscription_id):
            raise not_found("subscription", subscription_id)
    return Response(status_code=204)


@router.get("/subscriptions/{subscription_id}/deliveries")
async def list_deliveries(
    subscription_id: SubscriptionId,
    state: State,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryPageAnswer:
    """The subscription's delivery attempts, newest first."""
    store = _store(state)
    if await store.get(caller.tenant_id, subscription_id) is None:
        raise not_found("subscription", subscription_id)
    items = await store.deliveries(caller.tenant_id, subscription_id, limit=limit)
    return {"items": [item.model_dump(mode="json") for item in items], "next_cursor": None}


@router.post("/subscriptions/{subscription_id}/test", status_code=202)
async def send_test(subscription_id: SubscriptionId, state: State, caller: Editor) -> TestQueued:
    """Queue a ``test`` event for the subscription, even a paused one: the notifiers send it as they send every
    event, and its attempts appear in the delivery log. 409 while an earlier test is still waiting to be sent."""
    store = _store(state)
    subscription = await store.get(caller.tenant_id, subscription_id)
    if subscription is None:
        raise not_found("subscription", subscription_id)
    async with audited(state, caller, "notification.test", subscription_id, tenant_id=caller.tenant_id, detail={}):
        event_id = await store.enqueue_test(subscription, requested_by=caller.name)
        if event_id is None:
            raise ApiError(
                409,
                f"subscription {subscription_id}: an earlier test is still waiting to be delivered; see its deliveries",
                code="test_pending",
            )
    return TestQueued(subscription_id=subscription_id, event_id=event_id)
