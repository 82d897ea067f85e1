"""Issue 19 (first half): the prosecutor's and the coordinator's live job, in Chromium.

The same main job as ``test_browser`` (one server per module). What a person sees is
checked at desktop (1366×768) and phone (390×844) sizes, with axe-core on each page and a
screenshot of each in ``artifacts/screenshots/19a-*.png`` (git-ignored):

- after acceptance the prosecutor sees the address, the shelter's contact and arrival
  instructions, starts the transfer with an expected arrival and gets the oficio (PDF);
- referral steps arrive live on the open pages of both institutions (inbox row, status,
  count in the menu, an alert for an urgent one), listed on the notifications page;
- the shelter sees age bands, nationality and languages before accepting, never "age
  unknown" for ages that were entered; search results mark places without an agreement
  and count the beds eligible for the group;
- a declined referral offers "search another place" with the group filled in; holds are
  listed with their time left, resumable from another session (facility and people, no
  id) and releasable;
- on a phone the coordinator's inbox is a list of cards and the +1/−1 message is in view.
"""

from __future__ import annotations

import httpx
import pytest

from canaliza.demo import CASA_MERCEDES, FGR
from tests.frontend import test_browser as launch
from tests.frontend.test_browser import api_token, check_accessibility
from tests.frontend.test_browser_ops import enter

server = launch.server
browser = launch.browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
MOTHER_AND_DAUGHTER = [
    {"sex": "F", "age": 31, "role": "victim"},
    {"sex": "F", "age": 1, "role": "accompanying_child"},
]
CONTACT = "Lic. Rosa Méndez, 55 1234 5678"
INSTRUCTIONS = "Entrar por el portón gris; avisar 30 minutos antes."


def _fiscal(base: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(base, 'fiscal')}"}


def hold_at_casa_mercedes(base: str, people: list[dict[str, object]]) -> dict[str, object]:
    """The prosecutor holds beds at Casa de las Mercedes for ``people`` (API)."""
    found = httpx.post(
        f"{base}/api/v1/availability/search",
        json={"people": people, "needs": {}, "state": "09"},
        headers=_fiscal(base),
    ).json()
    choice = next(
        r for r in found["results"] if r["facility"]["operator_institution_id"] == CASA_MERCEDES.id
    )
    hold = httpx.post(
        f"{base}/api/v1/holds",
        json={
            "allocations": [{"pool_id": p["pool_id"], "beds": p["beds"]} for p in choice["pools"]],
            "people": people,
        },
        headers=_fiscal(base),
    )
    assert hold.status_code == 201, hold.text
    return {"hold": hold.json(), "facility": choice["facility"]}


def send_referral(base: str, people: list[dict[str, object]], urgency: str = "urgent") -> str:
    held = hold_at_casa_mercedes(base, people)
    created = httpx.post(
        f"{base}/api/v1/referrals",
        json={
            "sending_institution_id": FGR.id,
            "receiving_institution_id": CASA_MERCEDES.id,
            "facility_id": held["facility"]["id"],  # type: ignore[index]
            "hold_id": held["hold"]["id"],  # type: ignore[index]
            "people": [
                {**p, "nationality": "GTM", "languages": ["español", "k'iche'"]} for p in people
            ],
            "consent": {"given": True},
            "urgency": urgency,
        },
        headers=_fiscal(base),
    )
    assert created.status_code == 201, created.text
    rid = str(created.json()["id"])
    sent = httpx.post(f"{base}/api/v1/referrals/{rid}/send", json={}, headers=_fiscal(base))
    assert sent.status_code == 200, sent.text
    return rid


def in_view(page, locator) -> bool:
    """Whether the element lies within the viewport and the page does not scroll sideways."""
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(
        box
        and box["y"] >= 0
        and box["y"] + box["height"] <= size["height"]
        and box["x"] >= 0
        and box["x"] + box["width"] <= size["width"] + 1
    )


def no_sideways_scroll(page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_after_acceptance_the_prosecutor_knows_where_to_go_and_both_see_it_live(
    server, browser, size
):
    from playwright.sync_api import expect

    viewport = DESKTOP if size == "desktop" else PHONE
    coordinator = browser.new_context(locale="es-MX", viewport=viewport)
    shelter = coordinator.new_page()
    enter(shelter, server, "coordinadora")
    shelter.wait_for_url("**/refugio")
    # The shelter records who receives the people and how to get in, at each facility.
    for index in range(shelter.locator("section.facility").count()):
        section = shelter.locator("section.facility").nth(index)
        section.locator("[data-arrival-settings] summary").click()
        section.get_by_label("Contacto a la llegada").fill(CONTACT)
        section.get_by_label("Indicaciones de llegada").fill(INSTRUCTIONS)
        with shelter.expect_navigation(url="**aviso=arrival**"):
            section.get_by_role("button", name="Guardar contacto e indicaciones").click()
        expect(shelter.locator("p.notice")).to_contain_text("Contacto e indicaciones")
    check_accessibility(shelter, f"19a-{size}-coordinator-arrival-settings")
    shelter.goto(f"{server}/refugio/canalizaciones")
    expect(shelter.locator("#notify-region")).to_have_attribute("data-state", "live")
    shelter.evaluate("window.__notReloaded = true")

    prosecutor = browser.new_context(locale="es-MX", viewport=viewport).new_page()
    enter(prosecutor, server, "fiscal")
    prosecutor.wait_for_url("**/canalizaciones/nueva")
    prosecutor.locator("[data-row]").first.get_by_label("Edad").fill("31")
    prosecutor.get_by_role("button", name="Agregar persona").click()
    child = prosecutor.locator("[data-row]").nth(1)
    child.get_by_label("Edad").fill("1")
    child.get_by_label("Papel").select_option("accompanying_child")
    prosecutor.get_by_role("button", name="Buscar lugares elegibles").click()
    results = prosecutor.locator("[data-results] li.result")
    expect(results.first).to_be_visible()
    # Eligible beds for this group, never a code for a state; places without an agreement
    # with FGR are marked and offer no plain "hold" button: only the urgent placement
    # without agreement, named as such (ADR 0021).
    expect(results.first).to_contain_text("para este grupo")
    for item in results.all():
        if item.get_attribute("data-reachable") == "no":
            expect(item.locator("[data-no-agreement]")).to_be_visible()
            buttons = item.get_by_role("button")
            assert buttons.count() == 1
            expect(buttons.first).to_contain_text("urgente sin convenio")
    check_accessibility(prosecutor, f"19a-{size}-prosecutor-results")
    casa = prosecutor.locator('li.result[data-reachable="yes"]').first
    casa.get_by_role("button").click()
    prosecutor.wait_for_url("**/canalizaciones/apartados/**")
    for select in prosecutor.locator("select[name=nationality]").all():
        select.select_option("GTM")
    prosecutor.get_by_label("Idiomas que habla").first.fill("español, k'iche'")
    prosecutor.get_by_label("Las personas dieron su consentimiento").check()
    prosecutor.get_by_role("button", name="Enviar canalización").click()
    prosecutor.wait_for_url("**aviso=sent")
    referral_id = prosecutor.url.split("/canalizaciones/")[1].split("?")[0]
    expect(prosecutor.locator("#notify-region")).to_have_attribute("data-state", "live")
    prosecutor.evaluate("window.__notReloaded = true")

    # The open inbox shows the new urgent referral, a notice and the count, with no reload.
    row = shelter.locator(f'[data-referral-row="{referral_id}"]')
    expect(row).to_be_visible()
    expect(shelter.locator(".toast.urgent")).to_contain_text("Nueva canalización recibida")
    expect(shelter.locator("[data-notify-count]")).to_have_text("1")
    assert shelter.evaluate("window.__notReloaded") is True
    check_accessibility(shelter, f"19a-{size}-coordinator-inbox-live")

    # Before accepting: age bands, nationality, languages — never "age unknown".
    shelter.goto(f"{server}/refugio/canalizaciones/{referral_id}")
    people = shelter.locator("[data-person]")
    expect(people.nth(0)).to_contain_text("de 18 a 59 años")
    expect(people.nth(1)).to_contain_text("de 0 a 12 años")
    expect(people.nth(0)).to_contain_text("Guatemala")
    expect(people.nth(0)).to_contain_text("habla español, k'iche'")
    assert "edad desconocida" not in shelter.locator("[data-people]").inner_text()
    check_accessibility(shelter, f"19a-{size}-coordinator-referral-before-accepting")
    shelter.get_by_role("button", name="Aceptar la canalización").click()
    shelter.wait_for_url("**aviso=accepted")

    # Her open page changes by itself: accepted, with the way to the address.
    expect(prosecutor.locator("[data-status]")).to_have_attribute("data-status", "accepted")
    expect(prosecutor.locator(".toast")).to_contain_text("El refugio aceptó su canalización")
    assert prosecutor.evaluate("window.__notReloaded") is True
    prosecutor.get_by_role("link", name="Ver domicilio y cómo llegar").click()
    address = prosecutor.locator("[data-address]")
    expect(address).to_contain_text(CONTACT)
    expect(address).to_contain_text(INSTRUCTIONS)
    check_accessibility(prosecutor, f"19a-{size}-prosecutor-after-acceptance")
    oficio = prosecutor.request.get(f"{server}/canalizaciones/{referral_id}/oficio.pdf")
    assert oficio.status == 200
    assert oficio.headers["content-type"] == "application/pdf"
    assert oficio.body().startswith(b"%PDF")
    prosecutor.get_by_role("button", name="Iniciar el traslado").click()
    prosecutor.wait_for_url("**aviso=in_transit")
    expect(prosecutor.locator("[data-status]")).to_have_attribute("data-status", "in_transit")
    expect(prosecutor.locator("[data-expected-arrival]")).to_be_visible()

    # The shelter's open page shows the transfer and the expected arrival, no reload.
    shelter.evaluate("window.__notReloaded = true")
    expect(shelter.locator("[data-status]")).to_have_attribute("data-status", "in_transit")
    expect(shelter.locator("[data-expected-arrival]")).to_be_visible()
    assert shelter.evaluate("window.__notReloaded") is True
    check_accessibility(shelter, f"19a-{size}-coordinator-in-transit")
    shelter.get_by_role("button", name="Registrar el ingreso").click()
    shelter.wait_for_url("**aviso=admitted")

    prosecutor.goto(f"{server}/avisos")
    expect(prosecutor.locator("[data-step]").first).to_be_visible()
    expect(prosecutor.locator("[data-steps]")).to_contain_text("Aceptada por el refugio")
    expect(prosecutor.locator("[data-notify-count]")).to_be_hidden()
    check_accessibility(prosecutor, f"19a-{size}-prosecutor-notifications")
    prosecutor.context.close()
    coordinator.close()


def test_on_a_phone_the_coordinator_reads_cards_and_sees_each_message(server, browser):
    from playwright.sync_api import expect

    referral_id = send_referral(server, MOTHER_AND_DAUGHTER)
    context = browser.new_context(locale="es-MX", viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    enter(page, server, "coordinadora")
    page.wait_for_url("**/refugio")
    pool = page.locator("li.pool:has(button[value=admit]:not([disabled]))").nth(1)
    pool.get_by_label("Motivo del cambio").fill("Ingreso directo en el refugio")
    pool.locator("button[value=admit]").click()
    page.wait_for_url("**aviso=admit**")
    message = page.locator("[data-pool-notice]")
    expect(message).to_contain_text("Una cama más está ocupada")
    assert in_view(page, message), "after +1 the message is where the eye is"
    assert no_sideways_scroll(page)
    check_accessibility(page, "19a-phone-coordinator-pools-after-plus-one")

    page.goto(f"{server}/refugio/canalizaciones")
    row = page.locator(f'[data-referral-row="{referral_id}"]')
    expect(row).to_be_visible()
    countdown = row.locator("[data-countdown]")
    expect(countdown).to_be_visible()
    box = row.bounding_box()
    assert box and box["width"] <= PHONE["width"], box
    # The countdown is on the screen, not beyond its right edge as in the old table.
    time_left = countdown.bounding_box()
    assert time_left and time_left["x"] + time_left["width"] <= PHONE["width"] + 1, time_left
    assert no_sideways_scroll(page)
    check_accessibility(page, "19a-phone-coordinator-inbox-cards")
    page.goto(f"{server}/refugio/canalizaciones/{referral_id}")
    assert no_sideways_scroll(page)
    check_accessibility(page, "19a-phone-coordinator-referral")
    context.close()


def test_no_dead_ends_holds_resume_anywhere_and_a_decline_searches_again(server, browser):
    from playwright.sync_api import expect

    held = hold_at_casa_mercedes(server, MOTHER_AND_DAUGHTER)
    hold_id = held["hold"]["id"]  # type: ignore[index]
    facility_name = held["facility"]["name"]  # type: ignore[index]
    context = browser.new_context(locale="es-MX", viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    enter(page, server, "fiscal")
    page.wait_for_url("**/canalizaciones/nueva")
    # A hold made elsewhere (the API, another session) is listed with its place and people.
    page.goto(f"{server}/canalizaciones/apartados")
    card = page.locator(f'[data-hold="{hold_id}"]')
    expect(card).to_contain_text(facility_name)
    expect(card.locator("[data-person]")).to_have_count(2)
    expect(card.locator("[data-time-left]")).to_contain_text("min")
    assert hold_id not in card.inner_text()
    assert no_sideways_scroll(page)
    check_accessibility(page, "19a-phone-prosecutor-holds")
    card.get_by_role("link", name="Retomar").click()
    page.wait_for_url(f"**/canalizaciones/apartados/{hold_id}")
    expect(page.locator("#held-title + p")).to_contain_text(facility_name)
    expect(page.locator("select[name=nationality]")).to_have_count(2)
    check_accessibility(page, "19a-phone-prosecutor-hold-resumed")
    page.get_by_role("link", name="Liberar las camas").click()
    page.get_by_role("button", name="Sí, liberar las camas").click()
    page.wait_for_url("**aviso=released")
    page.goto(f"{server}/canalizaciones/apartados")
    expect(page.locator(f'[data-hold="{hold_id}"]')).to_have_count(0)

    # Declined: "search another place" brings the group back with the places for it.
    referral_id = send_referral(server, MOTHER_AND_DAUGHTER, urgency="normal")
    declined = httpx.post(
        f"{server}/api/v1/referrals/{referral_id}/decline",
        json={"reason": "Sin personal para una bebé esta semana"},
        headers={"Authorization": f"Bearer {api_token(server, 'coordinadora')}"},
    )
    assert declined.status_code == 200, declined.text
    page.goto(f"{server}/canalizaciones/{referral_id}")
    check_accessibility(page, "19a-phone-prosecutor-declined")
    page.get_by_role("button", name="Buscar otro lugar").click()
    page.wait_for_url("**/canalizaciones/nueva?aviso=again")
    ages = [el.input_value() for el in page.locator("input[name=age]").all()]
    assert ages == ["31", "1"]
    expect(page.locator("[data-results] li.result").first).to_be_visible()
    assert no_sideways_scroll(page)
    check_accessibility(page, "19a-phone-prosecutor-search-again")
    context.close()
