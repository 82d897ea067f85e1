"""The referral lifecycle: checks, claims and transitions by compare-and-set.

The capacity steps around an action are run by ``referral.flows``; here is only what
happens inside the referral's own transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import case, update
from sqlmodel import Session, col, select

from referral import events, permissions, records
from referral.agreements import find_binding_agreement
from referral.database import outbox
from referral.exceptions import (
    ActionInProgress,
    HoldNotActive,
    HoldOfAnotherInstitution,
    InvalidTransition,
    StaleVersion,
)
from referral.models import Referral, ReferralHistory, RefusedAttempt
from referral.records import get_referral, people_of
from referral.schemas import ActionBody
from referral.schemas import Outcome as OutcomeCode
from referral.states import (
    CLAIM_LEASE,
    CLAIMED_ACTIONS,
    RELEASING_ACTIONS,
    RESPONSE_DEADLINES,
    TRANSITIONS,
)
from services.clients.capacity import Facility, Hold
from services.clock import as_utc, utcnow
from services.contracts import emit
from services.errors import BadRequest, Conflict, Unprocessable
from services.ids import new_id
from services.tokens import Principal
from services.vocabulary import (
    FacilityStatus,
    HoldStatus,
    ReferralStatus,
    RegistrationStatus,
    UserRole,
)


@dataclass
class ActionPlan:
    """What the flow must do remotely around an action's transaction."""

    referral_id: str
    action: str
    receiving_institution_id: str
    hold_id: str | None
    facility_id: str
    allocations: list[dict[str, Any]] = field(default_factory=list)
    sending_institution_id: str = ""
    claim_token: str | None = None  # set when the action claimed the referral


@dataclass
class ActionResult:
    referral: Referral
    refused: str | None = None  # a sentence: the send was refused for want of an agreement
    release_hold: str | None = None


def ensure_hold_active(hold_status: str | None, *, otherwise: str) -> None:
    """A referral travels (and is accepted) only on a live hold; ``otherwise`` says what the
    caller can do about it."""
    if hold_status is not None and hold_status != HoldStatus.ACTIVE:
        raise HoldNotActive(f"La reserva de camas ya no está activa ({hold_status}); {otherwise}.")


def ensure_hold_fits(hold: Hold, *, sending_institution_id: str, facility_id: str) -> None:
    """A referral may name only a hold its own (sending) institution made, for its facility."""
    if hold.institution_id != sending_institution_id:
        raise HoldOfAnotherInstitution(
            "La reserva de camas indicada no es de la institución remitente; solo pueden "
            "usarse reservas propias."
        )
    if hold.facility_id and hold.facility_id != facility_id:
        raise Unprocessable("La reserva de camas es de otro lugar.", code="hold_for_other_facility")


def check_placement(
    *, plan: ActionPlan, facility: Facility, hold: Hold | None, registered_only: bool
) -> None:
    """Before sending: the hold is the sender's own, for this facility, and live; the
    facility is active and run by the receiver; and, when unregistered facilities may not
    receive referrals, it is on SEGOB's roster."""
    if hold is not None:
        ensure_hold_fits(
            hold, sending_institution_id=plan.sending_institution_id, facility_id=plan.facility_id
        )
    facility_operator_id, facility_status = facility.operator_institution_id, facility.status
    if facility_operator_id and facility_operator_id != plan.receiving_institution_id:
        raise Unprocessable(
            "El lugar indicado no lo opera la institución receptora.",
            code="facility_not_operated_by_receiver",
        )
    if facility_status and facility_status != FacilityStatus.ACTIVE:
        raise Conflict(
            f"El lugar indicado no está activo ({facility_status}); no recibe canalizaciones.",
            code="facility_not_active",
        )
    if registered_only and facility.registration_status != RegistrationStatus.REGISTERED:
        raise Conflict(
            "El lugar indicado no está registrado en el padrón de SEGOB; no recibe "
            "canalizaciones mientras no lo esté.",
            code="facility_not_registered",
        )
    ensure_hold_active(hold.status if hold else None, otherwise="reserve de nuevo")


def _check_action(
    *,
    principal: Principal,
    referral: Referral,
    action: str,
    body: ActionBody,
    if_match: int | None,
    claim_token: str | None = None,
) -> None:
    if action not in TRANSITIONS:
        raise BadRequest(f"Acción desconocida: {action}.", code="unknown_action")
    if referral.pending_token is not None and referral.pending_token != claim_token:
        raise ActionInProgress(
            "Otra acción sobre esta canalización está en curso; vuelva a consultarla en unos "
            "segundos."
        )
    if not principal.has(UserRole.SERVICE):
        permissions.ensure_can_act(
            principal,
            action,
            sending_institution_id=referral.sending_institution_id,
            receiving_institution_id=referral.receiving_institution_id,
        )
    if if_match is not None and if_match != referral.version:
        raise StaleVersion(
            f"La canalización va en la versión {referral.version}, no en la {if_match}; "
            "vuelva a consultarla.",
        )
    allowed, _ = TRANSITIONS[action]
    if referral.status not in allowed:
        label = ReferralStatus(referral.status).label.lower()
        raise InvalidTransition(
            f"No se puede «{action}» una canalización en estado «{label}».",
        )
    if (
        action in ("accept", "decline")
        and referral.response_due_at is not None
        and as_utc(referral.response_due_at) < utcnow()
    ):
        raise InvalidTransition(
            "El plazo para responder esta canalización ya venció; la remitente buscará otro lugar.",
            code="response_deadline_passed",
        )
    if action == "decline" and not (body.reason and body.reason.strip()):
        raise Unprocessable(
            "Para rechazar una canalización hay que indicar el motivo.", code="reason_required"
        )
    if action == "discharge" and body.outcome is None:
        raise Unprocessable("El egreso requiere el desenlace (outcome).", code="outcome_required")


def _plan_of(referral: Referral, action: str, claim_token: str | None) -> ActionPlan:
    return ActionPlan(
        referral_id=referral.id,
        action=action,
        receiving_institution_id=referral.receiving_institution_id,
        hold_id=referral.hold_id,
        facility_id=referral.facility_id,
        allocations=list(referral.allocations or []),
        sending_institution_id=referral.sending_institution_id,
        claim_token=claim_token,
    )


def plan_action(
    session: Session,
    *,
    principal: Principal,
    referral_id: str,
    action: str,
    body: ActionBody,
    if_match: int | None,
) -> ActionPlan:
    """Check an action before any remote call; an action in ``CLAIMED_ACTIONS`` also claims
    the referral (a write: call it in a write unit of work), so that no other action can
    change it until :func:`apply_action` completes the claim or :func:`let_go` drops it."""
    referral = get_referral(session, referral_id=referral_id)
    _check_action(
        principal=principal, referral=referral, action=action, body=body, if_match=if_match
    )
    token: str | None = None
    if action in CLAIMED_ACTIONS:
        token = new_id()
        claimed = session.execute(
            update(Referral)
            .where(
                col(Referral.id) == referral.id,
                col(Referral.version) == referral.version,
                col(Referral.status) == referral.status,
                col(Referral.pending_token).is_(None),
            )
            .values(
                pending_action=action,
                pending_token=token,
                pending_since=utcnow(),
                # kept with the claim, so that the sweep can finish an interrupted discharge
                **({"outcome": body.outcome} if action == "discharge" else {}),
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise ActionInProgress(
                "Otra persona está cambiando la canalización al mismo tiempo; vuelva a consultarla."
            )
    return _plan_of(referral, action, token)


def let_go(session: Session, *, referral_id: str, claim_token: str) -> None:
    """Drop a claim whose capacity step failed for good: the referral is as it was."""
    session.execute(
        update(Referral)
        .where(col(Referral.id) == referral_id, col(Referral.pending_token) == claim_token)
        .values(
            pending_action=None,
            pending_token=None,
            pending_since=None,
            outcome=case(
                (col(Referral.pending_action) == "discharge", None), else_=col(Referral.outcome)
            ),
        )
    )


def interrupted_claims(session: Session, now: datetime | None = None) -> list[ActionPlan]:
    """Claims older than the lease: their capacity step may or may not have happened."""
    cutoff = (now or utcnow()) - CLAIM_LEASE
    rows = session.exec(
        select(Referral).where(
            col(Referral.pending_token).is_not(None), col(Referral.pending_since) < cutoff
        )
    ).all()
    return [_plan_of(r, r.pending_action or "", r.pending_token) for r in rows]


def claimed_outcome(session: Session, *, referral_id: str) -> OutcomeCode:
    """The outcome an interrupted discharge was claimed with."""
    referral = session.get(Referral, referral_id)
    outcome = referral.outcome if referral and referral.outcome else "other"
    return cast(OutcomeCode, outcome)


def apply_action(
    session: Session,
    *,
    principal: Principal,
    referral_id: str,
    action: str,
    body: ActionBody,
    if_match: int | None,
    allocations: list[dict[str, Any]] | None = None,
    claim_token: str | None = None,
) -> ActionResult:
    """Perform a lifecycle transition by compare-and-set on the version (and, for a claimed
    action, on its claim, which the transition then clears)."""
    referral = get_referral(session, referral_id=referral_id)
    _check_action(
        principal=principal,
        referral=referral,
        action=action,
        body=body,
        if_match=if_match,
        claim_token=claim_token,
    )
    people = people_of(session, referral.id)
    now = utcnow()
    _, target = TRANSITIONS[action]
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if action == "send":
        agreement, missing, sentence = find_binding_agreement(
            session, referral=referral, people=people, today=now.date()
        )
        if agreement is None:
            session.add(
                RefusedAttempt(
                    referral_id=referral.id,
                    sending_institution_id=referral.sending_institution_id,
                    receiving_institution_id=referral.receiving_institution_id,
                    missing=missing,
                    detail=sentence,
                    actor=principal.sub,
                    at=now,
                )
            )
            emit(
                outbox,
                session,
                events.agreement_refused(referral, missing=missing),
                aggregate_id=referral.id,
                version=referral.version,
                principal=principal,
            )
            return ActionResult(referral=referral, refused=sentence)
        values["agreement_id"] = agreement.id
        values["sent_at"] = now
        values["response_due_at"] = now + RESPONSE_DEADLINES[referral.urgency]
    elif action == "decline":
        values["decline_reason"] = body.reason
    elif action == "discharge":
        values["outcome"] = body.outcome
    elif action == "admit" and allocations is not None:
        values["allocations"] = allocations
    if action in RELEASING_ACTIONS and referral.hold_id:
        # Released after the commit; until then the expiry sweep retries it.
        values["hold_release_pending"] = True
    old_version = referral.version
    claim = (
        col(Referral.pending_token) == claim_token
        if claim_token
        else col(Referral.pending_token).is_(None)
    )
    result = session.execute(
        update(Referral)
        .where(
            col(Referral.id) == referral.id,
            col(Referral.version) == old_version,
            col(Referral.status) == referral.status,
            claim,
        )
        .values(
            version=old_version + 1,
            pending_action=None,
            pending_token=None,
            pending_since=None,
            **values,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition(
            "Otra persona cambió la canalización al mismo tiempo; vuelva a consultarla."
        )
    from_status = referral.status
    session.refresh(referral)
    session.add(
        ReferralHistory(
            referral_id=referral.id,
            action=action,
            from_status=from_status,
            to_status=target,
            version=referral.version,
            actor=principal.sub,
            institution_id=principal.institution_id,
            reason=body.reason,
            at=now,
        )
    )
    emit(
        outbox,
        session,
        events.referral_changed(referral, people, action, records.step_times(session, referral.id)),
        aggregate_id=referral.id,
        version=referral.version,
        principal=principal,
    )
    session.flush()
    release = referral.hold_id if action in RELEASING_ACTIONS and referral.hold_id else None
    return ActionResult(referral=referral, release_hold=release)
