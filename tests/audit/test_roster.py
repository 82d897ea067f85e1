"""SEGOB's roster: projected from capacity's events, flags computed, visits and actions."""

from __future__ import annotations

import contextlib
import zlib
from datetime import date, timedelta

from audit.database import db
from audit.main import consume
from audit.projection import rebuild
from audit.roster import roster
from services.clock import utcnow
from services.events import Event
from tests.conftest import running

AUDITOR = ("segob_auditor",)


def _facility(fid: str, *, kind: str = "refugio", status: str = "active", version: int = 1,
              registration: str = "not_submitted", state: str = "09") -> None:  # fmt: skip
    consume(
        Event(
            type="capacity.facility.created",
            aggregate_type="facility",
            aggregate_id=fid,
            aggregate_version=version,
            payload={
                "facility_id": fid,
                "name": f"Refugio {fid}",
                "facility_name": f"Refugio {fid}",
                "kind": kind,
                "status": status,
                "registration_status": registration,
                "operator_institution_id": "casa-mercedes",
                "state": state,
                "municipality": "Cuauhtémoc",
                # A careless producer: the trail strips it, the roster never shows it.
                "address": "Calle Secreta 123",
            },
        )
    )


def _pool(fid: str, pid: str, *, confirmed_hours_ago: float | None, version: int = 1) -> None:
    stamp = (
        None
        if confirmed_hours_ago is None
        else (utcnow() - timedelta(hours=confirmed_hours_ago)).isoformat()
    )
    consume(
        Event(
            type="capacity.pool.changed",
            aggregate_type="pool",
            aggregate_id=pid,
            aggregate_version=version,
            payload={
                "pool_id": pid,
                "facility_id": fid,
                "facility_name": f"Refugio {fid}",
                "total": 6,
                "occupied": 2,
                "last_confirmed_at": stamp,
            },
        )
    )


def _pdf_text(data: bytes) -> bytes:
    """Every page stream of a PDF, inflated (no PDF library needed)."""
    out = []
    for chunk in data.split(b"stream")[1:]:
        body = chunk.split(b"endstream")[0].strip(b"\r\n")
        with contextlib.suppress(zlib.error):
            out.append(zlib.decompress(body))
    return b"\n".join(out)


async def test_roster_flags_visits_actions_and_trail(audit_app, auth_headers):
    _facility("f-fresh")
    _pool("f-fresh", "p-1", confirmed_hours_ago=1)
    _facility("f-stale", kind="albergue", registration="registered")
    _pool("f-stale", "p-2", confirmed_hours_ago=72)
    _facility("f-closed", status="closed", kind="casa_de_medio_camino")
    headers = auth_headers(*AUDITOR, sub="auditor", institution_id="segob")
    async with running(audit_app) as client:
        r = await client.get("/api/v1/roster", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        flags = {i["facility_id"]: set(i["flags"]) for i in body["items"]}
        assert flags["f-fresh"] == {"never_visited", "unregistered_active"}
        assert flags["f-stale"] == {"never_visited", "capacity_not_confirmed"}
        assert flags["f-closed"] == {"never_visited", "closed"}
        assert body["flag_counts"]["never_visited"] == 3
        assert body["flag_counts"]["unregistered_active"] == 1
        assert "Calle Secreta" not in r.text and "address" not in r.text

        r = await client.get("/api/v1/roster?flag=closed", headers=headers)
        assert [i["facility_id"] for i in r.json()["items"]] == ["f-closed"]
        r = await client.get("/api/v1/roster?kind=albergue&registration_status=registered",
                             headers=headers)  # fmt: skip
        assert [i["facility_id"] for i in r.json()["items"]] == ["f-stale"]
        r = await client.get("/api/v1/roster?flag=nope", headers=headers)
        assert r.status_code == 422

        # Plan a visit, then record it done with a follow-up action already overdue.
        planned = await client.post(
            "/api/v1/visits",
            json={"facility_id": "f-fresh", "planned_for": str(date.today()),
                  "team": ["Lic. Ana Pérez", "Mtro. Luis Gómez"]},
            headers=headers,
        )  # fmt: skip
        assert planned.status_code == 201, planned.text
        vid = planned.json()["id"]
        assert planned.json()["status"] == "planned"
        bad = await client.post(f"/api/v1/visits/{vid}/done", json={"done_on": str(date.today())},
                                headers=headers)  # fmt: skip
        assert bad.status_code == 422
        done = await client.post(
            f"/api/v1/visits/{vid}/done",
            json={
                "done_on": str(date.today()),
                "findings": "Extintores vencidos; expedientes completos.",
                "actions": [{"description": "Recargar extintores",
                             "due_on": str(date.today() - timedelta(days=1))}],
            },
            headers=headers,
        )  # fmt: skip
        assert done.status_code == 200, done.text
        (action,) = done.json()["actions"]
        assert action["overdue"] is True
        again = await client.post(f"/api/v1/visits/{vid}/done",
                                  json={"done_on": str(date.today()), "findings": "otra vez"},
                                  headers=headers)  # fmt: skip
        assert again.status_code == 409

        line = (await client.get("/api/v1/roster/f-fresh", headers=headers)).json()
        assert set(line["flags"]) == {"unregistered_active", "follow_up_overdue"}
        assert line["last_visit_on"] == str(date.today()) and line["overdue_actions"] == 1
        r = await client.post(f"/api/v1/actions/{action['id']}/complete",
                              json={"note": "Recargados"}, headers=headers)  # fmt: skip
        assert r.status_code == 200 and r.json()["completed_by"] == "auditor"
        line = (await client.get("/api/v1/roster/f-fresh", headers=headers)).json()
        assert set(line["flags"]) == {"unregistered_active"}

        # A visit recorded as done straight away; an unknown facility is refused.
        r = await client.post(
            "/api/v1/visits",
            json={"facility_id": "f-stale", "done_on": str(date.today() - timedelta(days=400)),
                  "team": ["Lic. Ana Pérez"], "findings": "Sin observaciones."},
            headers=headers,
        )  # fmt: skip
        assert r.status_code == 201
        line = (await client.get("/api/v1/roster/f-stale", headers=headers)).json()
        assert "visit_overdue" in line["flags"] and "never_visited" not in line["flags"]
        r = await client.post(
            "/api/v1/visits",
            json={"facility_id": "nope", "planned_for": "2030-01-01", "team": ["Ana"]},
            headers=headers,
        )
        assert r.status_code == 404 and r.json()["error"] == "facility_not_found"

        # Others may not record visits nor read the roster.
        for role in ("observer", "shelter_coordinator", "prosecutor"):
            r = await client.get("/api/v1/roster", headers=auth_headers(role))
            assert r.status_code == 403
            r = await client.post(
                "/api/v1/visits",
                json={"facility_id": "f-fresh", "planned_for": "2030-01-01", "team": ["Ana"]},
                headers=auth_headers(role),
            )
            assert r.status_code == 403

        pdf = await client.get("/api/v1/roster?format=pdf", headers=headers)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        text = _pdf_text(pdf.content)
        assert b"Refugio f-fresh" in text and b"Nunca visitada" in text
        assert b"Calle Secreta" not in pdf.content

        events = (await client.get("/api/v1/audit/events?type=audit.", headers=headers)).json()
        types = [e["type"] for e in events["items"]]
        assert types[:4] == [
            "audit.visit.planned",
            "audit.visit.done",
            "audit.action.added",
            "audit.action.completed",
        ]
        assert "audit.export.made" in types
        verified = (await client.get("/api/v1/audit/verify", headers=headers)).json()
        assert verified["ok"] is True, verified


def test_roster_rebuilds_from_the_trail(audit_db):
    _facility("f-1", version=1)
    _pool("f-1", "p-1", confirmed_hours_ago=2)
    consume(
        Event(
            type="capacity.facility.registration_reviewed",
            aggregate_type="facility",
            aggregate_id="f-1",
            aggregate_version=2,
            payload={"facility_id": "f-1", "registration_status": "registered", "status": "active"},
        )
    )
    with db.unit_of_work(write=True) as session:
        before = roster(session)
        assert before[0]["registration_status"] == "registered"
        assert rebuild(session) == 1
        after = roster(session)
    assert before == after


def test_bulk_roster_import_lands_on_the_roster(audit_db):
    """A national seed imports facilities in one trail entry per batch: each facility and
    pool of it is on SEGOB's roster, exactly as if it had been created one by one."""
    facilities = [
        {"facility_id": f"imp-{n}", "name": f"Albergue {n}", "kind": "albergue",
         "status": "active", "operator_institution_id": "dif-09", "state": "09",
         "municipality": "Coyoacán"}
        for n in range(3)
    ]  # fmt: skip
    pools = [
        {"pool_id": f"q-{n}", "facility_id": f"imp-{n}", "version": 2, "total": 5 + n,
         "occupied": n, "last_confirmed_at": utcnow().isoformat()}
        for n in range(3)
    ]  # fmt: skip
    consume(
        Event(
            type="capacity.roster.imported",
            aggregate_type="roster",
            aggregate_id="imp-0",
            payload={"facilities": facilities, "pools": pools},
        )
    )
    with db.unit_of_work(write=True) as session:
        lines = {line["facility_id"]: line for line in roster(session)}
        assert set(lines) == {"imp-0", "imp-1", "imp-2"}
        assert lines["imp-2"]["name"] == "Albergue 2"
        assert lines["imp-2"]["kind"] == "albergue"
        assert "unregistered_active" in lines["imp-2"]["flags"]
        assert rebuild(session) == 3
        assert {line["facility_id"] for line in roster(session)} == set(lines)


def test_a_bulk_import_is_projected_in_a_few_statements(audit_db):
    """The audit trail keeps up with a national load: a batch of 50 facilities and 500 pools
    (some already on the roster) is folded with set-based reads, not a query per item."""
    from sqlalchemy import event

    def batch(first: int, count: int) -> dict:
        facilities = [
            {"facility_id": f"bulk-{n}", "name": f"Casa {n}", "kind": "refugio",
             "status": "active", "operator_institution_id": "dif-09", "state": "09",
             "municipality": "Tlalpan"}
            for n in range(first, first + count)
        ]  # fmt: skip
        pools = [
            {"pool_id": f"bp-{n}-{k}", "facility_id": f"bulk-{n}", "version": 1, "total": 4,
             "occupied": 1, "last_confirmed_at": utcnow().isoformat()}
            for n in range(first, first + count)
            for k in range(10)
        ]  # fmt: skip
        return {"facilities": facilities, "pools": pools}

    def imported(payload: dict) -> Event:
        return Event(
            type="capacity.roster.imported",
            aggregate_type="roster",
            aggregate_id=payload["facilities"][0]["facility_id"],
            payload=payload,
        )

    consume(imported(batch(0, 5)))
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        consume(imported(batch(0, 50)))  # five already on the roster, 45 new
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    reads = [s for s in statements if "FROM roster_" in s]
    assert len(reads) <= 4, reads
    with db.unit_of_work(write=False) as session:
        lines = {line["facility_id"]: line for line in roster(session)}
    assert len(lines) == 50 and lines["bulk-49"]["beds"] == 40
    assert lines["bulk-3"]["occupied"] == 10


async def test_roster_pages_walk_every_facility_once_in_order(audit_app, auth_headers):
    # 9 facilities over 3 states, three of them closed; names out of id order
    for n, state in enumerate(("15", "09", "14", "09", "15", "14", "09", "15", "14")):
        _facility(f"f-{8 - n}", state=state, status="closed" if n % 3 == 0 else "active")
        _pool(f"f-{8 - n}", f"p-{n}", confirmed_hours_ago=1)
    headers = auth_headers(*AUDITOR, sub="auditor", institution_id="segob")

    async def walk(client, query: str, limit: int) -> tuple[list[str], list[dict]]:
        seen: list[str] = []
        bodies: list[dict] = []
        cursor = None
        while True:
            url = f"/api/v1/roster?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
            r = await client.get(url, headers=headers)
            assert r.status_code == 200, r.text
            bodies.append(r.json())
            seen += [i["facility_id"] for i in r.json()["items"]]
            assert len(r.json()["items"]) <= limit
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return seen, bodies
            assert len(bodies) < 20, "the cursor must move on"

    async with running(audit_app) as client:
        full = (await client.get("/api/v1/roster", headers=headers)).json()
        order = [i["facility_id"] for i in full["items"]]
        assert len(order) == 9 and full["next_cursor"] is None
        for limit in (1, 2, 4, 9, 10):
            seen, bodies = await walk(client, "", limit)
            assert seen == order, limit  # every facility once, in the roster's order
            assert all(b["total"] == 9 for b in bodies)
            assert len(bodies) == -(-9 // limit)  # no empty page after the last
        closed = [i["facility_id"] for i in full["items"] if "closed" in i["flags"]]
        assert len(closed) == 3
        seen, bodies = await walk(client, "&flag=closed", 2)
        assert seen == closed and bodies[0]["total"] is None
        seen, bodies = await walk(client, "&state=09", 2)
        assert seen == [f for f in order if f in {"f-7", "f-5", "f-2"}]
        assert bodies[0]["total"] == 3

        # a facility added behind the cursor is not seen twice, one ahead is seen
        first = (await client.get("/api/v1/roster?limit=4", headers=headers)).json()
        _facility("f-00", state="01")  # sorts first: already behind the cursor
        _facility("f-zz", state="32")  # sorts last
        rest, _ = await walk(client, f"&cursor={first['next_cursor']}", 100)
        assert [i["facility_id"] for i in first["items"]] + rest == order[:4] + order[4:] + ["f-zz"]

        for bad in ("nope", "W10", "WyIwOSIsMV0", "x" * 700):  # junk, [], ["09",1]
            r = await client.get(f"/api/v1/roster?limit=2&cursor={bad}", headers=headers)
            assert r.status_code == 422, bad
            assert set(r.json()) >= {"error", "detail"}


async def test_a_roster_cursor_of_another_shape_is_a_422(audit_app, auth_headers):
    _facility("f-1")
    headers = auth_headers(*AUDITOR, sub="auditor", institution_id="segob")
    async with running(audit_app) as client:
        for bad in ("WyIwOSIsMSwieCJd",):  # ["09",1,"x"]: a number where a name goes
            r = await client.get(f"/api/v1/roster?limit=2&cursor={bad}", headers=headers)
            assert r.status_code == 422, bad
            assert r.json()["error"] == "invalid_cursor"
