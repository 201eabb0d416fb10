"""Host parsing the way browsers and ``inet_aton`` read hosts, and the address classes an outgoing request from
aob may not reach: the HTTP node's SSRF guard and notification webhooks share them."""

from __future__ import annotations

import re
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import unquote

import idna

IpAddress = IPv4Address | IPv6Address

METADATA_ADDRESSES: frozenset[IpAddress] = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, Azure, GCP, OpenStack, Oracle, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
    )
)
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.packet.net",
    }
)

_V4_CLASSES: tuple[tuple[IPv4Network, str], ...] = (
    (IPv4Network("0.0.0.0/8"), "a 'this network' (0.0.0.0/8) address"),
    (IPv4Network("127.0.0.0/8"), "a loopback address"),
    (IPv4Network("10.0.0.0/8"), "a private address"),
    (IPv4Network("172.16.0.0/12"), "a private address"),
    (IPv4Network("192.168.0.0/16"), "a private address"),
    (IPv4Network("169.254.0.0/16"), "a link-local address"),
    (IPv4Network("100.64.0.0/10"), "a CGNAT (shared) address"),
    (IPv4Network("224.0.0.0/4"), "a multicast address"),
    (IPv4Network("255.255.255.255/32"), "a broadcast address"),
    (IPv4Network("240.0.0.0/4"), "a reserved address"),
)
_V6_CLASSES: tuple[tuple[IPv6Network, str], ...] = (
    (IPv6Network("::/128"), "an unspecified address"),
    (IPv6Network("::1/128"), "a loopback address"),
    (IPv6Network("fe80::/10"), "a link-local address"),
    (IPv6Network("fec0::/10"), "a site-local address"),
    (IPv6Network("fc00::/7"), "a unique-local address"),
    (IPv6Network("ff00::/8"), "a multicast address"),
)
# IPv6 forms that carry an IPv4 address the packet may end up at: judged by that IPv4 address.
_V4_EMBEDDING: tuple[tuple[IPv6Network, str, Callable[[IPv6Address], IPv4Address]], ...] = (
    (IPv6Network("::/96"), "an IPv4-compatible", lambda ip: IPv4Address(int(ip) & 0xFFFFFFFF)),
    (IPv6Network("64:ff9b::/96"), "a NAT64", lambda ip: IPv4Address(int(ip) & 0xFFFFFFFF)),
    (IPv6Network("2002::/16"), "a 6to4", lambda ip: IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)),
)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$")
_DECIMAL = re.compile(r"^[0-9]+$")
_HEX = re.compile(r"^0[xX][0-9a-fA-F]*$")


def parse_host(raw: str) -> IpAddress | str:
    """Return the address a URL host denotes, or its lower-case ASCII name; raise ``ValueError`` if invalid.

    Follows the WHATWG host parser: percent-decoding, IDNA mapping, and IPv4 numbers in decimal, octal or hex
    with 1 to 4 parts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``); IPv6 zone ids are dropped.
    """
    host = unquote(raw).strip("[]")
    if ":" in host:
        return IPv6Address(host.partition("%")[0])
    if not host.isascii():
        host = idna.encode(host, uts46=True).decode("ascii")
    host = host.lower()
    if host.endswith(".") and len(host) > 1:
        host = host[:-1]
    ipv4 = _parse_ipv4(host)
    if ipv4 is not None:
        return ipv4
    if not _HOSTNAME.match(host):
        raise ValueError(f"expected a host name or IP address, got {raw!r}")
    return host


def _parse_ipv4(host: str) -> IPv4Address | None:
    parts = host.split(".")
    if not (_DECIMAL.match(parts[-1]) or _HEX.match(parts[-1])):
        return None
    if len(parts) > 4:
        raise ValueError(f"IPv4 address {host!r} has more than 4 parts")
    numbers = [_parse_ipv4_number(part, host) for part in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"IPv4 address {host!r} has a part out of range")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return IPv4Address(value)


def _parse_ipv4_number(part: str, host: str) -> int:
    if _HEX.match(part):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        base = 8
    elif _DECIMAL.match(part):
        base = 10
    else:
        raise ValueError(f"IPv4 address {host!r} has a non-numeric part {part!r}")
    try:
        return int(part, base)
    except ValueError:
        raise ValueError(f"IPv4 address {host!r} has an invalid octal part {part!r}") from None


def is_metadata_host(name: str) -> bool:
    """Whether ``name`` (lower case, no trailing dot) is a cloud metadata service's host name."""
    return name in METADATA_HOSTS


def is_loopback_name(name: str) -> bool:
    """Whether ``name`` is ``localhost`` or under it, which resolvers answer without asking DNS."""
    return name == "localhost" or name.endswith(".localhost")


def blocked_reason(ip: IpAddress) -> str | None:
    """Why a connection to ``ip`` is refused, phrased to follow "<ip> is", or None for a public address."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, IPv4Address):
        return _v4_reason(ip)
    mapped = ip.ipv4_mapped
    if mapped is not None:
        reason = _v4_reason(mapped)
        return f"an IPv4-mapped form of {mapped}, {reason}" if reason else None
    for network, reason in _V6_CLASSES:
        if ip in network:
            return reason
    for network, label, extract in _V4_EMBEDDING:
        if ip in network:
            embedded = extract(ip)
            inner = blocked_reason(embedded)
            if inner:
                return f"{label} form of {embedded}, {inner}"
            # IPv4-compatible addresses are deprecated and never routed; NAT64 and 6to4 reach the public IPv4.
            return "a deprecated IPv4-compatible address" if label == "an IPv4-compatible" else None
    return None if ip.is_global else "a reserved address"


def _v4_reason(ip: IPv4Address) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for network, reason in _V4_CLASSES:
        if ip in network:
            return reason
    # Documentation, benchmarking and IETF protocol ranges are not on the internet either.
    return None if ip.is_global else "a reserved address"


def connect_address(ip: IpAddress) -> str:
    """The address to open a socket to: IPv4-mapped IPv6 addresses as plain IPv4, no zone id."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip).partition("%")[0]
