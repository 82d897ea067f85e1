"""Capacity's workflows: the steps of one request, each a function the router calls once.

A write handler opens the unit of work and hands its session here; the availability
search reads its in-memory model and, when nothing fits, records the unmet demand in a
short write of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from capacity import facilities, holds, operations, permissions, planner, registration
from capacity.database import db
from capacity.languages import fold, match_key
from capacity.lookups import (
    allocations_by_hold,
    facility_key,
    get_facility,
    get_hold,
    get_location,
    get_pool,
    hold_allocations,
    ledger_key,
    list_facilities,
    list_ledger,
    list_pools,
    locations_for,
    pool_key,
    status_history,
)
from capacity.models import Facility, Hold
from capacity.schemas import (
    ArrivalUpdate,
    FacilityCreate,
    FacilityPublic,
    FacilityUpdate,
    FacilityWithLocation,
    HoldCreate,
    HoldPublic,
    LedgerEntryPublic,
    Needs,
    OperationCreate,
    OperationPlanRequest,
    Person,
    PoolPublic,
    RegistrationReview,
    RegistrationSubmit,
    SearchRequest,
    facility_answer,
)
from capacity.search import (
    ANSWER_MEMO,
    NeedsQ,
    PersonQ,
    SearchOutcome,
    Snapshot,
    explain_unmet,
    read_model,
    run_search,
)
from capacity.unmet import people_summary, record_unmet
from services.clock import utcnow
from services.pages import no_offset_with, page_key, split_page
from services.settings import get_settings
from services.tokens import Principal

# --- facilities -----------------------------------------------------------------------


def _facility_answer(
    session: Session, principal: Principal, facility: Facility
) -> FacilityPublic | FacilityWithLocation:
    allowed = permissions.can_see_address(principal, facility.operator_institution_id)
    location = get_location(session, facility.id) if allowed else None
    return facility_answer(facility, location, with_location=allowed)


def roster_page(
    session: Session,
    principal: Principal,
    *,
    limit: int,
    offset: int,
    cursor: str | None = None,
    **filters: Any,
) -> tuple[dict[str, Any], str | None]:
    """A page of the roster (addresses only for those allowed to see them) and the cursor
    of the next page. ``offset`` (deprecated) still works, never with a ``cursor``."""
    no_offset_with(cursor, offset)
    found, total = list_facilities(
        session, limit=limit, offset=offset, after_key=page_key(cursor, str, str, str), **filters
    )
    rows, next_cursor = split_page(found, limit, facility_key)
    visible = {
        f.id for f in rows if permissions.can_see_address(principal, f.operator_institution_id)
    }
    locations = locations_for(session, [f.id for f in rows if f.id in visible])
    items = [facility_answer(f, locations.get(f.id), with_location=f.id in visible) for f in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}, next_cursor


def facility(
    session: Session, principal: Principal, facility_id: str
) -> FacilityPublic | FacilityWithLocation:
    return _facility_answer(session, principal, get_facility(session, facility_id))


def create_facility(
    session: Session, principal: Principal, data: FacilityCreate
) -> FacilityPublic | FacilityWithLocation:
    created = facilities.create_facility(session, principal=principal, data=data)
    return _facility_answer(session, principal, created)


def update_facility(
    session: Session, principal: Principal, facility_id: str, data: FacilityUpdate
) -> FacilityPublic | FacilityWithLocation:
    updated = facilities.update_facility(
        session, principal=principal, facility_id=facility_id, data=data
    )
    return _facility_answer(session, principal, updated)


def set_arrival(
    session: Session, principal: Principal, facility_id: str, data: ArrivalUpdate
) -> FacilityPublic | FacilityWithLocation:
    changed = facilities.set_arrival(
        session, principal=principal, facility_id=facility_id, data=data
    )
    return _facility_answer(session, principal, changed)


def facility_status_history(session: Session, facility_id: str) -> list[dict[str, Any]]:
    get_facility(session, facility_id)
    return [
        {"from_status": c.from_status, "to_status": c.to_status, "reason": c.reason, "at": c.at}
        for c in status_history(session, facility_id)
    ]


# --- registration on SEGOB's roster -----------------------------------------------------


def registration_file(session: Session, principal: Principal, facility_id: str) -> dict[str, Any]:
    found = get_facility(session, facility_id)
    permissions.ensure_read_registration(principal, found.operator_institution_id)
    return registration.view(session, found)


def submit_registration(
    session: Session, principal: Principal, facility_id: str, data: RegistrationSubmit
) -> dict[str, Any]:
    found = get_facility(session, facility_id)
    registration.submit(session, principal=principal, facility=found, data=data)
    return registration.view(session, found)


def review_registration(
    session: Session, principal: Principal, facility_id: str, data: RegistrationReview
) -> dict[str, Any]:
    found = get_facility(session, facility_id)
    registration.review(session, principal=principal, facility=found, data=data)
    return registration.view(session, found)


# --- pools and the ledger -------------------------------------------------------------


def pools_of(
    session: Session, facility_id: str, *, limit: int, cursor: str | None
) -> tuple[list[PoolPublic], str | None]:
    """A page of a facility's pools, by name, and the cursor of the next page."""
    get_facility(session, facility_id)
    found = list_pools(
        session, facility_id=facility_id, limit=limit, after_key=page_key(cursor, str, str)
    )
    page, next_cursor = split_page(found, limit, pool_key)
    return [PoolPublic.of(p) for p in page], next_cursor


def ledger_page(
    session: Session,
    principal: Principal,
    pool_id: str,
    *,
    limit: int,
    offset: int,
    cursor: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """A page of a pool's ledger, oldest first, and the cursor of the next page."""
    no_offset_with(cursor, offset)
    after_key = page_key(cursor, int)
    pool = get_pool(session, pool_id)
    permissions.ensure_read_ledger(
        principal, get_facility(session, pool.facility_id).operator_institution_id
    )
    found = list_ledger(session, pool_id=pool_id, limit=limit, offset=offset, after_key=after_key)
    entries, next_cursor = split_page(found, limit, ledger_key)
    return {
        "items": [LedgerEntryPublic.model_validate(e, from_attributes=True) for e in entries],
        "pool": PoolPublic.of(pool),
    }, next_cursor


# --- search ---------------------------------------------------------------------------

FOREVER = datetime.max.replace(tzinfo=UTC)


def people_query(people: list[Person]) -> list[PersonQ]:
    """The request's people as the matcher sees them (languages by catalogue key)."""
    return [
        PersonQ(i, p.sex, p.age, p.role, frozenset(match_key(x) for x in p.languages))
        for i, p in enumerate(people)
    ]


def needs_query(needs: Needs, people: list[PersonQ]) -> NeedsQ:
    """The request's needs as the matcher sees them; ``has_minor`` from the people."""
    return NeedsQ(
        wheelchair=needs.wheelchair,
        interpreter_language=match_key(needs.interpreter_language)
        if needs.interpreter_language
        else None,
        security=needs.security,
        migrant=needs.migrant,
        lgbtttiq=needs.lgbtttiq,
        specialised=needs.specialised,
        languages=frozenset(match_key(x) for x in needs.languages),
        disabilities=frozenset(needs.disabilities),
        pregnancy=needs.pregnancy,
        addiction_care=needs.addiction_care,
        exploitation=needs.exploitation,
        exclude_states=frozenset(needs.exclude_states),
        exclude_municipalities=frozenset(fold(m) for m in needs.exclude_municipalities),
        stage=needs.stage,
        has_minor=any(p.is_minor for p in people),
    )


_catching_up: asyncio.Future[None] | None = None


async def current_snapshot() -> Snapshot:
    """The search snapshot, with every change announced before this call in it.

    Usually that is the snapshot as it is (the refresher caught up already). Otherwise the
    searches arriving meanwhile share one catch-up in a worker thread instead of each
    taking a thread to wait on the model's lock (which would starve the writers' pool)."""
    global _catching_up
    wanted = read_model.changes_announced
    while read_model.changes_reflected < wanted or read_model.snapshot.revision < 0:
        task = _catching_up
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = _catching_up = asyncio.ensure_future(
                run_in_threadpool(read_model.catch_up, db.engine.connect)
            )
        await asyncio.shield(task)
    return read_model.snapshot


async def search_answer(principal: Principal, body: SearchRequest) -> bytes:
    """Facilities that can take the whole group together now, best first; or why not (the
    unmet demand is recorded, by category, in a short write of its own), as JSON.

    Runs on the event loop over the in-memory snapshot: no thread hop, no lock, no database
    round trip. The database is read (in a worker thread) only when a change was announced
    and the background refresher has not caught up yet; the diagnosis of an unmet search
    (a scan of every pool) and its write run in a worker thread too. An answer is encoded
    once per snapshot and query, and reused until a result in it would turn stale."""
    settings = get_settings()
    people = people_query(body.people)
    needs = needs_query(body.needs, people)
    snapshot = await current_snapshot()
    registered_only = not settings.unregistered_may_receive_referrals
    key = (
        tuple((p.sex, p.age, p.role, p.languages) for p in people),
        needs,
        body.state,
        body.limit,
        registered_only,
        settings.stale_after_hours,
    )
    now = utcnow()
    known = snapshot.answers.get(key)
    if known is not None and known[0] <= now < known[1]:
        with contextlib.suppress(KeyError):  # another search may have evicted it just now
            snapshot.answers.move_to_end(key)
        return known[2]
    outcome = run_search(
        snapshot,
        people=people,
        needs=needs,
        state=body.state,
        limit=body.limit,
        now=now,
        stale_after=timedelta(hours=settings.stale_after_hours),
        registered_only=registered_only,
        explain=False,
    )
    if outcome.results:
        encoded = orjson.dumps(
            {"results": outcome.results, "unmet": None, "warnings": outcome.warnings}
        )
        if snapshot.revision >= 0:
            snapshot.answers[key] = (now, outcome.fresh_until or FOREVER, encoded)
            while len(snapshot.answers) > ANSWER_MEMO:
                snapshot.answers.popitem(last=False)
        return encoded
    unmet = await run_in_threadpool(_unmet, principal, snapshot, outcome, needs, body)
    return orjson.dumps({"results": [], "unmet": unmet, "warnings": outcome.warnings})


def _unmet(
    principal: Principal,
    snapshot: Snapshot,
    outcome: SearchOutcome,
    needs: NeedsQ,
    body: SearchRequest,
) -> dict[str, Any]:
    """Why nothing fits (a scan of every pool), recorded as unmet demand."""
    people = outcome.people
    unmet = explain_unmet(snapshot, people, needs, body.state)
    if unmet["code"] == "group_not_together":
        unmet["split"] = _split_proposal(
            snapshot,
            people,
            needs,
            body.state,
            not get_settings().unregistered_may_receive_referrals,
        )
    with db.unit_of_work() as session:
        row = record_unmet(
            session,
            principal=principal,
            people=people_summary(people),
            state=body.state,
            code=unmet["code"],
            reason=unmet["reason"],
            focus=unmet,
            needs=body.needs.model_dump(mode="json", exclude_defaults=True) or None,
            intent_key=body.intent_key,
        )
    return {**unmet, "unmet_id": row.id, "warnings": outcome.warnings}


def _split_proposal(
    snapshot: Snapshot,
    people: list[PersonQ],
    needs: NeedsQ,
    state: str | None,
    registered_only: bool,
) -> dict[str, Any] | None:
    """The smallest split of one group that places everyone (each part marked ``split``),
    for the prosecutor to accept; None when even a split cannot."""
    group = planner.GroupQ(0, people, needs)
    result, _ = planner.plan(snapshot, [group], state, seconds=0.5, registered_only=registered_only)
    if not result.parts or not all(p.split for p in result.parts):
        return None
    answer = operations.plan_answer(result, [group], state or "")
    return {
        "parts": answer["assignments"],
        "reason": (
            f"El grupo no cabe junto en una misma instalación; esta división en "
            f"{len(result.parts)} partes coloca a todas las personas. Acéptela sólo si "
            "la familia está de acuerdo."
        ),
    }


# --- rescue operations ----------------------------------------------------------------


def _groups(body: OperationPlanRequest) -> list[planner.GroupQ]:
    out = []
    for index, group in enumerate(body.groups):
        people = people_query(group.people)
        out.append(planner.GroupQ(index, people, needs_query(group.needs, people)))
    return out


def _plan(groups: list[planner.GroupQ], state: str) -> tuple[planner.Plan, planner.Problem]:
    """The operation planned against the read model, refreshed first."""
    settings = get_settings()
    read_model.catch_up(db.engine.connect)
    return planner.plan(
        read_model.snapshot,
        groups,
        state,
        seconds=settings.operation_plan_seconds,
        registered_only=not settings.unregistered_may_receive_referrals,
    )


def plan_operation(principal: Principal, body: OperationPlanRequest) -> dict[str, Any]:
    """The plan of an operation (writes nothing)."""
    groups = _groups(body)
    result, _ = _plan(groups, body.state)
    return operations.plan_answer(result, groups, body.state)


def create_operation(principal: Principal, body: OperationCreate) -> dict[str, Any]:
    """Plan, then hold in one step (re-planned under the write lock if beds moved)."""
    settings = get_settings()
    groups = _groups(body)
    registered_only = not settings.unregistered_may_receive_referrals
    first, problem = _plan(groups, body.state)
    with db.unit_of_work() as session:
        operation, _ = operations.hold_operation(
            session,
            principal=principal,
            name=body.name,
            state=body.state,
            groups=groups,
            first=first,
            problem=problem,
            model=read_model.snapshot,
            ttl_minutes=body.ttl_minutes,
            operation_date=body.date,
            default_ttl_minutes=settings.hold_ttl_minutes,
            limits=_hold_limits(),
            quota_beds=settings.operation_quota_beds,
            seconds=settings.operation_plan_seconds,
            registered_only=registered_only,
        )
        return operations.operation_view(session, operation)


def operation(session: Session, principal: Principal, operation_id: str) -> dict[str, Any]:
    return operations.operation_view(
        session, operations.get_operation(session, principal, operation_id)
    )


def release_operation(session: Session, principal: Principal, operation_id: str) -> dict[str, Any]:
    released = operations.release_operation(session, principal=principal, operation_id=operation_id)
    return operations.operation_view(session, released)


# --- holds ----------------------------------------------------------------------------


def _hold_limits() -> holds.HoldLimits:
    settings = get_settings()
    return holds.HoldLimits(
        max_ttl_minutes=settings.hold_max_ttl_minutes,
        quota_beds=settings.hold_quota_beds,
        alert_share=settings.hold_alert_share,
    )


def _hold_answer(session: Session, hold: Hold) -> HoldPublic:
    return HoldPublic.of(hold, hold_allocations(session, hold.id))


def create_hold(
    session: Session, principal: Principal, data: HoldCreate, idempotency_key: str | None
) -> tuple[HoldPublic, bool]:
    """Hold beds; returns the hold's answer and whether it was created just now."""
    settings = get_settings()
    hold, created = holds.create_hold(
        session,
        principal=principal,
        data=data,
        idempotency_key=idempotency_key,
        default_ttl_minutes=settings.hold_ttl_minutes,
        registered_only=not settings.unregistered_may_receive_referrals,
        limits=_hold_limits(),
    )
    return _hold_answer(session, hold), created


def hold(session: Session, principal: Principal, hold_id: str) -> HoldPublic:
    found = get_hold(session, hold_id)
    permissions.ensure_read_hold(
        principal,
        created_by=found.created_by,
        institution_id=found.institution_id,
        operator_id=get_facility(session, found.facility_id).operator_institution_id,
    )
    return _hold_answer(session, found)


def institution_holds(
    session: Session, principal: Principal, *, status: str | None, limit: int, cursor: str | None
) -> tuple[list[HoldPublic], str | None]:
    """A page of the caller's institution's holds, soonest to expire first, and the cursor
    of the next page."""
    permissions.ensure_create_hold(principal)
    after_key = page_key(cursor, datetime, str)
    found = holds.institution_holds(
        session,
        institution_id=principal.institution_id,
        status=status,
        limit=limit,
        after_key=after_key,
    )
    page, next_cursor = split_page(found, limit, holds.hold_key)
    allocations = allocations_by_hold(session, [h.id for h in page])  # one query, not one a hold
    return [HoldPublic.of(h, allocations[h.id]) for h in page], next_cursor


def release_hold(session: Session, principal: Principal, hold_id: str) -> HoldPublic:
    return _hold_answer(session, holds.release_hold(session, principal=principal, hold_id=hold_id))


def consume_hold(session: Session, principal: Principal, hold_id: str) -> HoldPublic:
    return _hold_answer(session, holds.consume_hold(session, principal=principal, hold_id=hold_id))
