"""The SSRF guard: decides whether a URL may be fetched and which checked addresses the connection may use."""

from __future__ import annotations

import asyncio
import posixpath
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

import httpx

from common.errors import ConfigError, NodeFailed
from common.net_addresses import (
    IpAddress,
    blocked_reason,
    connect_address,
    is_loopback_name,
    is_metadata_host,
    parse_host,
)
from common.redaction import safe_url
from common.settings import DEFAULT_DENY_PATHS, HttpNodeFields

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves ``(host, port)`` to IP address strings; the guard calls it exactly once per checked URL."""

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
_ALLOWED_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SsrfBlocked(NodeFailed):
    """A URL the guard refuses; never retryable, ``error_type`` is ``ssrf_blocked``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, error_type="ssrf_blocked")


@dataclass(frozen=True)
class CheckedTarget:
    """A URL that passed the guard: ``url`` is what to send, ``addresses`` the only places to connect to."""

    url: httpx.URL
    host: str
    port: int
    addresses: tuple[str, ...]

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.url.scheme, self.host, self.port)


async def resolve_host(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver; return its distinct addresses in the resolver's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def normalise_path(raw: str) -> str:
    """Return ``raw`` as a server would most likely see it: decoded, no dot segments or ``;params``, lower case."""
    path = raw
    # Decode until stable, so double-encoded paths (``/%2561dmin``) cannot slip past a server that decodes twice.
    for _ in range(3):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    path = re.sub(r";[^/]*", "", path.replace("\\", "/"))
    path = re.sub(r"/+", "/", "/" + path)
    return posixpath.normpath(path).lower()


class SsrfGuard:
    """Checks scheme, path, host and every resolved address of a URL; ``check`` is applied to each redirect hop.

    An allowlisted ``host:port`` pair skips the address checks only: scheme and path checks still apply.
    """

    def __init__(
        self,
        *,
        allowlist: Iterable[str] = (),
        deny_paths: Iterable[str] = DEFAULT_DENY_PATHS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_redirects: int = 5,
        resolver: Resolver | None = None,
    ) -> None:
        self.allowlist = frozenset(_parse_allowlist_entry(entry) for entry in allowlist)
        self.deny_paths = tuple(sorted({normalise_path(p) for p in deny_paths}))
        self.max_response_bytes = max_response_bytes
        self.max_redirects = max_redirects
        self._resolve = resolver or resolve_host

    @classmethod
    def from_settings(cls, settings: HttpNodeFields, *, resolver: Resolver | None = None) -> SsrfGuard:
        """Build the guard from ``AOB_HTTP_*`` settings; raise ``ConfigError`` for a malformed allowlist."""
        return cls(
            allowlist=settings.http_allowlist,
            deny_paths=settings.http_deny_paths,
            max_response_bytes=settings.http_max_response_bytes,
            max_redirects=settings.http_max_redirects,
            resolver=resolver,
        )

    async def check(self, url: str) -> CheckedTarget:
        """Return the checked target for ``url``; raise ``SsrfBlocked`` (or a retryable ``NodeFailed`` for DNS)."""
        parts = _split(url)
        host = _parse_url_host(parts, url)
        port = _port(parts, url)
        self._check_path(parts.path)
        allowlisted = (_host_key(host), port) in self.allowlist
        if isinstance(host, str):
            if not allowlisted:
                _check_name(host)
            addresses = await self._resolve_checked(host, port, check=not allowlisted)
        else:
            if not allowlisted:
                _check_address(host, shown=str(host))
            addresses = (connect_address(host),)
        target_url = _rebuild(parts, host, url)
        return CheckedTarget(url=target_url, host=target_url.raw_host.decode("ascii"), port=port, addresses=addresses)

    def _check_path(self, raw_path: str) -> None:
        path = normalise_path(raw_path or "/")
        for prefix in self.deny_paths:
            if path.startswith(prefix):
                origin = f" (from {raw_path!r})" if raw_path.lower() != path else ""
                raise SsrfBlocked(f"blocked: path {path!r} is deny-listed{origin}")

    async def _resolve_checked(self, name: str, port: int, *, check: bool) -> tuple[str, ...]:
        try:
            resolved = await self._resolve(name, port)
        except OSError as exc:
            # Only a temporary resolver failure is worth another attempt; an unknown name stays unknown.
            retryable = isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN
            raise NodeFailed(
                f"cannot resolve {name!r}: {exc.strerror or exc}", retryable=retryable, error_type="dns_error"
            ) from None
        if not resolved:
            raise NodeFailed(f"cannot resolve {name!r}: no addresses", retryable=True, error_type="dns_error")
        addresses: list[str] = []
        for raw in resolved:
            try:
                ip = ip_address(raw.partition("%")[0])
            except ValueError:
                raise SsrfBlocked(f"blocked: {name} resolved to {raw!r}, which is not an IP address") from None
            if check:
                _check_address(ip, shown=f"{ip}", resolved_from=name)
            addresses.append(connect_address(ip))
        return tuple(dict.fromkeys(addresses))


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise SsrfBlocked(f"blocked: {safe_url(url)!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise SsrfBlocked(f"blocked: scheme {scheme!r} is not allowed (expected http or https, in {safe_url(url)!r})")
    return parts._replace(scheme=scheme)


def _parse_url_host(parts: SplitResult, url: str) -> IpAddress | str:
    if not parts.hostname:
        raise SsrfBlocked(f"blocked: {safe_url(url)!r} has no host")
    try:
        return parse_host(parts.hostname)
    except ValueError as exc:
        raise SsrfBlocked(f"blocked: host {parts.hostname!r} is not valid ({exc})") from None


def _port(parts: SplitResult, url: str) -> int:
    try:
        port = parts.port
    except ValueError:
        raise SsrfBlocked(f"blocked: {safe_url(url)!r} has an invalid port") from None
    return port if port is not None else _DEFAULT_PORTS[parts.scheme]


def _check_name(name: str) -> None:
    if is_metadata_host(name):
        raise SsrfBlocked(f"blocked: {name} is a cloud metadata host")
    if is_loopback_name(name):
        raise SsrfBlocked(f"blocked: {name} is a loopback host")


def _check_address(ip: IpAddress, *, shown: str, resolved_from: str | None = None) -> None:
    reason = blocked_reason(ip)
    if reason:
        source = f" (resolved from {resolved_from})" if resolved_from else ""
        raise SsrfBlocked(f"blocked: {shown} is {reason}{source}")


def _host_key(host: IpAddress | str) -> str:
    return str(host).partition("%")[0]


def _rebuild(parts: SplitResult, host: IpAddress | str, url: str) -> httpx.URL:
    """Rebuild the URL around the parsed host, so the request goes exactly where the check looked."""
    shown = f"[{host}]" if isinstance(host, IPv6Address) else str(host)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + shown + (f":{parts.port}" if parts.port is not None else "")
    try:
        rebuilt = httpx.URL(urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")))
    except httpx.InvalidURL as exc:
        raise SsrfBlocked(f"blocked: {safe_url(url)!r} is not a valid URL ({exc})") from None
    # httpx parses the rebuilt URL again; any disagreement with the checked host is refused, never sent.
    if _reparsed_host(rebuilt) != host:
        raise SsrfBlocked(f"blocked: {safe_url(url)!r} does not parse to one unambiguous host")
    return rebuilt


def _reparsed_host(url: httpx.URL) -> IpAddress | str | None:
    try:
        return parse_host(url.raw_host.decode("ascii"))
    except ValueError:
        return None


def _parse_allowlist_entry(entry: str) -> tuple[str, int]:
    host, sep, port = entry.strip().rpartition(":")
    try:
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port")
        return (_host_key(parse_host(host)), int(port))
    except ValueError:
        raise ConfigError(f"AOB_HTTP_ALLOWLIST: expected comma-separated host:port pairs, got {entry!r}") from None
