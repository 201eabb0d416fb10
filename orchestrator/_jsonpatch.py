"""Applying RFC 6902 ops to a definition, with a reason the caller can act on when they do not apply."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import jsonpatch
import jsonpointer

from orchestrator._errors import ApiError
from orchestrator._models import PatchOp


def apply_ops(document: dict[str, Any], ops: Sequence[PatchOp]) -> Any:
    """``document`` with ``ops`` applied (the input is not changed); 422 naming the op that failed."""
    result: Any = copy.deepcopy(document)
    for index, op in enumerate(ops):
        try:
            result = jsonpatch.JsonPatch([op.as_json()]).apply(result, in_place=True)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
            message = f"ops[{index}] ({op.op} {op.path}): {exc}"
            raise ApiError(422, message, code="invalid_patch", details=[message]) from exc
    return result
