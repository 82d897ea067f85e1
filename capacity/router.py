"""The capacity HTTP API (thin: parse, authorise, call the service, shape the answer)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query, Response

from capacity import importer, permissions, registration, service
from capacity.database import db
from capacity.dependencies import CapacityPrincipal, SessionDep, unit_of_work
from capacity.schemas import (
    FacilityCreate,
    FacilityPage,
    FacilityPublic,
    FacilityUpdate,
    FacilityWithLocation,
    HoldCreate,
    HoldPublic,
    Kind,
    LedgerCreate,
    LedgerEntryPublic,
    LedgerPage,
    PoolCreate,
    PoolPublic,
    PoolUpdate,
    RegistrationPublic,
    RegistrationReview,
    RegistrationSubmit,
    RosterImport,
    RosterImportResult,
    SearchAnswer,
    SearchRequest,
    StateCode,
    Status,
)
from capacity.search import NeedsQ, PersonQ, read_model, run_search
from services.clock import utcnow
from services.security import require_roles
from services.settings import get_settings
from services.tokens import Principal
from services.vocabulary import cndh_age_band

router = APIRouter(prefix="/api/v1", tags=["capacity"])


def _facility_answer(
    principal: Principal, facility: Any, location: Any
) -> FacilityPublic | FacilityWithLocation:
    allowed = permissions.can_see_address(principal, facility.operator_institution_id)
    data = service.facility_view(facility, location, with_location=allowed)
    return FacilityWithLocation(**data) if allowed else FacilityPublic(**data)


@router.get("/capacity/ping", summary="Authenticated no-op (benchmark baseline)")
async def ping(principal: CapacityPrincipal) -> dict[str, bool]:
    return {"ok": True}


# --- facilities -----------------------------------------------------------------------


@router.get("/facilities", response_model=FacilityPage, response_model_exclude_unset=True)
def list_facilities(
    principal: CapacityPrincipal,
    session: SessionDep,
    state: Annotated[StateCode | None, Query()] = None,
    kind: Annotated[Kind | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
    operator_institution_id: Annotated[str | None, Query(max_length=36)] = None,
    registration_status: Annotated[
        Literal["not_submitted", "submitted", "returned", "registered"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Any:
    """The roster (addresses only for those allowed to see them)."""
    rows, total = service.list_facilities(
        session,
        state=state,
        kind=kind,
        status=status,
        operator_institution_id=operator_institution_id,
        registration_status=registration_status,
        limit=limit,
        offset=offset,
    )
    visible = [
        f.id for f in rows if permissions.can_see_address(principal, f.operator_institution_id)
    ]
    locations = service.locations_for(session, visible)
    items = [_facility_answer(principal, f, locations.get(f.id)) for f in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "/facilities/import",
    response_model=RosterImportResult,
    # refuse other callers before reading a batch of up to 200 facilities
    dependencies=[Depends(require_roles("service"))],
)
def import_roster(body: RosterImport, principal: CapacityPrincipal) -> RosterImportResult:
    """Facilities in their final status with pools and initial occupancy, in one
    transaction (service token only). Idempotent: facilities already on the roster (same
    name and operator) are answered with their ids, not written again."""
    with unit_of_work() as session:
        return importer.import_roster(session, principal=principal, items=body.facilities)


@router.post(
    "/facilities",
    status_code=201,
    response_model=FacilityWithLocation | FacilityPublic,
    response_model_exclude_unset=True,
)
def create_facility(body: FacilityCreate, principal: CapacityPrincipal) -> Any:
    permissions.ensure_manage_facilities(principal)
    with unit_of_work() as session:
        facility = service.create_facility(session, principal=principal, data=body)
        return _facility_answer(principal, facility, service.get_location(session, facility.id))


@router.get(
    "/facilities/{facility_id}",
    response_model=FacilityWithLocation | FacilityPublic,
    response_model_exclude_unset=True,
)
def get_facility(facility_id: str, principal: CapacityPrincipal, session: SessionDep) -> Any:
    facility = service.get_facility(session, facility_id)
    return _facility_answer(principal, facility, service.get_location(session, facility.id))


@router.patch(
    "/facilities/{facility_id}",
    response_model=FacilityWithLocation | FacilityPublic,
    response_model_exclude_unset=True,
)
def update_facility(facility_id: str, body: FacilityUpdate, principal: CapacityPrincipal) -> Any:
    """Edit a facility or change its status (``{"status", "reason"}``)."""
    permissions.ensure_manage_facilities(principal)
    with unit_of_work() as session:
        facility = service.update_facility(
            session, principal=principal, facility_id=facility_id, data=body
        )
        return _facility_answer(principal, facility, service.get_location(session, facility.id))


@router.get("/facilities/{facility_id}/status-history")
def facility_status_history(
    facility_id: str, principal: CapacityPrincipal, session: SessionDep
) -> list[dict[str, Any]]:
    service.get_facility(session, facility_id)
    return [
        {
            "from_status": c.from_status,
            "to_status": c.to_status,
            "reason": c.reason,
            "at": c.at,
        }
        for c in service.status_history(session, facility_id)
    ]


# --- registration on SEGOB's roster -----------------------------------------------------


@router.get("/registration/checklist")
def registration_checklist(principal: CapacityPrincipal) -> list[dict[str, str]]:
    """The checklist SEGOB reviews a facility against (codes, Spanish labels, sources)."""
    return registration.checklist_items()


@router.get("/facilities/{facility_id}/registration", response_model=RegistrationPublic)
def get_registration(facility_id: str, principal: CapacityPrincipal, session: SessionDep) -> Any:
    """The registration file: state, every submission and review, the checklist."""
    facility = service.get_facility(session, facility_id)
    permissions.ensure_read_registration(principal, facility.operator_institution_id)
    return registration.view(session, facility)


@router.post("/facilities/{facility_id}/registration/submit", response_model=RegistrationPublic)
def submit_registration(
    facility_id: str, body: RegistrationSubmit, principal: CapacityPrincipal
) -> Any:
    """The operator submits the facility for registration (again, after a return)."""
    with unit_of_work() as session:
        facility = service.get_facility(session, facility_id)
        registration.submit(session, principal=principal, facility=facility, data=body)
        return registration.view(session, facility)


@router.post("/facilities/{facility_id}/registration/review", response_model=RegistrationPublic)
def review_registration(
    facility_id: str, body: RegistrationReview, principal: CapacityPrincipal
) -> Any:
    """SEGOB registers the facility or returns it with observations."""
    with unit_of_work() as session:
        facility = service.get_facility(session, facility_id)
        registration.review(session, principal=principal, facility=facility, data=body)
        return registration.view(session, facility)


# --- pools ----------------------------------------------------------------------------


def _pool_response(pool: Any, response: Response) -> PoolPublic:
    response.headers["ETag"] = f'"{pool.version}"'
    return PoolPublic(**service.pool_view(pool))


@router.get("/facilities/{facility_id}/pools", response_model=list[PoolPublic])
def list_pools(facility_id: str, principal: CapacityPrincipal, session: SessionDep) -> Any:
    service.get_facility(session, facility_id)
    return [service.pool_view(p) for p in service.list_pools(session, facility_id=facility_id)]


@router.post("/facilities/{facility_id}/pools", status_code=201, response_model=PoolPublic)
def create_pool(
    facility_id: str,
    body: PoolCreate,
    principal: CapacityPrincipal,
    response: Response,
) -> Any:
    permissions.ensure_manage_facilities(principal)
    with unit_of_work() as session:
        pool = service.create_pool(session, principal=principal, facility_id=facility_id, data=body)
    return _pool_response(pool, response)


@router.get("/pools/{pool_id}", response_model=PoolPublic)
def get_pool(
    pool_id: str, principal: CapacityPrincipal, session: SessionDep, response: Response
) -> Any:
    return _pool_response(service.get_pool(session, pool_id), response)


@router.patch("/pools/{pool_id}", response_model=PoolPublic)
def update_pool(
    pool_id: str,
    body: PoolUpdate,
    principal: CapacityPrincipal,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> Any:
    """Change eligibility or the total; ``If-Match: <version>`` refuses stale edits (412)."""
    expected = service.parse_if_match(if_match)
    with unit_of_work() as session:
        pool = service.update_pool(
            session, principal=principal, pool_id=pool_id, data=body, if_match=expected
        )
    return _pool_response(pool, response)


@router.post("/pools/{pool_id}/ledger", status_code=201)
def add_ledger_entry(
    pool_id: str,
    body: LedgerCreate,
    principal: CapacityPrincipal,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=120)] = None,
) -> dict[str, Any]:
    """Admit, discharge, adjust, or take beds out of / back into service.

    With ``Idempotency-Key`` a retried entry is written once; the repeat answers 200.
    """
    with unit_of_work() as session:
        pool, entry, created = service.record_entry(
            session,
            principal=principal,
            pool_id=pool_id,
            data=body,
            idempotency_key=idempotency_key,
        )
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return {
        "entry": LedgerEntryPublic.model_validate(entry, from_attributes=True).model_dump(),
        "pool": PoolPublic(**service.pool_view(pool)).model_dump(),
    }


@router.get("/pools/{pool_id}/ledger", response_model=LedgerPage)
def list_ledger(
    pool_id: str,
    principal: CapacityPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    pool = service.get_pool(session, pool_id)
    facility = service.get_facility(session, pool.facility_id)
    permissions.ensure_read_ledger(principal, facility.operator_institution_id)
    entries = service.list_ledger(session, pool_id=pool_id, limit=limit, offset=offset)
    return {
        "items": [LedgerEntryPublic.model_validate(e, from_attributes=True) for e in entries],
        "pool": service.pool_view(pool),
    }


@router.post("/pools/{pool_id}/confirm", response_model=PoolPublic)
def confirm_pool(pool_id: str, principal: CapacityPrincipal, response: Response) -> Any:
    """Record that this pool's counts were checked just now."""
    with unit_of_work() as session:
        pool = service.confirm_pool(session, principal=principal, pool_id=pool_id)
    return _pool_response(pool, response)


# --- search ---------------------------------------------------------------------------


@router.post("/availability/search", response_model=SearchAnswer)
def search(body: SearchRequest, principal: CapacityPrincipal) -> Any:
    """Facilities that can take the whole group together now, best first; or why not."""
    permissions.ensure_search(principal)
    settings = get_settings()
    people = [PersonQ(i, p.sex, p.age, p.role) for i, p in enumerate(body.people)]
    needs = NeedsQ(
        wheelchair=body.needs.wheelchair,
        interpreter_language=(body.needs.interpreter_language or "").lower() or None,
        security=body.needs.security,
        migrant=body.needs.migrant,
        lgbtttiq=body.needs.lgbtttiq,
        specialised=body.needs.specialised,
    )
    with read_model.lock:
        with db.engine.connect() as conn:
            read_model.refresh(conn)
        outcome = run_search(
            read_model,
            people=people,
            needs=needs,
            state=body.state,
            limit=body.limit,
            now=utcnow(),
            stale_after=timedelta(hours=settings.stale_after_hours),
            registered_only=not settings.unregistered_may_receive_referrals,
        )
    unmet = outcome.unmet
    if unmet is not None:
        summary = [
            {"sex": p.sex, "age_group": p.age_group(), "age_band": cndh_age_band(p.age),
             "role": p.role}
            for p in people
        ]  # fmt: skip
        # A short write of its own: the search itself only reads.
        with unit_of_work() as session:
            row = service.record_unmet(
                session,
                principal=principal,
                people=summary,
                state=body.state,
                code=unmet["code"],
                reason=unmet["reason"],
                focus=unmet,
            )
        unmet = {**unmet, "unmet_id": row.id, "warnings": outcome.warnings}
    # Built from plain dicts already shaped like SearchAnswer: skip re-validating them.
    answer = {"results": outcome.results, "unmet": unmet, "warnings": outcome.warnings}
    return Response(orjson.dumps(answer), media_type="application/json")


# --- holds ----------------------------------------------------------------------------


@router.post("/holds", status_code=201, response_model=HoldPublic)
def create_hold(
    body: HoldCreate,
    principal: CapacityPrincipal,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=120)] = None,
) -> Any:
    """Hold beds in one facility, all or nothing (409 ``beds_unavailable`` when gone)."""
    permissions.ensure_create_hold(principal)
    with unit_of_work() as session:
        hold, created = service.create_hold(
            session,
            principal=principal,
            data=body,
            idempotency_key=idempotency_key,
            default_ttl_minutes=get_settings().hold_ttl_minutes,
            registered_only=not get_settings().unregistered_may_receive_referrals,
        )
        answer = service.hold_view(session, hold)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return answer


def _hold_or_404(session: Any, principal: Principal, hold_id: str) -> Any:
    hold = service.get_hold(session, hold_id)
    facility = service.get_facility(session, hold.facility_id)
    permissions.ensure_read_hold(
        principal,
        created_by=hold.created_by,
        institution_id=hold.institution_id,
        operator_id=facility.operator_institution_id,
    )
    return hold


@router.get("/holds/{hold_id}", response_model=HoldPublic)
def get_hold(hold_id: str, principal: CapacityPrincipal, session: SessionDep) -> Any:
    return service.hold_view(session, _hold_or_404(session, principal, hold_id))


@router.delete("/holds/{hold_id}", response_model=HoldPublic)
def release_hold(hold_id: str, principal: CapacityPrincipal) -> Any:
    """Give the beds back (idempotent)."""
    with unit_of_work() as session:
        hold = service.release_hold(session, principal=principal, hold_id=hold_id)
        return service.hold_view(session, hold)


@router.post("/holds/{hold_id}/consume", response_model=HoldPublic)
def consume_hold(hold_id: str, principal: CapacityPrincipal) -> Any:
    """Admission: the held beds become occupied."""
    with unit_of_work() as session:
        hold = service.consume_hold(session, principal=principal, hold_id=hold_id)
        return service.hold_view(session, hold)
