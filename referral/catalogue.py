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

# General Law (2012) art. 10, fractions I–XI: trafficking FOR a purpose (the forms of
# exploitation), kept apart from the stand-alone offences of arts. 11–36, which punish the
# exploitation itself (or a related conduct) and keep their own codes (``003:149-161``).
TRAFFICKING_FOR_A_PURPOSE: dict[str, str] = {
    "art10-I": "Trata con fines de esclavitud",
    "art10-II": "Trata con fines de condición de siervo",
    "art10-III": "Trata con fines de prostitución ajena u otras formas de explotación sexual",
    "art10-IV": "Trata con fines de explotación laboral",
    "art10-V": "Trata con fines de trabajo o servicios forzados",
    "art10-VI": "Trata con fines de mendicidad forzosa",
    "art10-VII": "Trata con fines de utilización de personas menores de dieciocho años en "
    "actividades delictivas",
    "art10-VIII": "Trata con fines de adopción ilegal de persona menor de dieciocho años",
    "art10-IX": "Trata con fines de matrimonio forzoso o servil",
    "art10-X": "Trata con fines de tráfico de órganos, tejidos y células de seres humanos vivos",
    "art10-XI": "Trata con fines de experimentación biomédica ilícita en seres humanos",
}
# The form of exploitation each stand-alone article belongs to (003:146-147: arts. 13–20
# sexual, 21 labour, 22 forced labour or services), for its label.
_STAND_ALONE_FORMS: dict[str, tuple[int, ...]] = {
    "esclavitud": (11,),
    "condición de siervo": (12,),
    "explotación sexual (arts. 13 a 20)": tuple(range(13, 21)),
    "explotación laboral": (21,),
    "trabajo o servicios forzados": (22, 23),
    "mendicidad forzosa": (24,),
    "utilización de personas menores de dieciocho años en actividades delictivas": (25,),
    "adopción ilegal de persona menor de dieciocho años": (26, 27),
    "matrimonio forzoso o servil": (28, 29),
    "tráfico de órganos, tejidos y células de seres humanos vivos": (30,),
    "experimentación biomédica ilícita en seres humanos": (31,),
    "conductas relacionadas (arts. 32 a 36)": tuple(range(32, 37)),
}
STAND_ALONE_OFFENCES: dict[str, str] = {
    f"art{n}": f"Artículo {n} de la Ley General: {form}"
    for form, articles in _STAND_ALONE_FORMS.items()
    for n in articles
}
# Every offence code the General Law's arts. 10–36 give; a victim may have several.
OFFENCES: dict[str, str] = {**TRAFFICKING_FOR_A_PURPOSE, **STAND_ALONE_OFFENCES}
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
}

HUMANITARIAN_VISA_STATUSES = ("not_started", "requested", "granted", "denied")


def is_recorded_foreign(nationality: str | None) -> bool:
    """A nationality recorded and not Mexican (stateless included): the INM is brought in."""
    return nationality is not None and nationality != MEXICAN_NATIONALITY


def age_group(age: int | None) -> str:
    """``minors`` for under 18 or unknown age (treated as a minor until assessed)."""
    return "adults" if age is not None and age >= ADULT_AGE else "minors"
