"""The roster's kept columns (ADR 0027) give the same lines as computing every flag from the
facility's pools, visits, actions and stays: after each kind of change, and as time passes.

``reference`` is the roster's former computation on read, kept here as the oracle.
"""

from __future__ import annotations

import itertools
import os
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from audit import flows
from audit.database import db
from audit.main import consume
from audit.models import FollowUpAction, RosterFacility, RosterPool, RosterStay, Visit
from audit.projection import rebuild
from audit.roster import FLAGS, STAY_WARNING_DAYS, Policy, count_flags, roster, roster_page
from services.clock import as_utc, utcnow
from services.events import Event
from services.tokens import Principal

AUDITOR = Principal(sub="auditor", roles=frozenset({"segob_auditor"}), institution_id="segob")
# How many change sequences the property test tries (``make resilience`` may ask for more).
EXAMPLES = int(os.environ.get("CANALIZA_INVARIANT_EXAMPLES", "12"))
POLICY = Policy(visit_interval=timedelta(days=365), stale_after=timedelta(hours=24))


def reference(session: Any, *, now: datetime, policy: Policy) -> dict[str, dict[str, Any]]:
    """Every roster line computed on read from the facility's related rows (the oracle)."""

    def by_facility(model: Any) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for row in session.execute(select(model)).scalars():
            out.setdefault(row.facility_id, []).append(row)
        return out

    pools, visits, actions = (
        by_facility(RosterPool),
        by_facility(Visit),
        by_facility(FollowUpAction),
    )
    stays = by_facility(RosterStay)
    today = now.date()
    lines = {}
    for fac in session.execute(select(RosterFacility)).scalars():
        fid = fac.facility_id
        done = sorted(v.done_on for v in visits.get(fid, []) if v.status == "done" and v.done_on)
        planned = sorted(
            v.planned_for for v in visits.get(fid, []) if v.status == "planned" and v.planned_for
        )
        fpools = pools.get(fid, [])
        stamps = [as_utc(p.last_confirmed_at) if p.last_confirmed_at else None for p in fpools]
        opened = [a for a in actions.get(fid, []) if a.completed_at is None]
        near = over = 0
        for stay in stays.get(fid, []):
            if stay.open and fac.max_stay_days is not None:
                left = (
                    fac.max_stay_days + stay.extended_days - (now - as_utc(stay.admitted_at)).days
                )
                over += left < 0
                near += 0 <= left <= STAY_WARNING_DAYS
        flags = []
        if not done:
            flags.append("never_visited")
        since = done[-1] if done else as_utc(fac.first_seen_at).date()
        if fac.status != "closed" and today - since > policy.visit_interval:
            flags.append("visit_overdue")
        if fac.status == "active" and (
            not stamps or any(s is None or now - s > policy.stale_after for s in stamps)
        ):
            flags.append("capacity_not_confirmed")
        if fac.status == "closed":
            flags.append("closed")
        if fac.status == "active" and fac.registration_status != "registered":
            flags.append("unregistered_active")
        if any(a.due_on < today for a in opened):
            flags.append("follow_up_overdue")
        if near:
            flags.append("stay_limit_near")
        if over:
            flags.append("stay_over_limit")
        if fac.registration_status == "registered" and fac.registration_pending:
            flags.append("registered_with_observations")
            if fac.registration_due_on is not None and fac.registration_due_on < today:
                flags.append("observations_overdue")
        confirmed = min(stamps) if stamps and None not in stamps else None  # type: ignore[type-var]
        lines[fid] = {
            "beds": sum(p.total for p in fpools),
            "occupied": sum(p.occupied for p in fpools),
            "capacity_confirmed_at": confirmed,
            "last_visit_on": done[-1] if done else None,
            "visits_done": len(done),
            "next_visit_planned_for": planned[0] if planned else None,
            "open_actions": len(opened),
            "overdue_actions": sum(1 for a in opened if a.due_on < today),
            "stays_near_limit": near,
            "stays_over_limit": over,
            "flags": flags,
        }
    return lines


def kept(session: Any, *, now: datetime, policy: Policy) -> dict[str, dict[str, Any]]:
    keys = next(iter(reference(session, now=now, policy=policy).values()), {}).keys()
    return {
        line["facility_id"]: {k: line[k] for k in keys}
        for line in roster(session, now=now, policy=policy)
    }


# Moments around now, and either side of the boundaries the examples place flags at.
MOMENTS = [timedelta(0), timedelta(hours=12), timedelta(hours=30), timedelta(days=1),
           timedelta(days=15), timedelta(days=16), timedelta(days=45), timedelta(days=400)]  # fmt: skip
FLAGS_CYCLE = dict(zip(MOMENTS, ["stay_limit_near", "capacity_not_confirmed", "stay_over_limit",
                                 "follow_up_overdue", "observations_overdue", "visit_overdue",
                                 "registered_with_observations", "never_visited"], strict=True))  # fmt: skip


def assert_same(now: datetime | None = None) -> None:
    now = now or utcnow()
    with db.unit_of_work(write=False) as session:
        for moment in MOMENTS:
            at = now + moment
            expected = reference(session, now=at, policy=POLICY)
            assert kept(session, now=at, policy=POLICY) == expected, moment
            counts = count_flags(session, now=at, policy=POLICY)
            assert counts == {f: sum(f in e["flags"] for e in expected.values()) for f in FLAGS}
            flag = FLAGS_CYCLE[moment]  # each moment filters by another flag, in SQL
            page, _ = roster_page(session, limit=500, flag=flag, now=at, policy=POLICY)
            assert {e["facility_id"] for e in page} == {
                fid for fid, e in expected.items() if flag in e["flags"]
            }, (moment, flag)


_ids = itertools.count()


def _event(type_: str, aggregate_id: str, payload: dict[str, Any], *, version: int = 1,
           days_ago: float = 0) -> None:  # fmt: skip
    consume(
        Event(
            type=type_,
            aggregate_type=type_.split(".")[1],
            aggregate_id=aggregate_id,
            aggregate_version=version,
            occurred_at=utcnow() - timedelta(days=days_ago),
            payload=payload,
        )
    )


def _facility(fid: str, version: int, *, days_ago: float, **payload: Any) -> None:
    body = {"facility_id": fid, "name": f"Casa {fid}", "kind": "refugio", "state": "09",
            "municipality": "Tlalpan", "operator_institution_id": "ngo", **payload}  # fmt: skip
    _event("capacity.facility.updated", fid, body, version=version, days_ago=days_ago)


STATUSES = st.sampled_from(["active", "closed", "suspended", "registered"])
REGISTRATIONS = st.sampled_from(["not_submitted", "submitted", "returned", "registered"])
DAYS = st.integers(min_value=-30, max_value=500)
STEPS = st.one_of(
    st.tuples(
        st.just("facility"),
        STATUSES,
        REGISTRATIONS,
        st.none() | st.integers(min_value=0, max_value=90),
    ),
    st.tuples(st.just("review"), st.lists(st.sampled_from(["agua", "luz", "extintor"])), DAYS),
    st.tuples(st.just("pool"), st.integers(0, 2), st.none() | st.integers(0, 60)),
    st.tuples(st.just("admit"), st.integers(0, 3), st.integers(0, 150)),
    st.tuples(st.just("extend"), st.integers(0, 3), st.integers(1, 40)),
    st.tuples(st.just("discharge"), st.integers(0, 3)),
    st.tuples(st.just("visit"), st.booleans(), DAYS),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("action"), DAYS),
    st.tuples(st.just("complete")),
)


def _apply(fid: str, step: tuple[Any, ...], state: dict[str, Any]) -> None:
    """One change of one kind, through the path production takes for it."""
    kind, *args = step
    state["version"] += 1
    today = utcnow().date()
    if kind == "facility":
        status, registration, max_days = args
        _facility(fid, state["version"], days_ago=0, status=status,
                  registration_status=registration, max_stay_days=max_days)  # fmt: skip
    elif kind == "review":
        pending, due_in = args
        _event("capacity.facility.registration_reviewed", fid,
               {"facility_id": fid, "registration_status": "registered", "pending": pending,
                "due_on": (today + timedelta(days=due_in - 200)).isoformat()},
               version=state["version"])  # fmt: skip
    elif kind == "pool":
        n, hours = args
        stamp = None if hours is None else (utcnow() - timedelta(hours=hours)).isoformat()
        _event("capacity.pool.changed", f"{fid}-p{n}",
               {"pool_id": f"{fid}-p{n}", "facility_id": fid, "total": 4 + n, "occupied": n,
                "last_confirmed_at": stamp}, version=state["version"])  # fmt: skip
    elif kind in ("admit", "extend", "discharge"):
        rid = f"{fid}-r{args[0]}"
        step_type = {"admit": "referral.referral.admit", "extend": "referral.stay.extended",
                     "discharge": "referral.referral.discharge"}[kind]  # fmt: skip
        days = args[1] if kind != "discharge" else 0
        payload = {"referral_id": rid, "facility_id": fid, "days": days}
        _event(step_type, rid, payload, days_ago=days if kind == "admit" else 0)
    elif kind == "visit":
        done, days = args
        _visit(fid, state, done=done, when=today - timedelta(days=days))
    elif kind == "cancel":
        if not state["planned"]:
            _visit(fid, state, done=False, when=today)
        flows.cancel_visit(AUDITOR, visit_id=state["planned"].pop(), reason="lluvia")
    elif kind == "action":
        _action(fid, state, due=today + timedelta(days=args[0] - 200))
    elif kind == "complete":
        if not state["actions"]:
            _action(fid, state, due=today - timedelta(days=3))
        flows.complete_action(AUDITOR, action_id=state["actions"].pop(0), note=None)


def _visit(fid: str, state: dict[str, Any], *, done: bool, when: date) -> None:
    visit = flows.create_visit(AUDITOR, facility_id=fid, planned_for=None if done else when,
                               done_on=when if done else None, team=["A"], findings="ok",
                               actions=[])  # fmt: skip
    state["done" if done else "planned"].append(visit["id"])


def _action(fid: str, state: dict[str, Any], *, due: date) -> None:
    if not state["done"]:  # an action comes from a visit done (a year ago: it stays overdue)
        _visit(fid, state, done=True, when=utcnow().date() - timedelta(days=400))
    action = flows.add_action(AUDITOR, visit_id=state["done"][-1], description="x", due_on=due)
    state["actions"].append(action["id"])


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first_seen=st.integers(min_value=0, max_value=800),
    status=STATUSES,
    steps=st.lists(STEPS, max_size=12),
)
def test_kept_flags_equal_the_computed_ones_after_every_change(audit_db, first_seen, status,
                                                                steps):  # fmt: skip
    fid = f"prop-{next(_ids)}"
    state: dict[str, Any] = {"version": 1, "planned": [], "done": [], "actions": []}
    _facility(fid, 1, days_ago=first_seen, status=status, registration_status="not_submitted")
    assert_same()
    for step in steps:
        _apply(fid, step, state)
        assert_same()
    with db.unit_of_work() as session:  # a rebuild from the trail keeps them too
        rebuild(session)
    assert_same()


def test_time_based_flags_turn_on_as_time_passes_without_a_write(audit_db):
    """Flags that fall due are right the next day with no event in between."""
    _facility("t-1", 1, days_ago=0, status="active", registration_status="registered",
              max_stay_days=30)  # fmt: skip
    _event("capacity.pool.changed", "t-1-p", {"pool_id": "t-1-p", "facility_id": "t-1",
           "total": 4, "occupied": 1, "last_confirmed_at": utcnow().isoformat()})  # fmt: skip
    _event("referral.referral.admit", "t-r", {"referral_id": "t-r", "facility_id": "t-1"})
    today = utcnow().date()
    visit = flows.create_visit(AUDITOR, facility_id="t-1", planned_for=None, done_on=today,
                               team=["A"], findings="ok", actions=[("x", today)])  # fmt: skip
    assert visit["status"] == "done"
    now = utcnow()
    cases: list[tuple[timedelta, set[str]]] = [
        (timedelta(0), set()),
        (timedelta(days=1), {"follow_up_overdue", "capacity_not_confirmed"}),
        (timedelta(days=17), {"follow_up_overdue", "capacity_not_confirmed", "stay_limit_near"}),
        (
            timedelta(days=31, hours=1),
            {"follow_up_overdue", "capacity_not_confirmed", "stay_over_limit"},
        ),
        (
            timedelta(days=367),
            {"follow_up_overdue", "capacity_not_confirmed", "stay_over_limit", "visit_overdue"},
        ),
    ]
    with db.unit_of_work(write=False) as session:
        for later, expected in cases:
            lines = roster(session, now=now + later, policy=POLICY)
            assert set(lines[0]["flags"]) == expected, later
    assert_same(now)


def test_the_migration_fills_the_rows_already_there(tmp_path):
    """Rows written before the kept columns existed get them from the backfill."""
    from alembic import command
    from sqlalchemy import create_engine

    from services.db import alembic_config

    url = f"sqlite:///{tmp_path}/audit.db"
    cfg = alembic_config("audit", url, db.metadata)
    command.upgrade(cfg, "5c1d9e7a3b20")
    now = utcnow()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO roster_facility (facility_id, name, services, status, "
            "registration_status, registration_pending, registration_due_on, version, "
            "first_seen_at, max_stay_days) VALUES ('old', 'Casa vieja', '[]', 'active', "
            "'registered', '[\"agua\"]', '2020-01-01', 1, ?, 10)",
            ((now - timedelta(days=500)).strftime("%Y-%m-%d %H:%M:%S.%f"),),
        )
        conn.exec_driver_sql(
            "INSERT INTO roster_pool (pool_id, facility_id, total, occupied, version, "
            "last_confirmed_at) VALUES ('p', 'old', 5, 2, 1, ?)",
            ((now - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S.%f"),),
        )
        conn.exec_driver_sql(
            "INSERT INTO roster_stay (referral_id, facility_id, admitted_at, open, extended_days)"
            " VALUES ('r', 'old', ?, 1, 0)",
            ((now - timedelta(days=12)).strftime("%Y-%m-%d %H:%M:%S.%f"),),
        )
    engine.dispose()
    command.upgrade(cfg, "head")
    db.configure(url)
    try:
        with db.unit_of_work(write=False) as session:
            expected = reference(session, now=now, policy=POLICY)
            assert kept(session, now=now, policy=POLICY) == expected
            assert expected["old"]["flags"] == [
                "never_visited", "visit_overdue", "stay_over_limit",
                "registered_with_observations", "observations_overdue",
            ]  # fmt: skip
            assert expected["old"]["beds"] == 5
    finally:
        db.dispose()


@pytest.mark.parametrize("limit", [1, 3])
def test_a_paged_request_counts_every_flag_of_the_filtered_roster(audit_db, limit):
    for n, status in enumerate(["active", "closed", "active", "closed", "suspended"]):
        _facility(f"c-{n}", 1, days_ago=0, status=status, registration_status="not_submitted")
    with db.unit_of_work(write=False) as session:
        counts = count_flags(session, policy=POLICY)
        assert counts["closed"] == 2 and counts["never_visited"] == 5
        assert counts["unregistered_active"] == 2
        page, cursor = roster_page(session, limit=limit, flag="closed", policy=POLICY)
        assert [e["facility_id"] for e in page] == ["c-1", "c-3"][:limit]
        assert (cursor is None) == (limit >= 2)


@pytest.mark.postgres
def test_kept_flags_equal_the_computed_ones_on_postgresql(pg_url):
    """The same SQL (bound moments, row-value keyset, the stays' EXISTS) on PostgreSQL."""
    db.configure(pg_url)
    db.migrate()
    try:
        state: dict[str, Any] = {"version": 1, "planned": [], "done": [], "actions": []}
        _facility("pg-1", 1, days_ago=500, status="active", registration_status="registered")
        steps: list[tuple[Any, ...]] = [
            ("facility", "active", "registered", 30), ("pool", 0, 30), ("pool", 1, 2),
            ("admit", 0, 20), ("admit", 1, 40), ("extend", 1, 5), ("review", ["agua"], 150),
            ("visit", True, 10), ("action", 190), ("action", 260), ("complete",),
            ("visit", False, -3), ("cancel",), ("discharge", 0), ("facility", "closed",
            "registered", None),
        ]  # fmt: skip
        for step in steps:
            _apply("pg-1", step, state)
            assert_same()
        with db.unit_of_work() as session:
            rebuild(session)
        assert_same()
        with db.unit_of_work(write=False) as session:
            page, cursor = roster_page(session, limit=1, policy=POLICY)
            assert [e["facility_id"] for e in page] == ["pg-1"] and cursor is None
    finally:
        db.dispose()
