"""Regression tests for what the resilience suite's OpenAPI fuzzing found (one per bug)."""

from __future__ import annotations

from canaliza.composition import build_app


def test_openapi_documents_the_error_body_not_fastapis() -> None:
    """Bug: every 422 was documented as FastAPI's ``{"detail": [...]}`` and no other 4xx
    was documented, so a client generated from the OpenAPI could not read any error."""
    schema = build_app("all").openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "detail"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert responses["4XX"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, (method, path)
            assert not [c for c in responses if c.startswith("4") and c != "4XX"], (method, path)


def test_enumerated_fields_are_enumerated_in_the_openapi() -> None:
    """Bug: sex, person role, ledger kind, specialization... were documented as any string."""
    schemas = build_app("all").openapi()["components"]["schemas"]
    ledger = schemas["LedgerCreate"]["properties"]
    assert set(ledger["kind"]["enum"]) == {
        "admit",
        "discharge",
        "adjust",
        "out_of_service",
        "back_in_service",
    }
    person = schemas["Person"]["properties"]
    # sex is one of F, M, X, or null when not recorded (contract, "Vocabulary used in bodies").
    sex_options = person["sex"]["anyOf"]
    assert {"type": "null"} in sex_options
    assert [o["enum"] for o in sex_options if "enum" in o] == [["F", "M", "X"]]
    assert "victim" in person["role"]["enum"]
