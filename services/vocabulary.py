"""Vocabulary shared by every service: the CNDH minimum variables, the entidades federativas
(INEGI codes, Spanish names) and the contract's institution types (Spanish labels)."""

from __future__ import annotations

# The CNDH's age groups (``003:795``); "unknown" is S.I. (no information), never a zero.
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
