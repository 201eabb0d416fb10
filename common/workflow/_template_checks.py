"""Size checks made before an operator, method or filter builds its result, from the sizes of its operands."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from common.workflow._template_budget import MAX_INT_BITS, Budget, BudgetExceeded

# Each conversion's width and precision (possessive quantifiers: linear however many flags precede them).
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*+\))?[#0\- +]*+(\*|\d++)?(?:\.(\*|\d*+))?")
_LINE_BREAKS = ("\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
_SEQUENCES = (str, bytes, bytearray, list, tuple)
# int() of a longer string is quadratic in CPython (and refused by its default digit limit).
_MAX_NUMBER_DIGITS = 4300


def check_binop(budget: Budget, operator: str, left: Any, right: Any) -> bool:
    """Refuse ``left <operator> right`` before it runs when its result would be over budget.

    Returns whether the result's size is then known (so it need not be measured again).
    """
    if operator == "*":
        _check_repeat(budget, left, right)
        _check_repeat(budget, right, left)
        if _is_int(left) and _is_int(right):
            _check_bits(left.bit_length() + right.bit_length(), f"{operator} of two large integers")
    elif operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        _check_bits(left.bit_length() * right, f"an integer to the power {right}")
    elif operator == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        size = budget.measure(left, "+") + budget.measure(right, "+")
        budget.allow(size, f"adding a {type(left).__name__} and a {type(right).__name__}")
        return True
    elif operator == "%" and isinstance(left, str | bytes):
        check_printf(budget, left if isinstance(left, str) else left.decode("latin-1"), right)
    return operator == "*" and (isinstance(left, _SEQUENCES) or isinstance(right, _SEQUENCES))


def check_printf(budget: Budget, template: str, args: Any) -> None:
    """Refuse ``template % args`` when a width or precision would pad it over budget (``*`` widths refused)."""
    padding = 0
    for spec in _PRINTF_SPEC.finditer(template):
        for number in spec.groups():
            if number == "*":
                raise BudgetExceeded(f"'*' widths in {spec.group()!r} are not allowed (write the width)")
            padding += int(number) if number else 0
            budget.allow(padding, f"formatting with {spec.group()!r}")
    budget.allow(len(template) + padding + budget.measure(args, "% arguments"), "% formatting")


def check_method(budget: Budget, method: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse a string method whose arguments size a result over budget; returns the arguments to call with."""
    text = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if not isinstance(text, str):
        return args
    what = f"the value of str.{name}()"
    if name in ("center", "ljust", "rjust", "zfill") and args and _is_int(args[0]):
        budget.allow(args[0], what)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = args[2] if len(args) > 2 and _is_int(args[2]) else -1
        check_replace(budget, text, args[0], args[1], count)
    elif name == "join" and args:
        items = budget.materialize(args[0])
        budget.allow(total_size(budget, items) + len(text) * len(items), what)
        return (items, *args[1:])
    elif name in ("split", "rsplit", "splitlines"):
        separator = args[0] if args and name != "splitlines" else None
        pieces = _pieces(text, separator if isinstance(separator, str) else None, name == "splitlines")
        budget.allow(len(text) + 4 * pieces, what)
    return args


def total_size(budget: Budget, items: Iterable[Any]) -> int:
    """The summed size of ``items`` written out, walked no further than just past the value limit."""
    total = 0
    for item in items:
        total += budget.size(item, budget.max_value - total + 1)
        if total > budget.max_value:
            break
    return total


def check_replace(budget: Budget, text: str, old: str, new: str, count: int) -> None:
    """Refuse a replace whose occurrences times the new text would be over budget."""
    found = len(text) + 1 if old == "" else text.count(old)
    if count >= 0:
        found = min(found, count)
    budget.allow(len(text) + found * max(len(new) - len(old), 0), "replace")


def check_filter(budget: Budget, name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Refuse a filter call whose input or arguments size its result over budget; returns the value to filter."""
    what = f"the value of the {name} filter"
    if name == "center":
        width = args[0] if args else kwargs.get("width", 80)
        budget.allow(width if _is_int(width) else 0, what)
    elif name == "join":
        separator = str(args[0]) if args else str(kwargs.get("d", ""))
        items = budget.materialize(value)
        budget.allow(total_size(budget, items) + len(separator) * len(items), what)
        return items
    elif name == "format":
        check_printf(budget, str(value), kwargs or args)
    elif name == "replace" and len(args) >= 2:
        count: Any = args[2] if len(args) > 2 else kwargs.get("count")
        check_replace(budget, str(value), str(args[0]), str(args[1]), count if _is_int(count) else -1)
    elif name == "tojson":
        indent: Any = args[0] if args else kwargs.get("indent")
        spaces: int = len(indent) if isinstance(indent, str) else indent if _is_int(indent) else 0
        budget.measure(value, what, indent=max(spaces, 0))
    elif name == "urlencode":
        # Percent-encoding writes up to 9 characters for one (3 UTF-8 bytes, each as %XX).
        budget.allow(9 * budget.measure(value, what), what)
    elif name == "int" and isinstance(value, str) and len(value) > _MAX_NUMBER_DIGITS:
        raise BudgetExceeded(f"int of a {len(value)}-character string is not allowed")
    return value


def _pieces(text: str, separator: str | None, lines: bool) -> int:
    if lines:
        return sum(text.count(mark) for mark in _LINE_BREAKS) + 1
    if separator:
        return text.count(separator) + 1
    return len(text) // 2 + 1


def _check_repeat(budget: Budget, sequence: Any, times: Any) -> None:
    if isinstance(sequence, _SEQUENCES) and _is_int(times) and times > 0:
        what = f"a {type(sequence).__name__} of length {len(sequence)} repeated {times} times"
        budget.allow(budget.size(sequence, budget.max_value // times + 1) * times, what)


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise BudgetExceeded(f"{what} would be larger than {MAX_INT_BITS} bits")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
