"""The deployment's limits on what one control node may start, checked where a definition states them.

A ``map``'s concurrency and items and a ``loop``'s iterations are bounded per tenant by settings; values a
definition writes out (also inside inline bodies, at any depth) are refused when it is saved, with their path.
Values that come from data (a map's items template) are checked by the control worker when the node runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import ValidationFailed
from common.settings import RunQuotaFields


@dataclass(frozen=True, slots=True)
class ChildRunLimits:
    """Largest map concurrency, map item count and loop iteration count one node may have."""

    map_concurrency: int
    map_items: int
    loop_iterations: int

    @classmethod
    def of(cls, quotas: RunQuotaFields) -> ChildRunLimits:
        """The limits of one deployment's settings."""
        return cls(quotas.max_map_concurrency, quotas.max_map_items, quotas.max_loop_iterations)


def limit_error(at: str, what: str, value: int, limit: int, setting: str) -> str:
    """One refusal: ``nodes[0].config.concurrency: 1000 is above the limit of 50 (AOB_MAX_MAP_CONCURRENCY)``."""
    return f"{at}: {what}{value} is above the limit of {limit} (AOB_{setting.upper()})"


def child_run_limit_errors(definition: Any, limits: ChildRunLimits, at: str = "") -> list[str]:
    """Every place ``definition`` (a compiled-clean definition dict) states a value above ``limits``."""
    nodes = definition.get("nodes") if isinstance(definition, dict) else None
    if not isinstance(nodes, list):
        return []
    errors: list[str] = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("config"), dict):
            continue
        config, path = node["config"], f"{at}nodes[{index}].config"
        if node.get("type") == "map":
            errors += _map_errors(config, limits, path)
        elif node.get("type") == "loop":
            errors += _stated_above(config, "max_iterations", limits.loop_iterations, path, "max_loop_iterations")
        if isinstance(config.get("body"), dict):
            errors += child_run_limit_errors(config["body"], limits, at=f"{path}.body.")
    return errors


def check_child_run_limits(definition: Any, limits: ChildRunLimits) -> None:
    """Raise ``ValidationFailed`` listing every value of ``definition`` above ``limits``."""
    errors = child_run_limit_errors(definition, limits)
    if errors:
        raise ValidationFailed(errors)


def _map_errors(config: dict[str, Any], limits: ChildRunLimits, path: str) -> list[str]:
    errors = _stated_above(config, "concurrency", limits.map_concurrency, path, "max_map_concurrency")
    errors += _stated_above(config, "max_items", limits.map_items, path, "max_map_items")
    items = config.get("items")
    if isinstance(items, list) and len(items) > limits.map_items:
        errors.append(limit_error(f"{path}.items", "item count ", len(items), limits.map_items, "max_map_items"))
    return errors


def _stated_above(config: dict[str, Any], field: str, limit: int, path: str, setting: str) -> list[str]:
    value = config.get(field)
    if isinstance(value, int) and value > limit:
        return [limit_error(f"{path}.{field}", "", value, limit, setting)]
    return []
