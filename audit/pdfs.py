"""Printable PDFs for SEGOB: the roster and the monthly per-facility report (fpdf2).

Core PDF fonts only speak Latin-1: Spanish accents pass, anything else (dashes, quotes)
is replaced, so a name can never make the export fail.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from audit.roster import FLAGS
from services.clock import utcnow
from services.settings import get_settings
from services.vocabulary import STATE_NAMES, FacilityKind, FacilityStatus

TIMEZONE = ZoneInfo("America/Mexico_City")

_REPLACE = {"—": "-", "–": "-", "“": '"', "”": '"', "‘": "'", "’": "'", "…": "...", "≥": ">="}


def latin1(value: Any) -> str:
    """``value`` as text a core PDF font can draw."""
    if value is None:
        return "S.I."
    if isinstance(value, datetime):
        value = value.strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, date):
        value = value.isoformat()
    text = str(value)
    for a, b in _REPLACE.items():
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


KIND_LABELS = FacilityKind.labels()
# The roster prints a facility's status capitalised, as a column value.
STATUS_LABELS = {code: label.capitalize() for code, label in FacilityStatus.labels().items()}
REGISTRATION_LABELS = {
    "not_submitted": "Sin solicitud",
    "submitted": "En revisión",
    "returned": "Devuelta",
    "registered": "Registrada",
}


def new_document(title: str, *lines: str) -> Any:
    """A landscape page of the deployment's paper (``CANALIZA_PAPER_SIZE``: Letter or A4)
    with its title and the lines under it; tables take the page's width."""
    from fpdf import FPDF

    pdf = FPDF(orientation="L", format=get_settings().paper_size)
    pdf.set_title(latin1(title))
    pdf.set_author("Canaliza")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=13)
    pdf.cell(0, 8, latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    for line in lines:
        pdf.multi_cell(0, 4, latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    return pdf


def table(pdf: Any, headers: list[str], widths: list[float], rows: list[list[Any]]) -> None:
    """A table that wraps long text inside its cell (never cut, never overlapping the next
    column) and repeats its headings on every page; ``widths`` are relative."""
    from fpdf.fonts import FontFace

    with pdf.table(
        col_widths=tuple(widths),
        headings_style=FontFace(emphasis="BOLD", fill_color=(230, 230, 230)),
        line_height=pdf.font_size * 1.35,
        text_align="LEFT",
        repeat_headings=1,
    ) as drawn:
        heading = drawn.row()
        for h in headers:
            heading.cell(latin1(h))
        for values in rows:
            row = drawn.row()
            for v in values:
                text = latin1(v)
                row.cell(text if text else " ")


def local_time(at: datetime | None = None) -> str:
    """When a document was generated, in Mexico's central time, as people read it."""
    moment = (at or utcnow()).astimezone(TIMEZONE)
    return f"{moment:%d/%m/%Y %H:%M} (hora del centro de México)"


def _day(value: Any) -> str:
    """An ISO date as 31/12/2026 (the one date format of every SEGOB document)."""
    if not value:
        return ""
    try:
        return date.fromisoformat(str(value)[:10]).strftime("%d/%m/%Y")
    except ValueError:
        return str(value)


def roster_pdf(items: list[dict[str, Any]], counts: dict[str, int]) -> bytes:
    """The roster as SEGOB prints it: one line per facility, flags spelled out."""
    pdf = new_document(
        "Padrón de refugios, albergues y casas de medio camino",
        f"Canaliza - SEGOB. Generado el {local_time()}. "
        f"{len(items)} instalaciones. Sin domicilios.",
    )
    headers = ["Instalación", "Tipo", "Entidad", "Municipio", "Situación", "Registro",
               "Camas", "Última visita", "Acciones abiertas", "Señales"]  # fmt: skip
    widths = [46.0, 22, 22, 26, 17, 20, 11, 18, 15, 50]
    pdf.set_font("Helvetica", size=7)
    rows = [
        [
            i["name"],
            KIND_LABELS.get(i["kind"] or "", i["kind"]),
            STATE_NAMES.get(i["state"] or "", i["state"]),
            i["municipality"],
            STATUS_LABELS.get(i["status"] or "", i["status"]),
            REGISTRATION_LABELS.get(i["registration_status"], i["registration_status"]),
            i["beds"],
            _day(i["last_visit_on"]) or "Nunca",
            i["open_actions"],
            ", ".join(i["flag_labels"]) or "-",
        ]
        for i in items
    ]
    table(pdf, headers, widths, rows)
    pdf.ln(3)
    pdf.set_font("Helvetica", style="B", size=8)
    pdf.cell(0, 5, "Resumen de señales", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    for code, label in FLAGS.items():
        pdf.cell(0, 4.5, latin1(f"{label}: {counts.get(code, 0)}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


MONTHS = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic")


def _month(value: str) -> str:
    """ "2026-03" as "mar"."""
    number = value[5:7]
    return MONTHS[int(number) - 1] if number.isdigit() and 1 <= int(number) <= 12 else value


def monthly_pdf(report: dict[str, Any], facility: dict[str, Any]) -> bytes:
    """The monthly per-facility report, shaped like the shelters' annex (``002:365-558``)."""
    months = report["columns"]
    period = months[0] if len(months) == 1 else f"{months[0]} a {months[-1]}"
    pdf = new_document(
        f"Informe mensual: {facility.get('name') or 'S.I.'}",
        f"{KIND_LABELS.get(facility.get('kind') or '', 'S.I.')}, "
        f"{STATE_NAMES.get(facility.get('state') or '', 'entidad sin información')}. "
        f"Periodo {period}. Cifras de 1 a 4 se muestran como <5; un total que incluye una "
        "cifra oculta se omite (*). Totales calculados de las filas.",
    )
    width = pdf.w - pdf.l_margin - pdf.r_margin
    label_w = 72.0
    col_w = (width - label_w) / (len(months) + 1)
    headers = [str(report["year"]), *[_month(m) for m in months], "TOTAL"]
    widths = [label_w, *[col_w] * len(months), col_w]
    for sec in report["sections"]:
        pdf.set_font("Helvetica", style="B", size=8)
        pdf.cell(0, 6, latin1(sec["title"]), new_x="LMARGIN", new_y="NEXT")
        rows = [[r["label"], *r["values"], r["total"]] for r in sec["rows"]]
        if "total" in sec:
            t = sec["total"]
            rows.append([t["label"], *t["values"], t["total"]])
        if not rows:
            rows = [["Sin registros", *["0"] * len(months), "0"]]
        pdf.set_font("Helvetica", size=7)
        table(pdf, headers, widths, rows)
        pdf.ln(2)
    return bytes(pdf.output())
