"""Reference vocabularies of the referral service only, with their Spanish labels.

The vocabulary every service shares (sexes, person roles, referral statuses, outcomes,
institution types, user roles) is in ``services.vocabulary``.
"""

from __future__ import annotations

LEGAL_FORMS = ("A.C.", "I.A.P.")

AGE_GROUPS: dict[str, str] = {"minors": "Personas menores de 18 años", "adults": "Personas adultas"}
ADULT_AGE = 18

VULNERABLE_GROUPS: dict[str, str] = {
    "indigenous": "Persona indígena",
    "lgbtttiq": "Persona LGBTTTIQ",
    "disability": "Persona con discapacidad",
    "migrant_in_transit": "Persona migrante en tránsito",
}

SERVICES: dict[str, str] = {
    "legal": "Asesoría jurídica",
    "medical": "Atención médica",
    "mental_health": "Atención psicológica",
    "social_work": "Trabajo social",
    "education": "Educación",
    "interpreter": "Intérprete",
}

# General Law (2012) art. 10, fractions I–XI: the forms of exploitation.
OFFENCES: dict[str, str] = {
    "art10-I": "Esclavitud",
    "art10-II": "Condición de siervo",
    "art10-III": "Prostitución ajena u otras formas de explotación sexual",
    "art10-IV": "Explotación laboral",
    "art10-V": "Trabajo o servicios forzados",
    "art10-VI": "Mendicidad forzosa",
    "art10-VII": "Utilización de personas menores de dieciocho años en actividades delictivas",
    "art10-VIII": "Adopción ilegal de persona menor de dieciocho años",
    "art10-IX": "Matrimonio forzoso o servil",
    "art10-X": "Tráfico de órganos, tejidos y células de seres humanos vivos",
    "art10-XI": "Experimentación biomédica ilícita en seres humanos",
    # Related offences of arts. 11–36 keep their own codes; the CNDH diagnosis reports
    # victims of art. 32 (003:155).
    "art32": "Conductas sancionadas por el artículo 32 de la Ley General",
}

AGREEMENT_STATUSES: dict[str, str] = {
    "draft": "Borrador",
    "ready_for_signature": "Lista para firma",
    "signed": "Firmado",
    "expired": "Vencido",
    "revoked": "Revocado",
}

MEXICAN_NATIONALITY = "MEX"
EVERY_SEX = ("F", "M", "X")

OBLIGATIONS: dict[str, str] = {
    "dif_child_protection": "Protección de niñas, niños y adolescentes (DIF)",
    "inm_migration_status": "Situación migratoria y visa humanitaria (INM)",
    "ceav_registration": "Inscripción en el Registro Nacional de Víctimas (CEAV)",
    "witness_protection": "Protección de testigos: identidad reservada",
    "nationality_unconfirmed": "Nacionalidad por confirmar (sin información: aún no se avisa al INM)",
}

HUMANITARIAN_VISA_STATUSES = ("not_started", "requested", "granted", "denied")


def is_recorded_foreign(nationality: str | None) -> bool:
    """A nationality recorded and not Mexican (stateless included): the INM is brought in."""
    return nationality is not None and nationality != MEXICAN_NATIONALITY


def age_group(age: int | None) -> str:
    """``minors`` for under 18 or unknown age (treated as a minor until assessed)."""
    return "adults" if age is not None and age >= ADULT_AGE else "minors"


def folio(referral_id: str) -> str:
    """A referral's folio: the first eight characters of its id, stable and short enough to
    read out over the phone (the oficio, the e-mail notices)."""
    return f"CAN-{referral_id.replace('-', '')[:8].upper()}"
