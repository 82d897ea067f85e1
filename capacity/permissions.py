"""Who may do what in the capacity service — decided here and nowhere else.

- platform_admin: everything.
- institution_admin, shelter_coordinator: read the roster; change pools, write ledger
  entries and confirm capacity only of facilities their institution operates; see those
  facilities' addresses and set their contact and arrival instructions; consume or
  release holds on them.
- prosecutor, dif_officer, inm_officer, ceav_officer: read the roster (no address), search,
  hold beds, list, read and release the holds of their institution; plan and hold rescue
  operations, read and release their institution's operations.
- shelter_coordinator also searches and holds beds elsewhere, to send a person her
  institution admitted onward (ADR 0021); reads and releases her institution's holds.
- segob_auditor: read the roster and ledgers, never an address; review registrations.
- registration: the operator's staff (or platform_admin) submit a facility; SEGOB reviews.
- service (service-to-service): read everything including addresses, consume/release
  holds, write ledger entries, search and hold.
- observer: nothing here (aggregated statistics live elsewhere).
"""

from __future__ import annotations

from services.errors import Forbidden
from services.tokens import Principal
from services.vocabulary import UserRole

ADMIN = UserRole.PLATFORM_ADMIN
SERVICE = UserRole.SERVICE
SEGOB = UserRole.SEGOB_AUDITOR
STAFF_ROLES = (UserRole.INSTITUTION_ADMIN, UserRole.SHELTER_COORDINATOR)
PLACING_ROLES = (
    UserRole.PROSECUTOR,
    UserRole.DIF_OFFICER,
    UserRole.INM_OFFICER,
    UserRole.CEAV_OFFICER,
)
ROSTER_ROLES = (ADMIN, SERVICE, *STAFF_ROLES, *PLACING_ROLES, SEGOB)
# Who may search and hold beds: the placing roles, and a shelter's coordinator sending a
# person onward (ADR 0021).
HOLDING_ROLES = (*PLACING_ROLES, UserRole.SHELTER_COORDINATOR)


def _deny(detail: str = "Su rol no permite esta operación.") -> Forbidden:
    return Forbidden(detail, code="forbidden_role")


def is_operator_staff(principal: Principal, operator_institution_id: str) -> bool:
    """Whether the caller is staff of the institution that operates the facility."""
    return (
        principal.has(*STAFF_ROLES)
        and principal.institution_id is not None
        and principal.institution_id == operator_institution_id
    )


def can_use_capacity(principal: Principal) -> bool:
    """Any capacity route at all (observers and role-less tokens are kept out)."""
    return principal.has(*ROSTER_ROLES)


def ensure_capacity_access(principal: Principal) -> None:
    if not can_use_capacity(principal):
        raise _deny("Su rol no da acceso al servicio de capacidad.")


def ensure_manage_facilities(principal: Principal) -> None:
    """Create facilities and pools, edit facilities and change their status."""
    if not principal.has(ADMIN):
        raise _deny("Sólo la administración de la plataforma registra o modifica instalaciones.")


def can_see_address(principal: Principal, operator_institution_id: str) -> bool:
    """The exact location: admin, services, and staff of the operator institution."""
    return principal.has(ADMIN, SERVICE) or is_operator_staff(principal, operator_institution_id)


def ensure_edit_pool(principal: Principal, operator_institution_id: str) -> None:
    """Change a pool's eligibility or confirm its capacity."""
    if principal.has(ADMIN) or is_operator_staff(principal, operator_institution_id):
        return
    raise Forbidden(
        "Sólo el personal de la institución que opera la instalación puede modificar sus camas.",
        code="forbidden_scope",
    )


def ensure_confirm_pool(principal: Principal, operator_institution_id: str) -> None:
    if principal.has(SERVICE):
        return
    ensure_edit_pool(principal, operator_institution_id)


def ensure_write_ledger(principal: Principal, operator_institution_id: str) -> None:
    """Admit, discharge, adjust, out of service (the service role too: admissions)."""
    if principal.has(SERVICE):
        return
    ensure_edit_pool(principal, operator_institution_id)


def ensure_read_ledger(principal: Principal, operator_institution_id: str) -> None:
    if principal.has(ADMIN, SERVICE, SEGOB) or is_operator_staff(
        principal, operator_institution_id
    ):
        return
    raise Forbidden(
        "El historial de ocupación sólo lo consultan la institución operadora y la auditoría.",
        code="forbidden_scope",
    )


def ensure_search(principal: Principal) -> None:
    if not principal.has(ADMIN, SERVICE, *HOLDING_ROLES):
        raise _deny("Su rol no permite buscar camas disponibles.")


def ensure_create_hold(principal: Principal) -> None:
    if not principal.has(ADMIN, SERVICE, *HOLDING_ROLES):
        raise _deny("Su rol no permite reservar camas.")


def _is_holder(principal: Principal, created_by: str, institution_id: str | None) -> bool:
    if principal.sub == created_by:
        return True
    return (
        principal.has(*HOLDING_ROLES)
        and institution_id is not None
        and principal.institution_id == institution_id
    )


def ensure_read_hold(
    principal: Principal, *, created_by: str, institution_id: str | None, operator_id: str
) -> None:
    if (
        principal.has(ADMIN, SERVICE)
        or _is_holder(principal, created_by, institution_id)
        or is_operator_staff(principal, operator_id)
    ):
        return
    raise Forbidden("Esa reserva no es de su institución.", code="forbidden_scope")


def ensure_release_hold(
    principal: Principal, *, created_by: str, institution_id: str | None, operator_id: str
) -> None:
    ensure_read_hold(
        principal, created_by=created_by, institution_id=institution_id, operator_id=operator_id
    )


def ensure_consume_hold(principal: Principal, *, operator_id: str) -> None:
    """Turning held beds into an admission: the referral service or the facility's staff."""
    if principal.has(ADMIN, SERVICE) or is_operator_staff(principal, operator_id):
        return
    raise Forbidden(
        "Sólo la instalación que recibe (o el servicio de canalización) registra el ingreso.",
        code="forbidden_scope",
    )


def ensure_import_roster(principal: Principal) -> None:
    """Bulk import of the roster (facilities in their final status): internal services only."""
    if not principal.has(SERVICE):
        raise _deny("Solo un servicio interno (token de cliente) importa el padrón en bloque.")


def ensure_submit_registration(principal: Principal, operator_institution_id: str) -> None:
    """The operator (its admin or coordinator) or a platform admin asks for registration."""
    if principal.has(ADMIN) or is_operator_staff(principal, operator_institution_id):
        return
    raise Forbidden(
        "Sólo la institución que opera la instalación puede solicitar su registro.",
        code="forbidden_scope",
    )


def ensure_review_registration(principal: Principal) -> None:
    """SEGOB reviews registrations (a platform admin may stand in)."""
    if not principal.has(SEGOB, ADMIN):
        raise _deny("Sólo la auditoría de SEGOB revisa las solicitudes de registro.")


def ensure_read_registration(principal: Principal, operator_institution_id: str) -> None:
    """A registration file (with SEGOB's observations): the operator, SEGOB, admins."""
    if principal.has(ADMIN, SERVICE, SEGOB) or is_operator_staff(
        principal, operator_institution_id
    ):
        return
    raise Forbidden(
        "El expediente de registro sólo lo consultan la institución operadora y SEGOB.",
        code="forbidden_scope",
    )


def ensure_plan_operation(principal: Principal) -> None:
    """Plan or hold a rescue operation: whoever may search and hold beds."""
    if not principal.has(ADMIN, SERVICE, *PLACING_ROLES):
        raise _deny("Su rol no permite planear operativos de rescate.")


def ensure_read_operation(
    principal: Principal, *, created_by: str, institution_id: str | None
) -> None:
    """An operation (and releasing it): its institution's placing staff, admins, services."""
    if principal.has(ADMIN, SERVICE) or _is_holder(principal, created_by, institution_id):
        return
    raise Forbidden("Ese operativo no es de su institución.", code="forbidden_scope")
