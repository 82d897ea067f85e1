"""Who may do what in the audit service (in one place)."""

from __future__ import annotations

from services.errors import Forbidden
from services.tokens import Principal

TRAIL_READERS = frozenset({"segob_auditor", "platform_admin"})


def ensure_trail_reader(principal: Principal) -> None:
    """Only SEGOB auditors and platform admins read the audit trail."""
    if not (set(principal.roles) & TRAIL_READERS):
        raise Forbidden(
            "Sólo la auditoría de SEGOB y la administración leen la bitácora.",
            code="forbidden_role",
        )
