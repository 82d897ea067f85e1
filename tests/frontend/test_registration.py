"""The operator's SEGOB registration screen through the ASGI app: status, submit, return."""

from __future__ import annotations

import pytest

from canaliza.demo import CASA_MERCEDES
from capacity.registration import CHECKLIST_CODES
from tests.conftest import running
from tests.frontend.conftest import csrf_of, sign_in
from tests.frontend.ops_helpers import api_headers, form_fields

pytestmark = pytest.mark.slow


def _section(html: str, facility_id: str) -> str:
    """The part of the page about one facility."""
    start = html.index(f'data-facility-id="{facility_id}"')
    end = html.find("<section", start)
    return html[start : end if end != -1 else len(html)]


async def test_coordinator_requests_registration_sees_the_return_and_resubmits(demo_app):
    from canaliza.seed import load_demo_into_app

    report = await load_demo_into_app(demo_app)
    assert not report.failures, report.failures[:3]
    async with running(demo_app) as client:
        coordinator = await api_headers(client, "coordinadora")
        listed = await client.get(
            f"/api/v1/facilities?operator_institution_id={CASA_MERCEDES.id}", headers=coordinator
        )
        facility_id = listed.json()["items"][0]["id"]
        before = await client.get(
            f"/api/v1/facilities/{facility_id}/registration", headers=coordinator
        )
        assert before.json()["registration_status"] == "not_submitted"

        await sign_in(client, "coordinadora")
        pools = await client.get("/refugio")
        assert 'href="/refugio/registro"' in pools.text
        page = await client.get("/refugio/registro")
        assert page.status_code == 200, page.text
        assert "Registro de mis instalaciones ante la SEGOB" in page.text
        mine = _section(page.text, facility_id)
        assert 'data-registration="not_submitted"' in mine
        assert "Sin solicitud" in mine
        action = f"/refugio/registro/{facility_id}/solicitar"
        fields = form_fields(page.text, action)
        assert "Solicitar registro" in mine

        # Without the CSRF token nothing is sent.
        forged = await client.post(action, data={"note": "Sin token"})
        assert forged.status_code == 403
        # A note too short is refused with a sentence; the facility stays unsubmitted.
        short = await client.post(action, data={**fields, "note": "ok"})
        assert short.status_code == 422
        assert 'role="alert"' in short.text and "al menos 3 caracteres" in short.text

        sent = await client.post(action, data={**fields, "note": "Solicitud inicial"})
        assert sent.status_code == 303, sent.text
        shown = await client.get(sent.headers["location"])
        assert "Su solicitud se envió a la SEGOB" in shown.text
        mine = _section(shown.text, facility_id)
        assert 'data-registration="submitted"' in mine
        assert action not in mine  # no second request while SEGOB reviews it
        after = await client.get(
            f"/api/v1/facilities/{facility_id}/registration", headers=coordinator
        )
        assert after.json()["registration_status"] == "submitted"
        assert after.json()["history"][-1]["note"] == "Solicitud inicial"

        # The old form a second time: the API's refusal, in Spanish, nothing half done.
        twice = await client.post(action, data={**fields, "note": "Otra vez"})
        assert twice.status_code == 409
        assert 'role="alert"' in twice.text and "no hay nada que enviar" in twice.text
        still = await client.get(
            f"/api/v1/facilities/{facility_id}/registration", headers=coordinator
        )
        assert len(still.json()["history"]) == len(after.json()["history"])

        # SEGOB returns it through the API with observations and one unmet item.
        auditor = await api_headers(client, "auditor")
        unmet = CHECKLIST_CODES[0]
        checklist = [
            {"item": code, "met": code != unmet}
            | ({"note": "Falta el protocolo firmado"} if code == unmet else {})
            for code in CHECKLIST_CODES
        ]
        returned = await client.post(
            f"/api/v1/facilities/{facility_id}/registration/review",
            json={
                "outcome": "returned",
                "checklist": checklist,
                "observations": "Presente el protocolo de seguridad firmado.",
            },
            headers=auditor,
        )
        assert returned.status_code == 200, returned.text

        page = await client.get("/refugio/registro")
        mine = _section(page.text, facility_id)
        assert 'data-registration="returned"' in mine
        assert "Presente el protocolo de seguridad firmado." in mine
        assert f'data-item="{unmet}" data-met="no"' in mine
        assert "Falta el protocolo firmado" in mine
        assert mine.count('data-met="yes"') == len(CHECKLIST_CODES) - 1
        checklist_labels = await client.get("/api/v1/registration/checklist", headers=coordinator)
        first_label = checklist_labels.json()[0]["label"]
        assert first_label.split("…")[0][:20] in mine

        # She addresses them and requests registration again (no note this time).
        again = form_fields(page.text, action)
        resent = await client.post(action, data=again)
        assert resent.status_code == 303, resent.text
        shown = await client.get(resent.headers["location"])
        assert 'data-registration="submitted"' in _section(shown.text, facility_id)
        final = await client.get(
            f"/api/v1/facilities/{facility_id}/registration", headers=coordinator
        )
        assert [h["action"] for h in final.json()["history"]] == [
            "submitted",
            "returned",
            "submitted",
        ]


async def test_other_roles_are_refused_the_registration_screen(demo_app):
    async with running(demo_app) as client:
        for username in ("fiscal", "auditor"):
            await sign_in(client, username)
            page = await client.get("/refugio/registro")
            assert page.status_code == 403, username
            assert "Su rol no permite" in page.text
            csrf = csrf_of(page.text)
            refused = await client.post(
                "/refugio/registro/x/solicitar", data={"csrf_token": csrf, "note": "Intento"}
            )
            assert refused.status_code == 403
            out = await client.post("/salir", data={"csrf_token": csrf})
            assert out.status_code == 303
