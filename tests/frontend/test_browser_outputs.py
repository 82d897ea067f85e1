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
# What a person must never read: an account or object id, an event code.
CODES = re.compile(r"\b[0-9a-f]{8}\b|[0-9a-f]{8}-[0-9a-f]{4}|\breferral\.|\bcapacity\.|\bauth\.")


@pytest.fixture(scope="module")
def declined(server) -> str:
    """A referral of a mother and her son, declined by Casa de las Mercedes with a reason."""
    referral_id = send_referral(server)
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
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
             .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + e.outerHTML.slice(0, 80))"""
    )
    assert wide == [], wide


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
