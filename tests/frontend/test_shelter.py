"""The shelter coordinator's pages through the ASGI app: occupancy, confirmation, inbox."""

from __future__ import annotations

import re

import pytest

from canaliza.demo import CASA_MERCEDES
from tests.conftest import running
from tests.frontend.conftest import csrf_of, sign_in
from tests.frontend.ops_helpers import api_headers, form_fields, send_referral_to_casa_mercedes

pytestmark = pytest.mark.slow


async def test_coordinator_changes_occupancy_confirms_and_answers_a_referral(demo_app):
    from canaliza.seed import load_demo_into_app

    report = await load_demo_into_app(demo_app)
    assert not report.failures, report.failures[:3]
    async with running(demo_app) as client:
        landing = await sign_in(client, "coordinadora")
        assert landing == "/"
        home = await client.get("/")
        assert home.headers["location"] == "/refugio"
        page = await client.get("/refugio")
        assert page.status_code == 200, page.text
        assert "Ocupación de mis instalaciones" in page.text
        assert "Refugio Casa de las Mercedes" in page.text
        csrf = csrf_of(page.text)

        found = re.search(r'data-pool-id="([^"]+)"', page.text)
        assert found is not None
        pool_id = found.group(1)
        coordinator = await api_headers(client, "coordinadora")
        before = (await client.get(f"/api/v1/pools/{pool_id}", headers=coordinator)).json()
        action = f"/refugio/cupos/{pool_id}/movimiento"
        fields = form_fields(page.text, action)
        assert fields["version"] == str(before["version"])

        # A reason is required: nothing changes without one.
        refused = await client.post(action, data={**fields, "kind": "admit", "reason": ""})
        assert refused.status_code == 422
        assert "motivo" in refused.text
        same = (await client.get(f"/api/v1/pools/{pool_id}", headers=coordinator)).json()
        assert same["occupied"] == before["occupied"]

        moved = await client.post(
            action, data={**fields, "kind": "admit", "reason": "Ingreso directo"}
        )
        assert moved.status_code == 303, moved.text
        after = (await client.get(f"/api/v1/pools/{pool_id}", headers=coordinator)).json()
        assert after["occupied"] == before["occupied"] + 1
        shown = await client.get(moved.headers["location"])
        assert "Una cama más está ocupada" in shown.text

        # The same (now stale) form a second time is refused, not applied twice.
        stale = await client.post(
            action, data={**fields, "kind": "admit", "reason": "Ingreso directo"}
        )
        assert stale.status_code == 409
        assert "cambiaron" in stale.text
        again = (await client.get(f"/api/v1/pools/{pool_id}", headers=coordinator)).json()
        assert again["occupied"] == after["occupied"]

        out = await client.post(
            action,
            data={"csrf_token": csrf, "version": str(after["version"]), "kind": "discharge",
                  "reason": "Egreso voluntario"},
        )  # fmt: skip
        assert out.status_code == 303
        final = (await client.get(f"/api/v1/pools/{pool_id}", headers=coordinator)).json()
        assert final["occupied"] == before["occupied"]

        confirmed = await client.post("/refugio/confirmar", data={"csrf_token": csrf})
        assert confirmed.status_code == 303
        page = await client.get("/refugio")
        assert "data-reminder" not in page.text
        assert "confirmada hoy" in page.text

        # Without the CSRF token nothing happens.
        forged = await client.post(action, data={"kind": "admit", "reason": "xxx"})
        assert forged.status_code == 403

        # A referral arrives; she sees it with its countdown, declines needs a reason, accepts.
        referral = await send_referral_to_casa_mercedes(client)
        inbox = await client.get("/refugio/canalizaciones")
        assert inbox.status_code == 200
        assert f"/refugio/canalizaciones/{referral['id']}" in inbox.text
        assert "data-countdown" in inbox.text and "restantes" in inbox.text
        detail_url = f"/refugio/canalizaciones/{referral['id']}"
        detail = await client.get(detail_url)
        assert detail.status_code == 200
        confirm = await client.get(f"{detail_url}/rechazar")
        assert "¿Rechazar esta canalización?" in confirm.text
        no_reason = await client.post(
            f"{detail_url}/rechazar", data={**form_fields(confirm.text, f"{detail_url}/rechazar")}
        )
        assert no_reason.status_code == 422
        accept = form_fields(detail.text, f"{detail_url}/aceptar")
        accepted = await client.post(f"{detail_url}/aceptar", data=accept)
        assert accepted.status_code == 303, accepted.text
        shown = await client.get(accepted.headers["location"])
        assert 'data-status="accepted"' in shown.text
        # The old page's version is stale now: a second accept is refused politely.
        twice = await client.post(f"{detail_url}/aceptar", data=accept)
        assert twice.status_code in (409, 412)
        assert 'role="alert"' in twice.text

        admit = form_fields(shown.text, f"{detail_url}/ingreso")
        admitted = await client.post(f"{detail_url}/ingreso", data=admit)
        assert admitted.status_code == 303, admitted.text
        shown = await client.get(admitted.headers["location"])
        assert 'data-status="admitted"' in shown.text
        discharge_page = await client.get(f"{detail_url}/egreso")
        fields = form_fields(discharge_page.text, f"{detail_url}/egreso")
        missing = await client.post(f"{detail_url}/egreso", data=fields)
        assert missing.status_code == 422
        done = await client.post(
            f"{detail_url}/egreso", data={**fields, "outcome": "left_voluntarily"}
        )
        assert done.status_code == 303, done.text
        shown = await client.get(done.headers["location"])
        assert 'data-status="discharged"' in shown.text
        assert CASA_MERCEDES.id


def test_capacity_counts_as_confirmed_today_in_mexico_city_time():
    from datetime import UTC, datetime

    from frontend.shelter import confirmed_today, remaining

    noon = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # 12:00 in Mexico City
    # 05:00 UTC is 23:00 of the day before in Mexico City: the reminder must show.
    assert not confirmed_today({"last_confirmed_at": "2026-11-23T05:00:00Z"}, now=noon)
    assert confirmed_today({"last_confirmed_at": "2026-11-23T07:00:00Z"}, now=noon)
    assert not confirmed_today({"last_confirmed_at": None}, now=noon)
    assert remaining("2026-11-23T20:00:00Z", now=noon) == 7200
    assert remaining("2026-11-23T17:00:00Z", now=noon) == -3600
    assert remaining(None, now=noon) is None
