"""``{{ secrets.NAME }}`` in a node's config: kept away from templates, filled in by the worker that runs the node.

Only references the workflow's author wrote count. Before the config's templates are rendered, each one in the
fields that accept secrets becomes a placeholder holding a random per-execution nonce; the template engine never
sees a secret (so no filter can transform it past redaction, and ``secrets`` is no name templates know), and a
run input or an upstream output that contains the text ``{{ secrets.NAME }}`` stays that text: it cannot guess
the nonce, so it can never make the worker send a secret somewhere the author did not.
"""

from __future__ import annotations

import functools
import re
import secrets as random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# The fields of each node type where secrets may be referenced; elsewhere ``secrets`` is an undefined name.
SECRET_FIELDS: Mapping[str, tuple[str, ...]] = {
    "http": ("url", "headers", "query", "body", "json"),
    "agent": ("api_key",),
}

_REFERENCE = re.compile(r"\{\{-?\s*secrets\.([A-Za-z_][A-Za-z0-9_]{0,63})\s*-?\}\}")
# A whole field that is one reference: as the author wrote it, or as the worker shielded it for one execution.
_ONLY_REFERENCE = re.compile(rf"(?:{_REFERENCE.pattern}|@@aob-secret-[0-9a-f]{{32}}-[A-Za-z_][A-Za-z0-9_]{{0,63}}@@)")


def is_secret_reference(text: str) -> bool:
    """Whether ``text`` is exactly one ``{{ secrets.NAME }}`` reference (or the worker's placeholder for one)."""
    return _ONLY_REFERENCE.fullmatch(text) is not None


class SecretSlots:
    """The secret references of one execution's config, as placeholders only this object can fill."""

    # Made on first use: most executions have no secret field, and compiling a pattern per execution is costly.
    @functools.cached_property
    def _nonce(self) -> str:
        return random.token_hex(16)

    @functools.cached_property
    def _placeholder(self) -> re.Pattern[str]:
        return re.compile(rf"@@aob-secret-{self._nonce}-([A-Za-z0-9_]+)@@")

    def shield(self, config: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        """``config`` with the references in ``fields`` (at any depth) replaced by placeholders."""
        shielded = dict(config)
        for name in fields:
            if name in shielded:
                shielded[name] = self._walk(shielded[name], self._to_placeholder)
        return shielded

    def names(self, value: Any) -> set[str]:
        """Names of the secrets whose placeholders are in ``value`` (a rendered config or part of one)."""
        found: set[str] = set()

        def collect(text: str) -> str:
            found.update(self._placeholder.findall(text))
            return text

        self._walk(value, collect)
        return found

    def fill(self, value: Any, values: Mapping[str, str]) -> Any:
        """``value`` with each placeholder replaced by its secret; every name must be in ``values``."""
        return self._walk(value, lambda text: self._placeholder.sub(lambda m: values[m.group(1)], text))

    def _to_placeholder(self, text: str) -> str:
        return _REFERENCE.sub(lambda m: f"@@aob-secret-{self._nonce}-{m.group(1)}@@", text)

    def _walk(self, value: Any, change: Callable[[str], str]) -> Any:
        if isinstance(value, str):
            return change(value)
        if isinstance(value, dict):
            return {self._walk(key, change): self._walk(item, change) for key, item in value.items()}
        if isinstance(value, list):
            return [self._walk(item, change) for item in value]
        return value
