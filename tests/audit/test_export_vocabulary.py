"""Exports name offences and services from the shared vocabulary (services.vocabulary),
with the very labels they printed before it was shared (issue 18 review)."""

from __future__ import annotations

from audit import exports, monthly
from referral import catalogue
from services.vocabulary import OFFENCES, SERVICE_LABELS, STAND_ALONE_OFFENCES

# What the monthly report printed before its two tables became one vocabulary: the
# referral service's catalogue of services given (its table was a copy) and of services
# offered, to which the report added "interpretation".
PROVIDED_BEFORE = catalogue.SERVICES_PROVIDED
OFFERED_BEFORE = {**catalogue.SERVICES, "interpretation": "Intérprete"}
FRACTIONS = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI"]


def test_offences_are_cited_as_before_for_every_code_of_the_catalogue() -> None:
    labels = exports.Labels()
    for fraction in FRACTIONS:
        code = f"art10-{fraction}"
        assert code in OFFENCES
        assert labels.value("offence", code) == f"Ley General, art. 10, fracción {fraction}"
    assert labels.value("offence", "art32") == "Ley General, art. 32"
    # Every stand-alone article is cited by its number (before, only art. 32 was).
    for code in STAND_ALONE_OFFENCES:
        assert labels.value("offence", code) == f"Ley General, art. {code[3:]}"
    # What the catalogue does not know passes as it came, and the shared rows keep theirs.
    assert labels.value("offence", "art10-XII") == "art10-XII"
    assert labels.value("offence", "two_or_more") == "Dos o más"
    assert labels.value("offence", "S.I.") == "Sin información"


def test_the_monthly_report_names_services_given_and_offered_as_before() -> None:
    for before in (PROVIDED_BEFORE, OFFERED_BEFORE):
        assert {code: SERVICE_LABELS[code] for code in before} == before
    assert not hasattr(monthly, "PROVIDED_LABELS")
    assert vars(monthly)["SERVICE_LABELS"] is SERVICE_LABELS
