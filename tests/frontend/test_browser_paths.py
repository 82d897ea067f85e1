"""Issue 17's screens in Debian's Chromium (ADR 0021), each checked with axe-core: the
prosecutor's urgent placement without an agreement (the mark on the search results, the
checkbox and justification, the detection source), the coordinator's "canalizar a otro
lugar" of an admitted person with the path as one timeline, SEGOB's registration with
observations and its roster flag, and the admin's alert to formalise an agreement."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest

from canaliza.demo import FGR
from tests.frontend import test_browser as launch
from tests.frontend.test_browser import api_token, check_accessibility
from tests.frontend.test_browser_ops import enter, send_referral, submitted_facility

server = launch.server
browser = launch.browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JUSTIFICATION = "Rescate nocturno; ningún refugio con convenio tiene cupo."


def test_prosecutor_places_urgently_without_an_agreement(server, browser):
    from playwright.sync_api import expect

    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    enter(page, server, "fiscal")
    page.goto(f"{server}/canalizaciones/nueva")
    page.get_by_role("button", name="Buscar lugares elegibles").click()
    marked = page.locator("li.result:has([data-no-agreement])").first
    expect(marked).to_be_visible()
    check_accessibility(page, "paths-search-no-agreement")
    marked.get_by_role("button", name="Apartar para una colocación urgente sin convenio").click()
    page.wait_for_url("**/canalizaciones/apartados/**")
    check_accessibility(page, "paths-hold-urgent")
    page.locator("select[name=nationality]").first.select_option("MEX")
    page.get_by_label("¿Cómo se detectó a las víctimas?").select_option("hotline")
    page.get_by_label("consentimiento informado", exact=False).check()
    # Without the justification the send is refused, in Spanish, and nothing is sent.
    page.get_by_role("checkbox", name="Canalización urgente sin convenio").check()
    page.get_by_role("button", name="Enviar canalización").click()
    expect(page.locator(".alert.error")).to_contain_text("no puede esperar a un convenio")
    page.get_by_role("checkbox", name="Canalización urgente sin convenio").check()
    page.locator("select[name=nationality]").first.select_option("MEX")
    page.get_by_label("consentimiento informado", exact=False).check()
    page.get_by_label("¿Cómo se detectó a las víctimas?").select_option("hotline")
    page.get_by_label("Justificación por escrito").fill(JUSTIFICATION)
    page.get_by_role("button", name="Enviar canalización").click()
    page.wait_for_url("**aviso=sent")
    expect(page.locator("[data-without-agreement]")).to_be_visible()
    expect(page.get_by_text(JUSTIFICATION)).to_be_visible()
    expect(page.get_by_text("Línea telefónica o correo de denuncia")).to_be_visible()
    check_accessibility(page, "paths-detail-urgent")
    context.close()

    # Both institutions' admins are told to formalise an agreement: FGR's, for one.
    password = "una-contraseña-larga-17"
    made = httpx.post(
        f"{server}/api/v1/auth/users",
        json={"username": "dir.fevimtra", "display_name": "Dirección FEVIMTRA",
              "password": password, "roles": ["institution_admin"], "institution_id": FGR.id},
        headers={"Authorization": f"Bearer {api_token(server, 'admin')}"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    admin = browser.new_context(locale="es-MX")
    page = admin.new_page()
    enter(page, server, "dir.fevimtra", password)
    page.wait_for_url("**/institucion")
    page.goto(f"{server}/institucion/convenios")
    expect(page.locator("[data-agreement-alerts]")).to_be_visible()
    check_accessibility(page, "paths-agreement-alerts")
    admin.close()


def test_coordinator_sends_an_admitted_person_to_another_place(server, browser):
    from playwright.sync_api import expect

    referral_id = send_referral(server)
    coordinator = {"Authorization": f"Bearer {api_token(server, 'coordinadora')}"}
    for action in ("accept", "admit"):
        r = httpx.post(
            f"{server}/api/v1/referrals/{referral_id}/{action}", json={}, headers=coordinator
        )
        assert r.status_code == 200, r.text
    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    enter(page, server, "coordinadora")
    page.wait_for_url("**/refugio")
    page.goto(f"{server}/refugio/canalizaciones/{referral_id}")
    page.get_by_role("link", name="Canalizar a otro lugar…").click()
    page.wait_for_url("**/otro-lugar")
    check_accessibility(page, "paths-onward")
    page.get_by_role("button", name="Buscar lugares elegibles").click()
    first = page.locator("li.result").first
    expect(first).to_be_visible()
    check_accessibility(page, "paths-onward-results")
    if first.locator("[data-no-agreement]").count():
        first.get_by_role("checkbox", name="Canalización urgente sin convenio").check()
        first.get_by_label("Justificación por escrito").fill(JUSTIFICATION)
    first.get_by_label("consentimiento informado", exact=False).check()
    first.get_by_role("button", name="Canalizar aquí").click()
    page.wait_for_url("**aviso=sent")
    expect(page.locator("p.notice")).to_contain_text("Se envió la canalización")
    steps = page.locator("[data-path] li")
    expect(steps).to_have_count(2)
    page.goto(f"{server}/refugio/canalizaciones/{referral_id}")
    expect(page.locator("[data-path] li")).to_have_count(2)
    check_accessibility(page, "paths-referral-path")
    context.close()


def test_auditor_registers_with_observations_and_the_roster_flags_it(server, browser):
    from playwright.sync_api import expect

    facility = submitted_facility(server)
    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    enter(page, server, "auditor")
    page.wait_for_url("**/segob/padron")
    page.goto(f"{server}/segob/padron/{facility['id']}/registro")
    boxes = page.locator('input[name="met"]').all()
    for box in boxes[:-1]:  # the last item is not met
        box.check()
    page.get_by_role("radio", name="Registrar con observaciones").check()
    page.get_by_role("button", name="Registrar la decisión").click()
    expect(page.locator(".alert.error")).to_be_visible()  # no observations, no deadline
    check_accessibility(page, "paths-review-observed")
    for box in page.locator('input[name="met"]').all()[:-1]:
        box.check()
    page.get_by_role("radio", name="Registrar con observaciones").check()
    page.locator("#observations").fill("Falta el convenio de canalización.")
    page.locator("#due_on").fill(str(date.today() + timedelta(days=90)))
    page.get_by_role("button", name="Registrar la decisión").click()
    page.wait_for_url("**aviso=registered")
    # The roster is the audit service's projection of capacity's events: wait until the
    # review has reached it, then look again.
    auditor = {"Authorization": f"Bearer {api_token(server, 'auditor')}"}
    for _ in range(200):
        entry = httpx.get(f"{server}/api/v1/roster/{facility['id']}", headers=auditor).json()
        if "registered_with_observations" in entry["flags"]:
            break
        page.wait_for_timeout(100)
    page.reload()
    expect(page.locator('[data-flag="registered_with_observations"]')).to_be_visible()
    check_accessibility(page, "paths-roster-observed")

    # The statistics: people by detection source, urgent placements without agreement (the
    # prosecutor's of the first test of this module).
    page.goto(f"{server}/segob/estadisticas")
    expect(page.locator("[data-detection] tbody tr").first).to_be_visible()
    expect(page.locator("[data-urgent-placements] tbody tr").first).to_be_visible()
    check_accessibility(page, "paths-statistics")
    context.close()
