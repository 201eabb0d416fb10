"""Applying RFC 6902 ops to a definition, with a reason the caller can act on when they do not apply."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import jsonpatch
import jsonpointer

from common.workflow.limits import json_bytes
from orchestrator._errors import ApiError
from orchestrator._models import PatchOp

# How far past the definition limit ops may grow a document before applying stops: the compiled result is
# measured exactly; this only keeps ``copy`` ops (each can double the document) from exhausting memory first.
_GROWTH_SLACK = 2


def apply_ops(document: dict[str, Any], ops: Sequence[PatchOp], *, max_bytes: int | None = None) -> Any:
    """``document`` with ``ops`` applied (the input is not changed); 422 naming the op that failed, 413 when
    adds and copies would grow it far past ``max_bytes``."""
    result: Any = copy.deepcopy(document)
    grown = json_bytes(document) if max_bytes is not None else 0
    for index, op in enumerate(ops):
        try:
            if max_bytes is not None and op.op in ("add", "replace", "copy"):
                added = jsonpointer.resolve_pointer(result, op.from_ or "") if op.op == "copy" else op.value
                grown += json_bytes(added)
                if grown > _GROWTH_SLACK * max_bytes:
                    message = (
                        f"ops[{index}] ({op.op} {op.path}): the definition would grow past {max_bytes} bytes"
                        " (AOB_MAX_DEFINITION_BYTES)"
                    )
                    raise ApiError(413, message, code="definition_too_large", details=[message])
            result = jsonpatch.JsonPatch([op.as_json()]).apply(result, in_place=True)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
            message = f"ops[{index}] ({op.op} {op.path}): {exc}"
            raise ApiError(422, message, code="invalid_patch", details=[message]) from exc
    return result
