"""After placement, in Debian's Chromium (ADR 0022): the INM officer records a foreign
mother's and her son's migration routes (a minor's assisted return refused until the risk of
revictimisation is assessed); the coordinator sees the stay counter, extends the stay with its
reason and approver, records a service, and after discharge plans and records a follow-up.
axe-core finds no serious or critical violation on these screens.
"""

from __future__ import annotations

import httpx
import pytest

from tests.frontend import test_browser as launch
from tests.frontend.test_browser import api_token, check_accessibility
from tests.frontend.test_browser_ops import enter, send_referral

server = launch.server
browser = launch.browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FOREIGN_MOTHER_AND_SON = [
    {"sex": "F", "age": 31, "role": "victim", "nationality": "GTM"},
    {"sex": "M", "age": 6, "role": "accompanying_child", "nationality": "GTM"},
]


def _admitted(base: str) -> str:
    referral_id = send_referral(base, FOREIGN_MOTHER_AND_SON)
    coordinator = {"Authorization": f"Bearer {api_token(base, 'coordinadora')}"}
    for action in ("accept", "admit"):
        r = httpx.post(
            f"{base}/api/v1/referrals/{referral_id}/{action}", json={}, headers=coordinator
        )
        assert r.status_code == 200, r.text
    return referral_id


def test_inm_officer_records_each_foreign_persons_route(server, browser):
    from playwright.sync_api import expect

    referral_id = _admitted(server)
    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    enter(page, server, "inm")
    page.wait_for_url("**/inm/canalizaciones")  # her first (and only) screen
    expect(page.get_by_role("link", name="Rutas migratorias").first).to_be_visible()
    check_accessibility(page, "inm-inbox")
    # Mexico City's referral is the national INM's (her office): its regional offices, which
    # the demo loads concurrently, never take it (the flake this test once showed)
    page.locator(f'a[href="/inm/canalizaciones/{referral_id}"]').click()
    page.wait_for_url(f"**/inm/canalizaciones/{referral_id}")
    check_accessibility(page, "inm-routes")

    son = page.locator("section.card").nth(1)
    expect(son.get_by_role("heading", level=2)).to_contain_text("persona menor de edad")
    son.get_by_label("Ruta", exact=True).select_option("assisted_return")
    son.get_by_label("Estado de la ruta").select_option("requested")
    son.get_by_label("País de retorno").fill("GTM")
    son.get_by_role("button", name="Registrar la ruta").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("revictimización")
    check_accessibility(page, "inm-routes-refused")

    son = page.locator("section.card").nth(1)
    son.get_by_label("Fecha de la evaluación").fill("2026-11-04")
    son.get_by_label("Resumen de la evaluación").fill("Sin riesgo identificado en el retorno.")
    son.get_by_role("button", name="Registrar la ruta").click()
    page.wait_for_url(f"**/inm/canalizaciones/{referral_id}?aviso=route**")
    expect(page.locator("p.notice")).to_contain_text("Ruta migratoria registrada")

    mother = page.locator("section.card").first
    mother.get_by_label("Ruta", exact=True).select_option("humanitarian_regularisation")
    mother.get_by_label("Estado de la ruta").select_option("granted")
    mother.get_by_label("Número de visa humanitaria").fill("VH-2026-0099")
    mother.get_by_label("Sí").check()
    mother.get_by_role("button", name="Registrar la ruta").click()
    page.wait_for_url(f"**/inm/canalizaciones/{referral_id}?aviso=route**")
    expect(page.locator("section.card").first).to_contain_text("VH-2026-0099")
    context.close()


def test_coordinator_extends_the_stay_records_services_and_follows_up(server, browser):
    from playwright.sync_api import expect

    referral_id = _admitted(server)
    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    enter(page, server, "coordinadora")
    page.wait_for_url("**/refugio")
    page.goto(f"{server}/refugio/canalizaciones/{referral_id}")
    expect(page.locator(".stay-summary")).to_contain_text("Día de estancia")
    page.get_by_role("link", name="Estancia y seguimiento").click()
    page.wait_for_url(f"**/refugio/canalizaciones/{referral_id}/estancia")
    check_accessibility(page, "coordinator-stay")

    page.get_by_label("Días de prórroga").fill("30")
    page.get_by_label("Motivo", exact=True).select_option("risk")
    page.get_by_label("Motivo (sin nombres)").fill("Persiste el riesgo en el lugar de origen.")
    page.get_by_label("Aprobada por").fill("Dirección del refugio")
    page.get_by_role("button", name="Registrar la prórroga").click()
    page.wait_for_url("**aviso=extended**")
    expect(page.locator("#extensions table")).to_contain_text("Dirección del refugio")

    page.get_by_label("Servicio", exact=True).select_option("psychological")
    page.get_by_role("button", name="Registrar el servicio").click()
    page.wait_for_url("**aviso=service**")
    expect(page.locator("#services table")).to_contain_text("Atención psicológica")

    coordinator = {"Authorization": f"Bearer {api_token(server, 'coordinadora')}"}
    r = httpx.post(
        f"{server}/api/v1/referrals/{referral_id}/discharge",
        json={"outcome": "reintegrated_elsewhere"},
        headers=coordinator,
    )
    assert r.status_code == 200, r.text
    page.goto(f"{server}/refugio/canalizaciones/{referral_id}/estancia")
    page.get_by_role("button", name="Programar un contacto de seguimiento").click()
    page.wait_for_url("**aviso=planned**")
    check_accessibility(page, "coordinator-follow-up")
    page.get_by_label("Resultado", exact=True).select_option("stable")
    page.get_by_role("button", name="Registrar el resultado").click()
    page.wait_for_url("**aviso=followed**")
    expect(page.locator("#follow-ups")).to_contain_text("Localizada, estable")
    context.close()
