"""The PDFs SEGOB prints, looked at as a person sees them: rendered to images (poppler's
pdftoppm), their words read back with positions (pdftotext -bbox) — Spanish titles and
labels, names whole, no word over another, local time, Letter pages."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit import pdfs
from audit.main import consume
from services.events import Event
from tests.audit.conftest import EVENT_OF_STATUS
from tests.conftest import running, unavailable

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
WORD = re.compile(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
)
LONG_NAME = "Casa de Acogida y Formación para Mujeres y Familias Migrantes Nuestra Señora A.C."


@dataclass(frozen=True)
class Word:
    text: str
    page: int
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Word) -> bool:
        pad = 0.2  # adjacent glyph boxes may touch
        return (
            self.page == other.page
            and self.x0 + pad < other.x1
            and other.x0 + pad < self.x1
            and self.y0 + pad < other.y1
            and other.y0 + pad < self.y1
        )


@pytest.fixture(scope="module")
def poppler() -> None:
    if not (shutil.which("pdftoppm") and shutil.which("pdftotext")):
        unavailable("poppler-utils (pdftoppm, pdftotext) is not installed: make setup")


def _words(pdf: Path) -> list[Word]:
    xhtml = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    words: list[Word] = []
    for number, page in enumerate(xhtml.split("<page ")[1:], start=1):
        for m in WORD.finditer(page):
            box = [float(v) for v in m.group(1, 2, 3, 4)]
            words.append(Word(html.unescape(m.group(5)), number, *box))
    return words


# Landscape pages, in points, per paper size.
PAGES = {"Letter": "792 x 612 pts", "A4": "842 x 595 pts"}


def _look(
    content: bytes, name: str, tmp_path: Path, paper: str = "Letter"
) -> tuple[str, list[Word]]:
    """Render ``content`` to PNG (kept in artifacts/screenshots) and read its words back."""
    pdf = tmp_path / f"{name}.pdf"
    pdf.write_bytes(content)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(SCREENSHOTS / name)],
        check=True,
    )
    png = next(SCREENSHOTS.glob(f"{name}*.png"))
    assert png.stat().st_size > 5000  # a drawn page, not a blank one
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True)
    size = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info.stdout)
    assert size is not None
    assert f"{round(float(size[1]))} x {round(float(size[2]))} pts" == PAGES[paper]
    return " ".join(w.text for w in _words(pdf)), _words(pdf)


def _no_overlap(words: list[Word]) -> None:
    for i, a in enumerate(words):
        for b in words[i + 1 :]:
            assert not a.overlaps(b), f"«{a.text}» overlaps «{b.text}»"


@pytest.mark.parametrize("paper", sorted(PAGES))
def test_roster_pdf_wraps_long_names_in_local_time(poppler, tmp_path, monkeypatch, paper):
    from services.settings import get_settings

    monkeypatch.setenv("CANALIZA_PAPER_SIZE", paper)
    get_settings.cache_clear()
    item = {
        "name": LONG_NAME,
        "kind": "casa_de_medio_camino",
        "state": "09",
        "municipality": "Gustavo A. Madero",
        "status": "active",
        "registration_status": "registered",
        "beds": 24,
        "last_visit_on": "2026-03-05",
        "open_actions": 2,
        "flag_labels": [
            "Capacidad sin confirmar recientemente",
            "Acciones de seguimiento vencidas",
        ],
    }
    content = pdfs.roster_pdf([item] * 3, {"never_visited": 0})
    text, words = _look(content, f"roster-pdf-{paper.lower()}", tmp_path, paper)
    # The whole name, every word of it, and the state's name: nothing cut, no code.
    for word in LONG_NAME.split():
        assert word in text
    assert "Ciudad de México" in text and "05/03/2026" in text
    assert "UTC" not in text and "hora del centro de México" in text
    _no_overlap(words)


def _story() -> None:
    consume(
        Event(
            type="referral.institution.created",
            aggregate_type="institution",
            aggregate_id="5d0e8a8c-0000-4000-8000-000000000001",
            payload={
                "id": "5d0e8a8c-0000-4000-8000-000000000001",
                "name": "Fiscalía Especial para los Delitos de Violencia contra las Mujeres",
                "type": "fiscalia_federal",
                "state": "09",
            },
        )
    )
    for n in range(7):
        consume(
            Event(
                type=f"referral.referral.{EVENT_OF_STATUS['admitted']}",
                aggregate_type="referral",
                aggregate_id=f"r-{n}",
                payload={
                    "referral_id": f"r-{n}",
                    "status": "admitted",
                    "sending_institution_id": "5d0e8a8c-0000-4000-8000-000000000001",
                    "receiving_institution_id": "casa",
                    "facility_id": "fac-1",
                    "state": "09",
                    "people": [
                        {"sex": "F", "age_group": "18-59", "nationality": "HND", "role": "victim"}
                    ],
                },
            )
        )


async def test_statistics_pdf_speaks_spanish_and_explains_its_marks(
    poppler, tmp_path, audit_app, auth_headers
):
    _story()
    async with running(audit_app) as client:
        for name, by, expected in (
            ("people", "sex,age_group,nationality", ["Mujer", "18 a 59 años", "Honduras"]),
            ("referral-outcomes", None, ["Fiscalía Especial para los Delitos"]),
        ):
            params = {"format": "pdf", **({"by": by} if by else {})}
            r = await client.get(
                f"/api/v1/reports/{name}", params=params, headers=auth_headers("segob_auditor")
            )
            assert r.status_code == 200, r.text
            text, words = _look(r.content, f"report-{name}", tmp_path)
            for label in expected:
                assert label in text, (name, label)
            assert "Canaliza -" not in text.split("Generado")[0]  # a Spanish title, not a code
            assert "«<5» es una cifra de 0 a 4" in text and "Fila «Total»" in text
            assert "hora del centro de México" in text
            assert not UUID.search(text)
            for code in ("sex", "age_group", "sending_institution_id", "HND", " F "):
                assert code not in f" {text} ", (name, code)
            _no_overlap(words)
