"""The navigation bar: one entry per screen, shown to the roles that use it.

To add a screen, add a :class:`NavEntry` here (label marked with ``N_``, translated where
it is shown) and its strings to ``locale/*/LC_MESSAGES/messages.po``.
"""

from __future__ import annotations

from dataclasses import dataclass

from frontend.i18n import N_
from services.vocabulary import UserRole


@dataclass(frozen=True)
class NavEntry:
    path: str
    label: str
    roles: frozenset[str]


PROSECUTOR = frozenset({UserRole.PROSECUTOR, UserRole.PLATFORM_ADMIN})
COORDINATOR = frozenset({UserRole.SHELTER_COORDINATOR})
AUDITOR = frozenset({UserRole.SEGOB_AUDITOR, UserRole.PLATFORM_ADMIN})
INSTITUTION_ADMIN = frozenset({UserRole.INSTITUTION_ADMIN, UserRole.PLATFORM_ADMIN})
OPERATOR = frozenset({UserRole.SHELTER_COORDINATOR, UserRole.INSTITUTION_ADMIN})
INM = frozenset({UserRole.INM_OFFICER})
# Who is told live of the referrals their institution sends or receives (notify.js).
NOTIFIED = frozenset({UserRole.PROSECUTOR, UserRole.SHELTER_COORDINATOR})

NAV: list[NavEntry] = [
    NavEntry("/canalizaciones/nueva", N_("New referral"), PROSECUTOR),
    NavEntry("/canalizaciones", N_("My referrals"), PROSECUTOR),
    NavEntry("/canalizaciones/apartados", N_("Held beds"), PROSECUTOR),
    NavEntry("/operativos/nuevo", N_("Rescue operation"), PROSECUTOR),
    NavEntry("/refugio", N_("Occupancy"), COORDINATOR),
    NavEntry("/refugio/canalizaciones", N_("Incoming referrals"), COORDINATOR),
    NavEntry("/refugio/archivo", N_("Archive"), COORDINATOR),
    NavEntry("/inm/canalizaciones", N_("Migration routes"), INM),
    NavEntry("/avisos", N_("Notifications"), NOTIFIED),
    NavEntry("/segob/padron", N_("Roster"), AUDITOR),
    NavEntry("/segob/estadisticas", N_("Statistics"), AUDITOR),
    NavEntry("/segob/bitacora", N_("Audit trail"), AUDITOR),
    NavEntry("/institucion", N_("My institution"), INSTITUTION_ADMIN),
    NavEntry("/institucion/usuarios", N_("Users"), INSTITUTION_ADMIN),
    NavEntry("/institucion/convenios", N_("Agreements"), INSTITUTION_ADMIN),
    # Last: an institution admin's first screen stays /institucion.
    NavEntry("/refugio/registro", N_("SEGOB registration"), OPERATOR),
]


def nav_for(roles: set[str]) -> list[NavEntry]:
    """The entries a person with ``roles`` sees, in order."""
    return [entry for entry in NAV if entry.roles & roles]
