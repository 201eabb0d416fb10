"""Where a notification webhook may point: the HTTP node's address rules (``common.net_addresses``).

http(s) only, and neither the host nor any address it resolves to may be loopback, private, link-local, CGNAT,
reserved or a cloud metadata service, unless ``host:port`` is allowlisted (``AOB_NOTIFY_ALLOWLIST``). The check
returns the addresses it looked at, and the sender connects only to those (``common.pinned_http``): a name that
resolves to a public address for the check and to a private one a moment later reaches nothing.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

import httpx

from common.errors import ValidationFailed
from common.net_addresses import (
    IpAddress,
    blocked_reason,
    connect_address,
    is_loopback_name,
    is_metadata_host,
    parse_host,
)

_DEFAULT_PORTS = {"http": 80, "https": 443}


class WebhookTargetRefused(ValidationFailed):
    """A webhook URL the address rules refuse (422, like any invalid input)."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A webhook URL that passed the rules: connect for ``host:port`` only to ``addresses``."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


async def check_webhook_url(url: str, allowlist: Iterable[str] = ()) -> WebhookTarget:
    """The target ``url`` names if a notification may be POSTed to it; raise ``WebhookTargetRefused`` saying why not."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
        host = parse_host(parts.hostname or "") if parts.hostname else None
    except ValueError as exc:
        raise WebhookTargetRefused(f"url: {url!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise WebhookTargetRefused(f"url: expected an http or https URL, got scheme {parts.scheme!r}")
    if host is None:
        raise WebhookTargetRefused(f"url: {url!r} has no host")
    try:
        # The host as httpx will hand it to the connect: the pin is keyed by it, so however httpx reads the URL,
        # its socket goes only to the addresses checked here.
        pin_host = httpx.URL(url.strip()).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeDecodeError) as exc:
        raise WebhookTargetRefused(f"url: {url!r} is not a valid URL ({exc})") from None
    addresses = [host] if not isinstance(host, str) else await _resolve(host, port)
    target = WebhookTarget(url, pin_host, port, tuple(dict.fromkeys(connect_address(a) for a in addresses)))
    if f"{host}:{port}" in set(allowlist):
        return target
    if isinstance(host, str) and (is_metadata_host(host) or is_loopback_name(host)):
        raise WebhookTargetRefused(f"url: host {host!r} is a loopback or cloud metadata host")
    for address in addresses:
        reason = blocked_reason(address)
        if reason is not None:
            raise WebhookTargetRefused(
                f"url: host {parts.hostname!r} resolves to {address}, {reason}, not a public address"
                " (allowlist host:port in AOB_NOTIFY_ALLOWLIST to permit it)"
            )
    return target


async def _resolve(host: str, port: int) -> list[IpAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookTargetRefused(f"url: cannot resolve host {host!r} ({exc})") from None
    return [ip_address(str(info[4][0]).partition("%")[0]) for info in infos]
