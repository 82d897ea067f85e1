"""Needs-aware matching (issue 16): the language catalogue, disability types, pregnancy,
addiction care, exploitation type, places excluded, stage of care, pools kept for a need,
explanations per person and per need, and the smallest split of a group."""

from __future__ import annotations

from typing import Any

import pytest

from capacity.geography import NEIGHBOURS, hops
from capacity.languages import code_of, fold
from capacity.search import FacilityView, NeedsQ, PoolView, stage_fits

WOMAN = {"sex": "F", "age": 30, "role": "victim"}
GIRL_15 = {"sex": "F", "age": 15, "role": "victim"}
CHILD = {"sex": "F", "age": 5, "role": "accompanying_child"}
FATHER = {"sex": "M", "age": 40, "role": "indirect_victim"}
GIRL_7 = {"sex": "F", "age": 7, "role": "victim"}


def _ids(answer: dict[str, Any]) -> set[str]:
    return {r["facility"]["id"] for r in answer["results"]}


def test_the_neighbouring_states_are_symmetric_and_connected():
    assert len(NEIGHBOURS) == 32
    for state, near in NEIGHBOURS.items():
        assert state not in near and all(state in NEIGHBOURS[n] for n in near)
    assert hops("09", "09") == 0 and hops("09", "15") == 1 and hops("09", "12") == 2
    assert max(hops("09", s) for s in NEIGHBOURS) < 10
    assert hops("02", "03") == 1 and hops("23", "31") == 1


def test_language_names_match_without_accents_case_or_apostrophes():
    assert code_of("nahuatl") == code_of("Náhuatl") == code_of("NÁHUATL") == "nahuatl"
    assert code_of("ch'ol") == code_of("Chol") == "chol"
    assert code_of("tének") == "huasteco" and code_of("rarámuri") == "tarahumara"
    assert code_of("Lengua de Señas Mexicana") == "lsm" and code_of("kreyol") == "criollo_haitiano"
    assert code_of("klingon") is None
    assert fold("  Tlapa  de Comonfort ") == "tlapa de comonfort"


async def test_interpreters_match_any_spelling_and_any_of_several_languages(cap):
    fac = await cap.facility()
    nahuatl = await cap.pool(fac["id"], interpreter_languages=["Náhuatl"], total=2)
    other = await cap.facility(name="Otra")
    await cap.pool(other["id"], interpreter_languages=["Tsotsil", "LSM"], total=2)
    answer = await cap.search([WOMAN], needs={"interpreter_language": "nahuatl"})
    assert _ids(answer) == {fac["id"]}
    assert answer["results"][0]["pools"][0]["pool_id"] == nahuatl["id"]
    answer = await cap.search([WOMAN], needs={"languages": ["tzotzil", "maya"]})
    assert _ids(answer) == {other["id"]}
    # A person who also speaks Spanish needs no interpreter.
    answer = await cap.search([{**WOMAN, "languages": ["Maya", "español"]}])
    assert _ids(answer) == {fac["id"], other["id"]}
    answer = await cap.search([{**WOMAN, "languages": ["maya"]}])
    assert answer["results"] == [] and answer["unmet"]["code"] == "needs_not_met"
    r = await cap.client.post(
        "/api/v1/facilities/" + fac["id"] + "/pools",
        json={"name": "X", "sexes": ["F"], "total": 1, "interpreter_languages": ["élfico"]},
        headers=cap.admin(),
    )
    assert r.status_code == 422 and "élfico" in r.json()["detail"]
    r = await cap.client.get("/api/v1/languages", headers=cap.prosecutor())
    assert {"code": "nahuatl", "label": "Náhuatl"} in r.json()


async def test_disability_pregnancy_addiction_and_exploitation_needs(cap):
    fac = await cap.facility(exploitation_types=["labour"])
    wheel = await cap.pool(fac["id"], wheelchair_accessible=True, total=2)
    sensory = await cap.pool(
        fac["id"], name="Sensorial", disability_support=["sensory"], pregnancy_care=True, total=2
    )
    answer = await cap.search([WOMAN], needs={"wheelchair": True})
    assert answer["results"][0]["pools"][0]["pool_id"] == wheel["id"]
    answer = await cap.search([WOMAN], needs={"disabilities": ["mobility"]})
    assert answer["results"][0]["pools"][0]["pool_id"] == wheel["id"]
    answer = await cap.search([WOMAN], needs={"disabilities": ["sensory"], "pregnancy": True})
    assert answer["results"][0]["pools"][0]["pool_id"] == sensory["id"]
    answer = await cap.search([WOMAN], needs={"addiction_care": True})
    assert answer["results"] == [] and "atención de adicciones" in answer["unmet"]["reason"]
    assert _ids(await cap.search([WOMAN], needs={"exploitation": "labour"})) == {fac["id"]}
    answer = await cap.search([WOMAN], needs={"exploitation": "sexual"})
    assert answer["results"] == []
    r = await cap.client.post(
        "/api/v1/availability/search",
        json={"people": [WOMAN], "needs": {"disabilities": ["telepathic"]}},
        headers=cap.prosecutor(),
    )
    assert r.status_code == 422 and "telepathic" in r.text


async def test_states_and_municipalities_can_be_excluded(cap):
    here = await cap.facility(municipality="Zamora", state="16")
    there = await cap.facility(name="Otra", municipality="Morelia", state="16")
    away = await cap.facility(name="Lejos", state="09")
    for fac in (here, there, away):
        await cap.pool(fac["id"], total=2)
    answer = await cap.search([WOMAN], state="16", needs={"exclude_municipalities": ["ZAMORA"]})
    assert _ids(answer) == {there["id"], away["id"]}
    answer = await cap.search([WOMAN], state="16", needs={"exclude_states": ["16"]})
    assert _ids(answer) == {away["id"]}


async def test_a_halfway_house_is_only_for_adults_leaving_a_refuge(cap):
    house = await cap.facility(kind="casa_de_medio_camino")
    await cap.pool(house["id"], min_age=12, total=2)
    assert (await cap.search([WOMAN]))["results"] == []
    answer = await cap.search([WOMAN], needs={"stage": "leaving_refuge"})
    assert _ids(answer) == {house["id"]}
    answer = await cap.search([GIRL_15], needs={"stage": "leaving_refuge"})
    assert answer["results"] == []
    assert not stage_fits("casa_de_medio_camino", "leaving_refuge", has_minor=True)
    assert stage_fits("refugio", "immediate", has_minor=True)


async def test_beds_kept_for_a_need_go_last_and_say_so(cap):
    kept = await cap.facility(name="Reservado")
    await cap.pool(kept["id"], reserved_for=["disability"], disability_support=["sensory"], total=2)
    answer = await cap.search([WOMAN])
    [result] = answer["results"]
    assert result["reserved_for"] == ["disability"] and "discapacidad" in result["note"]
    free = await cap.facility(name="Libre")
    await cap.pool(free["id"], total=2)
    answer = await cap.search([WOMAN])
    assert [r["facility"]["id"] for r in answer["results"]] == [free["id"], kept["id"]]
    answer = await cap.search([WOMAN], needs={"disabilities": ["sensory"]})
    assert [r["facility"]["id"] for r in answer["results"]] == [kept["id"]]
    assert "note" not in answer["results"][0] or answer["results"][0]["note"] is None


async def test_no_result_explains_itself_per_person_and_need(cap):
    cdmx = await cap.facility(state="09")
    await cap.pool(cdmx["id"], total=2)
    mex = await cap.facility(name="Edomex", state="15")
    await cap.pool(mex["id"], sexes=["M"], total=3)
    answer = await cap.search([{**WOMAN, "sex": "M"}], state="09", needs={"languages": ["otomi"]})
    assert answer["results"] == [] and answer["unmet"]["code"] == "needs_not_met"
    assert "interpretación en Otomí" in answer["unmet"]["reason"]
    explained = {(x["person"], x["need"]): x["reason"] for x in answer["unmet"]["explanations"]}
    assert "ninguna cama libre en 09 acepta hombres adultos" in explained[(0, "eligibility")]
    assert "3 en 15" in explained[(0, "eligibility")]
    assert explained[(0, "languages")].startswith("Persona 1: ninguna cama libre en 09")
    assert "15" not in explained[(0, "languages")]


async def test_a_father_with_his_daughter_who_cannot_stay_together_gets_a_split(cap):
    men = await cap.facility(name="Hombres")
    await cap.pool(men["id"], sexes=["M"], accepts_indirect_victims=True, total=2)
    girls = await cap.facility(name="Niñas")
    await cap.pool(girls["id"], min_age=0, max_age=17, total=2)
    answer = await cap.search([FATHER, GIRL_7], state="09")
    unmet = answer["unmet"]
    assert unmet["code"] == "group_not_together"
    parts = unmet["split"]["parts"]
    assert len(parts) == 2 and all(p["split"] for p in parts)
    assert {p["facility_id"]: p["people"] for p in parts} == {men["id"]: [0], girls["id"]: [1]}


@pytest.mark.parametrize("kind", ["refugio", "albergue"])
def test_pool_ok_agrees_with_pool_misses(kind):
    pool = PoolView(
        "p", "f", "n", frozenset({"F"}), 18, 99, False, 0, 0, False, False, False, True, False,
        frozenset({"nahuatl"}), 3, None, frozenset({"sensory"}), True, False, frozenset(),
    )  # fmt: skip
    fac = FacilityView("f", "n", kind, "o", "09", "Cuauhtémoc", "trafficking", [], "high", None,
                       "active")  # fmt: skip
    for needs in (
        NeedsQ(),
        NeedsQ(wheelchair=True),
        NeedsQ(disabilities=frozenset({"sensory"}), pregnancy=True),
        NeedsQ(addiction_care=True),
        NeedsQ(migrant=True, languages=frozenset({"maya"})),
        NeedsQ(languages=frozenset({"maya", "nahuatl"})),
    ):
        assert needs.pool_ok(pool) == (not needs.pool_misses(pool))
        assert needs.facility_ok(fac)
