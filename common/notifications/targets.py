"""Where a notification webhook may point: the same address rules as the HTTP node's SSRF guard.

Services never import each other, so this is a compact copy of the rules of ``workers/http``: http(s) only,
and every address the host resolves to must be a public one (no loopback, private, link-local, CGNAT, reserved
or cloud-metadata address) unless ``host:port`` is allowlisted (``AOB_NOTIFY_ALLOWLIST``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import urlsplit

from common.errors import ValidationFailed

_DEFAULT_PORTS = {"http": 80, "https": 443}
_METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})


class WebhookTargetRefused(ValidationFailed):
    """A webhook URL the address rules refuse (422, like any invalid input)."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


async def check_webhook_url(url: str, allowlist: Iterable[str] = ()) -> str:
    """Return ``url`` if a notification may be POSTed to it; raise ``WebhookTargetRefused`` saying why not."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError as exc:
        raise WebhookTargetRefused(f"url: {url!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise WebhookTargetRefused(f"url: expected an http or https URL, got scheme {parts.scheme!r}")
    host = (parts.hostname or "").lower()
    if not host:
        raise WebhookTargetRefused(f"url: {url!r} has no host")
    if f"{host}:{port}" in set(allowlist):
        return url
    if host in _METADATA_HOSTS or host == "localhost" or host.endswith(".localhost"):
        raise WebhookTargetRefused(f"url: host {host!r} is a loopback or cloud metadata host")
    for address in await _resolve(host, port):
        if not _is_public(address):
            raise WebhookTargetRefused(
                f"url: host {host!r} resolves to {address}, which is not a public address"
                " (allowlist host:port in AOB_NOTIFY_ALLOWLIST to permit it)"
            )
    return url


async def _resolve(host: str, port: int) -> list[IPv4Address | IPv6Address]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookTargetRefused(f"url: cannot resolve host {host!r} ({exc})") from None
    return [ip_address(str(info[4][0]).partition("%")[0]) for info in infos]


def _is_public(address: IPv4Address | IPv6Address) -> bool:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast
