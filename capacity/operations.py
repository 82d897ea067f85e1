"""Rescue operations (operativos): a plan for many groups becomes their holds in one step.

The plan (``capacity.planner``) is made from the search read model; holding it re-reads
the free beds of every pool the plan could use under the capacity revision lock (the one
that orders every writer) and, if another prosecutor took beds meanwhile, plans again
with what is really free, so each group's beds are held all or nothing and no pool is
ever over-booked (the guarded update of ``ledger.apply`` stays the last line of defence).
An operation's holds carry its id and count against the operations' own quota
(``CANALIZA_OPERATION_QUOTA_BEDS``), not the ordinary per-institution one (ADR 0020).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from capacity import permissions
from capacity.events import operation_event, record
from capacity.exceptions import (
    HoldTtlTooLong,
    OperationNotFound,
    OperationQuotaExceeded,
)
from capacity.holds import HoldLimits, alert_on_concentration, beds_held, end_hold, write_hold
from capacity.ledger import bump_revision
from capacity.models import Facility, Hold, Operation, Pool
from capacity.planner import GroupQ, Part, Plan, Problem, beds_of, solve_plan
from capacity.search import RESERVED_LABEL, Snapshot
from capacity.unmet import people_summary, record_unmet
from services.clock import utcnow
from services.tokens import Principal
from services.vocabulary import FacilityStatus, HoldStatus, RegistrationStatus

CHUNK = 500


def assignment_of(part: Part) -> dict[str, Any]:
    fac = part.pattern.facility
    people = sorted(i for idx in part.pattern.people.values() for i in idx)
    reserved = part.pattern.reserved
    return {
        "group": part.group,
        "facility_id": fac.id,
        "facility_name": fac.name,
        "state": fac.state,
        "municipality": fac.municipality,
        "kind": fac.kind,
        "operator_institution_id": fac.operator_institution_id,
        "allocations": [
            {
                "pool_id": pid,
                "pool_name": fac.pools[pid].name if pid in fac.pools else "",
                "beds": beds,
                "people": part.pattern.people[pid],
            }
            for pid, beds in sorted(part.pattern.beds.items())
        ],
        "people": people,
        "split": part.split,
        "reserved_for": reserved,
        "note": (
            "Lugar reservado para "
            + " y ".join(RESERVED_LABEL[r] for r in reserved)
            + ": se ofrece al final porque no hay otro."
            if reserved
            else None
        ),
    }


def plan_answer(plan: Plan, groups: list[GroupQ], state: str) -> dict[str, Any]:
    """The plan as the API answers it: every group once in ``assignments`` (once per part
    when split) or in ``unplaced``, and the figures."""
    assignments = [
        assignment_of(p) for p in sorted(plan.parts, key=lambda p: (p.group, p.pattern.facility.id))
    ]
    size = {g.index: len(g.people) for g in groups}
    unplaced = [
        {"group": g, "people": size[g], "reason": reason}
        for g, reason in sorted(plan.unplaced.items())
    ]
    placed = plan.placed_people()
    return {
        "assignments": assignments,
        "unplaced": unplaced,
        "optimal": plan.optimal,
        "stopped": plan.stopped,
        "summary": {
            "groups": len(groups),
            "people": sum(size.values()),
            "placed_people": placed,
            "placed_groups": len({p.group for p in plan.parts}),
            "split_groups": len({p.group for p in plan.parts if p.split}),
            "unplaced_groups": len(unplaced),
            "same_state_people": sum(
                p.pattern.size for p in plan.parts if p.pattern.facility.state == state
            ),
            "facilities": len({p.pattern.facility.id for p in plan.parts}),
            "solver": plan.solver,
            "seconds": round(plan.seconds, 3),
        },
    }


def _fresh_free(session: Session, pool_ids: set[str], *, registered_only: bool) -> dict[str, int]:
    """Free beds of the pools now (read under the revision lock); a pool of a facility that
    is no longer active (or registered, when that is required) has none to give."""
    free: dict[str, int] = {}
    ids = sorted(pool_ids)
    p, f = Pool.__table__.c, Facility.__table__.c  # type: ignore[attr-defined]
    for k in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(
                p.id,
                p.total - p.occupied - p.held - p.out_of_service,
                f.status,
                f.registration_status,
            )
            .join_from(Pool.__table__, Facility.__table__, f.id == p.facility_id)  # type: ignore[attr-defined]
            .where(p.id.in_(ids[k : k + CHUNK]))
        )
        for pid, avail, status, registration in rows:
            usable = status == FacilityStatus.ACTIVE and (
                not registered_only or registration == RegistrationStatus.REGISTERED
            )
            free[pid] = max(int(avail), 0) if usable else 0
    return free


def _fits(parts: list[Part], free: dict[str, int]) -> bool:
    return all(free.get(pid, 0) >= beds for pid, beds in beds_of(parts).items())


def _take_pinned(
    pinned: dict[int, list[Part]], free: dict[str, int]
) -> tuple[dict[int, list[Part]], frozenset[int], dict[str, int]]:
    """The pinned groups whose beds are all still free (in group order, each group all or
    nothing), those whose beds went, and the beds left for the others."""
    left = dict(free)
    kept: dict[int, list[Part]] = {}
    lost: set[int] = set()
    for g in sorted(pinned):
        need = beds_of(pinned[g])
        if all(left.get(pid, 0) >= n for pid, n in need.items()):
            for pid, n in need.items():
                left[pid] -= n
            kept[g] = pinned[g]
        else:
            lost.add(g)
    return kept, frozenset(lost), left


def hold_operation(
    session: Session,
    *,
    principal: Principal,
    name: str,
    state: str,
    groups: list[GroupQ],
    first: Plan,
    problem: Problem,
    model: Snapshot,
    ttl_minutes: int | None,
    default_ttl_minutes: int,
    operation_date: date | None = None,
    limits: HoldLimits,
    quota_beds: int,
    seconds: float,
    registered_only: bool,
    lock: AbstractContextManager[Any] | None = None,
    pinned: dict[int, list[Part]] | None = None,
    leave: frozenset[int] = frozenset(),
) -> tuple[Operation, Plan]:
    """Hold the plan (re-planned against the beds really free now), each group's beds all
    or nothing; unplaced groups are recorded as unmet demand once (not those the
    prosecutor chose to leave out). ``pinned`` groups keep their parts if every bed of
    them is still free, and are planned again with the rest otherwise."""
    if ttl_minutes is not None and ttl_minutes > limits.max_ttl_minutes:
        raise HoldTtlTooLong(
            f"Una reserva puede durar como máximo {limits.max_ttl_minutes} minutos; se pidieron "
            f"{ttl_minutes}. Renueve el operativo si el traslado tarda más.",
            extra={"max_ttl_minutes": limits.max_ttl_minutes},
        )
    ttl = min(ttl_minutes or default_ttl_minutes, limits.max_ttl_minutes)
    rev = bump_revision(session)  # from here on no other writer moves a bed
    pinned = pinned or {}
    free = _fresh_free(session, first.pools, registered_only=registered_only)
    kept, lost, left = _take_pinned(pinned, free)
    plan = first
    if lost or not _fits([p for p in first.parts if p.group not in pinned], left):
        # Beds taken since the plan was made: plan again with what is really free.
        plan = solve_plan(
            model, groups, state, problem, free=left, seconds=seconds, lock=lock,
            pinned=kept, leave=leave, lost=lost,
        )  # fmt: skip
    now = utcnow()
    beds = plan.placed_people()
    held = beds_held(session, principal, now=now, state=None, operations=True)
    if held + beds > quota_beds:
        raise OperationQuotaExceeded(
            f"Su institución ya tiene {held} camas reservadas en operativos y el límite es "
            f"{quota_beds} a la vez; este operativo pide {beds}. Libere operativos que no vaya "
            "a usar o pida a la plataforma ampliar el límite.",
            extra={"held": held, "quota": quota_beds, "requested": beds},
        )
    operation = Operation(
        name=name,
        state=state,
        created_by=principal.sub,
        institution_id=principal.institution_id,
        people=sum(len(g.people) for g in groups),
        operation_date=operation_date,
        groups=[
            {"people": people_summary(g.people), "needs": sorted(g.needs.labels())} for g in groups
        ],
        expires_at=now + timedelta(minutes=ttl),
        created_at=now,
    )
    session.add(operation)
    session.flush()
    answer = plan_answer(plan, groups, state)
    facility_ids = {p.pattern.facility.id for p in plan.parts}
    facilities = {
        f.id: f
        for f in session.execute(
            select(Facility).where(col(Facility.id).in_(sorted(facility_ids)))
        ).scalars()
    }
    pool_ids = {pid for p in plan.parts for pid in p.pattern.beds}
    pools = {
        p.id: p
        for p in session.execute(select(Pool).where(col(Pool.id).in_(sorted(pool_ids)))).scalars()
    }
    for assignment in answer["assignments"]:
        wanted = {a["pool_id"]: a["beds"] for a in assignment["allocations"]}
        hold = write_hold(
            session,
            principal=principal,
            facility=facilities[assignment["facility_id"]],
            pools=pools,
            wanted=wanted,
            rev=rev,
            expires_at=operation.expires_at,
            reference=f"operativo {operation.id}"[:120],
            operation_id=operation.id,
        )
        assignment["hold_id"] = hold.id
        # SEGOB is told when the operation takes its institution over a state's share.
        alert_on_concentration(
            session,
            principal,
            hold,
            facilities[assignment["facility_id"]],
            beds=sum(wanted.values()),
            now=now,
            limits=limits,
        )
    by_index = {g.index: g for g in groups}
    for item in answer["unplaced"]:
        reason = item["reason"]
        if item["group"] in leave:
            continue  # the prosecutor's choice, not a lack of beds
        group = by_index[item["group"]]
        focus = next((p for p in group.people if not p.is_child), group.people[0])
        record_unmet(
            session,
            principal=principal,
            people=people_summary(group.people),
            state=state,
            code=str(reason.get("code", "operation_unplaced")),
            reason=str(reason.get("reason", "")),
            focus={"sex": focus.sex, "age_group": focus.age_group(), "person": focus.index},
        )
    operation.plan = answer
    _save(session, operation, principal)
    return operation, plan


def _save(session: Session, operation: Operation, principal: Principal) -> None:
    """Write the operation and record its event (held or released) in the same transaction."""
    session.add(operation)
    session.flush()
    record(
        session,
        operation_event(operation),
        aggregate_id=operation.id,
        version=operation.version,
        actor=principal,
    )


def get_operation(session: Session, principal: Principal, operation_id: str) -> Operation:
    operation = session.get(Operation, operation_id)
    if operation is None:
        raise OperationNotFound()
    permissions.ensure_read_operation(
        principal, created_by=operation.created_by, institution_id=operation.institution_id
    )
    return operation


def operation_holds(session: Session, operation_id: str) -> list[Hold]:
    return list(
        session.execute(
            select(Hold).where(col(Hold.operation_id) == operation_id).order_by(col(Hold.id))
        ).scalars()
    )


def referred(hold: Hold) -> bool:
    """A hold that a referral names (set when the referral is created) is the referral's."""
    return hold.referral_id is not None


def release_operation(session: Session, *, principal: Principal, operation_id: str) -> Operation:
    """Give back every bed of the operation still held and not yet a referral's
    (idempotent: a released operation is answered as it is)."""
    operation = get_operation(session, principal, operation_id)
    if operation.status == "released":
        return operation
    rev = bump_revision(session)
    session.refresh(operation)
    if operation.status == "released":
        return operation
    for hold in operation_holds(session, operation.id):
        session.refresh(hold)
        if hold.status == HoldStatus.ACTIVE and not referred(hold):
            end_hold(session, hold=hold, status=HoldStatus.RELEASED, actor=principal, rev=rev)
    operation.status = "released"
    operation.released_at = utcnow()
    operation.version += 1
    _save(session, operation, principal)
    return operation


def mark_referred(session: Session, *, hold_id: str, referral_id: str) -> bool:
    """A referral was created naming this hold: the hold is the referral's now (an
    operation's release leaves it). Idempotent; unknown holds are ignored."""
    hold = session.get(Hold, hold_id)
    if hold is None or referred(hold):
        return False
    hold.referral_id = referral_id
    session.add(hold)
    session.flush()
    return True


def operation_view(session: Session, operation: Operation) -> dict[str, Any]:
    """The operation with its plan and each hold's status now."""
    holds = {h.id: h.status for h in operation_holds(session, operation.id)}
    expires: datetime = operation.expires_at
    return {
        **operation.plan,
        "id": operation.id,
        "name": operation.name,
        "state": operation.state,
        "status": operation.status,
        "people": operation.people,
        "created_by": operation.created_by,
        "institution_id": operation.institution_id,
        "operation_date": operation.operation_date,
        "created_at": operation.created_at,
        "expires_at": expires,
        "released_at": operation.released_at,
        "holds": holds,
    }
