"""The capacity HTTP API (thin: parse, authorise, call one function, shape the answer).

GET handlers read through a read-only session; every write handler opens its own unit of
work inside its thread. The workflows are in ``capacity.flows``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from capacity import flows, importer, lookups, permissions, pools, registration
from capacity.database import db
from capacity.dependencies import CapacityPrincipal, ReadSessionDep
from capacity.languages import catalogue as language_catalogue
from capacity.models import Pool
from capacity.schemas import (
    ArrivalUpdate,
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
    OperationCreate,
    OperationPlanAnswer,
    OperationPlanRequest,
    OperationPublic,
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
from services.dependencies import IfMatchDep
from services.pages import PageCursor, PageLimit, announce_next
from services.security import require_roles
from services.validation import MAX_OFFSET
from services.vocabulary import UserRole

router = APIRouter(prefix="/api/v1", tags=["capacity"])

IdempotencyKey = Annotated[str | None, Header(max_length=120)]


@router.get("/capacity/ping", summary="Authenticated no-op (benchmark baseline)")
async def ping(principal: CapacityPrincipal) -> dict[str, bool]:
    return {"ok": True}


# --- facilities -----------------------------------------------------------------------


@router.get("/facilities", response_model=FacilityPage, response_model_exclude_unset=True)
def list_facilities(
    principal: CapacityPrincipal,
    session: ReadSessionDep,
    request: Request,
    response: Response,
    state: Annotated[StateCode | None, Query()] = None,
    kind: Annotated[Kind | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
    operator_institution_id: Annotated[str | None, Query(max_length=36)] = None,
    registration_status: Annotated[
        Literal["not_submitted", "submitted", "returned", "registered"] | None, Query()
    ] = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, deprecated=True)] = 0,
) -> Any:
    """The roster (addresses only for those allowed to see them), by state, name and id;
    the next page's cursor in ``X-Next-Cursor`` and ``Link: rel="next"``."""
    page, next_cursor = flows.roster_page(
        session,
        principal,
        state=state,
        kind=kind,
        status=status,
        operator_institution_id=operator_institution_id,
        registration_status=registration_status,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )
    announce_next(request, response, next_cursor)
    return page


@router.post(
    "/facilities/import",
    response_model=RosterImportResult,
    # refuse other callers before reading a batch of up to 200 facilities
    dependencies=[Depends(require_roles(UserRole.SERVICE))],
)
def import_roster(body: RosterImport, principal: CapacityPrincipal) -> RosterImportResult:
    """Facilities in their final status with pools and initial occupancy, in one
    transaction (service token only). Idempotent: facilities already on the roster (same
    name and operator) are answered with their ids, not written again."""
    with db.unit_of_work() as session:
        return importer.import_roster(session, principal=principal, items=body.facilities)


@router.post(
    "/facilities",
    status_code=201,
    response_model=FacilityWithLocation | FacilityPublic,
    response_model_exclude_unset=True,
)
def create_facility(body: FacilityCreate, principal: CapacityPrincipal) -> Any:
    permissions.ensure_manage_facilities(principal)
    with db.unit_of_work() as session:
        return flows.create_facility(session, principal, body)


@router.get(
    "/facilities/{facility_id}",
    response_model=FacilityWithLocation | FacilityPublic,
    response_model_exclude_unset=True,
)
def get_facility(facility_id: str, principal: CapacityPrincipal, session: ReadSessionDep) -> Any:
    return flows.facility(session, principal, facility_id)


@router.patch(
    "/facilities/{facility_id}",
    response_model=FacilityWithLocation | FacilityPublic,
    response_model_exclude_unset=True,
)
def update_facility(facility_id: str, body: FacilityUpdate, principal: CapacityPrincipal) -> Any:
    """Edit a facility or change its status (``{"status", "reason"}``)."""
    permissions.ensure_manage_facilities(principal)
    with db.unit_of_work() as session:
        return flows.update_facility(session, principal, facility_id, body)


@router.put(
    "/facilities/{facility_id}/arrival",
    response_model=FacilityWithLocation | FacilityPublic,
    response_model_exclude_unset=True,
)
def set_arrival(facility_id: str, body: ArrivalUpdate, principal: CapacityPrincipal) -> Any:
    """The facility's contact and arrival instructions (its own staff)."""
    with db.unit_of_work() as session:
        return flows.set_arrival(session, principal, facility_id, body)


@router.get("/facilities/{facility_id}/status-history")
def facility_status_history(
    facility_id: str, principal: CapacityPrincipal, session: ReadSessionDep
) -> list[dict[str, Any]]:
    return flows.facility_status_history(session, facility_id)


# --- registration on SEGOB's roster -----------------------------------------------------


@router.get("/registration/checklist")
def registration_checklist(principal: CapacityPrincipal) -> list[dict[str, str]]:
    """The checklist SEGOB reviews a facility against (codes, Spanish labels, sources)."""
    return registration.checklist_items()


@router.get("/facilities/{facility_id}/registration", response_model=RegistrationPublic)
def get_registration(
    facility_id: str, principal: CapacityPrincipal, session: ReadSessionDep
) -> Any:
    """The registration file: state, every submission and review, the checklist."""
    return flows.registration_file(session, principal, facility_id)


@router.post("/facilities/{facility_id}/registration/submit", response_model=RegistrationPublic)
def submit_registration(
    facility_id: str, body: RegistrationSubmit, principal: CapacityPrincipal
) -> Any:
    """The operator submits the facility for registration (again, after a return)."""
    with db.unit_of_work() as session:
        return flows.submit_registration(session, principal, facility_id, body)


@router.post("/facilities/{facility_id}/registration/review", response_model=RegistrationPublic)
def review_registration(
    facility_id: str, body: RegistrationReview, principal: CapacityPrincipal
) -> Any:
    """SEGOB registers the facility or returns it with observations."""
    with db.unit_of_work() as session:
        return flows.review_registration(session, principal, facility_id, body)


# --- pools ----------------------------------------------------------------------------


def _pool_response(pool: Pool, response: Response) -> PoolPublic:
    response.headers["ETag"] = f'"{pool.version}"'
    return PoolPublic.of(pool)


@router.get("/facilities/{facility_id}/pools", response_model=list[PoolPublic])
def list_pools(
    facility_id: str,
    principal: CapacityPrincipal,
    session: ReadSessionDep,
    request: Request,
    response: Response,
    limit: PageLimit = 500,  # a facility has a handful: one page, as before pages
    cursor: PageCursor = None,
) -> Any:
    """A facility's pools by name (then id); the next page's cursor in headers."""
    pools, next_cursor = flows.pools_of(session, facility_id, limit=limit, cursor=cursor)
    announce_next(request, response, next_cursor)
    return pools


@router.post("/facilities/{facility_id}/pools", status_code=201, response_model=PoolPublic)
def create_pool(
    facility_id: str,
    body: PoolCreate,
    principal: CapacityPrincipal,
    response: Response,
) -> Any:
    permissions.ensure_manage_facilities(principal)
    with db.unit_of_work() as session:
        pool = pools.create_pool(session, principal=principal, facility_id=facility_id, data=body)
    return _pool_response(pool, response)


@router.get("/pools/{pool_id}", response_model=PoolPublic)
def get_pool(
    pool_id: str, principal: CapacityPrincipal, session: ReadSessionDep, response: Response
) -> Any:
    return _pool_response(lookups.get_pool(session, pool_id), response)


@router.patch("/pools/{pool_id}", response_model=PoolPublic)
def update_pool(
    pool_id: str,
    body: PoolUpdate,
    principal: CapacityPrincipal,
    response: Response,
    if_match: IfMatchDep,
) -> Any:
    """Change eligibility or the total; ``If-Match: <version>`` refuses stale edits (412)."""
    with db.unit_of_work() as session:
        pool = pools.update_pool(
            session, principal=principal, pool_id=pool_id, data=body, if_match=if_match
        )
    return _pool_response(pool, response)


@router.post("/pools/{pool_id}/ledger", status_code=201)
def add_ledger_entry(
    pool_id: str,
    body: LedgerCreate,
    principal: CapacityPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Admit, discharge, adjust, or take beds out of / back into service.

    With ``Idempotency-Key`` a retried entry is written once; the repeat answers 200.
    """
    with db.unit_of_work() as session:
        pool, entry, created = pools.record_entry(
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
        "pool": PoolPublic.of(pool).model_dump(),
    }


@router.get("/pools/{pool_id}/ledger", response_model=LedgerPage)
def list_ledger(
    pool_id: str,
    principal: CapacityPrincipal,
    session: ReadSessionDep,
    request: Request,
    response: Response,
    # Up to 1000, as before pages had cursors (the other lists stop at 500).
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: PageCursor = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, deprecated=True)] = 0,
) -> Any:
    """A pool's ledger, oldest entry first; the next page's cursor in headers."""
    page, next_cursor = flows.ledger_page(
        session, principal, pool_id, limit=limit, offset=offset, cursor=cursor
    )
    announce_next(request, response, next_cursor)
    return page


@router.post("/pools/{pool_id}/confirm", response_model=PoolPublic)
def confirm_pool(pool_id: str, principal: CapacityPrincipal, response: Response) -> Any:
    """Record that this pool's counts were checked just now."""
    with db.unit_of_work() as session:
        pool = pools.confirm_pool(session, principal=principal, pool_id=pool_id)
    return _pool_response(pool, response)


# --- search ---------------------------------------------------------------------------


@router.post("/availability/search", response_model=SearchAnswer)
async def search(body: SearchRequest, principal: CapacityPrincipal) -> Any:
    """Facilities that can take the whole group together now, best first; or why not."""
    permissions.ensure_search(principal)
    # Encoded from plain dicts already shaped like SearchAnswer: not re-validated.
    return Response(await flows.search_answer(principal, body), media_type="application/json")


# --- rescue operations ----------------------------------------------------------------


@router.get("/languages")
def languages(principal: CapacityPrincipal) -> list[dict[str, str]]:
    """The language catalogue (codes and Spanish labels) pools and people are matched by."""
    return language_catalogue()


@router.post("/operations/plan", response_model=OperationPlanAnswer)
def plan_operation(body: OperationPlanRequest, principal: CapacityPrincipal) -> Any:
    """Where every group of a rescue operation could go now (writes nothing)."""
    permissions.ensure_plan_operation(principal)
    return flows.plan_operation(principal, body)


@router.post("/operations", status_code=201, response_model=OperationPublic)
def create_operation(body: OperationCreate, principal: CapacityPrincipal) -> Any:
    """Plan and hold in one step: each group's beds all or nothing, never over-booked."""
    permissions.ensure_plan_operation(principal)
    return flows.create_operation(principal, body)


@router.get("/operations/{operation_id}", response_model=OperationPublic)
def get_operation(operation_id: str, principal: CapacityPrincipal, session: ReadSessionDep) -> Any:
    return flows.operation(session, principal, operation_id)


@router.delete("/operations/{operation_id}", response_model=OperationPublic)
def release_operation(operation_id: str, principal: CapacityPrincipal) -> Any:
    """Give back every bed of the operation that did not become a referral (idempotent)."""
    with db.unit_of_work() as session:
        return flows.release_operation(session, principal, operation_id)


# --- holds ----------------------------------------------------------------------------


@router.post("/holds", status_code=201, response_model=HoldPublic)
def create_hold(
    body: HoldCreate,
    principal: CapacityPrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Hold beds in one facility, all or nothing (409 ``beds_unavailable`` when gone)."""
    permissions.ensure_create_hold(principal)
    with db.unit_of_work() as session:
        answer, created = flows.create_hold(session, principal, body, idempotency_key)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return answer


@router.get("/holds", response_model=list[HoldPublic])
def list_holds(
    principal: CapacityPrincipal,
    session: ReadSessionDep,
    request: Request,
    response: Response,
    status: Annotated[Literal["active"] | None, Query()] = "active",
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Any:
    """The holds of the caller's own institution (active ones by default), soonest to
    expire first (then by id); the next page's cursor in headers."""
    holds, next_cursor = flows.institution_holds(
        session, principal, status=status, limit=limit, cursor=cursor
    )
    announce_next(request, response, next_cursor)
    return holds


@router.get("/holds/{hold_id}", response_model=HoldPublic)
def get_hold(hold_id: str, principal: CapacityPrincipal, session: ReadSessionDep) -> Any:
    return flows.hold(session, principal, hold_id)


@router.delete("/holds/{hold_id}", response_model=HoldPublic)
def release_hold(hold_id: str, principal: CapacityPrincipal) -> Any:
    """Give the beds back (idempotent)."""
    with db.unit_of_work() as session:
        return flows.release_hold(session, principal, hold_id)


@router.post("/holds/{hold_id}/consume", response_model=HoldPublic)
def consume_hold(hold_id: str, principal: CapacityPrincipal) -> Any:
    """Admission: the held beds become occupied."""
    with db.unit_of_work() as session:
        return flows.consume_hold(session, principal, hold_id)
