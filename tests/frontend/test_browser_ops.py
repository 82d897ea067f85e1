"""The coordinator's, the auditor's and the institution admin's jobs in Debian's Chromium.

Same launch helpers as ``test_browser`` (the main job on a free port, Chromium headless,
axe-core evaluated through the DevTools protocol): the coordinator admits one person with
one tap and answers a referral through to discharge; the auditor filters the roster,
records a visit, registers a facility and sees the trail verified and the charts drawn;
the institution admin creates a user and signs an agreement. axe-core finds no serious or
critical violation on any of these pages.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from canaliza.demo import CASA_MERCEDES, FGR
from tests.frontend import test_browser as launch
from tests.frontend.test_browser import PASSWORD, api_token, check_accessibility

# The same module-scoped fixtures as the prosecutor's browser test (one server per module).
server = launch.server
browser = launch.browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MOTHER_AND_SON = [
    {"sex": "F", "age": 31, "role": "victim"},
    {"sex": "M", "age": 6, "role": "accompanying_child"},
]


def enter(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/entrar")
    page.wait_for_url("**/auth/authorize**")
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(password)
    page.get_by_role("button", name="Entrar").click()


def send_referral(
    base: str, people: list[dict[str, Any]] = MOTHER_AND_SON, case_reference: str | None = None
) -> str:
    """The prosecutor sends a mother and her son to Casa de las Mercedes (through the API);
    Mexican unless ``people`` say otherwise."""
    fiscal = {"Authorization": f"Bearer {api_token(base, 'fiscal')}"}
    found = httpx.post(
        f"{base}/api/v1/availability/search",
        json={
            "people": [{k: v for k, v in p.items() if k != "nationality"} for p in people],
            "needs": {},
            "state": "09",
        },
        headers=fiscal,
    ).json()
    choice = next(
        r for r in found["results"] if r["facility"]["operator_institution_id"] == CASA_MERCEDES.id
    )
    allocations = [{"pool_id": p["pool_id"], "beds": p["beds"]} for p in choice["pools"]]
    hold = httpx.post(f"{base}/api/v1/holds", json={"allocations": allocations}, headers=fiscal)
    assert hold.status_code == 201, hold.text
    created = httpx.post(
        f"{base}/api/v1/referrals",
        json={
            "sending_institution_id": FGR.id,
            "receiving_institution_id": CASA_MERCEDES.id,
            "facility_id": choice["facility"]["id"],
            "hold_id": hold.json()["id"],
            "people": [{"nationality": "MEX", **p} for p in people],
            "consent": {"given": True},
            "urgency": "urgent",
            **({"case_reference": case_reference} if case_reference else {}),
        },
        headers=fiscal,
    )
    assert created.status_code == 201, created.text
    referral_id = str(created.json()["id"])
    sent = httpx.post(f"{base}/api/v1/referrals/{referral_id}/send", json={}, headers=fiscal)
    assert sent.status_code == 200, sent.text
    return referral_id


def submitted_facility(base: str, note: str | None = None) -> dict[str, Any]:
    """One of Casa de las Mercedes' facilities, submitted for SEGOB's registration."""
    coordinator = {"Authorization": f"Bearer {api_token(base, 'coordinadora')}"}
    facilities = httpx.get(
        f"{base}/api/v1/facilities",
        params={"operator_institution_id": CASA_MERCEDES.id},
        headers=coordinator,
    ).json()["items"]
    facility: dict[str, Any] = next(
        f for f in facilities if f["registration_status"] == "not_submitted"
    )
    submitted = httpx.post(
        f"{base}/api/v1/facilities/{facility['id']}/registration/submit",
        json={"note": note} if note else {},
        headers=coordinator,
    )
    assert submitted.status_code == 200, submitted.text
    return facility


def test_coordinator_admits_with_one_tap_and_answers_a_referral(server, browser):
    from playwright.sync_api import expect

    first, second = send_referral(server), send_referral(server)
    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    enter(page, server, "coordinadora")
    page.wait_for_url("**/refugio")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ocupación de mis instalaciones")
    check_accessibility(page, "coordinator-pools")

    pool = page.locator("li.pool:has(button[value=admit]:not([disabled]))").first
    pool_id = pool.get_attribute("data-pool-id")
    before = int(pool.locator("[data-occupied]").inner_text())
    pool.get_by_label("Motivo del cambio").fill("Ingreso directo en el refugio")
    pool.locator("button[value=admit]").click()
    page.wait_for_url("**/refugio?aviso=admit**")
    same = page.locator(f'li.pool[data-pool-id="{pool_id}"]')
    expect(same.locator("[data-occupied]")).to_have_text(str(before + 1))
    expect(page.locator("p.notice")).to_contain_text("Una cama más está ocupada")

    # A change made elsewhere (the API, another device) appears without a reload.
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")
    elsewhere = httpx.post(
        f"{server}/api/v1/pools/{pool_id}/ledger",
        json={"kind": "admit", "beds": 1, "reason": "ingreso desde otra terminal"},
        headers={"Authorization": f"Bearer {api_token(server, 'coordinadora')}"},
    )
    assert elsewhere.status_code == 201, elsewhere.text
    expect(same.locator("[data-occupied]")).to_have_text(str(before + 2))
    assert page.evaluate("window.__notReloaded") is True

    page.get_by_role("link", name="Canalizaciones recibidas").click()
    page.wait_for_url("**/refugio/canalizaciones")
    expect(page.locator(f'a[href="/refugio/canalizaciones/{first}"]')).to_be_visible()
    expect(page.locator("[data-countdown]").first).to_contain_text("restantes")
    check_accessibility(page, "coordinator-inbox")

    page.goto(f"{server}/refugio/canalizaciones/{second}/rechazar")
    check_accessibility(page, "coordinator-decline")
    page.get_by_role("link", name="No, regresar").click()
    page.wait_for_url(f"**/refugio/canalizaciones/{second}")

    page.goto(f"{server}/refugio/canalizaciones/{first}")
    check_accessibility(page, "coordinator-referral")
    page.get_by_role("button", name="Aceptar la canalización").click()
    page.wait_for_url("**aviso=accepted")
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "accepted")
    page.get_by_role("button", name="Registrar el ingreso").click()
    page.wait_for_url("**aviso=admitted")
    page.get_by_role("link", name="Registrar el egreso…").click()
    check_accessibility(page, "coordinator-discharge")
    page.get_by_label("Salida voluntaria").check()
    page.get_by_role("button", name="Sí, registrar el egreso").click()
    page.wait_for_url("**aviso=discharged")
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "discharged")
    assert [e for e in errors if "Content Security Policy" in e] == []
    context.close()


def test_auditor_filters_the_roster_records_a_visit_and_sees_the_trail_verified(server, browser):
    from playwright.sync_api import expect

    facility = submitted_facility(server, "Solicitud inicial")

    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    enter(page, server, "auditor")
    page.wait_for_url("**/segob/padron")
    check_accessibility(page, "auditor-roster")
    page.get_by_label("Estado", exact=True).select_option("09")
    page.get_by_role("button", name="Filtrar").click()
    page.wait_for_url("**estado=09**")
    expect(page.locator(f'tr[data-facility-id="{facility["id"]}"]')).to_be_visible()
    page.get_by_role("link", name=facility["name"]).click()
    page.wait_for_url(f"**/segob/padron/{facility['id']}")
    expect(page.locator('[data-flag="never_visited"]')).to_be_visible()
    check_accessibility(page, "auditor-facility")

    page.get_by_role("link", name="Revisar el registro").click()
    check_accessibility(page, "auditor-review")
    for box in page.locator('input[name="met"]').all():
        box.check()
    page.get_by_label("Registrar la instalación (cumple todos los requisitos)").check()
    page.get_by_role("button", name="Registrar la decisión").click()
    page.wait_for_url("**aviso=registered")
    expect(page.locator("[data-registration]")).to_have_attribute("data-registration", "registered")

    page.get_by_role("link", name="Programar o registrar una visita").click()
    check_accessibility(page, "auditor-visit-new")
    done = page.locator("form:has(input[name=mode][value=done])")
    done.get_by_label("Equipo visitador").fill("Lic. Ana Pérez\nMtro. Luis Gómez")
    done.get_by_label("Hallazgos").fill("Instalaciones en buen estado; falta señalización.")
    done.get_by_label("Acción 1").fill("Colocar señalización de salida")
    done.get_by_label("Fecha límite").first.fill(str(date.today() + timedelta(days=30)))
    done.get_by_role("button", name="Registrar la visita").click()
    page.wait_for_url("**aviso=visit_done**")
    expect(page.get_by_text("Colocar señalización de salida")).to_be_visible()
    expect(page.locator('[data-flag="never_visited"]')).to_have_count(0)

    # A visit planned, opened to record, then cancelled (confirmed, with a reason).
    page.get_by_role("link", name="Programar o registrar una visita").click()
    planned = page.locator("form:has(input[name=mode][value=planned])")
    planned.get_by_label("Fecha programada").fill(str(date.today() + timedelta(days=60)))
    planned.get_by_label("Equipo visitador").fill("Lic. Ana Pérez")
    planned.get_by_role("button", name="Programar la visita").click()
    page.wait_for_url("**aviso=visit_planned**")
    page.get_by_role("link", name="Registrar como realizada").click()
    check_accessibility(page, "auditor-visit-done")
    page.get_by_role("link", name="Volver a la instalación").click()
    page.get_by_role("link", name="Cancelar visita…").click()
    check_accessibility(page, "auditor-visit-cancel")
    page.get_by_label("Motivo").fill("Cambio de agenda del equipo")
    page.get_by_role("button", name="Sí, cancelar la visita").click()
    page.wait_for_url("**aviso=visit_cancelled**")
    expect(page.locator('[data-visit-status="cancelled"]')).to_have_count(1)

    page.get_by_role("link", name="Bitácora").click()
    page.wait_for_url("**/segob/bitacora")
    expect(page.locator("[data-verified]")).to_have_attribute("data-verified", "true")
    expect(page.get_by_text("Verificada: la bitácora está íntegra.")).to_be_visible()
    check_accessibility(page, "auditor-trail")

    page.get_by_role("link", name="Estadísticas").click()
    page.wait_for_url("**/segob/estadisticas")
    expect(page.locator("canvas[data-chart]").first).to_have_attribute("data-drawn", "true")
    check_accessibility(page, "auditor-statistics")
    with page.expect_download() as download:
        page.locator('a[href="/segob/exportar/occupancy?formato=csv"]').click()
    assert download.value.suggested_filename == "occupancy.csv"
    assert [e for e in errors if "Content Security Policy" in e] == []
    context.close()


def test_institution_admin_creates_a_user_and_signs_an_agreement(server, browser):
    from playwright.sync_api import expect

    admin = {"Authorization": f"Bearer {api_token(server, 'admin')}"}
    password = "una-contraseña-larga-2"
    made = httpx.post(
        f"{server}/api/v1/auth/users",
        json={"username": "dir.mercedes", "display_name": "Dirección Mercedes",
              "password": password, "roles": ["institution_admin"],
              "institution_id": CASA_MERCEDES.id},
        headers=admin,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    enter(page, server, "dir.mercedes", password)
    page.wait_for_url("**/institucion")
    check_accessibility(page, "admin-institution")

    page.get_by_role("link", name="Usuarios", exact=True).first.click()
    page.wait_for_url("**/institucion/usuarios")
    check_accessibility(page, "admin-users")
    page.get_by_role("link", name="Crear un usuario").click()
    check_accessibility(page, "admin-user-new")
    page.get_by_label("Nombre completo").fill("Trabajadora Social Dos")
    page.get_by_label("Usuario").fill("ts.dos")
    page.get_by_label("Rol en la plataforma").select_option("shelter_coordinator")
    page.locator("#password").fill(password)
    page.locator("#password_again").fill(password)
    page.get_by_role("button", name="Crear el usuario").click()
    page.wait_for_url("**aviso=user_created")
    expect(page.locator('tr[data-username="ts.dos"]')).to_be_visible()

    page.goto(f"{server}/institucion/convenios")
    check_accessibility(page, "admin-agreements")
    page.get_by_role("link", name="Registrar un convenio").click()
    check_accessibility(page, "admin-agreement-new")
    page.get_by_label("Número").fill("CONV-NAV-1")
    page.get_by_label("Título").fill("Convenio de colaboración de prueba")
    page.get_by_label(FGR.name).check()
    page.get_by_label("Vigente desde").fill("2026-01-01")
    page.get_by_label("Vigente hasta").fill("2027-12-31")
    page.get_by_role("button", name="Registrar el convenio").click()
    page.wait_for_url("**aviso=agreement_created")
    check_accessibility(page, "admin-agreement")
    page.get_by_role("link", name="Firmar en nombre de mi institución…").click()
    check_accessibility(page, "admin-agreement-sign")
    page.get_by_role("button", name="Sí, firmar el convenio").click()
    page.wait_for_url("**aviso=signed")
    expect(page.locator(f'tr[data-party="{CASA_MERCEDES.id}"]')).to_contain_text("firmado el")
    page.get_by_role("link", name="Revocar…").click()
    check_accessibility(page, "admin-agreement-revoke")
    context.close()
