"""Registration of a facility on SEGOB's roster: submission, review against a checklist.

The lifecycle ``status`` (registered, active, suspended, closed) is the operator's; the
``registration_status`` (not_submitted → submitted → registered | returned → submitted …)
is SEGOB's verdict on the facility against the General Guidelines for the construction,
functioning and operation of shelters, refuges and half-way houses (``003:515``). The
checklist is data: each item has a code, a Spanish label and where the criterion comes
from in the seeds, so the catalogue can grow without code changes elsewhere.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from capacity import permissions
from capacity.events import record, registration_reviewed, registration_submitted
from capacity.exceptions import ChecklistNotMet, RegistrationConflict
from capacity.ledger import bump_revision, stamp_pools
from capacity.models import Facility, FacilityRegistrationStep
from capacity.schemas import RegistrationReview, RegistrationSubmit
from services.clock import as_utc, as_utc_or_none, utcnow
from services.errors import Unprocessable
from services.tokens import Principal
from services.vocabulary import FacilityStatus, RegistrationStatus

# (code, Spanish label, source document and line as cited in docs/sources.md)
CHECKLIST: tuple[tuple[str, str, str], ...] = (
    (
        "not_a_detention_place",
        "No es ni funciona como centro preventivo, prisión, estación migratoria u otro "
        "lugar de detención",
        "Ley General art. 75; 003:535",
    ),
    (
        "confidentiality",
        "Protocolo de confidencialidad de la ubicación y de los datos de las personas alojadas",
        "003:527, 561; 004:903",
    ),
    (
        "decent_safe_housing",
        "Alojamiento digno y seguro: habitabilidad, higiene y medidas de seguridad",
        "003:515, 563",
    ),
    (
        "comprehensive_care",
        "Atención integral e individualizada: asesoría jurídica, atención médica, "
        "atención psicológica y trabajo social",
        "002:397-415; 001:181; 003:561",
    ),
    (
        "education_and_training",
        "Acceso a educación y a capacitación para el trabajo",
        "002:413-414; 003:523-525",
    ),
    (
        "interpretation",
        "Intérpretes o traductores para quien no habla español o habla una lengua indígena",
        "003:529",
    ),
    (
        "accessibility",
        "Instalaciones accesibles para personas con discapacidad",
        "003:295",
    ),
    (
        "children_with_caregivers",
        "Recibe a hijas e hijos con su madre o padre y aplica el interés superior de la niñez",
        "003:561, 679",
    ),
    (
        "informed_consent",
        "Consentimiento informado y autodeterminación de las personas alojadas",
        "003:561",
    ),
    (
        "specialised_staff",
        "Personal especializado y capacitado en trata de personas, derechos humanos y género",
        "002:228; 003:233",
    ),
    (
        "stay_policy",
        "Plazo máximo de estancia y criterios de prórroga por inestabilidad o riesgo",
        "003:563",
    ),
    (
        "reintegration_follow_up",
        "Plan de reintegración social o familiar y seguimiento después del egreso",
        "003:563; 002:384",
    ),
    (
        "records_minimum_variables",
        "Registro de las personas atendidas con las variables mínimas (sexo, edad, "
        "nacionalidad, delito) sin datos que las identifiquen",
        "002:201; 003:795",
    ),
    (
        "referral_agreements",
        "Convenios firmados para recibir y canalizar víctimas",
        "003:297, 675",
    ),
)
CHECKLIST_CODES = tuple(code for code, _, _ in CHECKLIST)
REGISTRATION_LABELS = {
    "not_submitted": "sin solicitud de registro",
    "submitted": "en revisión",
    "returned": "devuelta con observaciones",
    "registered": "registrada en el padrón",
}


def checklist_items() -> list[dict[str, str]]:
    """The checklist as answers carry it."""
    return [{"item": c, "label": label, "source": src} for c, label, src in CHECKLIST]


def _attempt(session: Session, facility_id: str) -> int:
    rows = session.execute(
        select(FacilityRegistrationStep.attempt)
        .where(col(FacilityRegistrationStep.facility_id) == facility_id)
        .order_by(col(FacilityRegistrationStep.attempt).desc())
        .limit(1)
    ).first()
    return int(rows[0]) if rows else 0


def steps(session: Session, facility_id: str) -> list[FacilityRegistrationStep]:
    """Every submission and review of a facility, oldest first."""
    return list(
        session.execute(
            select(FacilityRegistrationStep)
            .where(col(FacilityRegistrationStep.facility_id) == facility_id)
            .order_by(col(FacilityRegistrationStep.at), col(FacilityRegistrationStep.attempt))
        ).scalars()
    )


def view(session: Session, facility: Facility) -> dict[str, Any]:
    """The registration file of a facility: state, history, the checklist."""
    return {
        "facility_id": facility.id,
        "registration_status": facility.registration_status,
        "registration_label": REGISTRATION_LABELS[facility.registration_status],
        "registration_changed_at": as_utc_or_none(facility.registration_changed_at),
        "registration_pending": list(facility.registration_pending or []),
        "registration_due_on": facility.registration_due_on,
        "history": [
            {
                "attempt": s.attempt,
                "action": s.action,
                "actor": s.actor,
                "institution_id": s.institution_id,
                "note": s.note,
                "checklist": s.checklist,
                "due_on": s.due_on,
                "at": as_utc(s.at),
            }
            for s in steps(session, facility.id)
        ],
        "checklist": checklist_items(),
    }


def _touch_search(session: Session, facility: Facility) -> None:
    """Make the search read model reload this facility's pools (registration gates them)."""
    stamp_pools(session, facility_id=facility.id, rev=bump_revision(session))


def submit(
    session: Session, *, principal: Principal, facility: Facility, data: RegistrationSubmit
) -> Facility:
    """The operator asks SEGOB to register the facility (first time or after a return)."""
    permissions.ensure_submit_registration(principal, facility.operator_institution_id)
    if facility.status == FacilityStatus.CLOSED:
        raise RegistrationConflict("Una instalación cerrada no puede solicitar su registro.")
    if facility.registration_status not in (
        RegistrationStatus.NOT_SUBMITTED,
        RegistrationStatus.RETURNED,
    ):
        raise RegistrationConflict(
            "La instalación ya está "
            f"{REGISTRATION_LABELS[facility.registration_status]}; no hay nada que enviar.",
            extra={"registration_status": facility.registration_status},
        )
    now = utcnow()
    attempt = _attempt(session, facility.id) + 1
    session.add(
        FacilityRegistrationStep(
            facility_id=facility.id,
            attempt=attempt,
            action="submitted",
            actor=principal.sub,
            institution_id=principal.institution_id,
            note=data.note,
            at=now,
        )
    )
    facility.registration_status = RegistrationStatus.SUBMITTED.value
    facility.registration_changed_at = now
    facility.version += 1
    session.add(facility)
    session.flush()
    record(
        session,
        registration_submitted(facility, attempt=attempt, note=data.note),
        aggregate_id=facility.id,
        version=facility.version,
        actor=principal,
    )
    return facility


def _with_observations(facility: Facility) -> bool:
    """Registered with observations: some checklist items are still to be met."""
    return facility.registration_status == RegistrationStatus.REGISTERED and bool(
        facility.registration_pending
    )


def review(
    session: Session, *, principal: Principal, facility: Facility, data: RegistrationReview
) -> Facility:
    """SEGOB's verdict: every checklist item answered; registered when all are met, or with
    observations and a deadline for the unmet ones (ADR 0021). A facility registered with
    observations is reviewed again to record them met (or to return it)."""
    permissions.ensure_review_registration(principal)
    if facility.registration_status != RegistrationStatus.SUBMITTED and not _with_observations(
        facility
    ):
        raise RegistrationConflict(
            "Sólo se revisa una solicitud enviada; la instalación está "
            f"{REGISTRATION_LABELS[facility.registration_status]}.",
            extra={"registration_status": facility.registration_status},
        )
    answers = {a.item: a for a in data.checklist}
    unknown = sorted(set(answers) - set(CHECKLIST_CODES))
    missing = [c for c in CHECKLIST_CODES if c not in answers]
    if unknown or missing:
        raise Unprocessable(
            "La revisión debe responder cada punto de la lista de verificación, y sólo esos."
            + (f" Faltan: {', '.join(missing)}." if missing else "")
            + (f" Desconocidos: {', '.join(unknown)}." if unknown else ""),
            code="checklist_incomplete",
            extra={"missing": missing, "unknown": unknown},
        )
    unmet = [c for c in CHECKLIST_CODES if not answers[c].met]
    now = utcnow()
    registered = data.outcome == RegistrationStatus.REGISTERED
    if registered and unmet and data.due_on is None:
        raise ChecklistNotMet(
            "No puede registrarse: hay puntos de la lista no cumplidos "
            f"({', '.join(unmet)}). Devuélvala con observaciones, o regístrela con "
            "observaciones y un plazo para cumplirlos (observations, due_on).",
            extra={"unmet": unmet},
        )
    if registered and unmet and data.due_on is not None and data.due_on <= now.date():
        raise Unprocessable(
            "due_on: el plazo para cumplir los puntos pendientes debe ser una fecha futura.",
            code="due_on_not_future",
        )
    due_on = data.due_on if registered and unmet else None
    checklist = [
        {"item": c, "met": answers[c].met, "note": answers[c].note} for c in CHECKLIST_CODES
    ]
    session.add(
        FacilityRegistrationStep(
            facility_id=facility.id,
            attempt=max(_attempt(session, facility.id), 1),
            action=data.outcome,
            actor=principal.sub,
            institution_id=principal.institution_id,
            note=data.observations,
            checklist=checklist,
            due_on=due_on,
            at=now,
        )
    )
    facility.registration_status = data.outcome
    facility.registration_pending = unmet if registered else []
    facility.registration_due_on = due_on
    facility.registration_changed_at = now
    facility.version += 1
    session.add(facility)
    session.flush()
    _touch_search(session, facility)
    record(
        session,
        registration_reviewed(
            facility,
            outcome=data.outcome,
            observations=data.observations,
            unmet=unmet,
            checklist=checklist,
            due_on=due_on,
        ),
        aggregate_id=facility.id,
        version=facility.version,
        actor=principal,
    )
    return facility
