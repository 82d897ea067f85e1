"""The prosecutor's pages through the ASGI app: search, hold, send, follow, cancel."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from sqlmodel import select

from canaliza.demo import CASA_MERCEDES, FGR
from referral.database import db as referral_db
from referral.models import Referral, ReferralPerson
from tests.conftest import demo_password_form, running
from tests.frontend.conftest import csrf_of, sign_in, small_world

pytestmark = pytest.mark.slow


async def _second_agreement(client) -> str:
    """Another signed FGR — Casa de las Mercedes agreement, so the choice matters."""
    token = (await client.post("/auth/token", data=demo_password_form("admin"))).json()
    admin = {"Authorization": f"Bearer {token['access_token']}"}
    today = date.today()
    made = await client.post(
        "/api/v1/agreements",
        json={
            "number": "PRUEBA-002",
            "title": "Segundo convenio FGR — Casa de las Mercedes",
            "party_ids": [FGR.id, CASA_MERCEDES.id],
            "valid_from": today.replace(year=today.year - 1).isoformat(),
            "valid_to": today.replace(year=today.year + 1).isoformat(),
        },
        headers=admin,
    )
    assert made.status_code == 201, made.text
    agreement_id: str = made.json()["id"]
    for inst in (FGR, CASA_MERCEDES):
        signed = await client.post(
            f"/api/v1/agreements/{agreement_id}/sign",
            json={"institution_id": inst.id},
            headers=admin,
        )
        assert signed.status_code == 200, signed.text
    return agreement_id


async def _hold_at_casa_mercedes(client, results: str, csrf: str):
    """Hold the beds of the first Casa de las Mercedes place among the results."""
    forms = re.findall(
        r'<form method="post" action="/canalizaciones/apartar">(.*?)</form>', results, re.S
    )
    ours = next(f for f in forms if CASA_MERCEDES.id in f)
    fields = dict(
        re.findall(
            r'name="(facility_name|operator_institution_id|facility_state)" value="([^"]*)"', ours
        )
    )
    allocations = re.findall(r'name="allocation" value="([^"]+)"', ours)
    held = await client.post(
        "/canalizaciones/apartar", data={**fields, "allocation": allocations, "csrf_token": csrf}
    )
    assert held.status_code == 303, held.text
    return held


MOTHER_AND_SON = {
    "sex": ["F", "M"],
    "age": ["29", "4"],
    "role": ["victim", "accompanying_child"],
    "state": "09",
}


async def test_search_hold_send_and_follow_a_referral(demo_app):
    async with running(demo_app) as client:
        world = await small_world(client)
        chosen = await _second_agreement(client)
        await sign_in(client, "fiscal")
        new = await client.get("/canalizaciones/nueva")
        assert new.status_code == 200
        csrf = csrf_of(new.text)

        found = await client.post(
            "/canalizaciones/nueva/buscar",
            data={**MOTHER_AND_SON, "csrf_token": csrf},
            headers={"HX-Request": "true"},
        )
        assert found.status_code == 200, found.text
        assert "Apartar estas camas" in found.text
        # The first facility of Casa de las Mercedes offered: hold its beds.
        held = await _hold_at_casa_mercedes(client, found.text, csrf)
        hold_page = await client.get(held.headers["location"])
        assert hold_page.status_code == 200, hold_page.text
        offered = re.findall(r'name="agreement" value="([^"]+)"', hold_page.text)
        assert set(offered) == {world["agreement_id"], chosen}, "both signed agreements offered"
        agreement = re.search(f'name="agreement" value="({chosen})"', hold_page.text)
        assert agreement

        # Every country, stateless and "Sin información"; none chosen for her.
        assert hold_page.text.count('name="nationality" required') == 2
        assert (
            '<option value="" selected disabled>Elija una nacionalidad</option>' in hold_page.text
        )
        assert '<option value="SI">Sin información</option>' in hold_page.text
        assert '<option value="XXA">Apátrida</option>' in hold_page.text
        assert '<option value="HND">Honduras</option>' in hold_page.text
        assert not re.search(r'<option value="[A-Z]{3}" selected', hold_page.text)
        unchosen = await client.post(
            held.headers["location"] + "/enviar",
            data={"agreement": agreement.group(1), "consent": "on", "csrf_token": csrf,
                  "nationality": ["MEX", ""]},
        )  # fmt: skip
        assert unchosen.status_code == 422, "never a default country"
        assert "Elija la nacionalidad de cada persona" in unchosen.text

        # The CNDH minimum variables per person: none offered as given, all "Sin información"
        assert hold_page.text.count('name="state_of_origin-') == 2
        assert '<option value="SI" selected>Sin información</option>' in hold_page.text
        assert not re.search(
            r'name="(vulnerable|offence)-\d" value="[^"]+" checked', hold_page.text
        )
        assert 'value="art10-III"' in hold_page.text and 'value="art36"' in hold_page.text
        variables = {
            "state_of_origin-1": "15",
            "vulnerable-1": "indigenous",
            "offence-1": ["art10-III", "art13"],
            "vulnerable-2": "none",
        }
        refused = await client.post(
            held.headers["location"] + "/enviar",
            data={
                "agreement": agreement.group(1),
                "csrf_token": csrf,
                "nationality": ["MEX", "MEX"],
                "case_reference": "CI-FEVIMTRA-77",
                **variables,
            },
        )
        assert refused.status_code == 422
        assert "consentimiento informado" in refused.text
        # nothing typed is lost: every choice is shown again
        assert '<option value="15" selected>' in refused.text
        assert re.search(r'name="vulnerable-1" value="indigenous" checked', refused.text)
        assert re.search(r'name="vulnerable-2" value="none" checked', refused.text)
        assert re.search(r'name="offence-1" value="art13" checked', refused.text)
        assert 'value="CI-FEVIMTRA-77"' in refused.text

        sent = await client.post(
            held.headers["location"] + "/enviar",
            data={
                "agreement": agreement.group(1),
                "consent": "on",
                "urgency": "urgent",
                "nationality": ["MEX", "SI"],
                "csrf_token": csrf,
                **variables,
            },
        )
        assert sent.status_code == 303, sent.text
        detail = await client.get(sent.headers["location"])
        assert detail.status_code == 200
        assert 'data-status="sent"' in detail.text
        assert "Protección de niñas, niños y adolescentes (DIF)" in detail.text
        assert "Respuesta a más tardar" in detail.text
        # The referral travels along the agreement the prosecutor chose, not the first one.
        referral_id = sent.headers["location"].split("?")[0].rsplit("/", 1)[1]
        with referral_db.new_session() as session:
            stored = session.get(Referral, referral_id)
            assert stored is not None and stored.agreement_id == chosen
            nationalities = [
                p.nationality
                for p in session.exec(
                    select(ReferralPerson).where(ReferralPerson.referral_id == referral_id)
                ).all()
            ]
            assert sorted(nationalities, key=str) == ["MEX", None], "Sin información is null"
            people = session.exec(
                select(ReferralPerson).where(ReferralPerson.referral_id == referral_id)
            ).all()
            mother = next(p for p in people if p.role == "victim")
            son = next(p for p in people if p.role == "accompanying_child")
            assert mother.state_of_origin == "15"
            assert mother.vulnerable_groups == ["indigenous"]
            assert mother.offences == ["art10-III", "art13"]
            # asked and none applies ([]) is not "not asked" (null); no offence is S.I.
            assert son.vulnerable_groups == [] and son.offences == []
            assert son.state_of_origin is None
        assert "Nacionalidad por confirmar" in detail.text

        listing = await client.get("/canalizaciones?estado=sent")
        assert sent.headers["location"].split("?")[0] in listing.text

        # Cancelling is confirmed on its own page first, then done with a reason.
        referral_url = sent.headers["location"].split("?")[0]
        assert f'href="{referral_url}/cancelar"' in detail.text
        confirm = await client.get(f"{referral_url}/cancelar")
        assert confirm.status_code == 200
        assert "¿Cancelar esta canalización?" in confirm.text
        assert 'class="danger"' in confirm.text
        cancelled = await client.post(
            f"{referral_url}/cancelar",
            data={"reason": "la víctima decidió volver con su familia", "csrf_token": csrf},
        )
        assert cancelled.status_code == 303
        after = await client.get(cancelled.headers["location"])
        assert 'data-status="cancelled"' in after.text
        assert "La canalización se canceló." in after.text
        assert "la víctima decidió volver con su familia" in after.text
        assert f'href="{referral_url}/cancelar"' not in after.text

        # "Buscar otro lugar": the same group, its answers shown again, the same people
        # (their person keys) on the new referral -- the statistics count them once.
        again = await client.post(f"{referral_url}/otro-lugar", data={"csrf_token": csrf})
        assert again.status_code == 303 and again.headers["location"].endswith("aviso=again")
        found = await client.get(again.headers["location"])
        held = await _hold_at_casa_mercedes(client, found.text, csrf)
        hold_page = await client.get(held.headers["location"])
        assert '<option value="15" selected>' in hold_page.text
        assert re.search(r'name="vulnerable-1" value="indigenous" checked', hold_page.text)
        assert re.search(r'name="vulnerable-2" value="none" checked', hold_page.text)
        assert re.search(r'name="offence-1" value="art10-III" checked', hold_page.text)
        assert '<option value="MEX" selected>' in hold_page.text
        assert '<option value="SI" selected>Sin información</option>' in hold_page.text
        resent = await client.post(
            held.headers["location"] + "/enviar",
            data={"agreement": chosen, "consent": "on", "csrf_token": csrf,
                  "nationality": ["MEX", "SI"], **variables},
        )  # fmt: skip
        assert resent.status_code == 303, resent.text
        second_id = resent.headers["location"].split("?")[0].rsplit("/", 1)[1]
        with referral_db.new_session() as session:
            keys = {
                rid: sorted(
                    str(p.person_key)
                    for p in session.exec(
                        select(ReferralPerson).where(ReferralPerson.referral_id == rid)
                    ).all()
                )
                for rid in (referral_id, second_id)
            }
        assert second_id != referral_id and keys[second_id] == keys[referral_id]
        assert all(keys[referral_id])

        # Ids from the URL never reach an API path unchecked.
        assert (await client.get("/canalizaciones/..%2F..%2Fagreements")).status_code == 404
        assert (await client.get("/canalizaciones/apartados/a.b")).status_code == 404


def test_sin_informacion_sex_is_sent_as_null_and_junk_is_a_problem() -> None:
    """The new-referral form: "Sin información" is null, never a silent "F"."""
    from starlette.datastructures import FormData

    from frontend.prosecutor import NO_INFORMATION, parse_search

    form = FormData([("sex", NO_INFORMATION), ("age", ""), ("role", "victim"),
                     ("sex", "M"), ("age", "4"), ("role", "accompanying_child")])  # fmt: skip
    body, problems = parse_search(form)
    assert problems == []
    assert body["people"] == [
        {"sex": None, "age": None, "role": "victim"},
        {"sex": "M", "age": 4, "role": "accompanying_child"},
    ]
    body, problems = parse_search(FormData([("sex", "Q"), ("age", "30"), ("role", "victim")]))
    assert "Choose the sex of each person, or No information." in problems


def test_the_send_forms_minimum_variables_keep_si_apart_from_none_and_na() -> None:
    from starlette.datastructures import FormData

    from frontend.prosecutor import minimum_variables

    nothing, problems = minimum_variables(FormData([]), 1, "MEX")
    assert problems == []
    assert nothing == {"state_of_origin": None, "vulnerable_groups": None, "offences": []}
    given, problems = minimum_variables(
        FormData([("state_of_origin-2", "07"), ("vulnerable-2", "lgbtttiq"),
                  ("vulnerable-2", "disability"), ("offence-2", "art21"),
                  ("offence-2", "art10-IV"), ("offence-1", "art10-III")]),
        2,
        None,  # nationality not recorded: a state of origin may still be
    )  # fmt: skip
    assert problems == []
    assert given == {
        "state_of_origin": "07",
        "vulnerable_groups": ["disability", "lgbtttiq"],
        "offences": ["art10-IV", "art21"],
    }
    # a foreigner's state of origin does not apply; "none" and a group contradict each other;
    # only the General Law's offences
    _, problems = minimum_variables(
        FormData([("state_of_origin-1", "07"), ("vulnerable-1", "none"),
                  ("vulnerable-1", "indigenous"), ("offence-1", "art99")]),
        1,
        "GTM",
    )  # fmt: skip
    assert problems == [
        "The state of origin is recorded only for people of Mexican nationality.",
        "A person belongs to no vulnerable group or to some of them, not both.",
        "Choose the offences from the list.",
    ]
    _, problems = minimum_variables(FormData([("state_of_origin-1", "99")]), 1, "MEX")
    assert problems == ["Choose a state of origin from the list, or No information."]


def test_a_search_re_run_by_the_page_is_one_intent_and_a_new_search_another() -> None:
    from frontend.prosecutor import search_intent

    search = {"people": [{"sex": "F", "age": 30, "role": "victim"}], "needs": {}, "state": "09"}
    key = search_intent("case-a", search)
    assert search_intent("case-a", dict(search)) == key  # the page's re-render
    assert search_intent("case-a", {**search, "state": "15"}) != key  # another need
    assert search_intent("case-b", search) != key  # another case
    assert len(key) == 32


def test_an_admission_on_the_ledger_says_who_or_sin_informacion() -> None:
    from frontend.prosecutor import NO_INFORMATION
    from frontend.shelter import ledger_move

    said = ledger_move("admit", " Ingreso ", sex="F", age_band="13-17")
    assert said == {"kind": "admit", "beds": 1, "reason": "Ingreso",
                    "people": [{"sex": "F", "age_band": "13-17"}]}  # fmt: skip
    unknown = ledger_move("admit", "Ingreso", sex=NO_INFORMATION, age_band="Q")
    assert unknown["people"] == [{"sex": None, "age_band": None}]  # never guessed
    assert "people" not in ledger_move("discharge", "Egreso", sex="F", age_band="18-59")


def test_a_place_is_reachable_only_under_an_agreement_that_covers_the_group_there() -> None:
    """Issue 19: an agreement with the shelter's institution that does not cover the group
    (sex, age group, state) does not make the place reachable; the mark says why."""
    from frontend.paths import covers
    from frontend.prosecutor import mark_reachable

    women_in_cdmx = {
        "party_ids": ["fgr", "casa"],
        "populations": {"sexes": ["F"], "age_groups": ["adults"]},
        "states": ["09"],
    }
    everyone = {
        "party_ids": ["fgr", "dif"],
        "populations": {"sexes": ["F", "M", "X"], "age_groups": ["minors", "adults"]},
        "states": [],
    }
    woman = {"sex": "F", "age": 30, "role": "victim"}
    son = {"sex": "M", "age": 4, "role": "accompanying_child"}
    unknown = {"sex": None, "age": None, "role": "victim"}
    assert covers(women_in_cdmx, [woman], "09")
    assert not covers(women_in_cdmx, [woman, son], "09")  # a boy: sex and age group
    assert not covers(women_in_cdmx, [woman], "15")  # another state
    assert not covers(women_in_cdmx, [{**woman, "age": None}], "09")  # unknown age: a minor
    assert covers(everyone, [unknown, son], "32")
    assert not covers({**everyone, "populations": {"sexes": ["F", "M"], "age_groups": [
        "minors", "adults"]}}, [unknown], "09")  # fmt: skip

    def place(operator: str, state: str) -> dict:
        return {"facility": {"operator_institution_id": operator, "state": state}}

    answer: dict[str, Any] = {
        "results": [place("casa", "09"), place("otra", "09"), place("dif", "15")]
    }
    mark_reachable(answer, [women_in_cdmx, everyone], [woman, son])
    marks = [
        (r["facility"]["operator_institution_id"], r["reachable"], r["agreement_not_covering"])
        for r in answer["results"]
    ]
    assert marks == [("dif", True, False), ("casa", False, True), ("otra", False, False)]
    assert answer["reachable"] == 1
