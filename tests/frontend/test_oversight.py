"""SEGOB's pages through the ASGI app: roster, facility file, visit, review, trail, stats."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from canaliza.demo import CASA_MERCEDES
from frontend.i18n import TIMEZONE
from tests.conftest import running
from tests.frontend.conftest import csrf_of, sign_in
from tests.frontend.ops_helpers import api_headers


def _mexico_today() -> date:
    """Today where the auditor works (the web UI's time zone), not the machine's: from
    midnight UTC to the small hours in Mexico City the two dates differ."""
    return datetime.now(UTC).astimezone(TIMEZONE).date()


pytestmark = pytest.mark.slow


async def test_auditor_reads_the_roster_records_a_visit_reviews_and_verifies(demo_app):
    from canaliza.seed import load_demo_into_app

    report = await load_demo_into_app(demo_app)
    assert not report.failures, report.failures[:3]
    async with running(demo_app) as client:
        await sign_in(client, "auditor")
        assert (await client.get("/")).headers["location"] == "/segob/padron"
        roster = await client.get("/segob/padron")
        assert roster.status_code == 200, roster.text
        assert "Padrón de instalaciones" in roster.text
        assert 'data-flag="never_visited"' in roster.text
        csrf = csrf_of(roster.text)

        # Filters: Mexico City only, then a flag nobody has.
        cdmx = await client.get("/segob/padron?estado=09")
        states = set(re.findall(r"<td>([^<]+)<br><span class=\"hint\">", cdmx.text))
        assert states == {"Ciudad de México"}, states
        none = await client.get("/segob/padron?bandera=follow_up_overdue")
        assert "Ninguna instalación coincide con estos filtros." in none.text

        # The operator submits a facility; the auditor reviews it against the checklist.
        coordinator = await api_headers(client, "coordinadora")
        facilities = await client.get(
            f"/api/v1/facilities?operator_institution_id={CASA_MERCEDES.id}", headers=coordinator
        )
        facility_id = facilities.json()["items"][0]["id"]
        submitted = await client.post(
            f"/api/v1/facilities/{facility_id}/registration/submit",
            json={"note": "Solicitud inicial"},
            headers=coordinator,
        )
        assert submitted.status_code == 200, submitted.text
        detail = await client.get(f"/segob/padron/{facility_id}")
        assert detail.status_code == 200, detail.text
        assert "Revisar el registro" in detail.text
        review_url = f"/segob/padron/{facility_id}/registro"
        review = await client.get(review_url)
        items = re.findall(r'name="met" value="([^"]+)"', review.text)
        assert len(items) >= 10
        # Registering with an unmet item is refused with a sentence, not a stack trace.
        refused = await client.post(
            review_url, data={"csrf_token": csrf, "outcome": "registered", "met": items[:-1]}
        )
        assert refused.status_code == 422
        assert "cada requisito" in refused.text
        done = await client.post(
            review_url, data={"csrf_token": csrf, "outcome": "registered", "met": items}
        )
        assert done.status_code == 303, done.text
        after = await client.get(done.headers["location"])
        assert 'data-registration="registered"' in after.text

        # A visit done today, with a follow-up action; a visit planned and then cancelled.
        visits = f"/segob/padron/{facility_id}/visitas"
        form = await client.get(visits)
        assert form.status_code == 200
        missing = await client.post(
            visits, data={"csrf_token": csrf, "mode": "done", "done_on": str(_mexico_today())}
        )
        assert missing.status_code == 422
        assert "hallazgos" in missing.text
        recorded = await client.post(
            visits,
            data={
                "csrf_token": csrf,
                "mode": "done",
                "done_on": str(_mexico_today()),
                "team": "Lic. Ana Pérez\nMtro. Luis Gómez",
                "findings": "Instalaciones en buen estado; falta señalización de salida.",
                "action_description": ["Colocar señalización de salida", ""],
                "action_due_on": [str(_mexico_today() + timedelta(days=30)), ""],
            },
        )
        assert recorded.status_code == 303, recorded.text
        page = await client.get(recorded.headers["location"])
        assert "La visita quedó registrada con sus hallazgos." in page.text
        assert "Colocar señalización de salida" in page.text
        assert 'data-flag="never_visited"' not in page.text

        planned = await client.post(
            visits,
            data={"csrf_token": csrf, "mode": "planned", "team": "Lic. Ana Pérez",
                  "planned_for": str(_mexico_today() + timedelta(days=60))},
        )  # fmt: skip
        assert planned.status_code == 303, planned.text
        page = await client.get(planned.headers["location"])
        found = re.search(r'data-visit-id="([^"]+)" data-visit-status="planned"', page.text)
        assert found is not None
        visit_id = found[1]
        confirm = await client.get(f"/segob/visitas/{visit_id}/cancelar")
        assert "¿Cancelar esta visita?" in confirm.text
        cancelled = await client.post(
            f"/segob/visitas/{visit_id}/cancelar", data={"csrf_token": csrf, "reason": "Lluvias"}
        )
        assert cancelled.status_code == 303
        page = await client.get(cancelled.headers["location"])
        assert f'data-visit-id="{visit_id}" data-visit-status="cancelled"' in page.text

        # The trail verifies; statistics and exports download through the frontend.
        trail = await client.get("/segob/bitacora")
        assert 'data-verified="true"' in trail.text
        assert "Verificada: la bitácora está íntegra." in trail.text
        tampered = await client.get("/segob/bitacora?pagina=abc")
        assert tampered.status_code == 200 and 'data-verified="true"' in tampered.text
        filtered = await client.get("/segob/bitacora?tipo=audit.visit.")
        # Sentences with names, never event codes or account ids.
        rows = filtered.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        assert "programó una visita a" in rows and "canceló una visita a" in rows
        assert "audit." not in rows
        assert "Auditor (demostración)" in rows  # who acted, by name
        position = re.search(r'<tr data-position="(\d+)">', rows)
        assert position is not None
        entry = await client.get(f"/segob/bitacora/{position[1]}")
        assert entry.status_code == 200 and "canceló una visita a" in entry.text
        assert "Posición en la cadena" in entry.text
        missing = await client.get("/segob/bitacora/999999")
        assert missing.status_code == 404
        stats = await client.get("/segob/estadisticas")
        assert stats.status_code == 200
        assert stats.text.count("<canvas data-chart=") >= 1
        assert "/vendor/chart.umd.min.js" in stats.text
        csv = await client.get("/segob/exportar/occupancy?formato=csv")
        assert csv.status_code == 200
        assert csv.headers["content-type"].startswith("text/csv")
        assert "attachment" in csv.headers["content-disposition"]
        pdf = await client.get("/segob/padron.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        hsds = await client.get("/segob/directorio-hsds.json")
        assert hsds.json()["hsds_version"] == "3.0"
        unknown = await client.get("/segob/exportar/secret?formato=csv")
        assert unknown.status_code == 404


async def _load_demo(app) -> None:
    from canaliza.seed import load_demo_into_app

    report = await load_demo_into_app(app)
    assert not report.failures, report.failures[:3]


async def _auditor(client) -> dict[str, str]:
    """The auditor signed in to the pages; her API headers."""
    await sign_in(client, "auditor")
    return await api_headers(client, "auditor")


async def test_the_roster_screen_pages_with_the_apis_cursor_and_counts(demo_app, monkeypatch):
    """The screen shows ROSTER_PAGE facilities at a time, following the API's next_cursor to
    the end with every facility once, keeps the filters on its links and shows the API's
    flag counts of the whole filtered roster."""
    from frontend import oversight

    monkeypatch.setattr(oversight, "ROSTER_PAGE", 3)
    await _load_demo(demo_app)
    async with running(demo_app) as client:
        auditor = await _auditor(client)
        whole = (await client.get("/api/v1/roster", headers=auditor)).json()
        assert len(whole["items"]) > 3

        async def walk(url: str) -> tuple[list[str], list[str]]:
            seen: list[str] = []
            bodies: list[str] = []
            while url:
                screen = await client.get(url)
                assert screen.status_code == 200, screen.text
                bodies.append(screen.text)
                rows = re.findall(r'<tr data-facility-id="([^"]+)"', screen.text)
                assert len(rows) <= 3
                seen += rows
                more = re.search(r'<a class="button" rel="next" href="([^"]+)"', screen.text)
                url = html.unescape(more.group(1)) if more else ""
                assert len(bodies) < 50, "the next link must move on"
            return seen, bodies

        seen, bodies = await walk("/segob/padron")
        assert seen == [i["facility_id"] for i in whole["items"]]
        assert "Primera página" in bodies[-1] and "Primera página" not in bodies[0]
        assert "Página 2, 3 instalaciones por página." in bodies[1]
        flags = whole["flag_counts"]
        for code, n in flags.items():
            if n:  # each flag's count over the whole roster, on the first page already
                option = re.search(rf'<option value="{code}">[^<]*\(([\d,]+)\)</option>', bodies[0])
                assert option and int(option.group(1).replace(",", "")) == n, code

        flagged = [i["facility_id"] for i in whole["items"] if "never_visited" in i["flags"]]
        seen, bodies = await walk("/segob/padron?bandera=never_visited")
        assert seen == flagged
        assert f"{len(flagged)} instalaciones" in bodies[0]

        # A cursor edited by hand: the first page, not an error.
        odd = await client.get("/segob/padron?desde=nope&pagina=7")
        assert odd.status_code == 200
        assert re.findall(r'<tr data-facility-id="([^"]+)"', odd.text) == [
            i["facility_id"] for i in whole["items"][:3]
        ]


async def test_the_trail_screen_pages_older_and_newer_by_keyset(demo_app, monkeypatch):
    from frontend import trail

    monkeypatch.setattr(trail, "TRAIL_PAGE", 7)
    await _load_demo(demo_app)
    async with running(demo_app) as client:
        admin = await _auditor(client)
        total = (await client.get("/api/v1/audit/events?limit=1", headers=admin)).json()["total"]
        assert total > 14

        def rows(text: str) -> list[int]:
            return [int(p) for p in re.findall(r'<tr data-position="(\d+)">', text)]

        def link(text: str, label: str) -> str | None:
            found = re.search(
                rf'<a class="button"(?: rel="next")? href="([^"]+)">{label}</a>', text
            )
            return html.unescape(found.group(1)) if found else None

        url: str | None = "/segob/bitacora"
        pages: list[list[int]] = []
        while url:  # older and older, to the first entry of the chain
            screen = await client.get(url)
            assert screen.status_code == 200, screen.text
            pages.append(rows(screen.text))
            assert f"Página {len(pages)} de" in screen.text
            url = link(screen.text, "Anteriores")
            assert len(pages) < 200
        seen = [p for page in pages for p in page]
        # every entry once, newest first, down to position 1
        assert seen == sorted(set(seen), reverse=True) and seen[-1] == 1
        assert all(len(page) == 7 for page in pages[:-1])

        first = await client.get("/segob/bitacora")
        back = await client.get(link(first.text, "Anteriores") or "")
        assert rows(back.text) == pages[1]
        newer = link(back.text, "Más recientes")
        assert newer == "/segob/bitacora"
        # from the third page, "newer" opens the second by keyset
        third = await client.get(link(back.text, "Anteriores") or "")
        assert rows(third.text) == pages[2]
        second = await client.get(link(third.text, "Más recientes") or "")
        assert rows(second.text) == pages[1]
        assert "Página 2 de" in second.text

        odd = await client.get("/segob/bitacora?desde=nope&pagina=4")
        assert odd.status_code == 200 and 'data-verified="true"' in odd.text
