"""JSON Schemas that cannot reach out or backtrack: the one place aob compiles and applies a JSON Schema.

Schemas come from workflow authors (inputs, agent ``output_schema``) and instances from outside, so every
schema is compiled by ``jsonschema-rs`` with retrieval switched off (a ``$ref`` never fetches a URL or reads a
file) and with the Rust ``regex`` engine for ``pattern`` and ``patternProperties``, which matches in linear time
and refuses what would need backtracking (look-around, back-references). Formats are annotations, as in
draft 2020-12. Only local references (``#…``) are accepted; anything else is refused with its path.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from pydantic_core import PydanticCustomError

from common.errors import AobError

# Dialects whose meta-schemas ship with jsonschema-rs; any other ``$schema`` would have to be fetched.
KNOWN_DIALECTS = (
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema",
    "http://json-schema.org/draft-06/schema",
    "http://json-schema.org/draft-04/schema",
)
MAX_ERRORS = 50
MAX_MESSAGE_CHARS = 300
_REF_KEYWORDS = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})
# Keywords whose value is data, not a schema: a "$ref" inside them is a string like any other.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})
# Keywords whose value maps names to schemas: a name there is not a keyword, even if spelled like one.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
# Compiled schemas are kept for reuse (a workflow's inputs schema serves every run), but not large ones: the
# cache must not become a way to hold hundreds of megabytes.
_CACHE_SIZE = 256
_CACHEABLE_CHARS = 65_536


class _Refused(Exception):
    """Raised by the retriever: a reference outside the schema is never resolved."""


def _refuse(uri: str) -> Any:
    raise _Refused(f"reference {uri!r} is outside the schema; only local references ('#...') are allowed")


_NO_RETRIEVAL = jsonschema_rs.Registry([], retriever=_refuse)


def json_path(root: str, parts: Sequence[str | int]) -> str:
    """``root`` followed by ``parts`` as ``.key`` and ``[index]``: ``inputs.items[2].name``."""
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


@dataclass(frozen=True)
class SchemaFault:
    """Why a schema is refused, and where inside it (``parts`` empty: the schema as a whole)."""

    parts: tuple[str | int, ...]
    message: str

    @property
    def where(self) -> str:
        """The path inside the schema, e.g. ``properties.a.$ref`` ('' for the root)."""
        return json_path("", self.parts)


class InvalidSchema(AobError):
    """A schema was refused; ``faults`` says why and where."""

    code = "invalid_schema"

    def __init__(self, faults: list[SchemaFault]) -> None:
        super().__init__("; ".join(f"{fault.where or '(root)'}: {fault.message}" for fault in faults))
        self.faults = faults


@dataclass(frozen=True)
class InstanceError:
    """One way an instance breaks a schema: where in the instance, and what is wrong."""

    parts: tuple[str | int, ...]
    message: str

    def at(self, root: str) -> str:
        """The error's place in the instance below ``root``."""
        return json_path(root, self.parts)


class CompiledSchema:
    """A schema compiled once, safe to apply to any instance."""

    def __init__(self, validator: jsonschema_rs.Validator) -> None:
        self._validator = validator

    def errors(self, instance: Any) -> list[InstanceError]:
        """Up to ``MAX_ERRORS`` ways ``instance`` breaks the schema, ordered by place; empty if it fits."""
        try:
            found = list(itertools.islice(self._validator.iter_errors(instance), MAX_ERRORS))
        except ValueError as exc:
            # Not JSON (e.g. bytes, non-string keys): reported as an error of the whole instance.
            return [InstanceError((), _short(str(exc)))]
        errors = [InstanceError(tuple(error.instance_path), _short(error.message)) for error in found]
        return sorted(errors, key=lambda error: [str(part) for part in error.parts])


def compile_schema(schema: Any) -> CompiledSchema:
    """Compile ``schema`` with no retrieval and linear-time patterns; raise ``InvalidSchema`` if refused."""
    try:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidSchema([SchemaFault((), f"not JSON: {exc}")]) from None
    return _compile(canonical) if len(canonical) <= _CACHEABLE_CHARS else _compile.__wrapped__(canonical)


def instance_errors(schema: Any, instance: Any) -> list[InstanceError]:
    """The ways ``instance`` breaks ``schema`` (compiled once and cached); raise ``InvalidSchema`` if refused."""
    return compile_schema(schema).errors(instance)


def schema_faults(schema: Any) -> list[SchemaFault]:
    """Why ``schema`` would be refused; empty when it compiles."""
    try:
        compile_schema(schema)
    except InvalidSchema as exc:
        return exc.faults
    return []


def checked_schema(schema: Any) -> Any:
    """``schema`` if it compiles, for pydantic validators; else a ``json_schema`` error whose context names
    where inside the schema the first fault is (``where``) and what it is (``detail``)."""
    faults = schema_faults(schema)
    if not faults:
        return schema
    first = faults[0]
    detail = first.message + (f" (and {len(faults) - 1} more)" if len(faults) > 1 else "")
    template = "{where}: {detail}" if first.where else "{detail}"
    raise PydanticCustomError("json_schema", template, {"where": first.where, "detail": detail})


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(canonical: str) -> CompiledSchema:
    schema = json.loads(canonical)
    if not isinstance(schema, dict | bool):
        raise InvalidSchema([SchemaFault((), f"expected an object or a boolean, got {type(schema).__name__}")])
    faults = list(_foreign_references(schema, ()))
    dialect = schema.get("$schema") if isinstance(schema, dict) else None
    if dialect is not None and (not isinstance(dialect, str) or dialect.rstrip("#") not in KNOWN_DIALECTS):
        faults.append(SchemaFault(("$schema",), f"unknown dialect {dialect!r} (known: {', '.join(KNOWN_DIALECTS)})"))
    if faults:
        raise InvalidSchema(faults)
    try:
        jsonschema_rs.meta.validate(schema, registry=_NO_RETRIEVAL)
    except jsonschema_rs.ValidationError as exc:
        fault = SchemaFault(tuple(exc.instance_path), f"not a valid JSON Schema: {_short(exc.message)}")
        raise InvalidSchema([fault]) from None
    except jsonschema_rs.ReferencingError as exc:
        raise InvalidSchema([SchemaFault((), _short(exc.message))]) from None
    try:
        validator = jsonschema_rs.validator_for(
            canonical, validate_formats=False, offline=True, pattern_options=jsonschema_rs.RegexOptions()
        )
    except jsonschema_rs.ValidationError as exc:
        message = _short(exc.message)
        if message.endswith('is not a "regex"'):
            message += " the linear-time engine accepts (no look-around or back-references)"
        raise InvalidSchema([SchemaFault(tuple(exc.instance_path), message)]) from None
    except jsonschema_rs.ReferencingError as exc:
        raise InvalidSchema([SchemaFault((), _short(exc.message))]) from None
    return CompiledSchema(validator)


def _foreign_references(node: Any, parts: tuple[str | int, ...]) -> Iterator[SchemaFault]:
    """Every ``$ref``-like keyword whose target is not in this schema (does not start with ``#``)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _foreign_references(item, (*parts, index))
    elif isinstance(node, dict):
        for key, value in node.items():
            at = (*parts, key)
            if key in _REF_KEYWORDS and isinstance(value, str):
                if not value.startswith("#"):
                    yield SchemaFault(at, f"only local references ('#...') are allowed, got {_short(repr(value))}")
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                for name, subschema in value.items():
                    yield from _foreign_references(subschema, (*at, name))
            elif key not in _DATA_KEYWORDS:
                yield from _foreign_references(value, at)


def _short(text: str) -> str:
    first = text.split("\n\n", 1)[0]
    return first if len(first) <= MAX_MESSAGE_CHARS else first[: MAX_MESSAGE_CHARS - 3] + "..."
