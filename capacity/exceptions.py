"""Capacity's domain errors (each carries its HTTP status, machine code and a Spanish detail)."""

from __future__ import annotations

from typing import Any

from services.errors import Conflict, Forbidden, NotFound, PreconditionFailed, Unprocessable


class FacilityNotFound(NotFound):
    code = "facility_not_found"

    def __init__(self) -> None:
        super().__init__("No existe esa instalación.")


class PoolNotFound(NotFound):
    code = "pool_not_found"

    def __init__(self) -> None:
        super().__init__("No existe ese grupo de camas.")


class HoldNotFound(NotFound):
    code = "hold_not_found"

    def __init__(self) -> None:
        super().__init__("No existe esa reserva de camas.")


class BedsUnavailable(Conflict):
    code = "beds_unavailable"


class FacilityNotActive(Conflict):
    code = "facility_not_active"


class InvalidTransition(Conflict):
    code = "invalid_status_transition"


class HoldNotActive(Conflict):
    code = "hold_not_active"


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"


class CountsConflict(Conflict):
    """A ledger entry the counts cannot take (e.g. discharging more than are occupied)."""

    code = "counts_conflict"


class StaleVersion(PreconditionFailed):
    code = "stale_version"

    def __init__(self, current: int) -> None:
        super().__init__(
            f"El grupo de camas cambió mientras lo editaba (versión actual {current}); "
            "vuelva a cargarlo y repita el cambio.",
            extra={"current_version": current},
        )


class NotYourFacility(Forbidden):
    code = "forbidden_scope"

    def __init__(
        self,
        detail: str = "Sólo el personal de la institución operadora puede "
        "modificar esta instalación.",
        **kw: Any,
    ) -> None:
        super().__init__(detail, **kw)


class RegistrationConflict(Conflict):
    """A registration step that the facility's registration state does not allow."""

    code = "registration_conflict"


class ChecklistNotMet(Conflict):
    code = "checklist_not_met"


class FacilityNotRegistered(Conflict):
    """Holds refused on unregistered facilities when the setting forbids them."""

    code = "facility_not_registered"


class HoldQuotaExceeded(Conflict):
    """One institution would hold more beds at once than ``CANALIZA_HOLD_QUOTA_BEDS``."""

    code = "hold_quota_exceeded"


class HoldTtlTooLong(Unprocessable):
    """A hold asked to last longer than ``CANALIZA_HOLD_MAX_TTL_MINUTES``."""

    code = "hold_ttl_too_long"


class OperationNotFound(NotFound):
    code = "operation_not_found"

    def __init__(self) -> None:
        super().__init__("No existe ese operativo.")


class OperationQuotaExceeded(Conflict):
    """One institution would hold more beds in operations than
    ``CANALIZA_OPERATION_QUOTA_BEDS``."""

    code = "operation_quota_exceeded"


class PinnedAssignmentInvalid(Unprocessable):
    """A pinned assignment of ``POST /operations`` the plan cannot take (nothing written)."""

    code = "pinned_assignment_invalid"
