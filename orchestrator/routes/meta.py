"""What clients need to write definitions (validation, node types, the JSON Schema) and to read CAS outputs."""

from __future__ import annotations

import re

from fastapi import APIRouter, Path, Response

from common.errors import AobError, ValidationFailed
from common.workflow.compiler import json_schema
from common.workflow.node_types import node_type_schemas
from orchestrator._errors import not_found
from orchestrator._models import DefinitionBody
from orchestrator._schemas.service import BLOB_RESPONSES, WorkflowSchemaAnswer
from orchestrator._schemas.workflows import NodeTypesAnswer, ValidationAnswer
from orchestrator._state import Reader, State
from orchestrator._workflows import compile_off_loop

router = APIRouter(prefix="/api/v1", tags=["meta"])
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@router.post("/validate")
async def validate(body: DefinitionBody, state: State, caller: Reader) -> ValidationAnswer:
    """Every validation error and warning of ``definition``; 200 whether or not it is valid."""
    try:
        result = await compile_off_loop(state, body.definition, "validate")
    except ValidationFailed as exc:
        return {"valid": False, "errors": exc.errors, "warnings": []}
    return {
        "valid": True,
        "errors": [],
        "warnings": result.warnings,
        "agent_count": result.ir.agent_count,
        "entries": result.ir.entries,
    }


@router.get("/node-types")
async def node_types(caller: Reader) -> NodeTypesAnswer:
    """Each node type with the JSON Schema of its config."""
    return {"items": [{"type": name, "config_schema": schema} for name, schema in node_type_schemas().items()]}


@router.get("/schema/workflow")
async def workflow_schema(caller: Reader) -> WorkflowSchemaAnswer:
    """JSON Schema of a workflow definition."""
    return json_schema()


@router.get("/blobs/{digest}", responses=BLOB_RESPONSES)
async def get_blob(
    state: State, caller: Reader, digest: str = Path(pattern=r"^[0-9a-f]{64}$", description="sha256 hex")
) -> Response:
    """A CAS output, only to the tenant one of whose runs produced it."""
    ref = f"cas://sha256:{digest}"
    owned = await state.pool.fetchval(
        "SELECT 1 FROM run_steps s JOIN runs r ON r.id = s.run_id WHERE s.output_ref = $1 AND r.tenant_id = $2 LIMIT 1",
        ref,
        caller.tenant_id,
    )
    if not owned:
        raise not_found("blob", digest)
    try:
        data = await state.cas.get(ref)
    except AobError:
        raise not_found("blob", digest) from None
    return Response(data, media_type="application/json")
