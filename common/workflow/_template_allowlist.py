"""What templates may use, by name: attributes and methods per type, filters, tests and globals. Nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2.runtime import LoopContext

# Methods that read a string or build one no larger than a budget check allows (padding, replace, join and
# split are sized before they run). Not here, so refused: encode (bytes), format, format_map, translate,
# expandtabs, maketrans.
STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "center", "count", "endswith", "find", "index", "isalnum", "isalpha",
        "isascii", "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "join",
        "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex",
        "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
        "title", "upper", "zfill",
    }
)  # fmt: skip
SEQUENCE_METHODS = frozenset({"count", "index"})
# JSON objects: `body.items` is the key "items" when there is one (see the sandbox's getattr), else the method.
MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})
RANGE_ATTRIBUTES = frozenset({"count", "index", "start", "step", "stop"})
LOOP_ATTRIBUTES = frozenset(
    {
        "changed", "cycle", "depth", "depth0", "first", "index", "index0", "last", "length", "nextitem",
        "previtem", "revindex", "revindex0",
    }
)  # fmt: skip
GROUP_ATTRIBUTES = frozenset({"grouper", "list"})

# Filters whose result is bounded by a check (`center`, `format`, `join`, `replace`, `sum`, `tojson` are sized
# before they run; every result is measured). Not here, so refused: batch, slice, indent, wordwrap, truncate's
# relatives, random, pprint, xmlattr, urlize.
FILTERS = frozenset(
    {
        "abs", "attr", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "format", "groupby", "int", "items", "join", "last",
        "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round",
        "safe", "select", "selectattr", "sort", "string", "striptags", "sum", "title", "tojson", "trim",
        "truncate", "unique", "upper", "urlencode", "wordcount",
    }
)  # fmt: skip
# Filters that pick out part of their input or compute a number from it: their result is data already there,
# so it is not measured against the value limit (a large upstream output may pass through them).
SELECTING_FILTERS = frozenset(
    {"abs", "attr", "count", "d", "default", "first", "float", "int", "last", "length", "max", "min", "round"}
)
TESTS = frozenset(
    {
        "boolean", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "float", "ge", "gt",
        "greaterthan", "in", "integer", "iterable", "le", "lower", "lessthan", "lt", "mapping", "ne", "none",
        "number", "odd", "sameas", "sequence", "string", "true", "undefined", "upper", "==", "!=", "<", "<=",
        ">", ">=",
    }
)  # fmt: skip


def allowed_attributes(obj: Any) -> frozenset[str]:
    """The attributes and methods templates may use on ``obj`` (none on numbers and unknown types)."""
    if isinstance(obj, str):
        return STR_METHODS
    if isinstance(obj, Mapping):
        return MAPPING_METHODS
    if getattr(type(obj), "_fields", None) == ("grouper", "list"):
        return GROUP_ATTRIBUTES  # groupby's (grouper, list) tuples
    if isinstance(obj, list | tuple):
        return SEQUENCE_METHODS
    if isinstance(obj, range):
        return RANGE_ATTRIBUTES
    if isinstance(obj, LoopContext):
        return LOOP_ATTRIBUTES
    return frozenset()
