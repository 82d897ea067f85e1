"""Contract, "Vocabulary used in bodies": an optional field sent as ``null`` means the same as
leaving it out — for every field of every ``POST``/``PATCH``/``PUT`` body (nested bodies
included) of every service; and the ISO 3166-1 list the kernel records nationality with."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from babel import Locale
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from canaliza.composition import build_app
from services.countries import (
    BY_ALPHA_2,
    ISO_3166_1,
    STATELESS,
    country_label,
    nationality_choices,
    normalise_nationality,
)


def _models(annotation: Any, seen: set[type[BaseModel]]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return
        seen.add(annotation)
        for info in annotation.model_fields.values():
            _models(info.annotation, seen)
        return
    for arg in typing.get_args(annotation):
        _models(arg, seen)
    if isinstance(annotation, types.UnionType):
        for arg in annotation.__args__:
            _models(arg, seen)


def _request_bodies() -> list[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    for route in _routes(build_app("all").routes):
        if not (route.methods or set()) & {"POST", "PATCH", "PUT"}:
            continue
        for param in route.dependant.body_params:
            _models(param.field_info.annotation, seen)
    return sorted(seen, key=lambda m: f"{m.__module__}.{m.__qualname__}")


def _routes(routes: list[Any]) -> list[APIRoute]:
    """Every API route, through included routers (``original_router``) and mounts."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        inner = getattr(route, "original_router", None) or getattr(route, "app", None)
        if inner is not None and hasattr(inner, "routes") and inner is not route:
            found.extend(_routes(list(inner.routes)))
    return found


def _optional_fields() -> list[tuple[type[BaseModel], str]]:
    return [
        (model, info.alias or name)
        for model in _request_bodies()
        for name, info in model.model_fields.items()
        if not info.is_required()
    ]


def _errors(model: type[BaseModel], body: dict[str, Any]) -> list[tuple[Any, str]]:
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return sorted((e["loc"], e["type"]) for e in exc.errors())
    return []


def test_the_bodies_are_found() -> None:
    names = {m.__name__ for m in _request_bodies()}
    assert {"PoolCreate", "PoolUpdate", "FacilityCreate", "FacilityUpdate", "ReferralCreate",
            "PersonIn", "SearchRequest", "Person", "Needs", "UserCreate"} <= names  # fmt: skip
    assert len(_optional_fields()) > 50


@pytest.mark.parametrize(
    ("model", "field"),
    _optional_fields(),
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_optional_field_sent_as_null_is_the_same_as_left_out(model, field) -> None:
    """Bug: ``"max_child_age": null`` (and ~40 others) gave a 422 where leaving it out did not.

    The empty body's errors (the required fields missing, or a cross-field rule) are the
    answer to leaving every optional field out; sending one of them as null must not add one.
    """
    assert _errors(model, {field: None}) == _errors(model, {}), f"{model.__name__}.{field}"


def test_iso_3166_1_has_the_standards_249_countries() -> None:
    assert len(ISO_3166_1) == 249
    assert len({c.alpha_3 for c in ISO_3166_1}) == 249
    assert len(BY_ALPHA_2) == 249
    assert STATELESS not in {c.alpha_3 for c in ISO_3166_1}
    # every alpha-2 code is a territory CLDR names in Mexican Spanish
    assert set(BY_ALPHA_2) <= set(Locale.parse("es_MX").territories)


@pytest.mark.parametrize(
    ("given", "code"),
    [("MEX", "MEX"), ("mx", "MEX"), (" HN ", "HND"), ("SV", "SLV"), ("xxa", "XXA"),
     ("US", "USA")],
)  # fmt: skip
def test_alpha_2_is_normalised_to_alpha_3(given, code) -> None:
    assert normalise_nationality(given) == code


@pytest.mark.parametrize("bad", ["ZZZ", "QQ", "EU", "XX", "UK", "", "MEXX"])
def test_unknown_codes_are_refused_in_spanish(bad) -> None:
    with pytest.raises(ValueError, match="no es un código de país ISO 3166-1"):
        normalise_nationality(bad)


def test_spanish_names_and_choices() -> None:
    assert country_label("MEX") == "México"
    assert country_label("USA") == "Estados Unidos"
    assert country_label("HTI") == "Haití"
    assert country_label(STATELESS) == "Apátrida"
    assert country_label(None) == "Sin información"
    choices = nationality_choices()
    assert len(choices) == 250 and choices[-1] == (STATELESS, "Apátrida")
    names = [name for _, name in choices[:-1]]
    assert names.index("Guatemala") < names.index("Honduras") < names.index("México")
