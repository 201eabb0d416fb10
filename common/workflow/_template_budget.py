"""The per-evaluation budget of a template: steps, time, the size of each value it builds and of its output."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import chain
from typing import Any, Protocol

from common.errors import TemplateError

# Integers stay small enough that arithmetic and printing them is quick (about 30,000 decimal digits).
MAX_INT_BITS = 100_000
# Walking a container costs a step per this many elements it holds (strings cost nothing to measure).
_ELEMENTS_PER_STEP = 4
# Building a value costs a step per this many characters it holds (copying memory is quick, but not free).
_CHARS_PER_STEP = 10_000
# The clock is read every this many steps (reading it costs more than a step).
_STEPS_PER_CLOCK_READ = 64


class TemplateLimits(Protocol):
    """What one evaluation may use: the ``template_*`` settings (``common.settings.TemplateFields``)."""

    @property
    def template_max_value_chars(self) -> int: ...

    @property
    def template_max_output_chars(self) -> int: ...

    @property
    def template_max_steps(self) -> int: ...

    @property
    def template_max_eval_s(self) -> float: ...


class BudgetExceeded(TemplateError):
    """A template went over its budget; the message says which limit and what was being built."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"template budget exceeded: {detail}")


class Budget:
    """Steps, time and output left to one evaluation; every operator, call, filter and loop iteration ticks it."""

    def __init__(self, limits: TemplateLimits) -> None:
        self.max_value = limits.template_max_value_chars
        self.max_output = limits.template_max_output_chars
        self.max_steps = limits.template_max_steps
        self.max_s = limits.template_max_eval_s
        self.steps = 0
        self.output = 0
        # CPU time of this thread, not wall time: a busy machine slows an evaluation without it doing more work.
        self._deadline = time.thread_time() + self.max_s
        self._next_clock_read = 0

    def tick(self, steps: int = 1) -> None:
        """Count ``steps`` of work; raises ``BudgetExceeded`` past the step or time limit."""
        self.steps += steps
        if self.steps > self.max_steps:
            raise BudgetExceeded(f"took more than {self.max_steps} steps")
        if self.steps >= self._next_clock_read:
            self._next_clock_read = self.steps + _STEPS_PER_CLOCK_READ
            if time.thread_time() > self._deadline:
                raise BudgetExceeded(f"took more than {self.max_s:g} s of CPU time")

    def allow(self, size: int, what: str) -> None:
        """Refuse to build a value of ``size`` characters (checked before it exists, where it can be known)."""
        if size > self.max_value:
            raise BudgetExceeded(f"{what} would be larger than {self.max_value} characters")
        if size >= _CHARS_PER_STEP:
            self.tick(size // _CHARS_PER_STEP)

    def size(self, value: Any, limit: int, *, indent: int = 0) -> int:
        """Size of ``value`` written out (the walk stops past ``limit``); the walk is charged as steps."""
        size, visited = measure(value, limit, indent=indent)
        self.tick(1 + visited // _ELEMENTS_PER_STEP)
        return size

    def measure(self, value: Any, what: str, *, indent: int = 0) -> int:
        """Size of ``value`` written out, refused past the value limit."""
        size = self.size(value, self.max_value, indent=indent)
        self.allow(size, what)
        return size

    def emit(self, value: Any) -> None:
        """Count ``value`` (text or a typed result) against the evaluation's output limit."""
        self.output += self.size(value, self.max_output - self.output)
        if self.output > self.max_output:
            raise BudgetExceeded(f"output larger than {self.max_output} characters")

    def iterate(self, items: Iterable[Any]) -> Iterator[Any]:
        """``items`` with a step ticked per item (loops, and lazy filters such as ``map`` and ``select``)."""
        for item in items:
            self.tick()
            yield item

    def materialize(self, items: Iterable[Any]) -> list[Any]:
        """``items`` as a list, a step per item."""
        if isinstance(items, list):
            return items
        return list(self.iterate(items))


_current: ContextVar[Budget] = ContextVar("aob_template_budget")


@contextmanager
def evaluation(limits: TemplateLimits) -> Iterator[Budget]:
    """Run one evaluation (a whole ``render_value`` or one condition) under a fresh budget."""
    token = _current.set(Budget(limits))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def current_budget() -> Budget:
    """The budget of the evaluation in progress; templates never run outside one."""
    try:
        return _current.get()
    except LookupError:
        raise TemplateError("a template was evaluated outside a budget") from None


def measure(value: Any, limit: int, *, indent: int = 0) -> tuple[int, int]:
    """Rough characters ``value`` takes written out (JSON or ``str``) and the elements walked to know it.

    The walk stops once past ``limit``, so it costs at most about ``limit`` elements whatever ``value`` shares.
    ``indent`` adds the indentation ``tojson(indent=…)`` writes before each element, deeper ones more.
    """
    scalar = _scalar_size(value)
    if scalar is not None:
        return scalar, 1
    size = visited = 0
    # Only containers go on the stack: scalars inside them are counted where they are met.
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack and size <= limit:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, Mapping):
            children = chain.from_iterable(item.items())
        elif isinstance(item, list | tuple | set | frozenset):
            children = item
        elif isinstance(item, range):
            size += 2 + len(item) * (max(abs(item.start), abs(item.stop)).bit_length() // 3 + 3)
            continue
        else:
            size += 64
            continue
        size += 2 + (indent * depth + 1 if indent else 0)  # brackets, the closing one on its own line
        line = indent * (depth + 1) + 1 if indent else 0
        for child in children:
            visited += 1
            kind = type(child)  # exact types first: this loop is the hot path of every size check
            if kind is str:
                size += line + 4 + len(child)
            elif kind is int:
                size += line + 4 + child.bit_length() // 3
            elif kind in _FIXED_SIZES:
                size += line + 2 + _FIXED_SIZES[kind]
            else:
                scalar = _scalar_size(child)
                if scalar is None:
                    size += line + 2
                    stack.append((child, depth + 1))
                else:
                    size += line + 4 + scalar
            if size > limit:
                break
    return size, visited


_FIXED_SIZES: dict[type, int] = {bool: 5, type(None): 4, float: 24}


def _scalar_size(value: Any) -> int | None:
    """Characters a scalar takes written out; None for containers and other objects."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if value is None or isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if isinstance(value, float):
        return 24
    return None
