"""JSON Patch ops: applied to a copy, refused with the op's index, and kept from growing a document unboundedly."""

from __future__ import annotations

import pytest

from orchestrator._errors import ApiError
from orchestrator._jsonpatch import apply_ops
from orchestrator._models import PatchOp


def _ops(*ops: dict[str, object]) -> list[PatchOp]:
    return [PatchOp.model_validate(op) for op in ops]


def test_ops_apply_to_a_copy() -> None:
    document = {"a": [1]}
    patched = apply_ops(document, _ops({"op": "add", "path": "/a/-", "value": 2}), max_bytes=100)
    assert patched == {"a": [1, 2]} and document == {"a": [1]}


def test_a_failing_op_is_named() -> None:
    with pytest.raises(ApiError) as caught:
        apply_ops({"a": 1}, _ops({"op": "remove", "path": "/b"}))
    assert caught.value.status == 422 and caught.value.message.startswith("ops[0] (remove /b)")


def test_doubling_copies_stop_at_twice_the_byte_limit() -> None:
    doubling = [{"op": "copy", "from": "/d", "path": f"/d/c{i}"} for i in range(60)]
    with pytest.raises(ApiError) as caught:
        apply_ops({"d": {"x": "y" * 100}}, _ops(*doubling), max_bytes=10_000)
    assert caught.value.status == 413
    assert caught.value.message.startswith("ops[7] (copy /d/c7)") and "AOB_MAX_DEFINITION_BYTES" in caught.value.message
