"""The catalogues are complete and current; dates, numbers and state names per language."""

from __future__ import annotations

from datetime import UTC, date, datetime

from babel.messages.pofile import read_po

from frontend.catalogue import LOCALES, extract, po_path
from frontend.i18n import STATES, Translator, pick_language


def _catalogue(locale: str):
    with po_path(locale).open("rb") as fh:
        return read_po(fh, locale=locale)


def test_every_string_of_the_ui_has_its_spanish_and_no_stale_ids_remain():
    used = {m.id if isinstance(m.id, str) else m.id[0] for m in extract() if m.id}
    assert len(used) > 100
    for locale in LOCALES:
        catalogue = _catalogue(locale)
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue if m.id}
        assert used - ids == set(), f"{locale}: run `python -m frontend.catalogue`"
        assert ids - used == set(), f"{locale}: ids no longer used"
    spanish = _catalogue("es_MX")
    empty = [
        m.id
        for m in spanish
        if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))
    ]
    assert empty == []


def test_spanish_is_the_default_and_english_is_a_switch():
    assert pick_language(None) == "es-MX"
    assert pick_language("en") == "en"
    assert pick_language("fr") == "es-MX"
    es, en = Translator("es-MX"), Translator("en")
    assert es.gettext("New referral") == "Nueva canalización"
    assert en.gettext("New referral") == "New referral"
    assert es.ngettext("%(num)s bed", "%(num)s beds", 1) == "1 cama"
    assert es.ngettext("%(num)s bed", "%(num)s beds", 3) == "3 camas"


def test_dates_numbers_and_states_follow_the_language():
    es, en = Translator("es-MX"), Translator("en")
    # one format on every screen: the date, then the time in Mexico City (18:30 UTC is 12:30)
    assert es.date(date(2026, 11, 23)) == "23 nov 2026"
    assert en.date(date(2026, 11, 23)) == "Nov 23, 2026"
    moment = datetime(2026, 11, 23, 18, 30, tzinfo=UTC)
    assert es.datetime(moment).replace("\u202f", " ").replace("\xa0", " ") == (
        "23 nov 2026, 12:30 p.m."
    )
    assert es.datetime("2026-11-23T18:30:00Z") == es.datetime(moment)
    assert es.datetime(datetime(2026, 11, 23, 18, 30)) == es.datetime(moment)  # naive is UTC
    assert es.date("2026-11-23T18:30:00Z") == "23 nov 2026"
    assert es.number(12345.5) == "12,345.5"
    assert es.state("09") == "Ciudad de México"
    assert en.state("09") == "Mexico City"
    assert es.state("15") == "Estado de México"
    assert es.state("99") == "99"
    assert sorted(STATES) == [f"{i:02d}" for i in range(1, 33)]
    assert es.country("GTM") == "Guatemala"
    assert en.country("MEX") == "Mexico"


def test_ages_read_as_people_say_them():
    t = Translator("es-MX")
    assert t.age(0) == "menor de 1 año"  # a baby is never "0 años"
    assert t.age(1) == "1 año" and t.age(16) == "16 años"
    assert t.age(None) == t.gettext("age unknown")
    assert t.age_group("0-12") == "0 a 12 años" and t.age_group("60+") == "60 años o más"
    assert t.age_group("unknown") == "Sin información"
