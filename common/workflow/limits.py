"""How large a workflow definition may be: nodes, edges, bytes in all and bytes per node config.

Checked on the raw definition before anything else is done with it, so an oversized one costs one pass over
its JSON. The API applies the limits of its settings to every definition it saves or patches into a run;
definitions stored before a limit was lowered still run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from common.errors import ValidationFailed
from common.settings import DefinitionLimitFields


@dataclass(frozen=True)
class DefinitionLimits:
    """The most a definition may hold; the defaults are those of ``ApiSettings``."""

    max_nodes: int = 1_000
    max_edges: int = 5_000
    max_bytes: int = 1_048_576
    max_node_config_bytes: int = 131_072

    @classmethod
    def of(cls, settings: DefinitionLimitFields) -> DefinitionLimits:
        """The limits of one deployment's settings."""
        return cls(
            settings.max_definition_nodes,
            settings.max_definition_edges,
            settings.max_definition_bytes,
            settings.max_node_config_bytes,
        )


@dataclass(frozen=True)
class LimitExceeded:
    """One limit a definition goes over: which (its setting's name), by how much, and where."""

    setting: str
    value: int
    limit: int
    where: str = "definition"

    def __str__(self) -> str:
        return f"{self.where}: {self.value} is over the limit of {self.limit} (AOB_{self.setting.upper()})"


class DefinitionTooLarge(ValidationFailed):
    """A definition goes over one or more ``DefinitionLimits``; ``exceeded`` lists them."""

    code = "definition_too_large"

    def __init__(self, exceeded: list[LimitExceeded]) -> None:
        super().__init__([str(item) for item in exceeded])
        self.exceeded = exceeded


def check_size(definition: Any, limits: DefinitionLimits) -> None:
    """Raise ``DefinitionTooLarge`` naming every limit ``definition`` (raw JSON) goes over."""
    if not isinstance(definition, dict):
        return
    exceeded: list[LimitExceeded] = []
    size = json_bytes(definition)
    if size > limits.max_bytes:
        exceeded.append(LimitExceeded("max_definition_bytes", size, limits.max_bytes, "definition (bytes)"))
    nodes = definition.get("nodes")
    if isinstance(nodes, list):
        if len(nodes) > limits.max_nodes:
            exceeded.append(LimitExceeded("max_definition_nodes", len(nodes), limits.max_nodes, "nodes (count)"))
        for index, node in enumerate(nodes):
            config = node.get("config") if isinstance(node, dict) else None
            config_size = json_bytes(config) if config is not None else 0
            if config_size > limits.max_node_config_bytes:
                exceeded.append(
                    LimitExceeded(
                        "max_node_config_bytes", config_size, limits.max_node_config_bytes, f"nodes[{index}].config"
                    )
                )
    edges = definition.get("edges")
    if isinstance(edges, list) and len(edges) > limits.max_edges:
        exceeded.append(LimitExceeded("max_definition_edges", len(edges), limits.max_edges, "edges (count)"))
    if exceeded:
        raise DefinitionTooLarge(exceeded)


def json_bytes(value: Any) -> int:
    """Size of ``value`` as compact UTF-8 JSON (0 if it is not JSON)."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError):
        # Not JSON: parsing the definition reports it with its path.
        return 0
