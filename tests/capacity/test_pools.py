"""Pools, the occupancy ledger, If-Match, confirmation, and the events they emit."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from canaliza.demo import FGR
from capacity.database import db, outbox
from capacity.ledger import ledger_counts, replay_ledger
from capacity.lookups import pool_snapshot_rows
from capacity.models import LedgerEntry, Pool

SNAPSHOT_KEYS = {
    "pool_id", "facility_id", "facility_name", "facility_kind", "facility_status",
    "operator_institution_id", "state", "municipality", "version", "total", "occupied", "held",
    "out_of_service", "available", "sexes", "min_age", "max_age", "accepts_children",
    "max_child_age", "max_children", "accepts_witnesses", "accepts_indirect_victims",
    "wheelchair_accessible", "migrants", "lgbtttiq", "interpreter_languages",
    "last_confirmed_at",
}  # fmt: skip


def _events(kind: str | None = None) -> list[dict]:
    with db.engine.connect() as conn:
        rows = conn.execute(select(outbox.table.c.body).order_by(outbox.table.c.seq)).all()
    bodies = [r.body for r in rows]
    return [b for b in bodies if kind is None or b["type"] == kind]


async def test_pool_counts_and_ledger_replay(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=6)
    assert (pool["total"], pool["available"], pool["version"]) == (6, 6, 1)
    url = f"/api/v1/pools/{pool['id']}/ledger"
    steps = [
        ({"kind": "admit", "beds": 2, "reason": "ingreso de dos mujeres"}, 4),
        ({"kind": "out_of_service", "beds": 1, "reason": "cama rota"}, 3),
        ({"kind": "adjust", "beds": -1, "reason": "se retiró una cama"}, 2),
        ({"kind": "discharge", "beds": 1, "reason": "egreso"}, 3),
        ({"kind": "back_in_service", "beds": 1, "reason": "reparada"}, 4),
        ({"kind": "adjust", "beds": 3, "reason": "ampliación"}, 7),
    ]
    for body, available in steps:
        r = await cap.client.post(url, json=body, headers=cap.coordinator())
        assert r.status_code == 201, r.text
        assert r.json()["pool"]["available"] == available
    r = await cap.client.get(url, headers=cap.coordinator())
    kinds = [e["kind"] for e in r.json()["items"]]
    assert kinds == ["adjust", "admit", "out_of_service", "adjust", "discharge",
                     "back_in_service", "adjust"]  # fmt: skip
    with Session(db.engine) as s:
        row = s.get(Pool, pool["id"])
        assert row is not None
        replayed = ledger_counts(s, pool_id=pool["id"])
        assert (replayed.total, replayed.occupied, replayed.held, replayed.out_of_service) == (
            row.total, row.occupied, row.held, row.out_of_service,
        )  # fmt: skip
        assert replayed.available == 7
    assert replay_ledger([("adjust", 5), ("admit", 2), ("hold", 1), ("release", 1)]).available == 3


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"kind": "admit", "beds": 5, "reason": "demasiadas"}, 409, "disponible"),
        ({"kind": "discharge", "beds": 1, "reason": "nadie"}, 409, "ocupada"),
        ({"kind": "adjust", "beds": -5, "reason": "bajar"}, 409, "total no puede"),
        ({"kind": "admit", "beds": -1, "reason": "negativo"}, 422, "entero positivo"),
        ({"kind": "admit", "beds": 1.5, "reason": "fracción"}, 422, "número entero"),
        ({"kind": "admit", "beds": "dos", "reason": "texto"}, 422, "número entero"),
        ({"kind": "hold", "beds": 1, "reason": "a mano"}, 422, "movimiento admitido"),
        ({"kind": "adjust", "beds": 0, "reason": "nada"}, 422, "al menos una cama"),
        ({"kind": "admit", "beds": 1, "reason": "x" * 501}, 422, "500 caracteres"),
        ({"kind": "admit", "beds": 1, "reason": "ok", "who": "x"}, 422, "campo desconocido"),
    ],
)
async def test_bad_ledger_entries_change_nothing(cap, body, status, fragment):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=4)
    r = await cap.client.post(
        f"/api/v1/pools/{pool['id']}/ledger", json=body, headers=cap.coordinator()
    )
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]
    after = (await cap.client.get(f"/api/v1/pools/{pool['id']}", headers=cap.admin())).json()
    assert after["version"] == 1 and after["available"] == 4
    with Session(db.engine) as s:
        assert len(s.exec(select(LedgerEntry)).all()) == 1


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"min_age": 30, "max_age": 20}, "edad mínima (30)"),
        ({"total": -1}, "mayor o igual a 0"),
        ({"sexes": ["W"]}, "sexo admitido"),
        ({"sexes": []}, "al menos"),
        ({"max_child_age": 18}, "menor o igual a 17"),
        ({"name": "n" * 121}, "120 caracteres"),
        ({"occupied": 3}, "campo desconocido"),
    ],
)
async def test_bad_pool_input_is_refused(cap, change, fragment):
    fac = await cap.facility()
    body = {"name": "P", "sexes": ["F"], "total": 2, **change}
    r = await cap.client.post(
        f"/api/v1/facilities/{fac['id']}/pools", json=body, headers=cap.admin()
    )
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]
    assert (
        await cap.client.get(f"/api/v1/facilities/{fac['id']}/pools", headers=cap.admin())
    ).json() == []


async def test_database_refuses_counts_beyond_total(cap):
    """The CHECK constraints hold even if code were wrong."""
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=2)
    with db.new_session(write=True) as s, pytest.raises(IntegrityError):
        s.execute(text("UPDATE pool SET occupied = 3 WHERE id = :id"), {"id": pool["id"]})
        s.commit()
    with db.new_session(write=True) as s, pytest.raises(IntegrityError):
        s.execute(text("UPDATE pool SET held = -1 WHERE id = :id"), {"id": pool["id"]})
        s.commit()


async def test_if_match_refuses_stale_edits(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"])
    url = f"/api/v1/pools/{pool['id']}"
    r = await cap.client.get(url, headers=cap.coordinator())
    assert r.headers["etag"] == '"1"'
    r = await cap.client.patch(
        url, json={"wheelchair_accessible": True}, headers={**cap.coordinator(), "If-Match": "1"}
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    r = await cap.client.patch(
        url, json={"max_children": 2}, headers={**cap.coordinator(), "If-Match": "1"}
    )
    assert r.status_code == 412 and r.json()["current_version"] == 2
    r = await cap.client.patch(
        url, json={"total": 8}, headers={**cap.coordinator(), "If-Match": '"2"'}
    )
    assert r.status_code == 200 and r.json()["total"] == 8 and r.json()["version"] == 3
    # A malformed If-Match is the platform's one error code (the kernel's dependency).
    r = await cap.client.patch(
        url, json={"total": 9}, headers={**cap.coordinator(), "If-Match": "tres"}
    )
    assert r.status_code == 422 and r.json()["error"] == "bad_if_match"
    r = await cap.client.patch(url, json={"total": 9}, headers=cap.coordinator(FGR.id))
    assert r.status_code == 403


async def test_confirm_and_events_carry_the_snapshot(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"])
    r = await cap.client.post(f"/api/v1/pools/{pool['id']}/confirm", headers=cap.coordinator())
    assert r.status_code == 200 and r.json()["version"] == 2
    changed = _events("capacity.pool.changed")
    assert changed and all(set(e["payload"]) == SNAPSHOT_KEYS for e in changed)
    last = changed[-1]
    assert last["aggregate_id"] == pool["id"] and last["aggregate_version"] == 2
    assert "Calle Secreta" not in str(_events())
    await cap.client.patch(
        f"/api/v1/facilities/{fac['id']}",
        json={"status": "suspended", "reason": "revisión"},
        headers=cap.admin(),
    )
    last = _events("capacity.pool.changed")[-1]
    assert last["payload"]["facility_status"] == "suspended" and last["aggregate_version"] == 3
    assert [e["type"] for e in _events() if e["type"].startswith("capacity.facility")] == [
        "capacity.facility.created",
        "capacity.facility.status_changed",
        "capacity.facility.status_changed",
    ]
    with Session(db.engine) as s:
        assert pool_snapshot_rows(s) == []  # suspended: not offered
    await cap.client.patch(
        f"/api/v1/facilities/{fac['id']}",
        json={"status": "active", "reason": "revisión concluida"},
        headers=cap.admin(),
    )
    with Session(db.engine) as s:
        rows = pool_snapshot_rows(s, state="09")
        assert [r["pool_id"] for r in rows] == [pool["id"]]
        assert set(rows[0]) == SNAPSHOT_KEYS
        assert pool_snapshot_rows(s, state="14") == []
        assert len(pool_snapshot_rows(s, facility_id=fac["id"])) == 1


async def test_only_operator_staff_write_ledger(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"])
    body = {"kind": "admit", "beds": 1, "reason": "ingreso"}
    url = f"/api/v1/pools/{pool['id']}/ledger"
    for headers, status in [
        (cap.coordinator(FGR.id), 403),
        (cap.prosecutor(), 403),
        (cap.headers("segob_auditor"), 403),
        (cap.headers("observer"), 403),
        (cap.service(), 201),
        (cap.coordinator(), 201),
    ]:
        r = await cap.client.post(url, json=body, headers=headers)
        assert r.status_code == status, headers
    r = await cap.client.get(url, headers=cap.headers("segob_auditor"))
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    r = await cap.client.get(url, headers=cap.prosecutor())
    assert r.status_code == 403


async def test_every_pool_matches_its_ledger_and_a_tampered_one_is_found(cap):
    from capacity.ledger import ledger_mismatches

    fac = await cap.facility()
    a = await cap.pool(fac["id"], total=4)
    b = await cap.pool(fac["id"], name="B", total=3)
    await cap.client.post(
        f"/api/v1/pools/{a['id']}/ledger",
        json={"kind": "admit", "beds": 2, "reason": "ingreso"},
        headers=cap.coordinator(),
    )
    assert (await cap.hold([{"pool_id": b["id"], "beds": 2}])).status_code == 201
    with Session(db.engine) as s:
        assert ledger_mismatches(s) == []
    with db.new_session(write=True) as s:
        s.execute(text("UPDATE pool SET occupied = 1 WHERE id = :id"), {"id": a["id"]})
        s.commit()
    with Session(db.engine) as s:
        [m] = ledger_mismatches(s)
        assert m["pool_id"] == a["id"] and m["replayed"]["occupied"] == 2


async def test_patch_cannot_break_ages_or_shrink_below_what_is_used(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=3)
    url = f"/api/v1/pools/{pool['id']}"
    await cap.client.post(
        url + "/ledger",
        json={"kind": "admit", "beds": 2, "reason": "ingreso"},
        headers=cap.coordinator(),
    )
    r = await cap.client.patch(url, json={"min_age": 150}, headers=cap.coordinator())
    assert r.status_code == 422 and "130" in r.json()["detail"]
    r = await cap.client.patch(url, json={"max_age": 10}, headers=cap.coordinator())
    assert r.status_code == 422 and "edad mínima (18)" in r.json()["detail"]
    r = await cap.client.patch(url, json={"total": 1}, headers=cap.coordinator())
    assert r.status_code == 409 and r.json()["error"] == "counts_conflict"
    after = (await cap.client.get(url, headers=cap.coordinator())).json()
    assert (after["total"], after["occupied"], after["max_age"], after["version"]) == (3, 2, 120, 2)
