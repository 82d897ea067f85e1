"""Languages: gettext catalogues compiled at start-up, Babel formats, state names.

Message ids are English (code language); ``locale/es_MX`` carries the Spanish every user
sees by default, ``locale/en`` exists so the English switch is a real catalogue too. The
``.po`` files are compiled in memory when first used, so no binary ``.mo`` is committed
or can go stale.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from services.countries import ISO_3166_1, STATELESS, collation_key

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"es-MX": "es_MX", "en": "en"}
DEFAULT_LANGUAGE = "es-MX"
LANG_COOKIE = "canaliza_lang"
TIMEZONE = ZoneInfo("America/Mexico_City")


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language`` (``es-MX`` or ``en``)."""
    folder = LANGUAGES.get(language, LANGUAGES[DEFAULT_LANGUAGE])
    po_path = LOCALE_DIR / folder / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return gettext.NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=folder)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def pick_language(cookie: str | None, accept_language: str | None = None) -> str:
    """The cookie's choice; otherwise Spanish (the platform's language), whatever the browser."""
    if cookie in LANGUAGES:
        return str(cookie)
    return DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Translator:
    """One request's language: gettext and Babel formats."""

    language: str

    @property
    def babel_locale(self) -> Locale:
        return Locale.parse(LANGUAGES[self.language])

    def gettext(self, message: str, **values: Any) -> str:
        text = translations(self.language).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        text = translations(self.language).ngettext(singular, plural, n)
        return text % {"num": n, **values}

    # One format on every screen (issue 19): dates as "23 nov 2026", moments in Mexico City
    # time as "23 nov 2026, 12:30 p.m.".

    def datetime(self, value: datetime | str | None) -> str:
        """A moment, in Mexico City time (a naive value is UTC, as the services store it)."""
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        local = value.astimezone(TIMEZONE)
        time = format_time(local, "short", tzinfo=TIMEZONE, locale=self.babel_locale)
        return f"{self.date(local.date())}, {time}"

    def date(self, value: date | str | None) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = date.fromisoformat(value[:10])
        return format_date(value, "medium", locale=self.babel_locale)

    def number(self, value: float | int | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.babel_locale)

    def age(self, years: int | None) -> str:
        """An age as people say it: "under 1 year" for a baby, never "0 years"."""
        if years is None:
            return self.gettext("age unknown")
        if years < 1:
            return self.gettext("under 1 year")
        return self.ngettext("%(num)s year", "%(num)s years", years)

    def age_group(self, band: Any) -> str:
        """A CNDH age group ("13-17", "60+") in words; anything else is "No information"."""
        text = str(band or "")
        if text.endswith("+") and text[:-1].isdigit():
            return self.gettext("%(low)s years or more", low=text[:-1])
        low, _, high = text.partition("-")
        if low.isdigit() and high.isdigit():
            return self.gettext("%(low)s to %(high)s years", low=low, high=high)
        return self.gettext(NO_INFORMATION_ID)

    def state(self, code: str | None) -> str:
        if not code:
            return ""
        name = STATES.get(code)
        return self.gettext(name) if name else code

    def country(self, iso3: str | None) -> str:
        if iso3 is None:
            return self.gettext(NO_INFORMATION_ID)
        if iso3 == STATELESS:
            return self.gettext(STATELESS_ID)
        iso2 = COUNTRIES.get(iso3)
        if not iso2:
            return iso3
        return str(self.babel_locale.territories.get(iso2, iso3))

    def countries(self) -> list[str]:
        """Every country code, by its name in this language (accents ignored)."""
        return sorted(COUNTRIES, key=lambda code: collation_key(self.country(code)))


# INEGI codes of the entidades federativas; ids are the English forms where they differ.
STATES: dict[str, str] = {
    "01": N_("Aguascalientes"),
    "02": N_("Baja California"),
    "03": N_("Baja California Sur"),
    "04": N_("Campeche"),
    "05": N_("Coahuila"),
    "06": N_("Colima"),
    "07": N_("Chiapas"),
    "08": N_("Chihuahua"),
    "09": N_("Mexico City"),
    "10": N_("Durango"),
    "11": N_("Guanajuato"),
    "12": N_("Guerrero"),
    "13": N_("Hidalgo"),
    "14": N_("Jalisco"),
    "15": N_("State of Mexico"),
    "16": N_("Michoacán"),
    "17": N_("Morelos"),
    "18": N_("Nayarit"),
    "19": N_("Nuevo León"),
    "20": N_("Oaxaca"),
    "21": N_("Puebla"),
    "22": N_("Querétaro"),
    "23": N_("Quintana Roo"),
    "24": N_("San Luis Potosí"),
    "25": N_("Sinaloa"),
    "26": N_("Sonora"),
    "27": N_("Tabasco"),
    "28": N_("Tamaulipas"),
    "29": N_("Tlaxcala"),
    "30": N_("Veracruz"),
    "31": N_("Yucatán"),
    "32": N_("Zacatecas"),
}

# Nationalities offered first in forms (ISO 3166 alpha-3 → alpha-2 for Babel's names).
# Every ISO 3166-1 country (alpha-3 → alpha-2, the key of Babel's territory names), plus
# stateless (XXA); a form also offers "No information" (NO_INFORMATION, sent as null).
COUNTRIES: dict[str, str] = {c.alpha_3: c.alpha_2 for c in ISO_3166_1}
STATELESS_ID = N_("Stateless")
NO_INFORMATION_ID = N_("No information")
