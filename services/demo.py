"""The demo's reference identities, shared by the auth service and the seed generator.

Institution ids are stable (UUID5), so users seeded by the auth service and facilities,
agreements and referrals seeded elsewhere refer to the same institutions.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.ids import stable_id


@dataclass(frozen=True)
class DemoInstitution:
    key: str
    name: str
    type: str
    state: str

    @property
    def id(self) -> str:
        return stable_id("institution", self.key)


PLATFORM = DemoInstitution("platform", "Plataforma Canaliza", "segob", "09")
FGR = DemoInstitution("fgr-fevimtra", "FGR — FEVIMTRA", "fiscalia_federal", "09")
CASA_MERCEDES = DemoInstitution(
    "ngo-casa-de-las-mercedes", "Casa de las Mercedes, I.A.P.", "ngo", "09"
)
SEGOB = DemoInstitution(
    "segob", "SEGOB — Unidad para la Defensa de los Derechos Humanos", "segob", "09"
)
SNDIF = DemoInstitution("sndif", "Sistema Nacional DIF", "dif_nacional", "09")
INM = DemoInstitution("inm", "Instituto Nacional de Migración", "inm", "09")
CEAV = DemoInstitution("ceav", "Comisión Ejecutiva de Atención a Víctimas", "ceav", "09")
CNDH = DemoInstitution("cndh", "Comisión Nacional de los Derechos Humanos", "cndh", "09")

DEMO_INSTITUTIONS = (PLATFORM, FGR, CASA_MERCEDES, SEGOB, SNDIF, INM, CEAV, CNDH)

# username -> (role, institution) exactly as in the public contract.
DEMO_USERS: dict[str, tuple[str, DemoInstitution]] = {
    "admin": ("platform_admin", PLATFORM),
    "fiscal": ("prosecutor", FGR),
    "coordinadora": ("shelter_coordinator", CASA_MERCEDES),
    "auditor": ("segob_auditor", SEGOB),
    "dif": ("dif_officer", SNDIF),
    "inm": ("inm_officer", INM),
    "ceav": ("ceav_officer", CEAV),
    "observador": ("observer", CNDH),
}

DEMO_CLI_CLIENT_ID = "canaliza-cli"
