"""A full referral across the separate processes: auth, capacity ×2, referral, audit, gateway.

Users reach everything through the gateway; the referral service calls capacity (through
the gateway, with its own client-credentials token) to check, consume and discharge the
hold; every service's events travel over NATS to the audit service, whose trail verifies.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from canaliza.cluster import Cluster
from canaliza.demo import CASA_MERCEDES, FGR
from tests.topology.conftest import FACILITY, POOL, bearer, password_token, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.slow]

# A state no other topology test uses, so the search finds only this test's facility.
STATE = "31"
PEOPLE = [
    {"sex": "F", "age": 27, "role": "victim", "nationality": "MEX"},
    {"sex": "F", "age": 31, "role": "victim", "nationality": "GTM"},
]


class Api:
    """The platform as one user sees it: every call through the gateway."""

    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.Client(base_url=base, headers=bearer(token), timeout=20)

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        r = self.client.request(method, "/api/v1" + path, **kw)
        assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r.json() if r.content else None


def _institution(admin: Api, inst: Any) -> None:
    r = admin.client.post(
        "/api/v1/institutions",
        json={"id": inst.id, "name": inst.name, "type": inst.type, "state": inst.state},
    )
    assert r.status_code in (201, 409), r.text


def test_a_referral_flows_end_to_end_across_the_services(cluster: Cluster) -> None:
    gw = cluster.gateway_url
    admin = Api(gw, password_token(gw, "admin"))
    fiscal = Api(gw, password_token(gw, "fiscal"))
    coordinadora = Api(gw, password_token(gw, "coordinadora"))
    auditor = Api(gw, password_token(gw, "auditor"))

    # The roster: both institutions, a signed agreement, an active facility with a pool.
    for inst in (FGR, CASA_MERCEDES):
        _institution(admin, inst)
    today = date.today()
    agreement = admin.call(
        "POST",
        "/agreements",
        201,
        json={
            "number": f"TOPO-{today.isoformat()}-{id(cluster)}",
            "title": "Convenio de canalización FGR — Casa de las Mercedes",
            "party_ids": [FGR.id, CASA_MERCEDES.id],
            "valid_from": (today - timedelta(days=30)).isoformat(),
            "valid_to": (today + timedelta(days=365)).isoformat(),
        },
    )
    for party in (FGR.id, CASA_MERCEDES.id):
        signed = admin.call(
            "POST", f"/agreements/{agreement['id']}/sign", json={"institution_id": party}
        )
    assert signed["status"] == "signed", signed

    facility = admin.call(
        "POST",
        "/facilities",
        201,
        json={
            **FACILITY,
            "name": "Refugio Topología — canalización",
            "state": STATE,
            "municipality": "Mérida",
            "operator_institution_id": CASA_MERCEDES.id,
        },
    )
    admin.call(
        "PATCH",
        f"/facilities/{facility['id']}",
        json={"status": "active", "reason": "visita de verificación"},
    )
    pool = admin.call("POST", f"/facilities/{facility['id']}/pools", 201, json={**POOL, "total": 5})

    # The prosecutor finds the beds and holds them. The search may be answered by the other
    # capacity replica, which learns of the new pool from the bus a moment later (ADR 0023).
    people = [{k: p[k] for k in ("sex", "age", "role")} for p in PEOPLE]

    def ours_found() -> list[dict[str, Any]]:
        found = fiscal.call(
            "POST", "/availability/search", json={"people": people, "needs": {}, "state": STATE}
        )
        return [r for r in found["results"] if r["facility"]["id"] == facility["id"]]

    ours = wait_until(ours_found, attempts=50)
    allocations = [{"pool_id": p["pool_id"], "beds": p["beds"]} for p in ours[0]["pools"]]
    assert allocations == [{"pool_id": pool["id"], "beds": 2}]
    hold = fiscal.call("POST", "/holds", 201, json={"allocations": allocations})
    counts = admin.call("GET", f"/pools/{pool['id']}")
    assert (counts["held"], counts["occupied"], counts["available"]) == (2, 0, 3)

    # The referral along the signed agreement: created, sent, accepted, admitted.
    referral = fiscal.call(
        "POST",
        "/referrals",
        201,
        json={
            "sending_institution_id": FGR.id,
            "receiving_institution_id": CASA_MERCEDES.id,
            "facility_id": facility["id"],
            "hold_id": hold["id"],
            "people": PEOPLE,
            "consent": {"given": True},
            "urgency": "urgent",
        },
        headers={"Idempotency-Key": f"topology-{hold['id']}"},
    )
    rid = referral["id"]
    # A repeated create with the same key is the same referral (no second one).
    again = fiscal.client.post(
        "/api/v1/referrals",
        json={
            "sending_institution_id": FGR.id,
            "receiving_institution_id": CASA_MERCEDES.id,
            "facility_id": facility["id"],
            "hold_id": hold["id"],
            "people": PEOPLE,
            "consent": {"given": True},
            "urgency": "urgent",
        },
        headers={"Idempotency-Key": f"topology-{hold['id']}"},
    )
    assert again.status_code == 200 and again.json()["id"] == rid, again.text
    # send: referral → capacity (facility and hold checks) with a service token.
    assert fiscal.call("POST", f"/referrals/{rid}/send", json={})["status"] == "sent"
    assert coordinadora.call("POST", f"/referrals/{rid}/accept", json={})["status"] == "accepted"
    admitted = coordinadora.call("POST", f"/referrals/{rid}/admit", json={})
    assert admitted["status"] == "admitted", admitted
    counts = admin.call("GET", f"/pools/{pool['id']}")
    assert (counts["held"], counts["occupied"], counts["available"]) == (0, 2, 3)
    assert fiscal.call("GET", f"/holds/{hold['id']}")["status"] == "consumed"

    discharged = coordinadora.call(
        "POST",
        f"/referrals/{rid}/discharge",
        json={"outcome": "reintegrated_origin", "reason": "reintegración familiar"},
    )
    assert discharged["status"] == "discharged", discharged
    counts = admin.call("GET", f"/pools/{pool['id']}")
    assert (counts["held"], counts["occupied"], counts["available"]) == (0, 0, 5)

    # The audit service heard all of it over NATS, from every service, and its chain holds.
    def trail(prefix: str) -> list[dict[str, Any]]:
        page = auditor.call("GET", "/audit/events", params={"type": prefix, "limit": 1000})
        return list(page["items"])

    lifecycle = [f"referral.referral.{a}" for a in ("created", "send", "accept", "admit")]
    lifecycle.append("referral.referral.discharge")

    def referral_events() -> list[str]:
        types = [
            e["type"] for e in trail("referral.referral.") if e["entry"]["aggregate_id"] == rid
        ]
        return types if len(types) >= len(lifecycle) else []

    # Once each, in the order they happened (the repeated create wrote nothing).
    assert wait_until(referral_events, attempts=150) == lifecycle
    hold_events = wait_until(
        lambda: [e for e in trail("capacity.") if hold["id"] in str(e["entry"])], attempts=150
    )
    assert any("hold" in e["type"] for e in hold_events), [e["type"] for e in hold_events]
    entries = trail("")
    positions = [e["position"] for e in entries]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    verdict = auditor.call("GET", "/audit/verify")
    assert verdict["ok"] is True, verdict
