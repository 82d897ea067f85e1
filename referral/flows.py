"""Referral workflows that span services: each step's remote calls around its transactions.

A router calls one function here. Capacity is never called inside a referral transaction
(ADR 0006); where an action's capacity step *writes* (admission consumes the hold,
discharge frees the beds), the action first claims the referral in its own transaction,
so that of two racing actions only one ever reaches capacity, then runs the capacity step
(idempotent: retried safely) and completes the claim by compare-and-set (ADR 0017).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool

from referral import permissions, service
from referral.dependencies import capacity_client, unit_of_work
from referral.exceptions import NoAgreement
from referral.models import Referral
from referral.schemas import ActionBody, ReferralCreate, ReferralPublic
from services.app import Runtime
from services.clients.capacity import CapacityClient, Hold
from services.errors import CanalizaError, Forbidden, Unprocessable
from services.settings import get_settings
from services.tokens import Principal

log = logging.getLogger("canaliza.referral")

# Who completes an interrupted claim: the recovery sweep, not a person.
SYSTEM = Principal(sub="system", roles=frozenset({"service"}))


class HoldOfAnotherInstitution(Forbidden):
    code = "hold_of_another_institution"


def ensure_hold_fits(hold: Hold, *, sending_institution_id: str, facility_id: str) -> None:
    """A referral may name only a hold its own (sending) institution made, for its facility."""
    if hold.institution_id != sending_institution_id:
        raise HoldOfAnotherInstitution(
            "La reserva de camas indicada no es de la institución remitente; solo pueden "
            "usarse reservas propias."
        )
    if hold.facility_id and hold.facility_id != facility_id:
        raise Unprocessable("La reserva de camas es de otro lugar.", code="hold_for_other_facility")


async def create_referral(
    runtime: Runtime,
    *,
    principal: Principal,
    data: ReferralCreate,
    idempotency_key: str | None,
) -> tuple[ReferralPublic, bool]:
    """A draft referral; the hold it names must be its sending institution's own."""
    if data.hold_id:
        permissions.can_create_referral(principal, data.sending_institution_id)
        hold = await capacity_client(runtime).get_hold(data.hold_id)
        ensure_hold_fits(
            hold,
            sending_institution_id=data.sending_institution_id,
            facility_id=data.facility_id,
        )

    def write() -> tuple[ReferralPublic, bool]:
        with unit_of_work() as session:
            referral, created = service.create_referral(
                session, principal=principal, data=data, idempotency_key=idempotency_key
            )
            return service.referral_public(session, referral, level="full"), created

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

    def plan() -> service.ActionPlan:
        with unit_of_work(write=action in service.CLAIMED_ACTIONS) as session:
            return service.plan_action(
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
        if hold.status != "active":
            raise service.InvalidTransition(
                f"La reserva de camas ya no está activa ({hold.status}); no se puede aceptar.",
                code="hold_not_active",
            )
    elif the_plan.claim_token is not None:
        allocations = await _claimed_step(capacity, the_plan)

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
                claim_token=the_plan.claim_token,
            )
            level = service.visibility(session, principal, result.referral)
            return result, service.referral_public(session, result.referral, level=level)

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


async def _check_placement(capacity: CapacityClient, plan: service.ActionPlan) -> None:
    facility = await capacity.get_facility(plan.facility_id)
    hold = await capacity.get_hold(plan.hold_id) if plan.hold_id else None
    if hold is not None:
        ensure_hold_fits(
            hold,
            sending_institution_id=plan.sending_institution_id,
            facility_id=plan.facility_id,
        )
    service.check_placement(
        plan=plan,
        facility_operator_id=facility.operator_institution_id,
        facility_status=facility.status,
        hold_status=hold.status if hold else None,
        hold_facility_id=hold.facility_id if hold else None,
        facility_registration=facility.registration_status,
        registered_only=not get_settings().unregistered_may_receive_referrals,
    )


async def _claimed_step(
    capacity: CapacityClient, plan: service.ActionPlan
) -> list[dict[str, Any]] | None:
    """The capacity write of a claimed action. When capacity refuses (4xx) the claim is let
    go and the referral stays as it was; when it cannot be reached the claim stays, and the
    recovery sweep finishes the action once the lease is over."""
    try:
        return await _capacity_write(capacity, plan)
    except CanalizaError as exc:
        if exc.status_code < 500 and plan.claim_token:
            token = plan.claim_token

            def drop() -> None:
                with unit_of_work() as session:
                    service.let_go(session, referral_id=plan.referral_id, claim_token=token)

            await run_in_threadpool(drop)
        raise


async def _capacity_write(
    capacity: CapacityClient, plan: service.ActionPlan
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
        with unit_of_work() as session:
            service.mark_released(session, referral_id=referral_id)

    await run_in_threadpool(done)
    return True


async def recover_interrupted_claims(runtime: Runtime) -> list[str]:
    """Finish every claimed action interrupted between its two steps (its capacity step is
    idempotent, so it is run again); drop the claims capacity now refuses."""

    def stale() -> list[service.ActionPlan]:
        with unit_of_work(write=False) as session:
            return service.interrupted_claims(session)

    finished: list[str] = []
    capacity = capacity_client(runtime)
    for plan in await run_in_threadpool(stale):
        try:
            allocations = await _claimed_step(capacity, plan)
        except CanalizaError as exc:
            log.warning("claimed %s of %s not finished: %s", plan.action, plan.referral_id, exc)
            continue

        def complete(p: service.ActionPlan = plan, a: Any = allocations) -> None:
            with unit_of_work() as session:
                service.apply_action(
                    session,
                    principal=SYSTEM,
                    referral_id=p.referral_id,
                    action=p.action,
                    body=ActionBody(
                        reason="Completada tras una interrupción.",
                        outcome=_recorded_outcome(session, p.referral_id),
                    ),
                    if_match=None,
                    allocations=a,
                    claim_token=p.claim_token,
                )

        await run_in_threadpool(complete)
        finished.append(plan.referral_id)
    return finished


def _recorded_outcome(session: Any, referral_id: str) -> Any:
    """The outcome an interrupted discharge was claimed with."""
    referral = session.get(Referral, referral_id)
    return referral.outcome if referral and referral.outcome else "other"
