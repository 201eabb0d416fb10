"""The one JSON Schema compiler: local references only, linear-time patterns, errors with paths."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from common.json_schema import (
    InvalidSchema,
    checked_schema,
    compile_schema,
    instance_errors,
    json_path,
    schema_faults,
)


def _wheres(schema: Any) -> list[str]:
    return [fault.where for fault in schema_faults(schema)]


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"$ref": "http://example.com/s.json"}, "$ref"),
        ({"items": [{"$ref": "file:///etc/passwd"}]}, "items[0].$ref"),
        ({"properties": {"a": {"$dynamicRef": "https://x/y#meta"}}}, "properties.a.$dynamicRef"),
        ({"$defs": {"d": {"$ref": "other.json#/x"}}}, "$defs.d.$ref"),
        # A property named like a data keyword is still a schema.
        ({"properties": {"const": {"$ref": "http://x"}}}, "properties.const.$ref"),
        ({"$schema": "http://127.0.0.1/meta.json"}, "$schema"),
    ],
)
def test_references_outside_the_schema_are_refused_with_their_path(schema: dict[str, Any], where: str) -> None:
    assert where in _wheres(schema)


def test_local_references_and_refs_in_data_are_fine() -> None:
    schema = {
        "$defs": {"n": {"type": "integer"}},
        "properties": {"a": {"$ref": "#/$defs/n"}, "b": {"const": {"$ref": "http://data.example"}}},
        "default": {"$ref": "http://also-data"},
        "enum": [{"$ref": "http://x"}],
    }
    assert schema_faults(schema) == []
    assert schema_faults(True) == []
    assert schema_faults({"$schema": "http://json-schema.org/draft-07/schema#"}) == []


def test_a_missing_local_target_is_refused() -> None:
    assert "does not exist" in schema_faults({"$ref": "#/$defs/none"})[0].message


def test_patterns_the_linear_engine_cannot_run_are_refused_where_they_are() -> None:
    [fault] = schema_faults({"patternProperties": {"x": {"properties": {"p": {"pattern": "(?<=a)b"}}}}})
    assert fault.where == "patternProperties.x.properties.p.pattern"
    assert "look-around" in fault.message
    assert schema_faults({"patternProperties": {"(a)\\1": {}}}) != []


def test_backtracking_patterns_are_matched_quickly() -> None:
    errors = instance_errors({"pattern": "^(a+)+$"}, "a" * 100_000 + "!")
    assert len(errors) == 1 and len(errors[0].message) <= 300


def test_instance_errors_are_ordered_and_located() -> None:
    schema = {"properties": {"a": {"items": {"type": "integer"}}}, "required": ["b"]}
    errors = instance_errors(schema, {"a": [1, "x"]})
    assert [(error.at("inputs"), error.message) for error in errors] == [
        ("inputs", '"b" is a required property'),
        ("inputs.a[1]", '"x" is not of type "integer"'),
    ]


def test_a_non_json_instance_is_an_error_not_a_crash() -> None:
    assert instance_errors({"type": "object"}, {1: "x"})[0].parts == ()


def test_compiled_schemas_are_reused() -> None:
    assert compile_schema({"type": "string", "x-n": 1}) is compile_schema({"x-n": 1, "type": "string"})


def test_a_refused_schema_raises_with_every_fault() -> None:
    with pytest.raises(InvalidSchema) as caught:
        compile_schema({"properties": {"a": {"$ref": "http://a"}, "b": {"$ref": "http://b"}}})
    assert [fault.where for fault in caught.value.faults] == ["properties.a.$ref", "properties.b.$ref"]


def test_checked_schema_reports_the_path_inside_the_field() -> None:
    class Model(BaseModel):
        schema_: dict[str, Any]

        @field_validator("schema_")
        @classmethod
        def _check(cls, value: dict[str, Any]) -> dict[str, Any]:
            checked: dict[str, Any] = checked_schema(value)
            return checked

    with pytest.raises(ValidationError) as caught:
        Model(schema_={"items": {"$ref": "http://x"}})
    [error] = caught.value.errors()
    assert error["type"] == "json_schema" and error["ctx"]["where"] == "items.$ref"


def test_json_path() -> None:
    assert json_path("inputs", ["a", 0, "b"]) == "inputs.a[0].b"
    assert json_path("", ["a", 0]) == "a[0]"
