"""Each foreign person's migration route (ADR 0022; ``003:535``, ``004:844, 864, 872, 914``).

A route per person, not one visa status per referral: humanitarian regularisation,
complementary protection, asylum (COMAR, with UNHCR) or assisted return, with its status and
dates, the documents issued, consent to consular contact, the days held in a migration
station. The INM office the referral's INM obligation is addressed to (the regional office of
the referral's state) records it. A foreign minor's assisted return needs a recorded
assessment of the risk of revictimisation first — on the route and at discharge alike.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from referral import catalogue, events, permissions
from referral.database import outbox
from referral.exceptions import ReferralNotFound
from referral.models import MigrationRoute, Obligation, Referral, ReferralPerson
from referral.records import get_referral, people_of
from referral.referrals import FULL, visibility, visible_referral
from referral.schemas import ActionBody, MigrationRouteIn, MigrationRoutePublic
from services.clock import utcnow
from services.contracts import emit
from services.errors import Conflict, Unprocessable
from services.tokens import Principal
from services.vocabulary import Outcome

ASSISTED_RETURN = "assisted_return"
# Routes that end in a document of stay (humanitarian visa or visitor card for humanitarian
# reasons); an assisted return issues none.
DOCUMENT_ROUTES = frozenset({"humanitarian_regularisation", "complementary_protection", "asylum"})


def _is_minor(person: ReferralPerson) -> bool:
    return catalogue.age_group(person.age) == "minors"


def inm_institution(session: Session, referral_id: str) -> str | None:
    """The INM office the referral's migration obligation is addressed to."""
    obligation = session.exec(
        select(Obligation).where(
            Obligation.referral_id == referral_id, Obligation.kind == "inm_migration_status"
        )
    ).first()
    return obligation.institution_id if obligation else None


def routes_of(session: Session, referral_id: str) -> dict[str, MigrationRoute]:
    rows = session.exec(select(MigrationRoute).where(MigrationRoute.referral_id == referral_id))
    return {r.person_id: r for r in rows}


def list_routes(
    session: Session, *, principal: Principal, referral_id: str
) -> list[MigrationRoutePublic]:
    """Every foreign person of a referral with her route (or none yet), by position."""
    referral = get_referral(session, referral_id=referral_id)
    level = visibility(session, principal, referral)
    inm = inm_institution(session, referral.id)
    documents = level == FULL or permissions.is_migration_office(principal, inm)
    routes = routes_of(session, referral.id)
    return [
        MigrationRoutePublic.of(p, routes.get(p.id), documents=documents)
        for p in people_of(session, referral.id)
        if catalogue.is_recorded_foreign(p.nationality)
    ]


def _check(person: ReferralPerson, body: MigrationRouteIn, current: MigrationRoute | None) -> None:
    """The route's rules; each refusal names what is missing (nothing is written)."""
    if body.route == ASSISTED_RETURN:
        if body.return_country is None:
            raise Unprocessable(
                "El retorno asistido requiere el país de retorno (return_country).",
                code="return_country_required",
            )
        assessed = body.risk_assessment is not None or (
            current is not None and current.risk_assessment_on is not None
        )
        if _is_minor(person) and not assessed:
            raise Unprocessable(
                "Antes de un retorno asistido de una persona menor de edad debe registrarse la "
                "evaluación del riesgo de revictimización (risk_assessment).",
                code="risk_assessment_required",
            )
    elif body.return_country is not None:
        raise Unprocessable(
            "El país de retorno (return_country) solo aplica al retorno asistido.",
            code="not_applicable",
        )
    if body.humanitarian_visa_number and body.route not in DOCUMENT_ROUTES:
        raise Unprocessable(
            "El retorno asistido no expide visa humanitaria (humanitarian_visa_number).",
            code="not_applicable",
        )
    if body.consular_contact_on is not None and body.consular_contact_consent is not True:
        raise Unprocessable(
            "El contacto consular solo procede con el consentimiento de la persona "
            "(consular_contact_consent).",
            code="consular_consent_required",
        )


def record_route(
    session: Session,
    *,
    principal: Principal,
    referral_id: str,
    person_id: str,
    body: MigrationRouteIn,
) -> MigrationRoutePublic:
    """Choose or move on one foreign person's route (the attending INM office only)."""
    permissions.ensure_can_record_migration_routes(principal)
    referral = visible_referral(session, principal=principal, referral_id=referral_id)
    inm = inm_institution(session, referral.id)
    permissions.ensure_can_record_migration_route(principal, inm)
    person = session.get(ReferralPerson, person_id)
    if person is None or person.referral_id != referral.id:
        raise ReferralNotFound("No existe esa persona en la canalización.")
    if not catalogue.is_recorded_foreign(person.nationality):
        raise Unprocessable(
            "La ruta migratoria solo aplica a una persona de nacionalidad extranjera "
            "registrada (nationality).",
            code="not_foreign",
        )
    current = session.exec(
        select(MigrationRoute).where(MigrationRoute.person_id == person.id)
    ).first()
    _check(person, body, current)
    now = utcnow()
    route = current or MigrationRoute(
        referral_id=referral.id,
        person_id=person.id,
        route=body.route,
        status=body.status,
        started_on=body.started_on,
        updated_by=principal.sub,
        updated_at=now,
        version=0,
    )
    route.institution_id = inm
    route.route = body.route
    route.status = body.status
    route.started_on = body.started_on
    route.resolved_on = body.resolved_on
    route.humanitarian_visa_number = body.humanitarian_visa_number
    route.consular_contact_consent = body.consular_contact_consent
    route.consular_contact_on = body.consular_contact_on
    route.migration_station_days = body.migration_station_days
    route.return_country = body.return_country
    if body.risk_assessment is not None:
        route.risk_assessment_on = body.risk_assessment.assessed_on
        route.risk_assessment_summary = body.risk_assessment.summary
        route.risk_assessment_by = principal.sub
    route.version += 1
    route.updated_by = principal.sub
    route.updated_at = now
    session.add(route)
    try:
        session.flush()
    except IntegrityError as exc:  # another officer recorded this person's first route
        raise Conflict(
            "Otra persona registró la ruta de esta persona al mismo tiempo; vuelva a consultarla.",
            code="concurrent_update",
        ) from exc
    emit(
        outbox,
        session,
        events.migration_route_recorded(referral, person, route),
        aggregate_id=referral.id,
        version=referral.version,
        principal=principal,
    )
    return MigrationRoutePublic.of(person, route, documents=True)


def ensure_return_allowed(session: Session, referral: Referral, body: ActionBody) -> None:
    """A discharge by assisted return names the country and, for every foreign minor of the
    referral, follows a recorded assessment of the risk of revictimisation."""
    if body.outcome != Outcome.ASSISTED_RETURN.value:
        if body.outcome_country is not None:
            raise Unprocessable(
                "El país (outcome_country) solo se indica con el desenlace retorno asistido.",
                code="not_applicable",
            )
        return
    if body.outcome_country is None:
        raise Unprocessable(
            "El desenlace retorno asistido requiere el país de retorno (outcome_country).",
            code="outcome_country_required",
        )
    people = people_of(session, referral.id)
    foreign = [p for p in people if catalogue.is_recorded_foreign(p.nationality)]
    if not foreign:
        raise Unprocessable(
            "El retorno asistido solo aplica a personas de nacionalidad extranjera.",
            code="not_foreign",
        )
    routes = routes_of(session, referral.id)
    unassessed = [
        p
        for p in foreign
        if _is_minor(p) and (p.id not in routes or routes[p.id].risk_assessment_on is None)
    ]
    if unassessed:
        positions = ", ".join(str(p.position + 1) for p in unassessed)
        raise Unprocessable(
            "Antes del retorno asistido de personas menores de edad debe registrarse la "
            f"evaluación del riesgo de revictimización (risk_assessment; persona {positions}).",
            code="risk_assessment_required",
        )
