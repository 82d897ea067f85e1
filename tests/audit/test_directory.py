"""The public directory validates against the official HSDS 3.0 schemas and hides addresses."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from audit.main import consume
from services.events import Event
from services.settings import ROOT
from tests.conftest import running

BASE = "https://schemas.canaliza.test/hsds-3.0/"
# Open Referral's HSDS 3.0 schemas, kept in the repository (CC BY-SA 4.0; see its README).
SCHEMAS = ROOT / "docs" / "standards" / "hsds-3.0"


def _schemas_dir() -> Path:
    return SCHEMAS


def _validators() -> dict[str, Draft202012Validator]:
    """A validator per HSDS object; relative $refs resolve among the local files only."""
    folder = _schemas_dir()
    resources = []
    for path in folder.glob("*.json"):
        if path.name == "openapi.json":
            continue
        resources.append((BASE + path.name, Resource.opaque(json.loads(path.read_text()))))
    registry = Registry().with_resources(resources)
    out = {}
    for name in ("organization", "service", "location", "service_at_location"):
        schema = {**json.loads((folder / f"{name}.json").read_text()), "$id": BASE + f"{name}.json"}
        out[name] = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
    return out


def _fixture() -> None:
    consume(
        Event(
            type="referral.institution.created",
            aggregate_type="institution",
            aggregate_id="casa-mercedes",
            payload={"id": "casa-mercedes", "name": "Casa de las Mercedes I.A.P.",
                     "institution_name": "Casa de las Mercedes I.A.P.", "type": "ngo",
                     "state": "09"},
        )
    )  # fmt: skip
    for fid, kind, status in (
        ("f-ref", "refugio", "active"),
        ("f-alb", "albergue", "suspended"),
        ("f-casa", "casa_de_medio_camino", "registered"),
        ("f-closed", "albergue", "closed"),
    ):
        consume(
            Event(
                type="capacity.facility.created",
                aggregate_type="facility",
                aggregate_id=fid,
                aggregate_version=1,
                payload={
                    "facility_id": fid,
                    "name": f"Casa {fid}",
                    "kind": kind,
                    "status": status,
                    "operator_institution_id": "casa-mercedes",
                    "state": "09",
                    "municipality": "Tlalpan",
                    "services": ["legal", "interpretation"],
                    "specialization": "trafficking",
                    "address": "Calle Secreta 123",
                    "street_address": "Calle Secreta 123",
                    "latitude": 19.3,
                    "longitude": -99.1,
                },
            )
        )


async def test_hsds_export_validates_and_has_no_address(audit_app, auth_headers):
    validators = _validators()
    _fixture()
    async with running(audit_app) as client:
        r = await client.get("/api/v1/directory/hsds", headers=auth_headers("prosecutor"))
    assert r.status_code == 200, r.text
    doc = r.json()
    plural = {"organization": "organizations", "service": "services", "location": "locations",
              "service_at_location": "service_at_locations"}  # fmt: skip
    for name, key in plural.items():
        assert doc[key], key
        for obj in doc[key]:
            errors = sorted(validators[name].iter_errors(obj), key=str)
            assert not errors, (name, [e.message for e in errors])
    # The validator is not a rubber stamp: a service without its required status fails.
    broken = {k: v for k, v in doc["services"][0].items() if k != "status"}
    assert list(validators["service"].iter_errors(broken))
    assert not validators["service"].is_valid({**doc["services"][0], "status": "open"})
    # $refs resolve to the local files: a nested service area without its id fails too,
    assert not validators["service"].is_valid({**doc["services"][0], "service_areas": [{}]})
    # and identifiers must be UUIDs.
    assert not validators["organization"].is_valid({**doc["organizations"][0], "id": "x"})

    assert [o["name"] for o in doc["organizations"]] == ["Casa de las Mercedes I.A.P."]
    assert len(doc["services"]) == 3  # the closed facility is not published
    statuses = {s["name"]: s["status"] for s in doc["services"]}
    assert statuses["Albergue: Casa f-alb"] == "temporarily closed"
    text = r.text
    for secret in ("Calle Secreta", "address", "latitude", "longitude", "postal_code"):
        assert secret not in text, secret
    refuge = next(loc for loc in doc["locations"] if loc["external_identifier"] == "f-ref")
    assert "Tlalpan" not in refuge["name"]  # a refuge does not even name its municipality
    other = next(loc for loc in doc["locations"] if loc["external_identifier"] == "f-alb")
    assert "Tlalpan" in other["name"]
