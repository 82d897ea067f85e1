"""The merged OpenAPI document the gateway serves for services that run apart."""

from __future__ import annotations

from typing import Any

from services.apidocs import SCHEMA_REF, merge_openapi


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _spec(paths: dict[str, Any], schemas: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"HTTPBearer": {"type": "http", "scheme": "bearer"}},
        },
        "tags": [{"name": t} for t in tags],
    }


def _op(ref: str) -> dict[str, Any]:
    return {
        "responses": {
            "200": {"content": {"application/json": {"schema": {"$ref": SCHEMA_REF + ref}}}}
        }
    }


ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}
HEALTH = {"/healthz": {"get": {"responses": {"200": {"description": "ok"}}}}}


def test_paths_are_united_and_identical_schemas_kept_once() -> None:
    capacity = _spec(
        {**HEALTH, "/api/v1/pools/{id}": {"get": _op("Pool")}},
        {"Pool": {"type": "object"}, "Error": ERROR},
        ["capacity"],
    )
    referral = _spec(
        {**HEALTH, "/api/v1/referrals": {"get": _op("Error")}},
        {"Error": ERROR},
        ["referral", "capacity"],
    )
    merged = merge_openapi({"capacity": capacity, "referral": referral})
    assert set(merged["paths"]) == {"/healthz", "/api/v1/pools/{id}", "/api/v1/referrals"}
    assert set(merged["components"]["schemas"]) == {"Pool", "Error"}
    assert [t["name"] for t in merged["tags"]] == ["capacity", "referral"]
    assert merged["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert merged["x-canaliza-services"] == ["capacity", "referral"]
    assert "description" not in merged["info"]


def test_a_name_two_services_use_differently_is_prefixed_and_refs_follow() -> None:
    capacity = _spec(
        {"/api/v1/facilities": {"post": _op("Wrapper")}},
        {
            "Item": {"type": "object", "properties": {"beds": {"type": "integer"}}},
            # Identical text in both services, but it refers to "Item", which differs.
            "Wrapper": {"type": "array", "items": {"$ref": SCHEMA_REF + "Item"}},
        },
        [],
    )
    referral = _spec(
        {"/api/v1/referrals": {"post": _op("Wrapper")}},
        {
            "Item": {"type": "object", "properties": {"urgency": {"type": "string"}}},
            "Wrapper": {"type": "array", "items": {"$ref": SCHEMA_REF + "Item"}},
        },
        [],
    )
    merged = merge_openapi({"capacity": capacity, "referral": referral}, missing=["audit"])
    schemas = merged["components"]["schemas"]
    assert set(schemas) == {"Item", "Wrapper", "ReferralItem", "ReferralWrapper"}
    assert "beds" in schemas["Item"]["properties"]
    assert "urgency" in schemas["ReferralItem"]["properties"]
    assert schemas["ReferralWrapper"]["items"]["$ref"] == SCHEMA_REF + "ReferralItem"
    op = merged["paths"]["/api/v1/referrals"]["post"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == (
        SCHEMA_REF + "ReferralWrapper"
    )
    # Every reference resolves, and the missing service is named.
    assert {r.removeprefix(SCHEMA_REF) for r in _refs(merged)} <= set(schemas)
    assert "audit" in merged["info"]["description"]
    # The inputs are not changed.
    assert set(referral["components"]["schemas"]) == {"Item", "Wrapper"}
