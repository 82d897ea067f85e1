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

# The offences of the General Law (arts. 10–36) are shared vocabulary (the web forms offer
# them): ``services.vocabulary``.
# The row of a person with two or more offences (or vulnerable groups) in a statistic that
# counts people: each person sits in one row, so no total exceeds the people.
TWO_OR_MORE = "two_or_more"

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
    "inm_child_protection": "Oficiales de protección a la infancia del INM (menor extranjero)",
}

HUMANITARIAN_VISA_STATUSES = ("not_started", "requested", "granted", "denied")


def is_recorded_foreign(nationality: str | None) -> bool:
    """A nationality recorded and not Mexican (stateless included): the INM is brought in."""
    return nationality is not None and nationality != MEXICAN_NATIONALITY


def age_group(age: int | None) -> str:
    """``minors`` for under 18 or unknown age (treated as a minor until assessed)."""
    return "adults" if age is not None and age >= ADULT_AGE else "minors"


# --- a foreign person's migration route (ADR 0022; 003:535, 004:864, 872, 914) --------------

MIGRATION_ROUTES: dict[str, str] = {
    "humanitarian_regularisation": "Regularización por razones humanitarias",
    "complementary_protection": "Protección complementaria",
    "asylum": "Reconocimiento de la condición de refugiada (COMAR, con ACNUR)",
    "assisted_return": "Retorno asistido",
}
MIGRATION_ROUTE_STATUSES: dict[str, str] = {
    "requested": "Solicitado",
    "in_process": "En trámite",
    "granted": "Concedido",
    "denied": "Negado",
    "completed": "Concluido",
}

# --- stays, follow-up and services provided (002:384, 397-415; 003:563) ----------------------

EXTENSION_REASONS: dict[str, str] = {
    "risk": "Persiste el riesgo",
    "physical_instability": "Inestabilidad física",
    "psychological_instability": "Inestabilidad psicológica",
    "other": "Otro motivo",
}
FOLLOW_UP_RESULTS: dict[str, str] = {
    "stable": "Localizada, estable",
    "needs_support": "Localizada, requiere apoyo",
    "not_reached": "No localizada",
    "declined": "No desea seguimiento",
}
SERVICES_PROVIDED: dict[str, str] = {
    "legal": "Asesoría jurídica",
    "psychological": "Atención psicológica",
    "medical": "Atención médica",
    "education": "Educación",
    "job_training": "Capacitación para el trabajo",
}


def folio(referral_id: str) -> str:
    """A referral's folio: the first eight characters of its id, stable and short enough to
    read out over the phone (the oficio, the e-mail notices)."""
    return f"CAN-{referral_id.replace('-', '')[:8].upper()}"
