"""The prosecutor's pages through the ASGI app: search, hold, send, follow, cancel."""

from __future__ import annotations

import re
from datetime import date

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
        forms = re.findall(
            r'<form method="post" action="/canalizaciones/apartar">(.*?)</form>', found.text, re.S
        )
        ours = next(f for f in forms if CASA_MERCEDES.id in f)
        fields = dict(
            re.findall(
                r'name="(facility_name|operator_institution_id|facility_state)" value="([^"]*)"',
                ours,
            )
        )
        allocations = re.findall(r'name="allocation" value="([^"]+)"', ours)
        held = await client.post(
            "/canalizaciones/apartar",
            data={**fields, "allocation": allocations, "csrf_token": csrf},
        )
        assert held.status_code == 303, held.text
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

        refused = await client.post(
            held.headers["location"] + "/enviar",
            data={
                "agreement": agreement.group(1),
                "csrf_token": csrf,
                "nationality": ["MEX", "MEX"],
            },
        )
        assert refused.status_code == 422
        assert "consentimiento informado" in refused.text

        sent = await client.post(
            held.headers["location"] + "/enviar",
            data={
                "agreement": agreement.group(1),
                "consent": "on",
                "urgency": "urgent",
                "nationality": ["MEX", "SI"],
                "csrf_token": csrf,
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
