"""Sending one notification: the message an event makes, a signed webhook POST, or an e-mail over SMTP."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
import orjson

from common.notifications.models import TEST_EVENT
from common.notifications.targets import WebhookTargetRefused, check_webhook_url
from common.pinned_http import create_http_client, pinned_addresses
from common.settings import NotificationFields

SIGNATURE_HEADER = "X-Aob-Signature"
TIMESTAMP_HEADER = "X-Aob-Timestamp"
_ERROR_CHARS = 500


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Aob-Signature`` value: ``sha256=`` and the HMAC-SHA256 hex of ``<timestamp>.<body>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def summary(payload: dict[str, Any]) -> str:
    """One line saying what happened, with the approval page's link when there is one."""
    kind = payload["type"]
    if kind == TEST_EVENT:
        return f"Test notification for subscription {payload['data'].get('subscription_id')} (sent from aob)"
    run = f"run {payload['run_id']} of workflow {payload.get('workflow_id') or '?'}"
    if kind == "approval_requested":
        text = f"Approval requested for node {payload.get('node_id')} in {run}"
    elif kind == "approval_decided":
        text = f"Approval {payload['data'].get('status', 'decided')} for node {payload.get('node_id')} in {run}"
    else:
        text = f"{run.capitalize()} {kind.removeprefix('run_').replace('_', ' ')}"
    link = payload.get("link")
    return f"{text}: {link}" if link else text


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: delivered or not, the HTTP status if any, and the error if any."""

    delivered: bool
    response_code: int | None = None
    error: str | None = None
    retryable: bool = True


class Sender:
    """Sends notifications with the ``AOB_NOTIFY_*`` and ``AOB_SMTP_*`` settings."""

    def __init__(self, settings: NotificationFields) -> None:
        self.settings = settings
        # Pinned: a webhook connects only to the addresses its check looked at, so DNS cannot rebind it.
        self._client = create_http_client(max_connections=20, user_agent="aob-notify/0.1")

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def webhook(self, url: str, secret: str, payload: dict[str, Any], fmt: str) -> Outcome:
        """POST ``payload`` (or its Slack ``{"text": ...}`` form) to ``url``, signed; a 2xx is delivered."""
        try:
            target = await check_webhook_url(url, self.settings.notify_allowlist)
        except WebhookTargetRefused as exc:
            return Outcome(False, error=str(exc), retryable=False)
        body = orjson.dumps({"text": summary(payload)} if fmt == "slack" else payload)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            "X-Aob-Event": payload["type"],
        }
        try:
            with pinned_addresses(target.host, target.port, target.addresses):
                response = await self._client.post(
                    url, content=body, headers=headers, timeout=self.settings.notify_timeout_s, follow_redirects=False
                )
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS])
        if response.is_success:
            return Outcome(True, response.status_code)
        return Outcome(False, response.status_code, f"HTTP {response.status_code}: {response.text[:_ERROR_CHARS]}")

    async def email(self, address: str, payload: dict[str, Any]) -> Outcome:
        """Send ``payload`` as a plain-text e-mail to ``address`` through the SMTP server of the settings."""
        host = self.settings.smtp_host
        if host is None:
            return Outcome(False, error="no SMTP server configured (AOB_SMTP_HOST)", retryable=False)
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = address
        message["Subject"] = f"[aob] {summary(payload)}"[:200]
        message.set_content(summary(payload) + "\n\n" + orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
        try:
            # smtplib blocks; a thread keeps the coordinator's loop free.
            await asyncio.to_thread(self._smtp_send, host, message)
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS])
        return Outcome(True)

    def _smtp_send(self, host: str, message: EmailMessage) -> None:
        settings = self.settings
        with smtplib.SMTP(host, settings.smtp_port, timeout=settings.notify_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user is not None and settings.smtp_password is not None:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
