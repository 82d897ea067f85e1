"""Oversight outputs a person can read (issue 19, second half), in Debian's Chromium at
desktop (1366×768) and phone (390×844) sizes, axe-core on every page.

The auditor reads the bitácora as sentences with names (a shelter's decline and its
reason), filters it by kind, institution and date, opens one entry in full; the statistics
chart discharges apart from declined referrals, in Spanish. Screenshots go to
``artifacts/screenshots`` (git-ignored).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx
import pytest

from canaliza.demo import CASA_MERCEDES, FGR
from tests.frontend import test_browser as launch
from tests.frontend.test_browser import api_token, check_accessibility
from tests.frontend.test_browser_ops import enter, send_referral

server = launch.server
browser = launch.browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
REASON = "Sin camas para niños esta noche"
CASE = "FED/CDMX/FEVIMTRA/0001234/2026"
# What a person must never read: an account or object id, an event code.
CODES = re.compile(r"\b[0-9a-f]{8}\b|[0-9a-f]{8}-[0-9a-f]{4}|\breferral\.|\bcapacity\.|\bauth\.")


@pytest.fixture(scope="module")
def declined(server) -> str:
    """A referral of a mother and her son, declined by Casa de las Mercedes with a reason."""
    referral_id = send_referral(server, case_reference=CASE)
    coordinator = {"Authorization": f"Bearer {api_token(server, 'coordinadora')}"}
    answer = httpx.post(
        f"{server}/api/v1/referrals/{referral_id}/decline",
        json={"reason": REASON},
        headers=coordinator,
    )
    assert answer.status_code == 200, answer.text
    return referral_id


def _fits(page) -> None:
    """Nothing wider than the screen: no sideways scrolling to read a line."""
    if page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"):
        return
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
             .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + e.outerHTML.slice(0, 80))"""
    )
    raise AssertionError(f"wider than the screen: {wide}")


@pytest.mark.parametrize("size", SIZES)
def test_auditor_reads_the_trail_as_sentences_and_opens_an_entry(server, browser, declined, size):
    from playwright.sync_api import expect

    context = browser.new_context(locale="es-MX", viewport=SIZES[size])
    page = context.new_page()
    enter(page, server, "auditor")
    page.wait_for_url("**/segob/padron")
    page.goto(f"{server}/segob/bitacora")
    expect(page.locator("[data-verified]")).to_have_attribute("data-verified", "true")
    check_accessibility(page, f"trail-{size}")

    page.get_by_label("Qué pasó").select_option(label="Canalizaciones")
    page.get_by_label("Institución").select_option(label=CASA_MERCEDES.name)
    page.get_by_role("button", name="Filtrar").click()
    page.wait_for_url("**institucion=**")
    row = page.locator("tr", has_text="rechazó la canalización")
    expect(row).to_have_count(1)
    expect(row.locator(".sentence")).to_have_text(
        f"{CASA_MERCEDES.name} rechazó la canalización de {FGR.name} — motivo: {REASON}"
    )
    expect(row).to_contain_text("Coordinadora (demostración)")
    main = page.locator("main").inner_text()
    assert not CODES.search(main), CODES.search(main)
    if size == "phone":
        _fits(page)
    check_accessibility(page, f"trail-filtered-{size}")

    row.get_by_role("link").click()
    page.wait_for_url(re.compile(r".*/segob/bitacora/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Registro")
    people = page.locator("table tbody tr")
    expect(people).to_have_count(2)
    expect(people.nth(0)).to_contain_text("Mujer")
    expect(people.nth(0)).to_contain_text("18 a 59 años")
    expect(people.nth(0)).to_contain_text("México")
    expect(people.nth(1)).to_contain_text("0 a 12 años")
    expect(page.locator("dl.facts").first).to_contain_text("Rechazada")
    main = page.locator("main").inner_text()
    assert not CODES.search(main.replace(page.locator("code.hash").inner_text(), ""))
    if size == "phone":
        _fits(page)
    check_accessibility(page, f"trail-entry-{size}")

    # A date range with nothing in it says so.
    page.goto(f"{server}/segob/bitacora")
    page.get_by_label("Desde").fill(str(date.today() + timedelta(days=2)))
    page.get_by_role("button", name="Filtrar").click()
    expect(page.get_by_text("Ningún registro coincide con estos filtros.")).to_be_visible()
    context.close()


@pytest.mark.parametrize("size", SIZES)
def test_statistics_count_discharges_apart_from_declines(server, browser, declined, size):
    from playwright.sync_api import expect

    context = browser.new_context(locale="es-MX", viewport=SIZES[size])
    page = context.new_page()
    enter(page, server, "auditor")
    page.wait_for_url("**/segob/padron")
    page.goto(f"{server}/segob/estadisticas")
    expect(page.locator("canvas[data-chart]").first).to_have_attribute("data-drawn", "true")
    closings = page.locator("section[aria-labelledby=outcomes-title] figure").nth(1)
    closings.locator("summary").click()
    expect(closings.locator("tbody")).to_contain_text("Rechazada por el refugio")
    discharged = page.locator("section[aria-labelledby=outcomes-title] figure").nth(0)
    expect(discharged).not_to_contain_text("Rechazada")
    text = page.locator("main").inner_text()
    for code in ("declined", "expired", "S.I.", "0-12", "18-59"):
        assert code not in text, code
    if size == "phone":
        _fits(page)
    check_accessibility(page, f"statistics-{size}")
    context.close()


@pytest.mark.parametrize("size", SIZES)
def test_a_wrong_password_shows_a_styled_page(server, browser, size):
    from playwright.sync_api import expect

    context = browser.new_context(locale="es-MX", viewport=SIZES[size])
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    enter(page, server, "auditor", password="no-es-la-contraseña")
    expect(page.get_by_role("alert")).to_be_visible()
    # The stylesheet applied: the header has its colour, the alert its border.
    header = page.evaluate(
        "getComputedStyle(document.querySelector('.site-header')).backgroundColor"
    )
    assert header not in ("rgba(0, 0, 0, 0)", "transparent"), header
    assert refused == []
    check_accessibility(page, f"sign-in-refused-{size}")
    context.close()


def _facility_id(server: str) -> str:
    auditor = {"Authorization": f"Bearer {api_token(server, 'auditor')}"}
    roster = httpx.get(f"{server}/api/v1/roster", headers=auditor).json()
    return str(roster["items"][0]["facility_id"])


@pytest.mark.parametrize("size", SIZES)
def test_a_refused_visit_keeps_its_actions_reports_any_year_and_404_names_no_id(
    server, browser, size
):
    from playwright.sync_api import expect

    facility_id = _facility_id(server)
    context = browser.new_context(locale="es-MX", viewport=SIZES[size])
    page = context.new_page()
    enter(page, server, "auditor")
    page.wait_for_url("**/segob/padron")
    page.goto(f"{server}/segob/padron/{facility_id}")
    years = page.get_by_label("Año del informe mensual")
    expect(years.locator("option")).not_to_have_count(1)
    last_year = str(date.today().year - 1)
    years.select_option(last_year)
    with page.expect_download() as download:
        page.get_by_role("button", name="Descargar el informe mensual (PDF)").click()
    assert download.value.suggested_filename == f"informe-mensual-{last_year}.pdf"

    page.get_by_role("link", name="Programar o registrar una visita").click()
    done = page.locator("form:has(input[name=mode][value=done])")
    done.get_by_label("Equipo visitador").fill("Lic. Ana Pérez")
    done.get_by_label("Hallazgos").fill("Falta señalización de salida.")
    done.get_by_label("Acción 1").fill("Colocar señalización de salida")
    done.get_by_label("Acción 2").fill("Capacitar al personal en primeros auxilios")
    done.get_by_label("Fecha límite").nth(1).fill(str(date.today() + timedelta(days=30)))
    done.get_by_role("button", name="Registrar la visita").click()
    # Refused (action 1 has no due date): what was typed is all still there.
    expect(page.get_by_role("alert")).to_contain_text("fecha límite")
    done = page.locator("form:has(input[name=mode][value=done])")
    expect(done.get_by_label("Acción 1")).to_have_value("Colocar señalización de salida")
    expect(done.get_by_label("Acción 2")).to_have_value(
        "Capacitar al personal en primeros auxilios"
    )
    expect(done.get_by_label("Fecha límite").nth(1)).to_have_value(
        str(date.today() + timedelta(days=30))
    )
    check_accessibility(page, f"visit-refused-{size}")

    missing = "0b7c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"
    page.goto(f"{server}/segob/padron/{missing}")
    expect(page.get_by_role("heading", level=1)).to_have_text("No se encontró")
    assert missing not in page.locator("main").inner_text()
    check_accessibility(page, f"not-found-{size}")
    context.close()


def _make_user(server: str, username: str, role: str, password: str) -> None:
    admin = {"Authorization": f"Bearer {api_token(server, 'admin')}"}
    made = httpx.post(
        f"{server}/api/v1/auth/users",
        json={"username": username, "display_name": username.replace(".", " ").title(),
              "password": password, "roles": [role], "institution_id": CASA_MERCEDES.id},
        headers=admin,
    )  # fmt: skip
    assert made.status_code == 201, made.text


def _can_sign_in(server: str, username: str, password: str) -> bool:
    answer = httpx.post(
        f"{server}/auth/token",
        data={"grant_type": "password", "username": username, "password": password,
              "client_id": "canaliza-cli"},
    )  # fmt: skip
    return answer.status_code == 200


@pytest.mark.parametrize("size", SIZES)
def test_an_ngo_admin_resets_a_password_and_deactivates_an_account(server, browser, size):
    from playwright.sync_api import expect

    password = "una-contraseña-larga-19"
    admin_name, leaving = f"dir.osc.{size}", f"coord.baja.{size}"
    _make_user(server, admin_name, "institution_admin", password)
    _make_user(server, leaving, "shelter_coordinator", password)
    context = browser.new_context(locale="es-MX", viewport=SIZES[size])
    page = context.new_page()
    enter(page, server, admin_name, password)
    page.wait_for_url("**/institucion")

    # An NGO's admin is offered only the roles an NGO may hold.
    page.goto(f"{server}/institucion/usuarios/nuevo")
    offered = page.get_by_label("Rol en la plataforma").locator("option[value]:not([value=''])")
    assert sorted(offered.evaluate_all("os => os.map(o => o.value)")) == [
        "institution_admin",
        "shelter_coordinator",
    ]

    page.goto(f"{server}/institucion/usuarios")
    row = page.locator(f'tr[data-username="{leaving}"]')
    expect(page.locator(f'tr[data-username="{admin_name}"]')).to_contain_text("(usted)")
    if size == "phone":
        _fits(page)
    check_accessibility(page, f"admin-users-{size}")
    row.get_by_role("link", name="Restablecer contraseña…").click()
    check_accessibility(page, f"admin-reset-confirm-{size}")
    page.get_by_role("button", name="Sí, restablecer la contraseña").click()
    secret = page.locator("[data-temporary-password]").inner_text()
    assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", secret), secret
    check_accessibility(page, f"admin-reset-done-{size}")
    # a temporary password never yields a token by itself; the old one stopped working
    assert not _can_sign_in(server, leaving, secret)
    assert not _can_sign_in(server, leaving, password)
    chosen = f"mi-contraseña-propia-{size}"
    own = browser.new_context(locale="es-MX", viewport=SIZES[size])
    her = own.new_page()
    enter(her, server, leaving, secret)
    expect(her.get_by_role("alert")).to_contain_text("Su contraseña es temporal")
    check_accessibility(her, f"password-change-{size}")
    her.get_by_label("Contraseña temporal").fill(secret)
    her.locator('input[name="new_password"]').fill(chosen)
    her.locator('input[name="new_password_again"]').fill(chosen)
    her.get_by_role("button", name="Entrar").click()
    her.wait_for_url(lambda url: "/auth/" not in url and "/entrar" not in url)
    own.close()
    assert _can_sign_in(server, leaving, chosen) and not _can_sign_in(server, leaving, secret)

    page.get_by_role("link", name="Volver a las personas usuarias").click()
    row.get_by_role("link", name="Desactivar…").click()
    page.get_by_role("button", name="Sí, desactivar la cuenta").click()
    page.wait_for_url("**aviso=user_deactivated")
    expect(page.get_by_role("status").first).to_contain_text("ya no puede iniciar sesión")
    expect(row).to_contain_text("Desactivado")
    assert not _can_sign_in(server, leaving, chosen)
    row.get_by_role("button", name="Reactivar").click()
    page.wait_for_url("**aviso=user_reactivated")
    assert _can_sign_in(server, leaving, chosen)
    context.close()


@pytest.mark.parametrize("size", SIZES)
def test_the_coordinator_finds_a_declined_referral_in_the_archive(server, browser, declined, size):
    from playwright.sync_api import expect

    context = browser.new_context(locale="es-MX", viewport=SIZES[size])
    page = context.new_page()
    enter(page, server, "coordinadora")
    page.get_by_role("link", name="Archivo").click()
    page.wait_for_url("**/refugio/archivo")
    row = page.locator(f'tr[data-referral-id="{declined}"]')
    expect(row).to_contain_text("Rechazada")
    expect(row).to_contain_text(REASON)
    check_accessibility(page, f"archive-{size}")
    page.get_by_role("searchbox").fill("fevimtra sin camas")
    page.get_by_role("button", name="Buscar", exact=True).click()
    page.wait_for_url("**q=fevimtra**")
    expect(row).to_be_visible()
    page.get_by_role("searchbox").fill("ninguna coincidencia posible")
    page.get_by_role("button", name="Buscar", exact=True).click()
    expect(page.get_by_text("Ninguna canalización coincide con la búsqueda.")).to_be_visible()
    if size == "phone":
        _fits(page)
    context.close()


@pytest.mark.parametrize("size", SIZES)
def test_the_prosecutor_finds_her_referral_by_its_case_reference(server, browser, declined, size):
    from playwright.sync_api import expect

    context = browser.new_context(locale="es-MX", viewport=SIZES[size])
    page = context.new_page()
    enter(page, server, "fiscal")
    page.wait_for_url("**/canalizaciones/nueva")
    page.goto(f"{server}/canalizaciones")
    page.get_by_role("searchbox", name="Buscar por carpeta").fill("0001234/2026")
    page.get_by_role("button", name="Buscar", exact=True).click()
    page.wait_for_url("**q=0001234**")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-case-reference]")).to_have_text(CASE)
    expect(page.get_by_role("status").last).to_contain_text("1 canalización")
    if size == "phone":
        _fits(page)
    check_accessibility(page, f"my-referrals-search-{size}")
    context.close()
