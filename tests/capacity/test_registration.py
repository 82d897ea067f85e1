"""SEGOB's registration of a facility: submit, review against the checklist, resubmit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from canaliza.demo import FGR, SEGOB
from capacity.database import db, outbox
from capacity.registration import CHECKLIST_CODES
from services.settings import get_settings

MOTHER = [{"sex": "F", "age": 30, "role": "victim"}]


def _answers(unmet: tuple[str, ...] = ()) -> list[dict[str, object]]:
    return [{"item": c, "met": c not in unmet} for c in CHECKLIST_CODES]


def _events(prefix: str) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(select(outbox.table.c.body).order_by(outbox.table.c.seq)).all()
    return [r.body for r in rows if r.body["type"].startswith(prefix)]


def _auditor(cap):
    return cap.headers("segob_auditor", institution_id=SEGOB.id, sub="auditor")


async def test_submit_return_resubmit_register(cap):
    fac = await cap.facility()
    fid = fac["id"]
    assert fac["registration_status"] == "not_submitted"
    c = cap.client

    # Only the operator's staff (or an admin) submit; SEGOB cannot review before that.
    r = await c.post(
        f"/api/v1/facilities/{fid}/registration/submit", json={}, headers=_auditor(cap)
    )
    assert r.status_code == 403
    other = cap.coordinator(institution_id=FGR.id)
    r = await c.post(f"/api/v1/facilities/{fid}/registration/submit", json={}, headers=other)
    assert r.status_code == 403 and r.json()["error"] == "forbidden_scope"
    review = {"outcome": "registered", "checklist": _answers()}
    r = await c.post(f"/api/v1/facilities/{fid}/registration/review", json=review,
                     headers=_auditor(cap))  # fmt: skip
    assert r.status_code == 409 and r.json()["error"] == "registration_conflict"

    r = await c.post(
        f"/api/v1/facilities/{fid}/registration/submit",
        json={"note": "Solicitamos el registro"},
        headers=cap.coordinator(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["registration_status"] == "submitted"
    assert len(r.json()["checklist"]) == len(CHECKLIST_CODES)

    # The coordinator may not review; an incomplete checklist is refused whole.
    r = await c.post(f"/api/v1/facilities/{fid}/registration/review", json=review,
                     headers=cap.coordinator())  # fmt: skip
    assert r.status_code == 403
    partial = {"outcome": "returned", "checklist": _answers()[:3], "observations": "Faltan"}
    r = await c.post(f"/api/v1/facilities/{fid}/registration/review", json=partial,
                     headers=_auditor(cap))  # fmt: skip
    assert r.status_code == 422 and r.json()["error"] == "checklist_incomplete"
    # Registered with an unmet item: refused; returned without observations: refused.
    bad = {"outcome": "registered", "checklist": _answers(("accessibility",))}
    r = await c.post(f"/api/v1/facilities/{fid}/registration/review", json=bad,
                     headers=_auditor(cap))  # fmt: skip
    assert r.status_code == 409 and r.json()["unmet"] == ["accessibility"]
    r = await c.post(
        f"/api/v1/facilities/{fid}/registration/review",
        json={"outcome": "returned", "checklist": _answers(("accessibility",))},
        headers=_auditor(cap),
    )
    assert r.status_code == 422

    r = await c.post(
        f"/api/v1/facilities/{fid}/registration/review",
        json={
            "outcome": "returned",
            "checklist": _answers(("accessibility",)),
            "observations": "Falta rampa de acceso en la planta baja.",
        },
        headers=_auditor(cap),
    )
    assert r.status_code == 200, r.text
    assert r.json()["registration_status"] == "returned"

    r = await c.post(f"/api/v1/facilities/{fid}/registration/submit",
                     json={"note": "Rampa instalada"}, headers=cap.coordinator())  # fmt: skip
    assert r.status_code == 200 and r.json()["registration_status"] == "submitted"
    r = await c.post(f"/api/v1/facilities/{fid}/registration/review", json=review,
                     headers=_auditor(cap))  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["registration_status"] == "registered"
    assert [(h["attempt"], h["action"]) for h in body["history"]] == [
        (1, "submitted"),
        (1, "returned"),
        (2, "submitted"),
        (2, "registered"),
    ]
    r = await c.get(f"/api/v1/facilities/{fid}/registration", headers=cap.prosecutor())
    assert r.status_code == 403
    r = await c.get(f"/api/v1/facilities/{fid}/registration", headers=cap.coordinator())
    assert r.status_code == 200 and r.json()["history"][1]["note"].startswith("Falta rampa")
    listed = await c.get("/api/v1/facilities?registration_status=registered", headers=_auditor(cap))
    assert [f["id"] for f in listed.json()["items"]] == [fid]
    listed = await c.get("/api/v1/facilities?registration_status=returned", headers=_auditor(cap))
    assert listed.json()["total"] == 0
    # The lifecycle status is untouched: registration is its own attribute.
    got = (await c.get(f"/api/v1/facilities/{fid}", headers=_auditor(cap))).json()
    assert got["status"] == "active" and got["registration_status"] == "registered"
    assert "address" not in got

    events = _events("capacity.facility.registration_")
    assert [e["payload"]["registration_status"] for e in events] == [
        "submitted",
        "returned",
        "submitted",
        "registered",
    ]
    assert events[1]["payload"]["unmet"] == ["accessibility"]
    assert all(e["payload"]["facility_name"] == fac["name"] for e in events)


async def test_unregistered_facilities_flagged_or_refused_by_setting(cap, monkeypatch):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"])
    found = await cap.search(MOTHER)
    (res,) = found["results"]
    assert res["unregistered"] is True
    assert res["facility"]["registration_status"] == "not_submitted"

    monkeypatch.setattr(get_settings(), "unregistered_may_receive_referrals", False)
    assert (await cap.search(MOTHER))["results"] == []
    r = await cap.hold([{"pool_id": pool["id"], "beds": 1}])
    assert r.status_code == 409 and r.json()["error"] == "facility_not_registered"

    c = cap.client
    await c.post(f"/api/v1/facilities/{fac['id']}/registration/submit", json={},
                 headers=cap.coordinator())  # fmt: skip
    r = await c.post(
        f"/api/v1/facilities/{fac['id']}/registration/review",
        json={"outcome": "registered", "checklist": _answers()},
        headers=_auditor(cap),
    )
    assert r.status_code == 200, r.text
    (res,) = (await cap.search(MOTHER))["results"]
    assert res["unregistered"] is False
    r = await cap.hold([{"pool_id": pool["id"], "beds": 1}])
    assert r.status_code == 201, r.text


async def test_closed_facility_cannot_submit(cap):
    fac = await cap.facility()
    await cap.client.patch(
        f"/api/v1/facilities/{fac['id']}",
        json={"status": "closed", "reason": "cierre definitivo"},
        headers=cap.admin(),
    )
    r = await cap.client.post(
        f"/api/v1/facilities/{fac['id']}/registration/submit", json={}, headers=cap.admin()
    )
    assert r.status_code == 409 and r.json()["error"] == "registration_conflict"


async def _submitted(cap) -> str:
    fac = await cap.facility()
    r = await cap.client.post(
        f"/api/v1/facilities/{fac['id']}/registration/submit", json={}, headers=cap.coordinator()
    )
    assert r.status_code == 200, r.text
    return str(fac["id"])


async def test_registered_with_observations_until_the_items_are_met(cap):
    """ADR 0021: SEGOB may register with observations and a deadline for the unmet items;
    the facility carries them until a later review finds them met."""
    fid = await _submitted(cap)
    c, auditor = cap.client, _auditor(cap)
    unmet = ("accessibility", "interpretation")
    body = {
        "outcome": "registered",
        "checklist": _answers(unmet),
        "observations": "Rampa de acceso e intérprete pendientes.",
        "due_on": "2099-06-30",
    }
    r = await c.post(f"/api/v1/facilities/{fid}/registration/review", json=body, headers=auditor)
    assert r.status_code == 200, r.text
    file = r.json()
    assert file["registration_status"] == "registered"
    assert file["registration_pending"] == ["interpretation", "accessibility"]
    assert file["registration_due_on"] == "2099-06-30"
    review = file["history"][-1]
    assert review["due_on"] == "2099-06-30"
    assert [i["item"] for i in review["checklist"] if not i["met"]] == list(unmet[::-1])
    facility = (await c.get(f"/api/v1/facilities/{fid}", headers=auditor)).json()
    assert facility["registration_pending"] == ["interpretation", "accessibility"]
    event = _events("capacity.facility.registration_reviewed")[-1]["payload"]
    assert event["pending"] == ["interpretation", "accessibility"]
    assert event["due_on"] == "2099-06-30"
    # A later review finds them met: no longer pending.
    met = {"outcome": "registered", "checklist": _answers()}
    r = await c.post(f"/api/v1/facilities/{fid}/registration/review", json=met, headers=auditor)
    assert r.status_code == 200, r.text
    assert r.json()["registration_pending"] == [] and r.json()["registration_due_on"] is None
    # Fully registered now: nothing left to review.
    r = await c.post(f"/api/v1/facilities/{fid}/registration/review", json=met, headers=auditor)
    assert r.status_code == 409


async def test_bad_registrations_with_observations_are_refused(cap):
    fid = await _submitted(cap)
    c, auditor = cap.client, _auditor(cap)
    url = f"/api/v1/facilities/{fid}/registration/review"
    unmet = _answers(("accessibility",))
    cases = [
        ({"outcome": "registered", "checklist": unmet, "due_on": "2099-01-01"}, "observations"),
        (
            {"outcome": "registered", "checklist": unmet, "observations": "Falta la rampa.",
             "due_on": "2000-01-01"},
            "due_on",
        ),
        (
            {"outcome": "returned", "checklist": unmet, "observations": "Falta la rampa.",
             "due_on": "2099-01-01"},
            "due_on",
        ),
    ]  # fmt: skip
    for body, field in cases:
        r = await c.post(url, json=body, headers=auditor)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["detail"], r.text
    file = (await c.get(f"/api/v1/facilities/{fid}/registration", headers=auditor)).json()
    assert file["registration_status"] == "submitted" and file["registration_pending"] == []
    assert [s["action"] for s in file["history"]] == ["submitted"]
