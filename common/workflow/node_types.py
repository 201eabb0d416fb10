"""The registry of node types aob knows: type name to config model, and their JSON Schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from common.workflow.node_configs import (
    AgentConfig,
    BranchConfig,
    DelayConfig,
    HitlConfig,
    HttpConfig,
    LoopConfig,
    MapConfig,
    NoopConfig,
    TransformConfig,
    WorkflowNodeConfig,
)

NODE_TYPES: dict[str, type[BaseModel]] = {
    "http": HttpConfig,
    "agent": AgentConfig,
    "hitl": HitlConfig,
    "noop": NoopConfig,
    "transform": TransformConfig,
    "delay": DelayConfig,
    "branch": BranchConfig,
    "workflow": WorkflowNodeConfig,
    "loop": LoopConfig,
    "map": MapConfig,
}

# Types of the original platform that mean the same as one of ours.
TYPE_ALIASES: dict[str, str] = {"conditional": "branch"}


def node_type_schemas() -> dict[str, dict[str, Any]]:
    """Each known type's config JSON Schema, keyed by type name."""
    return {name: model.model_json_schema(by_alias=True) for name, model in NODE_TYPES.items()}
