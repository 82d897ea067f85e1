"""The minimum variables every event that statistics read carries (ADR 0019).

The CNDH asks every institution for the same set (``003:795, 999``): of each person sex,
age (as the CNDH age band), nationality, state of origin, vulnerable groups, offences and
role; of the case the institutions, the facility, the state and the time of each step.
Whatever records them — a live referral, the bulk history import, a coordinator's ledger
admission — builds them with the two functions below, so every producer carries the same
fields with the same meaning, and a new variable (a detection source, an operation id) is
added here once: a field on :class:`PersonVariables` or :class:`CaseVariables` and a
keyword of :func:`person_variables` or :func:`case_variables`.

``None`` (an empty offence list) is "no information" (S.I.); an empty vulnerable-group
list is "none" (the question was asked), ``None`` is "not asked" (S.I.).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from services.clock import as_utc
from services.contracts.base import EventPayload
from services.vocabulary import CNDH_AGE_BANDS, PersonRole, Sex, cndh_age_band

ADULT_AGE = 18
MINOR_BANDS = frozenset({"0-12", "13-17"})


class PersonVariables(EventPayload):
    """One person's minimum variables, de-identified (never a name, never an exact age)."""

    # Pseudonymous and random: the same for a person referred again, reversible to nobody.
    person_key: str | None = None
    sex: Sex | None  # None: not recorded (S.I.)
    age_group: str  # "minors" / "adults" (an unknown age is treated as a minor)
    age_band: str  # CNDH band, "unknown" when not recorded
    nationality: str | None  # ISO 3166-1 alpha-3 or XXA (stateless); None: S.I.
    role: PersonRole | None  # None: not recorded (a ledger admission without details)
    state_of_origin: str | None = None  # None: S.I. (N/A for a foreign national)
    vulnerable_groups: list[str] | None = None  # None: not asked (S.I.); []: none
    offences: list[str] = []  # []: S.I.


class CaseVariables(EventPayload):
    """A case's variables: who sent, who received, where, and when each step happened."""

    sending_institution_id: str | None
    receiving_institution_id: str | None
    facility_id: str
    state: str | None
    # status -> ISO time of the step that reached it (created, sent, accepted, admitted...).
    steps: dict[str, str] = {}
    people: list[PersonVariables]
    # How the victims came to the authorities' knowledge (vocabulary.DetectionSource);
    # None: not recorded (S.I.). ADR 0021.
    detection_source: str | None = None


def person_variables(
    *,
    sex: str | None,
    age: int | None = None,
    age_band: str | None = None,
    nationality: str | None = None,
    role: str | None = None,
    state_of_origin: str | None = None,
    vulnerable_groups: Iterable[str] | None = None,
    offences: Iterable[str] | None = (),
    person_key: str | None = None,
) -> PersonVariables:
    """A person's minimum variables from an exact ``age`` or only its ``age_band``."""
    group, band = _age_fields(age, age_band)
    return PersonVariables(
        person_key=person_key,
        sex=Sex(sex) if sex else None,
        age_group=group,
        age_band=band,
        nationality=nationality,
        role=PersonRole(role) if role else None,
        state_of_origin=state_of_origin,
        vulnerable_groups=None
        if vulnerable_groups is None
        else list(dict.fromkeys(vulnerable_groups)),
        offences=list(dict.fromkeys(offences or ())),
    )


def _age_fields(age: int | None, age_band: str | None) -> tuple[str, str]:
    """``(age_group, age_band)`` of an exact ``age`` or only its ``age_band``."""
    band = cndh_age_band(age) if age is not None else (age_band or "unknown")
    if band not in CNDH_AGE_BANDS:
        band = "unknown"
    adult = age >= ADULT_AGE if age is not None else band not in MINOR_BANDS | {"unknown"}
    return ("adults" if adult else "minors"), band


def person_variables_data(
    *,
    sex: str | None,
    age: int | None,
    nationality: str | None,
    role: str | None,
    state_of_origin: str | None,
    vulnerable_groups: Iterable[str] | None,
    offences: Iterable[str],
    person_key: str | None,
) -> dict[str, Any]:
    """``person_variables(...).model_dump(mode="json")`` without building the model, for
    bulk producers (thousands of people per event) whose values were validated on the way
    in. The same rules and the same vocabulary checks; the same keys in the same order
    (``tests/referral/test_import_history.py`` compares both)."""
    group, band = _age_fields(age, None)
    return {
        "person_key": person_key,
        "sex": Sex(sex).value if sex else None,
        "age_group": group,
        "age_band": band,
        "nationality": nationality,
        "role": PersonRole(role).value if role else None,
        "state_of_origin": state_of_origin,
        "vulnerable_groups": None
        if vulnerable_groups is None
        else list(dict.fromkeys(vulnerable_groups)),
        "offences": list(dict.fromkeys(offences)),
    }


def case_variables_data(
    *,
    sending_institution_id: str | None,
    receiving_institution_id: str | None,
    facility_id: str,
    state: str | None,
    steps: Mapping[str, str],
    people: list[dict[str, Any]],
    detection_source: str | None = None,
) -> dict[str, Any]:
    """``case_variables`` as JSON data, the people from :func:`person_variables_data`."""
    return {
        "sending_institution_id": sending_institution_id,
        "receiving_institution_id": receiving_institution_id,
        "facility_id": facility_id,
        "state": state,
        "steps": dict(steps),
        "people": people,
        "detection_source": detection_source,
    }


def step_times(steps: Iterable[tuple[str, datetime | None]]) -> dict[str, str]:
    """``(status, at)`` pairs as the events carry them: the first time each status began."""
    out: dict[str, str] = {}
    for status, at in steps:
        if at is not None and status not in out:
            out[status] = as_utc(at).isoformat()
    return out


def case_variables(
    *,
    sending_institution_id: str | None,
    receiving_institution_id: str | None,
    facility_id: str,
    state: str | None,
    steps: Mapping[str, str],
    people: Sequence[PersonVariables],
    detection_source: str | None = None,
) -> dict[str, Any]:
    """The case's fields, to be spread into the producer's payload model."""
    return CaseVariables(
        sending_institution_id=sending_institution_id,
        receiving_institution_id=receiving_institution_id,
        facility_id=facility_id,
        state=state,
        steps=dict(steps),
        people=list(people),
        detection_source=detection_source,
    ).model_dump()
