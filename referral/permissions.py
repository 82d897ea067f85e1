"""Who may do what in the referral service — decided here and nowhere else.

``ensure_*`` raises :class:`~referral.exceptions.NotPermitted`; ``is_*``/``sees_*`` answer.
"""

from __future__ import annotations

from typing import NoReturn

from referral.exceptions import NotPermitted
from services.tokens import Principal
from services.vocabulary import UserRole

R = UserRole
SENDER_ROLES = (R.PROSECUTOR, R.DIF_OFFICER, R.INM_OFFICER, R.CEAV_OFFICER)
RECEIVER_ROLES = (R.SHELTER_COORDINATOR, R.INSTITUTION_ADMIN)
# Which institution officer acknowledges which obligation.
OBLIGATION_ROLES: dict[str, tuple[UserRole, ...]] = {
    "dif_child_protection": (R.DIF_OFFICER,),
    "inm_migration_status": (R.INM_OFFICER,),
    "ceav_registration": (R.CEAV_OFFICER,),
    "witness_protection": (R.PROSECUTOR,),
    "nationality_unconfirmed": (R.PROSECUTOR,),
    "inm_child_protection": (R.INM_OFFICER,),
}
RECEIVER_ACTIONS = frozenset({"accept", "decline", "admit", "discharge"})
EITHER_SIDE_ACTIONS = frozenset({"in_transit", "cancel"})


def _deny(detail: str) -> NoReturn:
    raise NotPermitted(detail)


def ensure_can_read_reference(principal: Principal) -> None:
    """Institutions and agreements: any authenticated role except observers."""
    if principal.has(R.OBSERVER) and len(principal.roles) == 1:
        _deny("Las personas observadoras solo consultan estadísticas agregadas.")


def ensure_can_create_institution(principal: Principal) -> None:
    if not principal.has(R.PLATFORM_ADMIN):
        _deny("Solo la administración de la plataforma registra instituciones.")


def ensure_can_create_agreement(principal: Principal, party_ids: list[str]) -> None:
    if principal.has(R.PLATFORM_ADMIN):
        return
    if principal.has(R.INSTITUTION_ADMIN) and principal.institution_id in party_ids:
        return
    _deny("Solo la administración de una institución parte puede registrar el convenio.")


def ensure_can_sign_agreement(principal: Principal, institution_id: str) -> None:
    if principal.has(R.PLATFORM_ADMIN):
        return
    if principal.has(R.INSTITUTION_ADMIN) and principal.institution_id == institution_id:
        return
    _deny("Solo la administración de la institución parte firma en su nombre.")


def ensure_can_manage_agreement(principal: Principal, party_ids: list[str]) -> None:
    ensure_can_create_agreement(principal, party_ids)


def ensure_can_create_referral(
    principal: Principal, sending_institution_id: str, *, onward: bool = False
) -> None:
    """Senders create referrals; a shelter's coordinator only an onward transfer of a
    person her institution has admitted (``previous_referral_id``, checked where it is
    loaded)."""
    if is_sender(principal, sending_institution_id):
        return
    if onward and is_onward_sender(principal, sending_institution_id):
        return
    if is_onward_sender(principal, sending_institution_id):
        _deny(
            "La coordinación de un refugio solo canaliza a otro lugar a una persona que su "
            "institución tiene ingresada (previous_referral_id)."
        )
    _deny(
        "Solo personal ministerial o de DIF, INM o CEAV de la institución remitente crea "
        "y envía canalizaciones."
    )


def is_onward_sender(principal: Principal, sending_institution_id: str) -> bool:
    """A shelter's coordinator sending a person her institution admitted to another place."""
    return (
        principal.has(R.SHELTER_COORDINATOR) and principal.institution_id == sending_institution_id
    )


def ensure_can_place_without_agreement(principal: Principal, *, onward: bool) -> None:
    """Urgent placement along no agreement (ADR 0021): prosecutors; shelter coordinators
    for an onward transfer."""
    if principal.has(R.PROSECUTOR) or (onward and principal.has(R.SHELTER_COORDINATOR)):
        return
    _deny(
        "Solo el Ministerio Público (o un refugio que canaliza a otro lugar) puede canalizar "
        "de urgencia sin convenio."
    )


def ensure_can_read_agreement_alerts(principal: Principal) -> None:
    """The alerts to formalise an agreement: an institution's admin, a platform admin."""
    if principal.has(R.INSTITUTION_ADMIN, R.PLATFORM_ADMIN):
        return
    _deny("Los avisos de convenio pendiente son para la administración de la institución.")


def is_sender(principal: Principal, sending_institution_id: str) -> bool:
    return principal.has(*SENDER_ROLES) and principal.institution_id == sending_institution_id


def is_receiver(principal: Principal, receiving_institution_id: str) -> bool:
    return principal.has(*RECEIVER_ROLES) and principal.institution_id == receiving_institution_id


def can_act(
    principal: Principal,
    action: str,
    *,
    sending_institution_id: str,
    receiving_institution_id: str,
    onward: bool = False,
) -> bool:
    """Whether ``principal`` may perform a lifecycle ``action`` on a referral (on an onward
    transfer, the shelter that sends the person on acts as its sender)."""
    sender = is_sender(principal, sending_institution_id) or (
        onward and is_onward_sender(principal, sending_institution_id)
    )
    receiver = is_receiver(principal, receiving_institution_id)
    if action == "send":
        return sender
    if action in RECEIVER_ACTIONS:
        return receiver
    if action in EITHER_SIDE_ACTIONS:
        return sender or receiver
    return False


def ensure_can_act(
    principal: Principal,
    action: str,
    *,
    sending_institution_id: str,
    receiving_institution_id: str,
    onward: bool = False,
) -> None:
    if can_act(
        principal,
        action,
        sending_institution_id=sending_institution_id,
        receiving_institution_id=receiving_institution_id,
        onward=onward,
    ):
        return
    side = "remitente" if action in ("send",) else "receptora"
    if action in EITHER_SIDE_ACTIONS:
        side = "remitente o receptora"
    _deny(f"Su rol o institución no permite «{action}»: corresponde a la institución {side}.")


def ensure_can_list_referrals(principal: Principal) -> None:
    if principal.has(R.OBSERVER) and not principal.has(
        R.SEGOB_AUDITOR, R.SERVICE, R.PLATFORM_ADMIN, *SENDER_ROLES, *RECEIVER_ROLES
    ):
        _deny("Las personas observadoras solo consultan estadísticas agregadas.")


def sees_all_deidentified(principal: Principal) -> bool:
    return principal.has(R.SEGOB_AUDITOR, R.PLATFORM_ADMIN)


def ensure_can_fulfil(principal: Principal, kind: str, institution_id: str | None) -> None:
    if principal.has(R.PLATFORM_ADMIN):
        return
    roles = OBLIGATION_ROLES.get(kind, ())
    if principal.has(*roles) and (
        institution_id is None or principal.institution_id == institution_id
    ):
        return
    _deny("Esta obligación la atiende otra institución.")


def ensure_can_read_report(principal: Principal) -> None:
    if not principal.has(R.SEGOB_AUDITOR, R.PLATFORM_ADMIN, R.OBSERVER, R.SERVICE):
        _deny("El informe de desenlaces es para SEGOB, CNDH y la administración.")


def ensure_can_import_reference(principal: Principal) -> None:
    """A bulk load of the reference data (institutions) is for internal services only."""
    if not principal.has(R.SERVICE):
        _deny("Solo un servicio interno (token de cliente) importa instituciones en lote.")


def ensure_can_import_history(principal: Principal) -> None:
    """Writing the past (final states, old timestamps) is for internal services only."""
    if not principal.has(R.SERVICE):
        _deny("Solo un servicio interno (token de cliente) importa el historial de canalizaciones.")


# --- migration routes, stays and aftercare (ADR 0022) --------------------------------------


def is_migration_office(principal: Principal, inm_institution_id: str | None) -> bool:
    """An INM officer of the office the referral's migration obligation is addressed to."""
    return (
        principal.has(R.INM_OFFICER)
        and inm_institution_id is not None
        and principal.institution_id == inm_institution_id
    )


MIGRATION_ROUTE_DENIED = (
    "La ruta migratoria la registra el personal de la oficina del INM que la atiende."
)
STAY_DENIED = (
    "La estancia, sus prórrogas, el seguimiento y los servicios los registra la "
    "institución receptora."
)


def ensure_can_record_migration_routes(principal: Principal) -> None:
    """By role, before any referral is looked up (no existence oracle)."""
    if not principal.has(R.PLATFORM_ADMIN, R.INM_OFFICER):
        _deny(MIGRATION_ROUTE_DENIED)


def ensure_can_record_migration_route(principal: Principal, inm_institution_id: str | None) -> None:
    if principal.has(R.PLATFORM_ADMIN) or is_migration_office(principal, inm_institution_id):
        return
    _deny(MIGRATION_ROUTE_DENIED)


def ensure_can_record_stays(principal: Principal) -> None:
    """By role, before any referral is looked up (no existence oracle)."""
    if not principal.has(*RECEIVER_ROLES):
        _deny(STAY_DENIED)


def ensure_can_record_stay(principal: Principal, receiving_institution_id: str) -> None:
    """Extensions, follow-ups and services provided: the receiving institution's staff."""
    if is_receiver(principal, receiving_institution_id):
        return
    _deny(STAY_DENIED)
