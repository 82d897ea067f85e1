"""Referral workflows: each step's remote calls around its own transactions.

A router calls one function here. Capacity is never called inside a referral transaction
(ADR 0006); where an action's capacity step *writes* (admission consumes the hold,
discharge frees the beds), the action first claims the referral in its own transaction,
so that of two racing actions only one ever reaches capacity, then runs the capacity step
(idempotent: retried safely) and completes the claim by compare-and-set (ADR 0017).
Every transaction is a ``db.unit_of_work`` opened in the thread that uses it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool

from referral import (
    agreements,
    catalogue,
    deadlines,
    disclosure,
    lifecycle,
    obligations,
    outbound,
    permissions,
    referrals,
    stays,
)
from referral import oficio as oficio_sheet
from referral.database import db
from referral.dependencies import capacity_client
from referral.exceptions import NoAgreement
from referral.lifecycle import ActionPlan, ActionResult
from referral.schemas import (
    ActionBody,
    AgreementPublic,
    FulfilBody,
    IdentityPublic,
    ObligationPublic,
    ReferralCreate,
    ReferralPublic,
    StayPublic,
)
from referral.states import CLAIMED_ACTIONS
from services.app import Runtime
from services.clients.capacity import CapacityClient
from services.clock import utcnow
from services.errors import CanalizaError, Unprocessable
from services.settings import get_settings
from services.tokens import Principal
from services.vocabulary import UserRole

log = logging.getLogger("canaliza.referral")
NOTIFIER_KEY = "referral_notifier"

# Who completes an interrupted claim: the recovery sweep, not a person.
SYSTEM = Principal(sub="system", roles=frozenset({UserRole.SERVICE}))


# --- creation and lifecycle -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def _missing_is_unprocessable(code: str, detail: str) -> AsyncIterator[None]:
    """Capacity's 404 for something a request body names becomes that request's 422."""
    try:
        yield
    except CanalizaError as exc:
        if exc.status_code != 404:
            raise
        raise Unprocessable(detail, code=code) from exc


async def create_referral(
    runtime: Runtime,
    *,
    principal: Principal,
    data: ReferralCreate,
    idempotency_key: str | None,
) -> tuple[ReferralPublic, bool]:
    """A draft referral; the facility it names must exist, the hold it names must be its
    sending institution's own (a missing one is a 422 of this request, not capacity's 404)."""
    permissions.ensure_can_create_referral(
        principal, data.sending_institution_id, onward=data.previous_referral_id is not None
    )
    capacity = capacity_client(runtime)
    async with _missing_is_unprocessable(
        "facility_not_found", f"No existe la instalación {data.facility_id}."
    ):
        await capacity.get_facility(data.facility_id)
    if data.hold_id:
        async with _missing_is_unprocessable(
            "hold_not_found", f"No existe la reserva {data.hold_id}."
        ):
            hold = await capacity.get_hold(data.hold_id)
        lifecycle.ensure_hold_fits(
            hold,
            sending_institution_id=data.sending_institution_id,
            facility_id=data.facility_id,
        )
        data = lifecycle.with_operation(data, hold)

    def write() -> tuple[ReferralPublic, bool]:
        with db.unit_of_work() as session:
            referral, created = referrals.create_referral(
                session, principal=principal, data=data, idempotency_key=idempotency_key
            )
            return referrals.referral_public(session, referral, level=referrals.FULL), created

    return await run_in_threadpool(write)


async def run_action(
    runtime: Runtime,
    *,
    principal: Principal,
    referral_id: str,
    action: str,
    body: ActionBody,
    if_match: int | None,
) -> ReferralPublic:
    """A lifecycle action with its capacity steps; see the module's docstring."""

    def plan() -> ActionPlan:
        with db.unit_of_work(write=action in CLAIMED_ACTIONS) as session:
            # One answer (404) for a referral the caller may not see and for none at all.
            referrals.visible_referral(session, principal=principal, referral_id=referral_id)
            return lifecycle.plan_action(
                session,
                principal=principal,
                referral_id=referral_id,
                action=action,
                body=body,
                if_match=if_match,
            )

    the_plan = await run_in_threadpool(plan)
    capacity = capacity_client(runtime)
    allocations: list[dict[str, Any]] | None = None
    if action == "send":
        await _check_placement(capacity, the_plan)
    elif action == "accept" and the_plan.hold_id:
        hold = await capacity.get_hold(the_plan.hold_id)
        lifecycle.ensure_hold_active(hold.status, otherwise="no se puede aceptar")
    elif the_plan.claim_token is not None:
        allocations = await _claimed_step(capacity, the_plan)

    def apply() -> tuple[ActionResult, ReferralPublic]:
        with db.unit_of_work() as session:
            result = lifecycle.apply_action(
                session,
                principal=principal,
                referral_id=referral_id,
                action=action,
                body=body,
                if_match=if_match,
                allocations=allocations,
                claim_token=the_plan.claim_token,
            )
            level = referrals.visibility(session, principal, result.referral)
            return result, referrals.referral_public(session, result.referral, level=level)

    result, public = await run_in_threadpool(apply)
    if result.refused:
        raise NoAgreement(result.refused)
    if result.release_hold:
        await release_referral_hold(
            runtime,
            referral_id=referral_id,
            hold_id=result.release_hold,
            sending_institution_id=result.referral.sending_institution_id,
        )
    return public


async def _check_placement(capacity: CapacityClient, plan: ActionPlan) -> None:
    facility = await capacity.get_facility(plan.facility_id)
    hold = await capacity.get_hold(plan.hold_id) if plan.hold_id else None
    lifecycle.check_placement(
        plan=plan,
        facility=facility,
        hold=hold,
        registered_only=not get_settings().unregistered_may_receive_referrals,
    )


async def _claimed_step(capacity: CapacityClient, plan: ActionPlan) -> list[dict[str, Any]] | None:
    """The capacity write of a claimed action. When capacity refuses (4xx) the claim is let
    go and the referral stays as it was; when it cannot be reached the claim stays, and the
    recovery sweep finishes the action once the lease is over."""
    try:
        return await _capacity_write(capacity, plan)
    except CanalizaError as exc:
        if exc.status_code < 500 and plan.claim_token:
            token = plan.claim_token

            def drop() -> None:
                with db.unit_of_work() as session:
                    lifecycle.let_go(session, referral_id=plan.referral_id, claim_token=token)

            await run_in_threadpool(drop)
        raise


async def _capacity_write(
    capacity: CapacityClient, plan: ActionPlan
) -> list[dict[str, Any]] | None:
    """Idempotent: the hold is consumed once; each pool's discharge is keyed by the referral."""
    if plan.action == "admit" and plan.hold_id:
        hold = await capacity.consume_hold(plan.hold_id, reference=plan.referral_id)
        return [a.model_dump() for a in hold.allocations]
    if plan.action == "discharge":
        for alloc in plan.allocations:
            await capacity.discharge(
                alloc["pool_id"],
                beds=int(alloc["beds"]),
                reason=f"Egreso de la canalización {plan.referral_id}",
                key=f"discharge-{plan.referral_id}-{alloc['pool_id']}",
            )
    return None


async def release_referral_hold(
    runtime: Runtime, *, referral_id: str, hold_id: str, sending_institution_id: str
) -> bool:
    """Release a declined, cancelled or expired referral's hold, only if it is the sending
    institution's own; after commit, so a failure leaves it pending for the sweep."""
    capacity = capacity_client(runtime)
    try:
        hold = await capacity.get_hold(hold_id)
        if hold.institution_id == sending_institution_id:
            await capacity.release_hold(hold_id)
        else:
            log.warning(
                "hold %s of referral %s belongs to another institution: not released",
                hold_id,
                referral_id,
            )
    except CanalizaError as exc:
        log.warning("hold %s of referral %s not released: %s", hold_id, referral_id, exc.detail)
        if exc.status_code >= 500:
            return False

    def done() -> None:
        with db.unit_of_work() as session:
            deadlines.mark_released(session, referral_id=referral_id)

    await run_in_threadpool(done)
    return True


async def recover_interrupted_claims(runtime: Runtime) -> list[str]:
    """Finish every claimed action interrupted between its two steps (its capacity step is
    idempotent, so it is run again); drop the claims capacity now refuses."""

    def stale() -> list[ActionPlan]:
        with db.unit_of_work(write=False) as session:
            return lifecycle.interrupted_claims(session)

    finished: list[str] = []
    capacity = capacity_client(runtime)
    for plan in await run_in_threadpool(stale):
        try:
            allocations = await _claimed_step(capacity, plan)
        except CanalizaError as exc:
            log.warning("claimed %s of %s not finished: %s", plan.action, plan.referral_id, exc)
            continue

        def complete(p: ActionPlan = plan, a: list[dict[str, Any]] | None = allocations) -> None:
            with db.unit_of_work() as session:
                lifecycle.apply_action(
                    session,
                    principal=SYSTEM,
                    referral_id=p.referral_id,
                    action=p.action,
                    body=ActionBody(
                        reason="Completada tras una interrupción.",
                        outcome=lifecycle.claimed_outcome(session, referral_id=p.referral_id),
                    ),
                    if_match=None,
                    allocations=a,
                    claim_token=p.claim_token,
                )

        await run_in_threadpool(complete)
        finished.append(plan.referral_id)
    return finished


# --- deadlines ------------------------------------------------------------------------------


async def run_expiry(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """One round of the deadline sweep: expire overdue referrals, release the holds left
    pending (after the commit), finish any lifecycle action interrupted between its two
    steps, and offer the next facilities to the senders of expired referrals."""

    def expire() -> list[tuple[str, str, str]]:
        with db.unit_of_work() as session:
            deadlines.expire_overdue(session, now)
        with db.unit_of_work(write=False) as session:
            return deadlines.pending_releases(session)

    released = []
    for referral_id, hold_id, sender in await run_in_threadpool(expire):
        if await release_referral_hold(
            runtime, referral_id=referral_id, hold_id=hold_id, sending_institution_id=sender
        ):
            released.append(hold_id)
    await recover_interrupted_claims(runtime)
    await offer_next_facilities(runtime)
    await warn_deadlines(runtime, now)
    return released


async def warn_deadlines(runtime: Runtime, now: datetime | None = None) -> None:
    """Warn both institutions once when an answer deadline is about to run out."""
    notifier = runtime.state.get(NOTIFIER_KEY)
    if not isinstance(notifier, outbound.Notifier):
        return
    within = timedelta(minutes=runtime.settings.deadline_warning_minutes)

    def claim() -> list[tuple[str, str, str, datetime]]:
        with db.unit_of_work() as session:
            return deadlines.claim_deadline_warnings(session, now=now, within=within)

    rows = await run_in_threadpool(claim)
    if rows:
        await run_in_threadpool(notifier.deliver, outbound.deadline_warnings(rows))


async def offer_next_facilities(runtime: Runtime) -> None:
    """Look up the next eligible facility for each new escalation (best effort)."""

    def awaiting() -> list[tuple[int, dict[str, Any]]]:
        with db.unit_of_work(write=False) as session:
            return deadlines.escalations_awaiting_offer(session)

    for escalation_id, offer in await run_in_threadpool(awaiting):
        search = offer.get("search") or {}
        try:
            answer = await capacity_client(runtime).search(
                people=search.get("people") or [], state=search.get("state")
            )
        except CanalizaError as exc:
            log.info("no facility search for escalation %s: %s", escalation_id, exc.detail)
            continue
        found = [
            {
                "facility_id": r.facility.id,
                "name": r.facility.name,
                "operator_institution_id": r.facility.operator_institution_id,
                "state": r.facility.state,
                "available": r.available,
            }
            for r in answer.results
        ]
        candidates = deadlines.next_candidates(offer, found)

        def store(eid: int = escalation_id, chosen: list[dict[str, Any]] = candidates) -> None:
            with db.unit_of_work() as session:
                deadlines.record_offer(session, escalation_id=eid, candidates=chosen)

        await run_in_threadpool(store)


# --- disclosure, documents, obligations ------------------------------------------------------


async def disclose_address(
    runtime: Runtime, *, principal: Principal, referral_id: str
) -> dict[str, Any]:
    """The facility's exact address, from capacity, to the sender after acceptance: checked
    before the call, checked again and audited after it."""

    def check() -> str:
        with db.unit_of_work(write=False) as session:
            referrals.visible_referral(session, principal=principal, referral_id=referral_id)
            referral = disclosure.check_address_disclosure(
                session, principal=principal, referral_id=referral_id
            )
            return referral.facility_id

    facility_id = await run_in_threadpool(check)
    facility = await capacity_client(runtime).get_facility(facility_id)

    def record() -> None:
        with db.unit_of_work() as session:
            disclosure.record_address_disclosure(
                session, principal=principal, referral_id=referral_id
            )

    await run_in_threadpool(record)
    return {
        "referral_id": referral_id,
        "facility_id": facility.id,
        "name": facility.name,
        "state": facility.state,
        "address": facility.address,
        "contact": facility.contact,
        "arrival_instructions": facility.arrival_instructions,
    }


async def oficio(runtime: Runtime, *, principal: Principal, referral_id: str) -> tuple[str, bytes]:
    """The oficio de canalización (file name, PDF) for either institution, once accepted."""

    def load() -> oficio_sheet.OficioData:
        with db.unit_of_work(write=False) as session:
            return disclosure.oficio_data(session, principal=principal, referral_id=referral_id)

    data = await run_in_threadpool(load)
    try:
        facility = await capacity_client(runtime).get_facility(data.referral.facility_id)
        data.facility_name = facility.name or data.facility_name
    except CanalizaError:
        log.warning("oficio %s: facility name unavailable", referral_id)
    pdf = await run_in_threadpool(oficio_sheet.oficio_pdf, data, issued_at=utcnow())
    return f"oficio-{catalogue.folio(data.referral.id)}.pdf", pdf


async def disclose_identities(*, principal: Principal, referral_id: str) -> list[IdentityPublic]:
    """The people's names to the receiver after acceptance; the disclosure is audited."""

    def work() -> list[IdentityPublic]:
        with db.unit_of_work() as session:
            referrals.visible_referral(session, principal=principal, referral_id=referral_id)
            return disclosure.disclose_identities(
                session, principal=principal, referral_id=referral_id
            )

    return await run_in_threadpool(work)


async def store_document(
    *, principal: Principal, agreement_id: str, pdf: bytes, signature: bytes | None
) -> AgreementPublic:
    """Keep an agreement's signed PDF (and check its detached signature) off the loop."""

    def work() -> AgreementPublic:
        with db.unit_of_work() as session:
            agreement = agreements.store_document(
                session,
                principal=principal,
                agreement_id=agreement_id,
                pdf=pdf,
                signature=signature,
            )
            return agreements.agreement_public(session, agreement)

    return await run_in_threadpool(work)


def fulfil_obligation(
    *, principal: Principal, referral_id: str, obligation_id: str, body: FulfilBody
) -> ObligationPublic:
    """An institution attends its obligation (call from a sync handler's thread)."""
    with db.unit_of_work() as session:
        referrals.visible_referral(session, principal=principal, referral_id=referral_id)
        obligation = obligations.fulfil_obligation(
            session,
            principal=principal,
            referral_id=referral_id,
            obligation_id=obligation_id,
            body=body,
        )
        return ObligationPublic.of(obligation)


# --- stays (ADR 0022) ---------------------------------------------------------------------------


async def stay(runtime: Runtime, *, principal: Principal, referral_id: str) -> StayPublic:
    """A referral's stay against its facility's maximum (read from capacity, outside any
    transaction)."""

    def load() -> str:
        with db.unit_of_work(write=False) as session:
            referral = referrals.visible_referral(
                session, principal=principal, referral_id=referral_id
            )
            return referral.facility_id

    facility_id = await run_in_threadpool(load)
    try:
        max_stay_days = (await capacity_client(runtime).get_facility(facility_id)).max_stay_days
    except CanalizaError as exc:
        if exc.status_code != 404:
            raise
        max_stay_days = None  # a facility gone from the roster: the counter without a limit

    def view() -> StayPublic:
        with db.unit_of_work(write=False) as session:
            referral = referrals.visible_referral(
                session, principal=principal, referral_id=referral_id
            )
            return stays.stay_view(session, referral, max_stay_days=max_stay_days)

    return await run_in_threadpool(view)
