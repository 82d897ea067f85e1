"""Bulk import of historical referrals in their final states (statistics, benchmarks).

A past referral is stored exactly as the lifecycle would have left it: the referral row,
its people, one history row per step with the step's own time, and its obligations
(recorded as attended: they belong to the past). Rows are written with set-based inserts,
a batch per transaction. Each batch adds ONE outbox event, ``referral.history.imported``,
that lists every imported referral with the same minimum variables as the lifecycle's
``referral.referral.*`` events (one builder, ``services.contracts.statistics``: people with
offences, vulnerable groups and state of origin, the state, the time of every step); the audit trail records it, and the statistics fold its
rows like any other referral event — totals are still computed from rows, never typed.

Idempotent: a referral whose id is already stored is skipped (and not announced again).
A referral travels only along an agreement signed by both parties and in force on the
day it was created; a batch holding one that did not is refused whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from sqlmodel import Session, col, select

from referral import catalogue, events, permissions
from referral.database import outbox
from referral.institutions import candidates, first_of
from referral.models import (
    Agreement,
    AgreementParty,
    ConsentIdentity,
    Institution,
    Obligation,
    Referral,
    ReferralHistory,
    ReferralPerson,
)
from referral.obligations import CEAV_ROLES, CEAV_TYPES, DIF_TYPES, inm_office_of
from referral.referrals import new_person_key
from referral.schemas import HistoricalReferral, HistoryImportResult, consent_record
from referral.states import RESPONSE_DEADLINES
from services.clock import utcnow
from services.contracts import emit_data
from services.contracts.referral import HistoryImported
from services.contracts.statistics import step_times
from services.db import bulk_insert
from services.errors import Unprocessable
from services.ids import new_ids
from services.tokens import Principal
from services.vocabulary import InstitutionType

EVENT_TYPE = HistoryImported.TYPE
IMPORT_NOTE = "Registro histórico importado"


@dataclass(frozen=True)
class _Window:
    number: str
    valid_from: date
    valid_to: date


def _agreement_windows(
    session: Session, pairs: set[tuple[str, str]]
) -> dict[tuple[str, str], list[_Window]]:
    """Signed agreements binding each (sender, receiver) pair, with their validity."""
    wanted = {i for pair in pairs for i in pair}
    parties: dict[str, set[str]] = {}
    for agreement_id, institution_id in session.execute(
        select(AgreementParty.agreement_id, AgreementParty.institution_id).where(
            col(AgreementParty.institution_id).in_(wanted)
        )
    ).all():
        parties.setdefault(agreement_id, set()).add(institution_id)
    signed = {
        a.id: a
        for a in session.exec(
            select(Agreement).where(
                col(Agreement.id).in_(list(parties)), Agreement.status == "signed"
            )
        ).all()
    }
    out: dict[tuple[str, str], list[_Window]] = {}
    for pair in pairs:
        out[pair] = [
            _Window(a.number, a.valid_from, a.valid_to)
            for aid, a in signed.items()
            if set(pair) <= parties[aid]
        ]
    return out


def _check_batch(
    session: Session, rows: list[HistoricalReferral]
) -> tuple[dict[str, Institution], list[str]]:
    """Every institution exists and every referral travelled along a signed agreement in
    force on the day it was created; returns the institutions and the problems found."""
    ids = {r.sending_institution_id for r in rows} | {r.receiving_institution_id for r in rows}
    institutions = {
        i.id: i for i in session.exec(select(Institution).where(col(Institution.id).in_(ids)))
    }
    problems: list[str] = []
    for missing in sorted(ids - set(institutions)):
        problems.append(f"No existe la institución {missing}.")
    windows = _agreement_windows(
        session, {(r.sending_institution_id, r.receiving_institution_id) for r in rows}
    )
    for r in rows:
        day = r.created_at.date()
        fits = [
            w
            for w in windows[(r.sending_institution_id, r.receiving_institution_id)]
            if w.valid_from <= day <= w.valid_to
            and (r.agreement_number is None or w.number == r.agreement_number)
        ]
        if not fits:
            problems.append(
                f"La canalización {r.id} no viajó por un convenio firmado y vigente el "
                f"{day.isoformat()} entre la remitente y la receptora."
            )
        if len(problems) >= 20:
            break
    return institutions, problems


def _steps(
    r: HistoricalReferral, now: datetime
) -> tuple[str, list[tuple[str, str | None, str, datetime, str | None]], datetime]:
    """Final status, the history steps ``(action, from, to, at, reason)`` and the answer
    deadline. A referral left ``sent`` past its deadline is expired, as the service would."""
    due = r.sent_at + RESPONSE_DEADLINES[r.urgency]
    steps: list[tuple[str, str | None, str, datetime, str | None]] = [
        ("create", None, "draft", r.created_at, None),
        ("send", "draft", "sent", r.sent_at, None),
    ]
    status = r.status
    if status == "sent" and due < now:
        status = "expired"
    if status == "expired":
        steps.append(("expire", "sent", "expired", due, "Sin respuesta dentro del plazo."))
    elif status == "declined":
        assert r.answered_at is not None
        steps.append(("decline", "sent", "declined", r.answered_at, r.reason))
    elif status == "cancelled":
        assert r.cancelled_at is not None
        steps.append(("cancel", "sent", "cancelled", r.cancelled_at, r.reason))
    elif status != "sent":
        assert r.answered_at is not None
        steps.append(("accept", "sent", "accepted", r.answered_at, None))
        if r.admitted_at is not None:
            steps.append(("admit", "accepted", "admitted", r.admitted_at, None))
        if r.discharged_at is not None:
            steps.append(("discharge", "admitted", "discharged", r.discharged_at, r.reason))
    return status, steps, due


@dataclass
class PreparedBatch:
    """A checked batch with its rows built, ready for :func:`store_history`."""

    received: int
    present: set[str]
    tables: list[tuple[Any, list[dict[str, Any]]]]
    announced: list[dict[str, Any]]
    """Each imported referral as the event lists it (``ImportedReferral`` data)."""
    expired: set[str]


def import_history(
    session: Session,
    *,
    principal: Principal,
    referrals: Iterable[HistoricalReferral],
    now: datetime | None = None,
) -> HistoryImportResult:
    """Store one batch of historical referrals in the caller's transaction."""
    prepared = prepare_history(session, principal=principal, referrals=referrals, now=now)
    return store_history(session, prepared, principal=principal)


def prepare_history(
    session: Session,
    *,
    principal: Principal,
    referrals: Iterable[HistoricalReferral],
    now: datetime | None = None,
) -> PreparedBatch:
    """Check one batch and build its rows and event; nothing is written. ``session`` may be
    a read: :func:`store_history` checks again, in the write, which ids are stored."""
    permissions.ensure_can_import_history(principal)
    now = now or utcnow()
    batch: dict[str, HistoricalReferral] = {}
    for r in referrals:
        batch.setdefault(r.id, r)  # a repeated id inside the batch counts once
    present = set(session.exec(select(Referral.id).where(col(Referral.id).in_(list(batch)))).all())
    rows = [r for rid, r in batch.items() if rid not in present]
    if not rows:
        return PreparedBatch(len(batch), present, [], [], set())
    institutions, problems = _check_batch(session, rows)
    if problems:
        raise Unprocessable(
            "El lote no se importó: " + " ".join(problems[:5]), code="history_rejected"
        )
    # who attends each obligation, chosen as for a live referral from one read of the
    # candidates (not two queries per kind and state)
    attending = candidates(session, *DIF_TYPES, *CEAV_TYPES, InstitutionType.INM)
    obliged: dict[tuple[str, str | None], str | None] = {}

    def obliged_institution(kind: str, state: str | None) -> str | None:
        key = (kind, state)
        if key not in obliged:
            if kind == "inm":
                obliged[key] = inm_office_of(attending, state)
            else:
                types = {"dif": DIF_TYPES, "ceav": CEAV_TYPES}[kind]
                obliged[key] = first_of(attending, *types, state=state)
        return obliged[key]

    referral_rows: list[dict[str, Any]] = []
    person_rows: list[dict[str, Any]] = []
    history_rows: list[dict[str, Any]] = []
    obligation_rows: list[dict[str, Any]] = []
    consent_rows: list[dict[str, Any]] = []
    announced: list[dict[str, Any]] = []
    ids = new_ids()
    expired: set[str] = set()
    actor = principal.sub
    for r in rows:
        status, steps, due = _steps(r, now)
        if status == "expired":
            expired.add(r.id)
        state = r.state or institutions[r.receiving_institution_id].state
        last = steps[-1][3]
        referral_rows.append(
            {
                "id": r.id,
                "sending_institution_id": r.sending_institution_id,
                "receiving_institution_id": r.receiving_institution_id,
                "facility_id": r.facility_id,
                "hold_id": None,
                "state": state,
                "urgency": r.urgency,
                "status": status,
                "version": len(steps),
                "case_reference": None,
                "services": [],
                "witness_protection": False,
                "consent": consent_record(r.consent),
                "allocations": [],
                "outcome": r.outcome,
                "decline_reason": r.reason if status == "declined" else None,
                "hold_release_pending": False,
                # every imported referral travelled along an agreement (checked above); all
                # columns given, so PostgreSQL takes the rows by COPY
                "without_agreement": False,
                "created_by": actor,
                "created_at": r.created_at,
                "updated_at": last,
                "sent_at": r.sent_at,
                "response_due_at": due,
            }
        )
        if r.consent.given_by:  # a name: kept with the identities, never in the row
            consent_rows.append({"referral_id": r.id, "given_by": r.consent.given_by})
        keys = [p.person_key or new_person_key() for p in r.people]
        for position, (p, key) in enumerate(zip(r.people, keys, strict=True)):
            person_rows.append(
                {
                    "id": next(ids),
                    "referral_id": r.id,
                    "position": position,
                    "sex": p.sex,
                    "age": p.age,
                    "role": p.role,
                    "nationality": p.nationality,
                    "pseudonym": p.pseudonym,
                    "state_of_origin": p.state_of_origin,
                    "languages": p.languages,
                    "vulnerable_groups": None
                    if p.vulnerable_groups is None
                    else list(dict.fromkeys(p.vulnerable_groups)),
                    "offences": list(dict.fromkeys(p.offences)),
                    "person_key": key,
                }
            )
        for version, (action, from_status, to_status, at, reason) in enumerate(steps, start=1):
            by_receiver = action in ("accept", "decline", "admit", "discharge")
            history_rows.append(
                {
                    "referral_id": r.id,
                    "action": action,
                    "from_status": from_status,
                    "to_status": to_status,
                    "version": version,
                    "actor": "system" if action == "expire" else actor,
                    "institution_id": None
                    if action == "expire"
                    else r.receiving_institution_id
                    if by_receiver
                    else r.sending_institution_id,
                    "reason": reason,
                    "at": at,
                }
            )
        # the obligations the law brings in (as in obligations.derive_obligations), attended
        kinds: list[tuple[str, str | None, str | None]] = []
        minors = [catalogue.age_group(p.age) == "minors" for p in r.people]
        foreign = [catalogue.is_recorded_foreign(p.nationality) for p in r.people]
        if any(minors):
            kinds.append(("dif_child_protection", obliged_institution("dif", state), None))
        if any(foreign):
            inm = obliged_institution("inm", state)
            kinds.append(("inm_migration_status", inm, "not_started"))
            if any(m and f for m, f in zip(minors, foreign, strict=True)):
                kinds.append(("inm_child_protection", inm, None))
        if any(p.role in CEAV_ROLES for p in r.people):
            kinds.append(("ceav_registration", obliged_institution("ceav", state), None))
        for kind, institution_id, visa in kinds:
            obligation_rows.append(
                {
                    "id": next(ids),
                    "referral_id": r.id,
                    "kind": kind,
                    "institution_id": institution_id,
                    "status": "fulfilled",
                    "humanitarian_visa_status": visa,
                    "note": IMPORT_NOTE,
                    "created_at": r.created_at,
                    "fulfilled_at": last,
                    "fulfilled_by": actor,
                }
            )
        announced.append(
            events.imported_referral(
                r.id,
                status,
                r,
                r.outcome,
                state=state,
                steps=step_times((to_status, at) for _, _, to_status, at, _ in steps),
                person_keys=keys,
            )
        )
    tables: list[tuple[Any, list[dict[str, Any]]]] = [
        (Referral, referral_rows),
        (ReferralPerson, person_rows),
        (ReferralHistory, history_rows),
        (Obligation, obligation_rows),
        (ConsentIdentity, consent_rows),
    ]
    return PreparedBatch(len(batch), present, tables, announced, expired)


def store_history(
    session: Session, prepared: PreparedBatch, *, principal: Principal
) -> HistoryImportResult:
    """Write a prepared batch in the caller's transaction, with its one event; ids stored
    since it was prepared (another import) are skipped, as ids stored before."""
    permissions.ensure_can_import_history(principal)
    announced = prepared.announced
    present = set(prepared.present)
    tables = prepared.tables
    wanted = [a["referral_id"] for a in announced]
    if wanted:
        late = set(session.exec(select(Referral.id).where(col(Referral.id).in_(wanted))).all())
        if late:
            present |= late
            announced = [a for a in announced if a["referral_id"] not in late]
            tables = [
                (table, [v for v in values if v.get("referral_id", v.get("id")) not in late])
                for table, values in tables
            ]
    if not announced:
        return HistoryImportResult(
            received=prepared.received,
            imported=0,
            already_present=len(present),
            expired=0,
            event_id=None,
        )
    for table, values in tables:
        # in key order (the ids are random): each index's pages visited once, in order
        key = "referral_id" if values and "referral_id" in values[0] else "id"
        bulk_insert(session, table.__table__, sorted(values, key=itemgetter(key)))
    event = emit_data(
        outbox,
        session,
        HistoryImported,
        events.history_imported(announced),
        aggregate_id=min(a["referral_id"] for a in announced),
        principal=principal,
    )
    return HistoryImportResult(
        received=prepared.received,
        imported=len(announced),
        already_present=len(present),
        expired=len({a["referral_id"] for a in announced} & prepared.expired),
        event_id=event.id,
    )
