"""The SSRF guard refuses every internal address class, odd host encoding and deny-listed path, without DNS."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from common.errors import ConfigError, NodeFailed
from common.settings import WorkerSettings
from workers.http import SsrfBlocked, SsrfGuard, normalise_path

DNS = {
    "evil.example": ["10.0.0.1"],
    "rebound.example": ["93.184.216.34", "127.0.0.1"],
    "mapped.example": ["::ffff:169.254.169.254"],
    "v6-private.example": ["fd12:3456::1"],
    "public.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "api.example": ["93.184.216.34"],
}


class FakeResolver:
    """Answers from ``DNS`` and records every lookup."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        if host not in DNS:
            raise OSError(f"unknown host {host}")
        return DNS[host]


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver()


@pytest.fixture
def guard(resolver: FakeResolver) -> SsrfGuard:
    return SsrfGuard(resolver=resolver)


BLOCKED = [
    # schemes
    ("ftp://example.com/file", "blocked: scheme 'ftp' is not allowed"),
    ("file:///etc/passwd", "blocked: scheme 'file' is not allowed"),
    ("gopher://127.0.0.1:6379/_INFO", "blocked: scheme 'gopher' is not allowed"),
    ("javascript:alert(1)", "blocked: scheme 'javascript' is not allowed"),
    ("//example.com/no-scheme", "blocked: scheme '' is not allowed"),
    # address classes, written plainly
    ("http://127.0.0.1/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://127.255.1.2:8080/", "blocked: 127.255.1.2 is a loopback address"),
    ("http://10.0.0.5/", "blocked: 10.0.0.5 is a private address"),
    ("http://172.16.3.4/", "blocked: 172.16.3.4 is a private address"),
    ("http://172.31.255.255/", "blocked: 172.31.255.255 is a private address"),
    ("http://192.168.1.1/", "blocked: 192.168.1.1 is a private address"),
    ("http://169.254.1.1/", "blocked: 169.254.1.1 is a link-local address"),
    ("http://100.64.0.1/", "blocked: 100.64.0.1 is a CGNAT (shared) address"),
    ("http://0.0.0.0/", "blocked: 0.0.0.0 is a 'this network' (0.0.0.0/8) address"),
    ("http://0.1.2.3/", "blocked: 0.1.2.3 is a 'this network' (0.0.0.0/8) address"),
    ("http://224.0.0.1/", "blocked: 224.0.0.1 is a multicast address"),
    ("http://255.255.255.255/", "blocked: 255.255.255.255 is a broadcast address"),
    ("http://240.0.0.1/", "blocked: 240.0.0.1 is a reserved address"),
    ("http://192.0.2.1/", "blocked: 192.0.2.1 is a reserved address"),
    ("http://198.18.0.1/", "blocked: 198.18.0.1 is a reserved address"),
    # odd IPv4 encodings, parsed as browsers and inet_aton do
    ("http://2130706433/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://0177.0.0.1/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://0x7f.0.0.1/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://0x7f000001/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://0X7F.1/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://127.1/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://10.1/", "blocked: 10.0.0.1 is a private address"),
    ("http://192.168.257/", "blocked: 192.168.1.1 is a private address"),
    ("http://012.0.0.1/", "blocked: 10.0.0.1 is a private address"),
    ("http://127.0.0.1./", "blocked: 127.0.0.1 is a loopback address"),
    ("http://%31%32%37.0.0.1/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://good@127.0.0.1/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://user:pass@10.0.0.5:8080/x", "blocked: 10.0.0.5 is a private address"),
    ("http://1.2.3.09/", "blocked: host '1.2.3.09' is not valid"),
    ("http://256.0.0.1/", "blocked: host '256.0.0.1' is not valid"),
    ("http://1.2.3.4.5/", "blocked: host '1.2.3.4.5' is not valid"),
    # IPv6 forms
    ("http://[::1]/", "blocked: ::1 is a loopback address"),
    ("http://[::]/", "blocked: :: is an unspecified address"),
    ("http://[fe80::1%25eth0]/", "blocked: fe80::1 is a link-local address"),
    ("http://[fc00::1]:8080/", "blocked: fc00::1 is a unique-local address"),
    ("http://[fd12:3456::1]/", "blocked: fd12:3456::1 is a unique-local address"),
    ("http://[ff02::1]/", "blocked: ff02::1 is a multicast address"),
    ("http://[::ffff:127.0.0.1]/", "an IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:a00:1]/", "an IPv4-mapped form of 10.0.0.1, a private address"),
    ("http://[::127.0.0.1]/", "an IPv4-compatible form of 127.0.0.1, a loopback address"),
    ("http://[::8.8.8.8]/", "is a deprecated IPv4-compatible address"),
    ("http://[64:ff9b::10.0.0.1]/", "a NAT64 form of 10.0.0.1, a private address"),
    ("http://[64:ff9b::7f00:1]/", "a NAT64 form of 127.0.0.1, a loopback address"),
    ("http://[2002:7f00:1::]/", "a 6to4 form of 127.0.0.1, a loopback address"),
    ("http://[2002:c0a8:101::1]/", "a 6to4 form of 192.168.1.1, a private address"),
    ("http://[2001:db8::1]/", "blocked: 2001:db8::1 is a reserved address"),
    # cloud metadata
    ("http://169.254.169.254/latest/meta-data/", "blocked: 169.254.169.254 is a cloud metadata address"),
    ("http://0xa9fea9fe/", "blocked: 169.254.169.254 is a cloud metadata address"),
    ("http://169.254.170.2/v2/credentials", "blocked: 169.254.170.2 is a cloud metadata address"),
    ("http://100.100.100.200/latest/meta-data/", "blocked: 100.100.100.200 is a cloud metadata address"),
    ("http://[fd00:ec2::254]/latest/", "blocked: fd00:ec2::254 is a cloud metadata address"),
    ("http://[::ffff:169.254.169.254]/", "an IPv4-mapped form of 169.254.169.254, a cloud metadata address"),
    ("http://[2002:a9fe:a9fe::]/", "a 6to4 form of 169.254.169.254, a cloud metadata address"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal is a cloud metadata host"),
    ("http://METADATA.google.internal./", "blocked: metadata.google.internal is a cloud metadata host"),
    ("http://metadata/", "blocked: metadata is a cloud metadata host"),
    ("http://instance-data/latest/", "blocked: instance-data is a cloud metadata host"),
    ("http://metadata.goog/", "blocked: metadata.goog is a cloud metadata host"),
    # names that are internal whatever DNS says
    ("http://localhost:8080/", "blocked: localhost is a loopback host"),
    ("http://api.localhost/", "blocked: api.localhost is a loopback host"),
    # names resolving to internal addresses (every resolved address is checked)
    ("http://evil.example/", "blocked: 10.0.0.1 is a private address (resolved from evil.example)"),
    ("http://rebound.example/", "blocked: 127.0.0.1 is a loopback address (resolved from rebound.example)"),
    ("http://mapped.example/", "a cloud metadata address (resolved from mapped.example)"),
    ("http://v6-private.example/", "blocked: fd12:3456::1 is a unique-local address (resolved from v6-private"),
    # deny-listed paths, however they are spelled
    ("http://api.example/admin", "blocked: path '/admin' is deny-listed"),
    ("http://api.example/ADMIN/users", "blocked: path '/admin/users' is deny-listed"),
    ("http://api.example/%61dmin", "blocked: path '/admin' is deny-listed (from '/%61dmin')"),
    ("http://api.example/%2561dmin", "blocked: path '/admin' is deny-listed"),
    ("http://api.example/x/../admin", "blocked: path '/admin' is deny-listed (from '/x/../admin')"),
    ("http://api.example/x/%2e%2e/admin", "blocked: path '/admin' is deny-listed"),
    ("http://api.example//admin", "blocked: path '/admin' is deny-listed"),
    ("http://api.example/x/..;/admin", "blocked: path '/admin' is deny-listed"),
    ("http://api.example/x\\..\\admin", "blocked: path '/admin' is deny-listed"),
    ("http://api.example/.env", "blocked: path '/.env' is deny-listed"),
    ("http://api.example/.git/config", "blocked: path '/.git/config' is deny-listed"),
    ("http://api.example/server-status", "blocked: path '/server-status' is deny-listed"),
    ("http://api.example/actuator/env", "blocked: path '/actuator/env' is deny-listed"),
    # malformed
    ("http:///nohost", "has no host"),
    ("http://api.example:99999/", "has an invalid port"),
]


@pytest.mark.parametrize(("url", "reason"), BLOCKED, ids=[url for url, _ in BLOCKED])
async def test_refuses_with_reason(guard: SsrfGuard, url: str, reason: str) -> None:
    with pytest.raises(SsrfBlocked) as caught:
        await guard.check(url)
    assert reason in caught.value.message
    assert caught.value.message.startswith("blocked: ")
    assert caught.value.retryable is False
    assert caught.value.error_type == "ssrf_blocked"
    assert isinstance(caught.value, NodeFailed)


def test_table_covers_at_least_forty_urls() -> None:
    assert len(BLOCKED) >= 40


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("http://93.184.216.34/", ("93.184.216.34",)),
        ("https://8.8.8.8/dns-query", ("8.8.8.8",)),
        ("http://[2606:4700:4700::1111]/", ("2606:4700:4700::1111",)),
        ("http://[::ffff:8.8.8.8]/", ("8.8.8.8",)),
        ("http://[64:ff9b::8.8.8.8]/", ("64:ff9b::808:808",)),
        ("http://public.example/items?admin=1", ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")),
        ("https://api.example/administrators-guide/../v1/admin-list", ("93.184.216.34",)),
    ],
)
async def test_public_addresses_pass(guard: SsrfGuard, url: str, addresses: tuple[str, ...]) -> None:
    target = await guard.check(url)
    assert target.addresses == addresses


async def test_checked_target_keeps_the_host_name_and_resolves_once(guard: SsrfGuard, resolver: FakeResolver) -> None:
    target = await guard.check("https://u:p@API.example./v1/items?q=1#frag")
    assert (target.host, target.port, target.addresses) == ("api.example", 443, ("93.184.216.34",))
    assert target.url.raw_host == b"api.example"
    assert target.url.query == b"q=1"
    assert target.url.fragment == ""
    assert resolver.calls == [("api.example", 443)]


async def test_odd_ip_encodings_are_rewritten_to_the_checked_address() -> None:
    guard = SsrfGuard(allowlist=["127.0.0.1:8000"])
    target = await guard.check("http://0x7f.1:8000/x")
    assert str(target.url) == "http://127.0.0.1:8000/x"
    assert target.addresses == ("127.0.0.1",)


async def test_allowlist_exempts_the_pair_only(resolver: FakeResolver) -> None:
    guard = SsrfGuard(allowlist=["127.0.0.1:8000", "evil.example:443"], resolver=resolver)
    assert (await guard.check("http://127.0.0.1:8000/ok")).addresses == ("127.0.0.1",)
    assert (await guard.check("http://127.1:8000/ok")).addresses == ("127.0.0.1",)
    assert (await guard.check("https://evil.example/")).addresses == ("10.0.0.1",)
    with pytest.raises(SsrfBlocked, match=r"127\.0\.0\.1 is a loopback address"):
        await guard.check("http://127.0.0.1:8001/")
    with pytest.raises(SsrfBlocked, match=r"10\.0\.0\.1 is a private address"):
        await guard.check("http://evil.example/")
    # An allowlisted pair still goes through the scheme and path checks.
    with pytest.raises(SsrfBlocked, match="path '/admin' is deny-listed"):
        await guard.check("http://127.0.0.1:8000/admin")


def test_allowlist_and_deny_paths_come_from_settings() -> None:
    settings = WorkerSettings(http_allowlist="127.0.0.1:9000, [::1]:9001", http_deny_paths="/internal,/Debug")
    guard = SsrfGuard.from_settings(settings)
    assert guard.allowlist == {("127.0.0.1", 9000), ("::1", 9001)}
    assert guard.deny_paths == ("/debug", "/internal")
    assert guard.max_redirects == 5
    assert guard.max_response_bytes == 10 * 1024 * 1024


def test_default_settings_deny_the_sensitive_paths() -> None:
    guard = SsrfGuard.from_settings(WorkerSettings())
    assert guard.deny_paths == ("/.env", "/.git", "/actuator", "/admin", "/server-status")
    assert guard.allowlist == frozenset()


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.1:http", ":80", "127.0.0.1:0", "bad host:80"])
def test_malformed_allowlist_entry_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError, match="AOB_HTTP_ALLOWLIST: expected comma-separated host:port pairs"):
        SsrfGuard(allowlist=[entry])


async def test_unknown_name_fails_without_retry(guard: SsrfGuard) -> None:
    with pytest.raises(NodeFailed) as caught:
        await guard.check("http://nowhere.example/")
    assert caught.value.error_type == "dns_error"
    assert "cannot resolve 'nowhere.example'" in caught.value.message


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("/", "/"),
        ("", "/"),
        ("/a/b/../c/./d/", "/a/c/d"),
        ("/%2e%2e/%2E%2E/etc", "/etc"),
        ("/A%2Fb", "/a/b"),
        ("/x;jsessionid=1/y", "/x/y"),
    ],
)
def test_normalise_path(raw: str, normalised: str) -> None:
    assert normalise_path(raw) == normalised
