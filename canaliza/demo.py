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
# The state DIF of Mexico City: the child-protection obligation of a minor referred in
# CDMX is this institution's, not SNDIF's. Same key and name as the seed generator's
# per-state DIF ("dif-<INEGI code>").
DIF_CDMX = DemoInstitution(
    "dif-09",
    "Sistema para el Desarrollo Integral de la Familia de la Ciudad de México",
    "dif_estatal",
    "09",
)

DEMO_INSTITUTIONS = (PLATFORM, FGR, CASA_MERCEDES, SEGOB, SNDIF, INM, CEAV, CNDH, DIF_CDMX)

# username -> (role, institution): the public contract's users exactly, then additions
# (the contract may only grow).
DEMO_USERS: dict[str, tuple[str, DemoInstitution]] = {
    "admin": ("platform_admin", PLATFORM),
    "fiscal": ("prosecutor", FGR),
    "coordinadora": ("shelter_coordinator", CASA_MERCEDES),
    "auditor": ("segob_auditor", SEGOB),
    "dif": ("dif_officer", SNDIF),
    "inm": ("inm_officer", INM),
    "ceav": ("ceav_officer", CEAV),
    "observador": ("observer", CNDH),
    # additions beyond the contract's table
    "dif_cdmx": ("dif_officer", DIF_CDMX),
}

DEMO_CLI_CLIENT_ID = "canaliza-cli"
