"""Vocabulary shared by every service: the CNDH minimum variables, the entidades federativas
(INEGI codes, Spanish names) and the contract's institution types (Spanish labels)."""

from __future__ import annotations

from enum import StrEnum

# The CNDH's age groups (``003:795``, see docs/sources.md); "unknown" is S.I. (no information), never a zero.
CNDH_AGE_BANDS = ("0-12", "13-17", "18-59", "60+", "unknown")
NO_INFORMATION = "S.I."
NOT_APPLICABLE = "N/A"


def cndh_age_band(age: int | None) -> str:
    """The CNDH statistical age group of an age in years."""
    if age is None:
        return "unknown"
    if age <= 12:
        return "0-12"
    if age <= 17:
        return "13-17"
    return "18-59" if age <= 59 else "60+"


# INEGI codes of the 32 entidades federativas and their everyday Spanish names.
STATE_NAMES = {
    "01": "Aguascalientes", "02": "Baja California", "03": "Baja California Sur",
    "04": "Campeche", "05": "Coahuila", "06": "Colima", "07": "Chiapas", "08": "Chihuahua",
    "09": "Ciudad de México", "10": "Durango", "11": "Guanajuato", "12": "Guerrero",
    "13": "Hidalgo", "14": "Jalisco", "15": "Estado de México", "16": "Michoacán",
    "17": "Morelos", "18": "Nayarit", "19": "Nuevo León", "20": "Oaxaca", "21": "Puebla",
    "22": "Querétaro", "23": "Quintana Roo", "24": "San Luis Potosí", "25": "Sinaloa",
    "26": "Sonora", "27": "Tabasco", "28": "Tamaulipas", "29": "Tlaxcala", "30": "Veracruz",
    "31": "Yucatán", "32": "Zacatecas",
}  # fmt: skip

# The contract's institution types with their Spanish labels.
INSTITUTION_TYPES: dict[str, str] = {
    "fiscalia_federal": "Fiscalía federal",
    "fiscalia_estatal": "Fiscalía estatal",
    "dif_nacional": "Sistema Nacional DIF",
    "dif_estatal": "DIF estatal",
    "dif_municipal": "DIF municipal",
    "inm": "Instituto Nacional de Migración",
    "ceav": "Comisión Ejecutiva de Atención a Víctimas",
    "ceeav": "Comisión estatal de atención a víctimas",
    "segob": "Secretaría de Gobernación",
    "cndh": "Comisión Nacional de los Derechos Humanos",
    "sre": "Secretaría de Relaciones Exteriores",
    "ngo": "Organización de la sociedad civil",
}


# --- one vocabulary: the contract's codes as StrEnums, each with its Spanish label -----------


class Vocabulary(StrEnum):
    """A code of the public contract; ``.label`` is its Spanish (es-MX) name."""

    @property
    def label(self) -> str:
        return _LABELS[type(self).__name__][self.value]

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(member.value for member in cls)

    @classmethod
    def labels(cls) -> dict[str, str]:
        return {member.value: member.label for member in cls}


class Sex(Vocabulary):
    F = "F"
    M = "M"
    X = "X"


class PersonRole(Vocabulary):
    VICTIM = "victim"
    INDIRECT_VICTIM = "indirect_victim"
    WITNESS = "witness"
    ACCOMPANYING_CHILD = "accompanying_child"


class UserRole(Vocabulary):
    PLATFORM_ADMIN = "platform_admin"
    INSTITUTION_ADMIN = "institution_admin"
    PROSECUTOR = "prosecutor"
    SHELTER_COORDINATOR = "shelter_coordinator"
    DIF_OFFICER = "dif_officer"
    INM_OFFICER = "inm_officer"
    CEAV_OFFICER = "ceav_officer"
    SEGOB_AUDITOR = "segob_auditor"
    OBSERVER = "observer"
    SERVICE = "service"


class InstitutionType(Vocabulary):
    FISCALIA_FEDERAL = "fiscalia_federal"
    FISCALIA_ESTATAL = "fiscalia_estatal"
    DIF_NACIONAL = "dif_nacional"
    DIF_ESTATAL = "dif_estatal"
    DIF_MUNICIPAL = "dif_municipal"
    INM = "inm"
    CEAV = "ceav"
    CEEAV = "ceeav"
    SEGOB = "segob"
    CNDH = "cndh"
    SRE = "sre"
    NGO = "ngo"


# Resource capture (issue 20): the roles a user of each type of institution may hold. An NGO
# cannot mint prosecutors, nor a prosecution office INM officers. ``platform_admin`` and
# ``service`` are no institution's: only the platform grants them. docs/security/permissions.md.
INSTITUTION_ROLES: dict[InstitutionType, frozenset[UserRole]] = {
    InstitutionType.FISCALIA_FEDERAL: frozenset(
        {UserRole.PROSECUTOR, UserRole.SHELTER_COORDINATOR, UserRole.INSTITUTION_ADMIN}
    ),
    InstitutionType.FISCALIA_ESTATAL: frozenset(
        {UserRole.PROSECUTOR, UserRole.SHELTER_COORDINATOR, UserRole.INSTITUTION_ADMIN}
    ),
    InstitutionType.DIF_NACIONAL: frozenset(
        {UserRole.DIF_OFFICER, UserRole.SHELTER_COORDINATOR, UserRole.INSTITUTION_ADMIN}
    ),
    InstitutionType.DIF_ESTATAL: frozenset(
        {UserRole.DIF_OFFICER, UserRole.SHELTER_COORDINATOR, UserRole.INSTITUTION_ADMIN}
    ),
    InstitutionType.DIF_MUNICIPAL: frozenset(
        {UserRole.DIF_OFFICER, UserRole.SHELTER_COORDINATOR, UserRole.INSTITUTION_ADMIN}
    ),
    InstitutionType.INM: frozenset({UserRole.INM_OFFICER, UserRole.INSTITUTION_ADMIN}),
    InstitutionType.CEAV: frozenset(
        {UserRole.CEAV_OFFICER, UserRole.SHELTER_COORDINATOR, UserRole.INSTITUTION_ADMIN}
    ),
    InstitutionType.CEEAV: frozenset(
        {UserRole.CEAV_OFFICER, UserRole.SHELTER_COORDINATOR, UserRole.INSTITUTION_ADMIN}
    ),
    InstitutionType.SEGOB: frozenset({UserRole.SEGOB_AUDITOR, UserRole.INSTITUTION_ADMIN}),
    InstitutionType.CNDH: frozenset({UserRole.OBSERVER, UserRole.INSTITUTION_ADMIN}),
    InstitutionType.SRE: frozenset({UserRole.OBSERVER, UserRole.INSTITUTION_ADMIN}),
    InstitutionType.NGO: frozenset({UserRole.SHELTER_COORDINATOR, UserRole.INSTITUTION_ADMIN}),
}
# Roles of no institution type: granted by the platform alone, to any institution or none.
PLATFORM_WIDE_ROLES = frozenset({UserRole.PLATFORM_ADMIN, UserRole.SERVICE})


class FacilityKind(Vocabulary):
    REFUGIO = "refugio"
    ALBERGUE = "albergue"
    CASA_DE_MEDIO_CAMINO = "casa_de_medio_camino"


class FacilityStatus(Vocabulary):
    REGISTERED = "registered"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class RegistrationStatus(Vocabulary):
    NOT_SUBMITTED = "not_submitted"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    REGISTERED = "registered"


class ReferralStatus(Vocabulary):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    IN_TRANSIT = "in_transit"
    ADMITTED = "admitted"
    DISCHARGED = "discharged"
    CANCELLED = "cancelled"


class Outcome(Vocabulary):
    REINTEGRATED_ORIGIN = "reintegrated_origin"
    REINTEGRATED_ELSEWHERE = "reintegrated_elsewhere"
    TRANSFERRED_ONWARD = "transferred_onward"
    LEFT_VOLUNTARILY = "left_voluntarily"
    # A foreign victim's return to her country, assisted (ADR 0022); never "repatriated".
    ASSISTED_RETURN = "assisted_return"
    OTHER = "other"


# Outcomes once written under another code, read as today's (ADR 0022).
LEGACY_OUTCOMES = {"repatriated": Outcome.ASSISTED_RETURN.value}


class DetectionSource(Vocabulary):
    """How the authorities came to know of a victim (``003:669, 681``; ``004:860, 868``).

    ``null`` in a body is "not recorded" (S.I.), never a guess."""

    HOTLINE = "hotline"
    ANONYMOUS_REPORT = "anonymous_report"
    VICTIM_COMPLAINT = "victim_complaint"
    WITNESS_COMPLAINT = "witness_complaint"
    EX_OFFICIO = "ex_officio"
    INSPECTION = "inspection"
    OPERATION = "operation"
    SELF_PRESENTATION = "self_presentation"
    INSTITUTION_REFERRAL = "institution_referral"
    OTHER = "other"


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

# Services by code, in one vocabulary: those a facility offers (``mental_health``,
# ``social_work``, ``interpreter``...) and those a shelter records as given to a person
# (``referral.service.provided``: ``psychological``, ``job_training``...).
SERVICE_LABELS: dict[str, str] = {
    "legal": "Asesoría jurídica",
    "medical": "Atención médica",
    "mental_health": "Atención psicológica",
    "psychological": "Atención psicológica",
    "social_work": "Trabajo social",
    "education": "Educación",
    "job_training": "Capacitación para el trabajo",
    "interpreter": "Intérprete",
    "interpretation": "Intérprete",
}


class HoldStatus(Vocabulary):
    ACTIVE = "active"
    RELEASED = "released"
    EXPIRED = "expired"
    CONSUMED = "consumed"


_LABELS: dict[str, dict[str, str]] = {
    "Sex": {"F": "Mujer", "M": "Hombre", "X": "No binaria / otra"},
    "PersonRole": {
        "victim": "Víctima directa",
        "indirect_victim": "Víctima indirecta",
        "witness": "Testigo",
        "accompanying_child": "Niña o niño acompañante",
    },
    "UserRole": {
        "platform_admin": "Administración de la plataforma",
        "institution_admin": "Administración de la institución",
        "prosecutor": "Agente del Ministerio Público",
        "shelter_coordinator": "Coordinación de refugio",
        "dif_officer": "Personal del DIF",
        "inm_officer": "Personal del INM",
        "ceav_officer": "Personal de la CEAV",
        "segob_auditor": "Supervisión de SEGOB",
        "observer": "Observación (solo estadísticas)",
        "service": "Servicio interno",
    },
    "InstitutionType": INSTITUTION_TYPES,
    "FacilityKind": {
        "refugio": "Refugio",
        "albergue": "Albergue",
        "casa_de_medio_camino": "Casa de medio camino",
    },
    "FacilityStatus": {
        "registered": "registrada",
        "active": "activa",
        "suspended": "suspendida",
        "closed": "cerrada",
    },
    "RegistrationStatus": {
        "not_submitted": "Sin solicitud",
        "submitted": "Solicitud en revisión",
        "returned": "Devuelta con observaciones",
        "registered": "Registrada en el padrón",
    },
    "ReferralStatus": {
        "draft": "Borrador",
        "sent": "Enviada",
        "accepted": "Aceptada",
        "declined": "Rechazada",
        "expired": "Vencida sin respuesta",
        "in_transit": "En traslado",
        "admitted": "Ingresada",
        "discharged": "Egresada",
        "cancelled": "Cancelada",
    },
    "Outcome": {
        "reintegrated_origin": "Reintegración en el lugar de origen",
        "reintegrated_elsewhere": "Reintegración en otro lugar",
        "transferred_onward": "Traslado a otra instancia",
        "left_voluntarily": "Salida voluntaria",
        "assisted_return": "Retorno asistido al país de origen",
        "other": "Otro",
    },
    "DetectionSource": {
        "hotline": "Línea telefónica o correo de denuncia",
        "anonymous_report": "Denuncia anónima",
        "victim_complaint": "Denuncia de la víctima",
        "witness_complaint": "Denuncia de un testigo",
        "ex_officio": "Investigación de oficio",
        "inspection": "Inspección de establecimientos",
        "operation": "Operativo",
        "self_presentation": "Presentación espontánea de la víctima",
        "institution_referral": "Canalización de otra institución",
        "other": "Otra",
    },
    "HoldStatus": {
        "active": "vigente",
        "released": "liberada",
        "expired": "vencida",
        "consumed": "usada en un ingreso",
    },
}
