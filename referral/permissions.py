"""Who may do what in the referral service — decided here and nowhere else."""

from __future__ import annotations

from referral.exceptions import NotPermitted
from services.tokens import Principal

SENDER_ROLES = ("prosecutor", "dif_officer", "inm_officer", "ceav_officer")
RECEIVER_ROLES = ("shelter_coordinator", "institution_admin")
# Which institution officer acknowledges which obligation.
OBLIGATION_ROLES = {
    "dif_child_protection": ("dif_officer",),
    "inm_migration_status": ("inm_officer",),
    "ceav_registration": ("ceav_officer",),
    "witness_protection": ("prosecutor",),
}


def _deny(detail: str) -> None:
    raise NotPermitted(detail)


def can_read_reference(principal: Principal) -> None:
    """Institutions and agreements: any authenticated role except observers."""
    if principal.has("observer") and len(principal.roles) == 1:
        _deny("Las personas observadoras solo consultan estadísticas agregadas.")


def can_create_institution(principal: Principal) -> None:
    if not principal.has("platform_admin"):
        _deny("Solo la administración de la plataforma registra instituciones.")


def can_create_agreement(principal: Principal, party_ids: list[str]) -> None:
    if principal.has("platform_admin"):
        return
    if principal.has("institution_admin") and principal.institution_id in party_ids:
        return
    _deny("Solo la administración de una institución parte puede registrar el convenio.")


def can_sign_agreement(principal: Principal, institution_id: str) -> None:
    if principal.has("platform_admin"):
        return
    if principal.has("institution_admin") and principal.institution_id == institution_id:
        return
    _deny("Solo la administración de la institución parte firma en su nombre.")


def can_manage_agreement(principal: Principal, party_ids: list[str]) -> None:
    can_create_agreement(principal, party_ids)


def can_create_referral(principal: Principal, sending_institution_id: str) -> None:
    if principal.has(*SENDER_ROLES) and principal.institution_id == sending_institution_id:
        return
    _deny(
        "Solo personal ministerial o de DIF, INM o CEAV de la institución remitente crea "
        "y envía canalizaciones."
    )


def is_sender(principal: Principal, sending_institution_id: str) -> bool:
    return principal.has(*SENDER_ROLES) and principal.institution_id == sending_institution_id


def is_receiver(principal: Principal, receiving_institution_id: str) -> bool:
    return principal.has(*RECEIVER_ROLES) and principal.institution_id == receiving_institution_id


def can_act(
    principal: Principal, action: str, *, sending_institution_id: str, receiving_institution_id: str
) -> None:
    """Whether ``principal`` may perform a lifecycle ``action`` on a referral."""
    if action == "send" and is_sender(principal, sending_institution_id):
        return
    if action in ("accept", "decline", "admit", "discharge") and is_receiver(
        principal, receiving_institution_id
    ):
        return
    if action == "in_transit" and (
        is_sender(principal, sending_institution_id)
        or is_receiver(principal, receiving_institution_id)
    ):
        return
    if action == "cancel" and (
        is_sender(principal, sending_institution_id)
        or is_receiver(principal, receiving_institution_id)
    ):
        return
    side = "remitente" if action in ("send",) else "receptora"
    if action in ("cancel", "in_transit"):
        side = "remitente o receptora"
    _deny(f"Su rol o institución no permite «{action}»: corresponde a la institución {side}.")


def can_list_referrals(principal: Principal) -> None:
    if principal.has("observer") and not principal.has(
        "segob_auditor", "service", "platform_admin", *SENDER_ROLES, *RECEIVER_ROLES
    ):
        _deny("Las personas observadoras solo consultan estadísticas agregadas.")


def sees_all_deidentified(principal: Principal) -> bool:
    return principal.has("segob_auditor", "platform_admin")


def can_fulfil(principal: Principal, kind: str, institution_id: str | None) -> None:
    if principal.has("platform_admin"):
        return
    roles = OBLIGATION_ROLES.get(kind, ())
    if principal.has(*roles) and (
        institution_id is None or principal.institution_id == institution_id
    ):
        return
    _deny("Esta obligación la atiende otra institución.")


def can_read_report(principal: Principal) -> None:
    if not principal.has("segob_auditor", "platform_admin", "observer", "service"):
        _deny("El informe de desenlaces es para SEGOB, CNDH y la administración.")


def can_import_history(principal: Principal) -> None:
    """Writing the past (final states, old timestamps) is for internal services only."""
    if not principal.has("service"):
        _deny("Solo un servicio interno (token de cliente) importa el historial de canalizaciones.")
