"""Keeping secrets out of what aob shows: known values (and their encoded forms), credential-like strings, URLs.

One redactor serves every service: the HTTP node's outputs and errors, agent logs, process logs.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

REDACTED = "[REDACTED]"
# Shorter values would blank out ordinary words all over a log.
MIN_SECRET_CHARS = 4
# A base64 fragment this short could match unrelated data.
_MIN_BASE64_CORE = 6
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")

_PAIR_NAMES = (
    r"(?:x-)?api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret"
    r"|secret[_-]?access[_-]?key|secret[_-]?key|private[_-]?key|secret|token|password|passwd|pwd|passphrase"
)

# (hints, pattern, replacement): a pattern runs only on text whose lower-case form holds one of its hints, so
# ordinary lines (most of a 50 MB agent log) cost a few substring tests instead of every regex.
_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # PEM private keys, whole blocks; an unterminated one (a truncated message) to the end of the text.
    (
        ("private key",),
        re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY-----|.*)", re.DOTALL),
        REDACTED,
    ),
    # Passwords in URLs: keep the scheme and user so the URL still reads.
    (("://",), re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/?#@:]*:)[^\s/?#@]+@"), rf"\1{REDACTED}@"),
    # Authorization headers of any scheme, then the common schemes where no header name is in sight.
    (
        ("authorization",),
        re.compile(r"(?i)\b((?:proxy-)?authorization)([\"']?\s*[:=]\s*[\"']?)([A-Za-z]+\s+)?[^\s\"',;]+"),
        rf"\1\2\3{REDACTED}",
    ),
    (("bearer",), re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{REDACTED}"),
    # ``Token``/``Basic`` are ordinary words too: only a value with a digit or symbol is taken for a credential.
    (
        ("token",),
        re.compile(r"(?i)\b(token)(\s+)(?=[A-Za-z0-9._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{8,}"),
        rf"\1\2{REDACTED}",
    ),
    (
        ("basic",),
        re.compile(r"(?i)\b(basic)(\s+)(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{12,}={0,2}"),
        rf"\1\2{REDACTED}",
    ),
    # JWTs (header.payload.signature; the signature is empty for alg none).
    (("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), REDACTED),
    # GitHub (classic and fine-grained), Slack, Google API keys and OAuth access tokens.
    (("gh", "github_pat_"), re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"), REDACTED),
    (("xox",), re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"), REDACTED),
    (("aiza",), re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), REDACTED),
    (("ya29.",), re.compile(r"\bya29\.[0-9A-Za-z._-]{20,}"), REDACTED),
    # OpenAI-style keys (sk-..., sk-proj-...), Anthropic (sk-ant-...), aob API keys and agent tokens.
    (("sk-", "rk-", "pk-"), re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_-]{16,}"), REDACTED),
    (("aob_",), re.compile(r"\baob_[A-Za-z0-9_-]{16,}"), REDACTED),
    # AWS access key ids, and secret keys next to their name in env, ini or JSON form.
    (("akia", "asia", "abia", "acca"), re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"), REDACTED),
    (
        ("secret",),
        re.compile(r"(?i)(aws_?secret_?access_?key|secret_?access_?key)([\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}"),
        rf"\1\2{REDACTED}",
    ),
    # name=value / "name": "value" pairs whose name says secret.
    (
        ("key", "token", "secret", "pass", "pwd"),
        re.compile(rf"(?i)\b({_PAIR_NAMES})([\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\])[^\s\"'&,;}}]+"),
        rf"\1\2{REDACTED}",
    ),
)

_ANY_HINT = re.compile("|".join(re.escape(hint) for hints, _, _ in _PATTERNS for hint in hints))


# A token every credential pattern would take as the value after its keyword.
_PROBE = "Zq7xK2mW9pLc4Rt8"


class Redactor:
    """Replaces known secret values (raw, JSON-escaped, URL- and base64-encoded) and credential-like strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals: set[str] = set()
        cores: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_CHARS:
                continue
            literals.update(_literal_forms(secret))
            cores.update(_base64_cores(secret.encode()))
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(literals | cores, key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._cores = frozenset(cores)
        self._spaced = tuple(literal for literal in literals if any(char.isspace() for char in literal))

    def __bool__(self) -> bool:
        return self._literal is not None

    def redact(self, text: str) -> str:
        """``text`` with every secret value and credential-like string replaced."""
        return self.redact_patterns(self.redact_values(text))

    def may_continue(self, text: str) -> bool:
        """Whether a secret or credential-like string could start in ``text`` and go on in the text that follows it
        (so ``text`` must not be redacted and stored on its own)."""
        if not self.redact_patterns(text + _PROBE).endswith(_PROBE):
            return True
        return any(
            literal.startswith(text[-size:])
            for literal in self._spaced
            for size in range(1, len(literal))
            if size <= len(text)
        )

    def redact_values(self, text: str) -> str:
        """``text`` with only the known secret values replaced (safe on JSON that must stay parseable as data)."""
        if self._literal is None:
            return text
        if not self._cores:
            return self._literal.sub(REDACTED, text)
        parts: list[str] = []
        done = 0
        for match in self._literal.finditer(text):
            start, end = match.span()
            if match.group() in self._cores:
                # A base64 core sits inside a longer encoding: the partial groups around it go too.
                start, end = _base64_extent(text, start, end)
            start = max(start, done)
            parts += [text[done:start], REDACTED]
            done = max(end, done)
        parts.append(text[done:])
        return "".join(parts)

    def redact_data(self, value: Any) -> Any:
        """A copy of JSON-like ``value`` with the known secret values replaced in every string (keys included)."""
        if self._literal is None:
            return value
        if isinstance(value, str):
            return self.redact_values(value)
        if isinstance(value, dict):
            return {self.redact_values(str(k)): self.redact_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_data(item) for item in value]
        return value

    @staticmethod
    def redact_patterns(text: str) -> str:
        """``text`` with credential-like strings replaced."""
        lowered = text.lower()
        if _ANY_HINT.search(lowered) is None:
            return text
        for hints, pattern, replacement in _PATTERNS:
            if any(hint in lowered for hint in hints):
                text = pattern.sub(replacement, text)
        return text


def safe_url(url: object) -> str:
    """``url`` for an error message or a log: no user info, every query value and the fragment replaced.

    Query names stay (they help to debug); a URL that does not parse loses everything after ``?`` or ``#``.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        rough = re.split(r"[?#]", text, maxsplit=1)[0]
        return re.sub(r"//[^/]*@", "//", rough)
    netloc = parts.netloc.rpartition("@")[2]
    names = [pair.partition("=")[0] for pair in parts.query.split("&") if pair]
    query = "&".join(f"{name}={REDACTED}" for name in names)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _base64_extent(text: str, start: int, end: int) -> tuple[int, int]:
    """``start``/``end`` widened over up to 4 base64 characters on each side and the padding after."""
    low = start
    while low > start - 4 and low > 0 and text[low - 1] in _B64_CHARS:
        low -= 1
    high = end
    while high < end + 4 and high < len(text) and text[high] in _B64_CHARS:
        high += 1
    padded = min(high + 2, len(text))
    while high < padded and text[high] == "=":
        high += 1
    return low, high


def _literal_forms(secret: str) -> set[str]:
    """The ways a value is commonly written out: raw, JSON-escaped, percent-encoded (both styles, either case)."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms.add(encoded)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    return forms


def _base64_cores(raw: bytes) -> set[str]:
    """The part of ``raw``'s base64 encoding that is the same wherever ``raw`` sits in a longer message.

    A value starting at byte offset 0, 1 or 2 of a 3-byte group encodes differently; the first and last group
    of each alignment also hold neighbouring bytes, so only the groups in between are certain.
    """
    cores: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        start = 4 if shift else 0
        end = len(encoded) - (4 if (shift + len(raw)) % 3 else 0)
        core = encoded[start:end]
        if len(core) >= _MIN_BASE64_CORE:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))
    return cores
