"""HTTP routes of the referral service (thin: parse, authorise, call one function, answer)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from referral import (
    agreements,
    deadlines,
    flows,
    importer,
    institutions,
    listing,
    permissions,
    placements,
    referrals,
    reports,
)
from referral.database import db
from referral.dependencies import OptionalLimit, ReadSessionDep
from referral.schemas import (
    ActionBody,
    AgreementAlert,
    AgreementCreate,
    AgreementPublic,
    FulfilBody,
    HistoryImport,
    HistoryImportResult,
    IdentityPublic,
    InstitutionCreate,
    InstitutionImport,
    InstitutionImportResult,
    InstitutionPublic,
    InstitutionUpdate,
    ObligationPublic,
    OutcomeLine,
    PathStep,
    ReasonBody,
    ReferralCreate,
    ReferralPublic,
    SignBody,
)
from services.app import get_runtime
from services.dependencies import IfMatchDep
from services.errors import BadRequest
from services.pages import PageCursor, announce_next
from services.security import PrincipalDep, require_roles
from services.validation import SafeText
from services.vocabulary import UserRole

router = APIRouter(prefix="/api/v1", tags=["referral"])

Action = Literal["send", "accept", "decline", "in_transit", "admit", "discharge", "cancel"]


# --- institutions ---------------------------------------------------------------------------


@router.get("/institutions", response_model=list[InstitutionPublic])
def list_institutions(
    request: Request,
    response: Response,
    session: ReadSessionDep,
    principal: PrincipalDep,
    type: Annotated[SafeText | None, Query(max_length=20)] = None,
    limit: OptionalLimit = None,
    cursor: PageCursor = None,
) -> list[InstitutionPublic]:
    """By name; with ``limit``, a page at a time (the next one in ``X-Next-Cursor``)."""
    permissions.ensure_can_read_reference(principal)
    found, next_cursor = institutions.list_institutions(
        session, type=type, limit=limit, cursor=cursor
    )
    announce_next(request, response, next_cursor)
    return [institutions.institution_public(session, i) for i in found]


@router.post("/institutions", status_code=201, response_model=InstitutionPublic)
def create_institution(body: InstitutionCreate, principal: PrincipalDep) -> InstitutionPublic:
    with db.unit_of_work() as session:
        inst = institutions.create_institution(session, principal=principal, data=body)
        return institutions.institution_public(session, inst)


@router.post(
    "/institutions/import",
    response_model=InstitutionImportResult,
    # refuse other callers before reading a batch of up to 1,000 institutions
    dependencies=[Depends(require_roles(UserRole.SERVICE))],
)
def import_institutions(
    body: InstitutionImport, principal: PrincipalDep
) -> InstitutionImportResult:
    """Institutions with their ids, in one transaction (service token only): a bulk load.

    Idempotent: ids already stored are counted, not written again.
    """
    with db.unit_of_work() as session:
        return institutions.import_institutions(
            session, principal=principal, items=body.institutions
        )


@router.get("/institutions/{institution_id}", response_model=InstitutionPublic)
def get_institution(
    institution_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> InstitutionPublic:
    permissions.ensure_can_read_reference(principal)
    inst = institutions.get_institution(session, institution_id=institution_id)
    return institutions.institution_public(session, inst)


@router.patch("/institutions/{institution_id}", response_model=InstitutionPublic)
def update_institution(
    institution_id: str, body: InstitutionUpdate, principal: PrincipalDep
) -> InstitutionPublic:
    with db.unit_of_work() as session:
        inst = institutions.update_institution(
            session, principal=principal, institution_id=institution_id, data=body
        )
        return institutions.institution_public(session, inst)


# --- agreements -----------------------------------------------------------------------------


@router.get("/agreements", response_model=list[AgreementPublic])
def list_agreements(
    request: Request,
    response: Response,
    session: ReadSessionDep,
    principal: PrincipalDep,
    limit: OptionalLimit = None,
    cursor: PageCursor = None,
) -> list[AgreementPublic]:
    """By number; with ``limit``, a page at a time (the next one in ``X-Next-Cursor``)."""
    permissions.ensure_can_read_reference(principal)
    found, next_cursor = agreements.list_agreements(session, limit=limit, cursor=cursor)
    announce_next(request, response, next_cursor)
    return [agreements.agreement_public(session, a) for a in found]


@router.post("/agreements", status_code=201, response_model=AgreementPublic)
def create_agreement(body: AgreementCreate, principal: PrincipalDep) -> AgreementPublic:
    with db.unit_of_work() as session:
        agreement = agreements.create_agreement(session, principal=principal, data=body)
        return agreements.agreement_public(session, agreement)


@router.get("/agreement-alerts", response_model=list[AgreementAlert])
def agreement_alerts(session: ReadSessionDep, principal: PrincipalDep) -> list[AgreementAlert]:
    """Urgent placements along no agreement with another institution, while none binds the
    pair: formalise one (ADR 0021)."""
    return placements.agreement_alerts(session, principal=principal)


@router.get("/agreements/{agreement_id}", response_model=AgreementPublic)
def get_agreement(
    agreement_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> AgreementPublic:
    permissions.ensure_can_read_reference(principal)
    agreement = agreements.get_agreement(session, agreement_id=agreement_id)
    return agreements.agreement_public(session, agreement)


@router.post("/agreements/{agreement_id}/ready", response_model=AgreementPublic)
def ready_agreement(agreement_id: str, principal: PrincipalDep) -> AgreementPublic:
    with db.unit_of_work() as session:
        agreement = agreements.mark_ready(session, principal=principal, agreement_id=agreement_id)
        return agreements.agreement_public(session, agreement)


@router.post("/agreements/{agreement_id}/sign", response_model=AgreementPublic)
def sign_agreement(agreement_id: str, body: SignBody, principal: PrincipalDep) -> AgreementPublic:
    with db.unit_of_work() as session:
        agreement = agreements.sign_agreement(
            session,
            principal=principal,
            agreement_id=agreement_id,
            institution_id=body.institution_id,
        )
        return agreements.agreement_public(session, agreement)


@router.post("/agreements/{agreement_id}/revoke", response_model=AgreementPublic)
def revoke_agreement(
    agreement_id: str, principal: PrincipalDep, body: ReasonBody | None = None
) -> AgreementPublic:
    with db.unit_of_work() as session:
        agreement = agreements.revoke_agreement(
            session,
            principal=principal,
            agreement_id=agreement_id,
            reason=body.reason if body else None,
        )
        return agreements.agreement_public(session, agreement)


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
    return await flows.store_document(
        principal=principal, agreement_id=agreement_id, pdf=pdf, signature=signature
    )


# --- referrals ------------------------------------------------------------------------------


# The statistics service owns /reports/{name}; this is the referral service's own view.
@router.get("/referrals/reports/outcomes", response_model=list[OutcomeLine])
def outcomes_report(session: ReadSessionDep, principal: PrincipalDep) -> list[OutcomeLine]:
    return reports.outcomes_report(session, principal=principal)


@router.post("/referrals", status_code=201, response_model=ReferralPublic)
async def create_referral(
    body: ReferralCreate,
    request: Request,
    principal: PrincipalDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ReferralPublic:
    public, created = await flows.create_referral(
        get_runtime(request.app), principal=principal, data=body, idempotency_key=idempotency_key
    )
    if not created:
        response.status_code = 200
    return public


@router.post(
    "/referrals/import",
    response_model=HistoryImportResult,
    # refuse other callers before reading a batch of up to 2,000 referrals
    dependencies=[Depends(require_roles(UserRole.SERVICE))],
)
def import_history(body: HistoryImport, principal: PrincipalDep) -> HistoryImportResult:
    """Historical referrals in their final states, in one transaction (service token only).

    Idempotent: referrals already stored are counted, not written again.
    """
    # Checked and built in a read, written in the write: SQLite's writers take turns, and a
    # batch built outside the write lock overlaps the database writing the previous one.
    with db.unit_of_work(write=False) as read:
        prepared = importer.prepare_history(read, principal=principal, referrals=body.referrals)
    with db.unit_of_work() as session:
        return importer.store_history(session, prepared, principal=principal)


@router.get("/referrals", response_model=list[ReferralPublic])
def list_referrals(
    request: Request,
    response: Response,
    session: ReadSessionDep,
    principal: PrincipalDep,
    status: Annotated[
        list[SafeText] | None,
        Query(description="One status, or several (repeated or comma-separated)."),
    ] = None,
    operation_id: Annotated[SafeText | None, Query(max_length=36)] = None,
    sending_institution_id: Annotated[SafeText | None, Query(max_length=36)] = None,
    receiving_institution_id: Annotated[SafeText | None, Query(max_length=36)] = None,
    q: Annotated[
        SafeText | None,
        Query(
            max_length=100,
            description="Words, each found in the folio (CAN-…) or id, the case-file "
            "reference, the decline reason or either institution's name.",
        ),
    ] = None,
    created_from: Annotated[SafeText | None, Query(max_length=40)] = None,
    created_to: Annotated[SafeText | None, Query(max_length=40)] = None,
    limit: OptionalLimit = None,
    cursor: PageCursor = None,
) -> list[ReferralPublic]:
    """The referrals the caller may see, newest first: without ``limit`` the newest 200,
    the next page (if any) in ``X-Next-Cursor`` and ``Link: <…>; rel="next"``."""
    filters = listing.parse_filters(
        statuses=status or (),
        operation_id=operation_id,
        sending_institution_id=sending_institution_id,
        receiving_institution_id=receiving_institution_id,
        q=q,
        created_from=created_from,
        created_to=created_to,
    )
    found, next_cursor = listing.list_referrals(
        session, principal=principal, filters=filters, limit=limit, cursor=cursor
    )
    announce_next(request, response, next_cursor)
    return found


@router.get("/referrals/{referral_id}", response_model=ReferralPublic)
def get_referral(
    referral_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> ReferralPublic:
    return referrals.referral_view(session, principal=principal, referral_id=referral_id)


@router.get("/referrals/{referral_id}/path", response_model=list[PathStep])
def referral_path(
    referral_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> list[PathStep]:
    """The person's path: this referral and the onward transfers before and after it."""
    referral = referrals.visible_referral(session, principal=principal, referral_id=referral_id)
    return placements.path_of(session, referral=referral)


@router.get("/referrals/{referral_id}/escalations")
def list_escalations(
    referral_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> list[dict[str, Any]]:
    referral = referrals.visible_referral(session, principal=principal, referral_id=referral_id)
    return deadlines.escalations(session, referral_id=referral.id)


@router.get("/referrals/{referral_id}/identities", response_model=list[IdentityPublic])
async def disclose_identities(referral_id: str, principal: PrincipalDep) -> list[IdentityPublic]:
    """Names of the people: to the receiving institution, after acceptance (audited)."""
    return await flows.disclose_identities(principal=principal, referral_id=referral_id)


@router.get("/referrals/{referral_id}/facility-address")
async def disclose_address(
    referral_id: str, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """The facility's exact address: to the sender, after acceptance (audited)."""
    return await flows.disclose_address(
        get_runtime(request.app), principal=principal, referral_id=referral_id
    )


@router.get(
    "/referrals/{referral_id}/oficio",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def referral_oficio(referral_id: str, request: Request, principal: PrincipalDep) -> Response:
    """The oficio de canalización (PDF): to the two institutions, once accepted."""
    name, pdf = await flows.oficio(
        get_runtime(request.app), principal=principal, referral_id=referral_id
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


@router.post(
    "/referrals/{referral_id}/obligations/{obligation_id}/fulfil",
    response_model=ObligationPublic,
)
def fulfil_obligation(
    referral_id: str,
    obligation_id: str,
    principal: PrincipalDep,
    body: FulfilBody | None = None,
) -> ObligationPublic:
    return flows.fulfil_obligation(
        principal=principal,
        referral_id=referral_id,
        obligation_id=obligation_id,
        body=body or FulfilBody(),
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
    """A lifecycle action; its capacity steps are run by :func:`referral.flows.run_action`."""
    return await flows.run_action(
        get_runtime(request.app),
        principal=principal,
        referral_id=referral_id,
        action=action,
        body=body or ActionBody(),
        if_match=if_match,
    )
