"""Secret redaction for agent logs: known secret values plus patterns that look like credentials."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
# Shorter values would blank out ordinary words all over a log.
MIN_SECRET_CHARS = 4

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values: keep the scheme so the line still reads.
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{REDACTED}"),
    (re.compile(r"\b(Basic)(\s+)(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{12,}={0,2}"), rf"\1\2{REDACTED}"),
    # OpenAI-style keys (sk-..., sk-proj-...), Anthropic (sk-ant-...), aob API keys and agent tokens.
    (re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"\baob_[A-Za-z0-9_-]{16,}"), REDACTED),
    # AWS access key ids.
    (re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"), REDACTED),
    # AWS secret keys next to their name, in env, ini or JSON form.
    (
        re.compile(r"(?i)(aws_?secret_?access_?key|secret_?access_?key)([\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}"),
        rf"\1\2{REDACTED}",
    ),
    # name=value / "name": "value" pairs whose name says secret.
    (
        re.compile(
            r"(?i)\b((?:x-)?api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|client[_-]?secret"
            r"|secret[_-]?key|password|passwd|private[_-]?key)([\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
)


class Redactor:
    """Replaces known secret values and credential-like strings in text by ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_CHARS:
                continue
            values.add(secret)
            # The same value inside a JSON string (a system log line) is written escaped.
            values.add(json.dumps(secret)[1:-1])
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(values, key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        """``text`` with every secret value and credential-like string replaced."""
        if self._literal is not None:
            text = self._literal.sub(REDACTED, text)
        return self.redact_patterns(text)

    def redact_values(self, text: str) -> str:
        """``text`` with only the known secret values replaced (safe on JSON that must stay parseable as data)."""
        return text if self._literal is None else self._literal.sub(REDACTED, text)

    @staticmethod
    def redact_patterns(text: str) -> str:
        """``text`` with credential-like strings replaced."""
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text
