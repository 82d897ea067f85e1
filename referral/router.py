"""HTTP routes of the referral service (thin: parse, authorise, call the service)."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from referral import permissions, service
from referral.dependencies import IfMatchDep, SessionDep, capacity_client, unit_of_work
from referral.exceptions import NoAgreement
from referral.schemas import (
    ActionBody,
    AgreementCreate,
    AgreementPublic,
    FulfilBody,
    IdentityPublic,
    InstitutionCreate,
    InstitutionPublic,
    InstitutionUpdate,
    ObligationPublic,
    OutcomeLine,
    ReasonBody,
    ReferralCreate,
    ReferralPublic,
    SignBody,
)
from services.app import get_runtime
from services.errors import BadRequest, CanalizaError
from services.security import PrincipalDep
from services.settings import get_settings

log = logging.getLogger("canaliza.referral")

router = APIRouter(prefix="/api/v1", tags=["referral"])

Action = Literal["send", "accept", "decline", "in_transit", "admit", "discharge", "cancel"]


# --- institutions ---------------------------------------------------------------------------


@router.get("/institutions", response_model=list[InstitutionPublic])
def list_institutions(
    session: SessionDep,
    principal: PrincipalDep,
    type: Annotated[str | None, Query(max_length=20)] = None,
) -> list[InstitutionPublic]:
    permissions.can_read_reference(principal)
    return [
        service.institution_public(session, i)
        for i in service.list_institutions(session, type=type)
    ]


@router.post("/institutions", status_code=201, response_model=InstitutionPublic)
def create_institution(
    body: InstitutionCreate, session: SessionDep, principal: PrincipalDep
) -> InstitutionPublic:
    inst = service.create_institution(session, principal=principal, data=body)
    return service.institution_public(session, inst)


@router.get("/institutions/{institution_id}", response_model=InstitutionPublic)
def get_institution(
    institution_id: str, session: SessionDep, principal: PrincipalDep
) -> InstitutionPublic:
    permissions.can_read_reference(principal)
    return service.institution_public(
        session, service.get_institution(session, institution_id=institution_id)
    )


@router.patch("/institutions/{institution_id}", response_model=InstitutionPublic)
def update_institution(
    institution_id: str, body: InstitutionUpdate, session: SessionDep, principal: PrincipalDep
) -> InstitutionPublic:
    inst = service.update_institution(
        session, principal=principal, institution_id=institution_id, data=body
    )
    return service.institution_public(session, inst)


# --- agreements -----------------------------------------------------------------------------


@router.get("/agreements", response_model=list[AgreementPublic])
def list_agreements(session: SessionDep, principal: PrincipalDep) -> list[AgreementPublic]:
    permissions.can_read_reference(principal)
    return [service.agreement_public(session, a) for a in service.list_agreements(session)]


@router.post("/agreements", status_code=201, response_model=AgreementPublic)
def create_agreement(
    body: AgreementCreate, session: SessionDep, principal: PrincipalDep
) -> AgreementPublic:
    agreement = service.create_agreement(session, principal=principal, data=body)
    return service.agreement_public(session, agreement)


@router.get("/agreements/{agreement_id}", response_model=AgreementPublic)
def get_agreement(
    agreement_id: str, session: SessionDep, principal: PrincipalDep
) -> AgreementPublic:
    permissions.can_read_reference(principal)
    return service.agreement_public(
        session, service.get_agreement(session, agreement_id=agreement_id)
    )


@router.post("/agreements/{agreement_id}/ready", response_model=AgreementPublic)
def ready_agreement(
    agreement_id: str, session: SessionDep, principal: PrincipalDep
) -> AgreementPublic:
    agreement = service.mark_ready(session, principal=principal, agreement_id=agreement_id)
    return service.agreement_public(session, agreement)


@router.post("/agreements/{agreement_id}/sign", response_model=AgreementPublic)
def sign_agreement(
    agreement_id: str, body: SignBody, session: SessionDep, principal: PrincipalDep
) -> AgreementPublic:
    agreement = service.sign_agreement(
        session, principal=principal, agreement_id=agreement_id, institution_id=body.institution_id
    )
    return service.agreement_public(session, agreement)


@router.post("/agreements/{agreement_id}/revoke", response_model=AgreementPublic)
def revoke_agreement(
    agreement_id: str, session: SessionDep, principal: PrincipalDep, body: ReasonBody | None = None
) -> AgreementPublic:
    agreement = service.revoke_agreement(
        session,
        principal=principal,
        agreement_id=agreement_id,
        reason=body.reason if body else None,
    )
    return service.agreement_public(session, agreement)


@router.post(
    "/agreements/{agreement_id}/document",
    response_model=AgreementPublic,
    openapi_extra={"requestBody": {"content": {"application/pdf": {}}, "required": True}},
)
async def upload_document(
    agreement_id: str,
    request: Request,
    principal: PrincipalDep,
    x_cms_signature: Annotated[str | None, Header(max_length=65536)] = None,
) -> AgreementPublic:
    """The signed PDF as the body; an optional detached CMS signature, base64, in a header."""
    pdf = await request.body()
    signature = None
    if x_cms_signature:
        try:
            signature = base64.b64decode(x_cms_signature, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("X-CMS-Signature no es base64.", code="bad_signature") from exc

    def work() -> AgreementPublic:
        with unit_of_work() as session:
            agreement = service.store_document(
                session,
                principal=principal,
                agreement_id=agreement_id,
                pdf=pdf,
                signature=signature,
            )
            return service.agreement_public(session, agreement)

    return await run_in_threadpool(work)


# --- referrals ------------------------------------------------------------------------------


@router.get("/referrals/reports/outcomes", response_model=list[OutcomeLine])
@router.get("/reports/referral-outcomes", response_model=list[OutcomeLine])
def outcomes_report(session: SessionDep, principal: PrincipalDep) -> list[OutcomeLine]:
    return service.outcomes_report(session, principal=principal)


@router.post("/referrals", status_code=201, response_model=ReferralPublic)
def create_referral(
    body: ReferralCreate,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ReferralPublic:
    referral, created = service.create_referral(
        session, principal=principal, data=body, idempotency_key=idempotency_key
    )
    if not created:
        response.status_code = 200
    return service.referral_public(session, referral, level="full")


@router.get("/referrals", response_model=list[ReferralPublic])
def list_referrals(
    session: SessionDep,
    principal: PrincipalDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> list[ReferralPublic]:
    return [
        service.referral_public(session, r, level=level)
        for r, level in service.list_referrals(session, principal=principal, status=status)
    ]


@router.get("/referrals/{referral_id}", response_model=ReferralPublic)
def get_referral(referral_id: str, session: SessionDep, principal: PrincipalDep) -> ReferralPublic:
    referral = service.get_referral(session, referral_id=referral_id)
    level = service.visibility(session, principal, referral)
    return service.referral_public(session, referral, level=level)


@router.get("/referrals/{referral_id}/escalations")
def list_escalations(
    referral_id: str, session: SessionDep, principal: PrincipalDep
) -> list[dict[str, Any]]:
    referral = service.get_referral(session, referral_id=referral_id)
    service.visibility(session, principal, referral)
    return [
        {"kind": e.kind, "offer": e.offer, "at": e.at}
        for e in service.escalations(session, referral_id=referral.id)
    ]


@router.get("/referrals/{referral_id}/identities", response_model=list[IdentityPublic])
async def disclose_identities(referral_id: str, principal: PrincipalDep) -> list[IdentityPublic]:
    """Names of the people: to the receiving institution, after acceptance (audited)."""

    def work() -> list[IdentityPublic]:
        with unit_of_work() as session:
            return service.disclose_identities(
                session, principal=principal, referral_id=referral_id
            )

    return await run_in_threadpool(work)


@router.get("/referrals/{referral_id}/facility-address")
async def disclose_address(
    referral_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """The facility's exact address: to the sender, after acceptance (audited)."""

    def check() -> tuple[str, int]:
        with unit_of_work(write=False) as session:
            r = service.check_address_disclosure(
                session, principal=principal, referral_id=referral_id
            )
            return r.facility_id, r.version

    facility_id, _ = await run_in_threadpool(check)
    facility = await capacity_client(get_runtime(request.app)).get_facility(facility_id)

    def record() -> None:
        with unit_of_work() as session:
            referral = service.check_address_disclosure(
                session, principal=principal, referral_id=referral_id
            )
            service.record_disclosure(
                session, principal=principal, referral=referral, what="address"
            )

    await run_in_threadpool(record)
    return {
        "referral_id": referral_id,
        "facility_id": facility.id,
        "name": facility.name,
        "state": facility.state,
        "address": facility.address,
    }


@router.post(
    "/referrals/{referral_id}/obligations/{obligation_id}/fulfil",
    response_model=ObligationPublic,
)
def fulfil_obligation(
    referral_id: str,
    obligation_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    body: FulfilBody | None = None,
) -> ObligationPublic:
    from referral import catalogue

    o = service.fulfil_obligation(
        session,
        principal=principal,
        referral_id=referral_id,
        obligation_id=obligation_id,
        body=body or FulfilBody(),
    )
    return ObligationPublic(
        id=o.id,
        kind=o.kind,
        label=catalogue.OBLIGATIONS[o.kind],
        institution_id=o.institution_id,
        status=o.status,
        humanitarian_visa_status=o.humanitarian_visa_status,
        note=o.note,
        fulfilled_at=o.fulfilled_at,
    )


@router.post("/referrals/{referral_id}/{action}", response_model=ReferralPublic)
async def act_on_referral(
    referral_id: str,
    action: Action,
    request: Request,
    principal: PrincipalDep,
    if_match: IfMatchDep,
    body: ActionBody | None = None,
) -> ReferralPublic:
    """A lifecycle action. Capacity is called outside the referral's transaction:
    admission consumes the hold and discharge writes the ledger before the commit;
    decline and cancel release the hold after it."""
    body = body or ActionBody()

    def plan() -> service.ActionPlan:
        with unit_of_work(write=False) as session:
            return service.plan_action(
                session,
                principal=principal,
                referral_id=referral_id,
                action=action,
                body=body,
                if_match=if_match,
            )

    the_plan = await run_in_threadpool(plan)
    capacity = capacity_client(get_runtime(request.app))
    allocations: list[dict[str, Any]] | None = None
    if action == "send":
        facility = await capacity.get_facility(the_plan.facility_id)
        hold = await capacity.get_hold(the_plan.hold_id) if the_plan.hold_id else None
        service.check_placement(
            plan=the_plan,
            facility_operator_id=facility.operator_institution_id,
            facility_status=facility.status,
            hold_status=hold.status if hold else None,
            hold_facility_id=hold.facility_id if hold else None,
            facility_registration=facility.registration_status,
            registered_only=not get_settings().unregistered_may_receive_referrals,
        )
    elif action == "accept" and the_plan.hold_id:
        hold = await capacity.get_hold(the_plan.hold_id)
        if hold.status != "active":
            raise service.InvalidTransition(
                f"La reserva de camas ya no está activa ({hold.status}); no se puede aceptar.",
                code="hold_not_active",
            )
    elif action == "admit" and the_plan.hold_id:
        hold = await capacity.consume_hold(the_plan.hold_id, reference=referral_id)
        allocations = [a.model_dump() for a in hold.allocations]
    elif action == "discharge":
        for alloc in the_plan.allocations:
            await capacity.discharge(
                alloc["pool_id"],
                beds=int(alloc["beds"]),
                reason=f"Egreso de la canalización {referral_id}",
            )

    def apply() -> tuple[service.ActionResult, ReferralPublic]:
        with unit_of_work() as session:
            result = service.apply_action(
                session,
                principal=principal,
                referral_id=referral_id,
                action=action,
                body=body,
                if_match=if_match,
                allocations=allocations,
            )
            level = service.visibility(session, principal, result.referral)
            return result, service.referral_public(session, result.referral, level=level)

    result, public = await run_in_threadpool(apply)
    if result.refused:
        raise NoAgreement(result.refused)
    if result.release_hold:
        await _release(get_runtime(request.app), referral_id, result.release_hold)
    return public


async def _release(runtime: Any, referral_id: str, hold_id: str) -> None:
    """Release a hold after commit; if capacity is unreachable the hold's TTL frees it."""
    try:
        await capacity_client(runtime).release_hold(hold_id)
    except CanalizaError as exc:
        log.warning("hold %s of referral %s not released: %s", hold_id, referral_id, exc.detail)
