"""The prosecutor's whole job in Debian's Chromium, against the main job on a free port.

One server for the module (``canaliza demo``: migrations, demo data, every service in one
process, SQLite in a temporary directory). The prosecutor signs in through the auth
service, describes a mother and her son, watches the eligible places update when the
coordinator admits someone elsewhere (a second browser context, no reload), holds the
beds and sends the referral; axe-core finds no serious or critical violation on any page
visited. Screenshots go to ``artifacts/screenshots`` (git-ignored).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from canaliza.demo import CASA_MERCEDES
from tests.conftest import unavailable

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "canaliza-demo"


def require_browser() -> None:
    """Skip (locally) or fail (on CI) without Chromium or the npm packages."""
    missing = [str(p) for p in (Path(CHROMIUM), AXE) if not p.exists()]
    if missing:
        unavailable(f"browser test needs {', '.join(missing)} (run `make setup`)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """The main job (`canaliza demo`) on a free port; its base URL."""
    require_browser()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    data = tmp_path_factory.mktemp("main-job")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CANALIZA_") or k == "CANALIZA_DEMO_PASSWORD"
    }
    env.update(
        CANALIZA_DEMO="1",
        CANALIZA_DATA_DIR=str(data / "var"),
        CANALIZA_PUBLIC_URL=base,
        CANALIZA_PORT=str(port),
        PYTHONPATH=str(ROOT),
    )
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "canaliza.launcher", "demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the main job exited: {(data / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the main job did not start: {(data / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def check_accessibility(page, name: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    # Evaluated through the DevTools protocol, so the page's CSP does not block it.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    violations = page.evaluate(
        """async () => (await axe.run(document)).violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical')
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    assert violations == [], f"{name}: {violations}"


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/")
    check_accessibility(page, "welcome")
    page.get_by_role("link", name="Iniciar sesión").click()
    page.wait_for_url("**/auth/authorize**")
    check_accessibility(page, "auth-sign-in")
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Entrar").click()


def api_token(base: str, username: str) -> str:
    resp = httpx.post(
        f"{base}/auth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": PASSWORD,
            "client_id": "canaliza-cli",
        },
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def test_prosecutor_sends_a_referral_while_capacity_updates_live(server, browser):
    from playwright.sync_api import expect

    fiscal_context = browser.new_context(locale="es-MX")
    coordinator_context = browser.new_context()
    page = fiscal_context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    sign_in(page, server, "fiscal")
    page.wait_for_url("**/canalizaciones/nueva")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nueva canalización")
    check_accessibility(page, "new-referral")
    # Keyboard: the first Tab reaches the skip link, which moves focus to the content;
    # the next Tab lands on the first field, with a visible focus ring.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Saltar al contenido"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "sex"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    cookie = next(c for c in fiscal_context.cookies() if c["name"] == "canaliza_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    # A mother of 29 and her son of 4, in Mexico City.
    page.get_by_label("Edad").first.fill("29")
    page.get_by_role("button", name="Agregar persona").click()
    expect(page.locator("fieldset.person")).to_have_count(2)
    second = page.locator("fieldset.person").nth(1)
    second.get_by_label("Sexo").select_option("M")
    second.get_by_label("Edad").fill("4")
    second.get_by_label("Papel").select_option("accompanying_child")
    page.get_by_label("Estado", exact=True).select_option("09")
    page.get_by_role("button", name="Buscar lugares elegibles").click()
    card = page.locator(
        f'li.result:has(input[name="operator_institution_id"][value="{CASA_MERCEDES.id}"])'
    ).first
    expect(card).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    check_accessibility(page, "search-results")

    # The coordinator admits someone into that pool from her own session; the page updates.
    facility_id = card.get_attribute("data-facility-id")
    pool_id = card.locator("[data-pool-id]").first.get_attribute("data-pool-id")
    before = int(card.locator("[data-available]").inner_text())
    page.evaluate("window.__notReloaded = true")
    token = api_token(server, "coordinadora")
    admitted = coordinator_context.request.post(
        f"{server}/api/v1/pools/{pool_id}/ledger",
        data={"kind": "admit", "beds": 1, "reason": "ingreso directo en el refugio"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert admitted.status == 201, admitted.text()
    same_card = page.locator(f'li.result[data-facility-id="{facility_id}"]')
    if before > 3:  # still room for the group: the count drops by one
        expect(same_card.locator("[data-available]")).to_have_text(str(before - 1))
    else:  # no longer room for both: the facility drops out of the list
        expect(same_card).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True

    # Hold the beds of the (first) Casa de las Mercedes facility still offered and send.
    page.locator(
        f'li.result:has(input[name="operator_institution_id"][value="{CASA_MERCEDES.id}"])'
    ).first.get_by_role("button", name="Apartar estas camas").click()
    page.wait_for_url("**/canalizaciones/apartados/**")
    check_accessibility(page, "hold")
    # Never a default country: each nationality is chosen, "Sin información" among them.
    nationalities = page.locator('select[name="nationality"]')
    expect(nationalities).to_have_count(2)
    assert nationalities.first.input_value() == ""
    assert nationalities.first.locator("option").count() == 249 + 3  # + choose, S.I., stateless
    nationalities.first.select_option(label="México")
    nationalities.nth(1).select_option(label="Sin información")
    page.locator('input[name="agreement"]').first.check()
    page.get_by_label("Las personas dieron su consentimiento informado").check()
    page.get_by_role("button", name="Enviar canalización").click()
    page.wait_for_url("**/canalizaciones/*?aviso=sent")
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "sent")
    expect(page.get_by_text("Protección de niñas, niños y adolescentes (DIF)")).to_be_visible()
    expect(page.get_by_text("Nacionalidad por confirmar", exact=False)).to_be_visible()
    check_accessibility(page, "referral-detail")

    page.get_by_role("link", name="Volver a mis canalizaciones").click()
    page.wait_for_url("**/canalizaciones")
    expect(page.locator("tbody tr")).not_to_have_count(0)
    # Chart.js (from node_modules) drew the status chart despite the strict CSP.
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas'))")
    check_accessibility(page, "referral-list")

    # English on request, Spanish by default.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My referrals")
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mis canalizaciones")

    page.get_by_role("button", name="Cerrar sesión").click()
    page.wait_for_url(f"{server}/?aviso=signed_out")
    expect(page.get_by_role("status")).to_have_text(
        "Cerró su sesión. Si la computadora es compartida, cierre también el navegador."
    )
    page.goto(f"{server}/canalizaciones")
    page.wait_for_url("**/auth/authorize**")  # signed out: back to the sign-in page
    assert [e for e in errors if "Content Security Policy" in e] == []
    fiscal_context.close()
    coordinator_context.close()


def test_prosecutor_plans_holds_refers_and_releases_a_rescue_operation(server, browser):
    """Issue 16: rows pasted, the plan as a table and by place, the beds held, the send
    form of one group's hold, then every hold released."""
    from playwright.sync_api import expect

    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    sign_in(page, server, "fiscal")
    page.wait_for_url("**/canalizaciones/nueva")
    page.get_by_role("link", name="Operativo de rescate").click()
    page.wait_for_url("**/operativos/nuevo")
    check_accessibility(page, "operation-new")
    page.get_by_label("Nombre del operativo").fill("Operativo de prueba")
    page.get_by_label("Estado del operativo").select_option("09")
    rows = (
        "1; F; 29; víctima; náhuatl/español\n1; M; 4; niño\n2; F; 35; víctima\n"
        "3; M; 40; víctima\n4; F; 52; víctima"
    )
    page.get_by_label("Personas, una por renglón").fill(rows)
    page.get_by_role("button", name="Planear").click()
    expect(page.get_by_role("heading", name="El plan")).to_be_visible()
    table = page.locator("table").first
    expect(table.locator("tbody tr")).to_have_count(4)  # groups 1, 2, 4 placed, 3 (a man) not
    expect(page.locator("tr.unplaced")).to_have_count(1)
    expect(page.locator("ul.by-facility li")).not_to_have_count(0)
    check_accessibility(page, "operation-plan")

    # Adjust before holding: group 2 to another place among those offered (free beds that
    # take her, and why not elsewhere), group 4 left without a place.
    change = page.get_by_role("button", name="Cambiar el lugar del grupo 2")
    before = table.locator("tbody tr").filter(has=change).locator("td").nth(1).inner_text()
    change.click()
    expect(page.get_by_role("heading", name="Otros lugares para el grupo 2")).to_be_visible()
    expect(page.get_by_text("Por qué no en otros lugares")).to_be_visible()
    check_accessibility(page, "operation-choices")
    first = page.locator('input[name="eleccion"][value="0"]')
    expect(first).to_have_count(1)
    chosen = page.locator('label[for="eleccion-0"] strong').inner_text()
    assert chosen != before
    first.check()
    page.get_by_role("button", name="Usar esta opción").click()
    expect(page.get_by_role("status")).to_have_text(f"El grupo 2 irá a {chosen}.")
    page.get_by_role("button", name="Cambiar el lugar del grupo 4").click()
    page.get_by_label("Dejar al grupo 4 sin lugar en este operativo").check()
    page.get_by_role("button", name="Usar esta opción").click()
    expect(page.get_by_role("status")).to_have_text("El grupo 4 queda sin lugar en este operativo.")
    expect(page.locator("tr.unplaced")).to_have_count(2)
    # At phone width the table becomes cards, nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    check_accessibility(page, "operation-adjusted-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("button", name="Apartar las camas").click()
    page.wait_for_url("**/operativos/*")
    expect(page.get_by_role("heading", level=1)).to_have_text("Operativo de prueba")
    # Held exactly as adjusted: group 2 where she was moved, group 4 left out.
    held = page.locator("table").first
    expect(held.locator("tbody tr").filter(has_text=chosen)).not_to_have_count(0)
    expect(page.locator("tr.unplaced")).to_have_count(2)
    expect(page.get_by_text("Sin lugar por decisión", exact=False)).to_be_visible()
    check_accessibility(page, "operation-held")
    operation_url = page.url
    page.get_by_role("button", name="Enviar la canalización").first.click()
    page.wait_for_url("**/canalizaciones/apartados/**")
    # The usual send form, for the first group's hold and its two people (the referral
    # will name the operation: the hold says which).
    expect(page.locator('select[name="nationality"]')).to_have_count(2)
    check_accessibility(page, "operation-refer")
    page.goto(operation_url)
    page.get_by_role("button", name="Liberar las camas que ninguna canalización tomó").click()
    page.wait_for_url("**/operativos/*")
    expect(page.locator("td").get_by_text("liberada", exact=True)).to_have_count(2)
    expect(page.get_by_role("button", name="Enviar la canalización")).to_have_count(0)
    check_accessibility(page, "operation-released")
    context.close()
