"""Printable PDFs for SEGOB: the roster and the monthly per-facility report (fpdf2).

Core PDF fonts only speak Latin-1: Spanish accents pass, anything else (dashes, quotes)
is replaced, so a name can never make the export fail.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from audit.roster import FLAGS
from services.clock import utcnow
from services.vocabulary import FacilityKind, FacilityStatus

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


def _new(title: str, subtitle: str) -> Any:
    from fpdf import FPDF

    pdf = FPDF(orientation="L", format="Letter")
    pdf.set_title(latin1(title))
    pdf.set_author("Canaliza")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=13)
    pdf.cell(0, 8, latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    pdf.cell(0, 5, latin1(subtitle), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    return pdf


def _table(pdf: Any, headers: list[str], widths: list[float], rows: list[list[Any]]) -> None:
    pdf.set_font("Helvetica", style="B", size=7)
    for h, w in zip(headers, widths, strict=True):
        pdf.cell(w, 6, latin1(h), border=1)
    pdf.ln()
    pdf.set_font("Helvetica", size=7)
    for row in rows:
        for v, w in zip(row, widths, strict=True):
            text = latin1(v)
            while text and pdf.get_string_width(text) > w - 1.5:
                text = text[:-1]
            pdf.cell(w, 5, text, border=1)
        pdf.ln()


def roster_pdf(items: list[dict[str, Any]], counts: dict[str, int]) -> bytes:
    """The roster as SEGOB prints it: one line per facility, flags spelled out."""
    pdf = _new(
        "Padrón de refugios, albergues y casas de medio camino",
        f"Canaliza - SEGOB. Generado {utcnow():%Y-%m-%d %H:%M} UTC. "
        f"{len(items)} instalaciones. Sin domicilios.",
    )
    headers = ["Instalación", "Tipo", "Edo.", "Municipio", "Estado", "Registro", "Camas",
               "Última visita", "Acciones abiertas", "Señales"]  # fmt: skip
    widths = [52.0, 26, 9, 30, 18, 20, 11, 20, 17, 56]
    rows = [
        [
            i["name"],
            KIND_LABELS.get(i["kind"] or "", i["kind"]),
            i["state"],
            i["municipality"],
            STATUS_LABELS.get(i["status"] or "", i["status"]),
            REGISTRATION_LABELS.get(i["registration_status"], i["registration_status"]),
            i["beds"],
            i["last_visit_on"] or "Nunca",
            i["open_actions"],
            ", ".join(i["flag_labels"]) or "-",
        ]
        for i in items
    ]
    _table(pdf, headers, widths, rows)
    pdf.ln(3)
    pdf.set_font("Helvetica", style="B", size=8)
    pdf.cell(0, 5, "Resumen de señales", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    for code, label in FLAGS.items():
        pdf.cell(0, 4.5, latin1(f"{label}: {counts.get(code, 0)}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def monthly_pdf(report: dict[str, Any], facility: dict[str, Any]) -> bytes:
    """The monthly per-facility report, shaped like the shelters' annex (``002:365-558``)."""
    months = report["columns"]
    period = months[0] if len(months) == 1 else f"{months[0]} a {months[-1]}"
    pdf = _new(
        f"Informe mensual: {facility.get('name') or 'S.I.'}",
        f"{KIND_LABELS.get(facility.get('kind') or '', 'S.I.')}, entidad {facility.get('state')}. "
        f"Periodo {period}. Cifras de 1 a 4 se muestran como <5; un total que incluye una "
        "cifra oculta se omite (*). Totales calculados de las filas.",
    )
    width = pdf.w - pdf.l_margin - pdf.r_margin
    label_w = 72.0
    col_w = (width - label_w) / (len(months) + 1)
    headers = [str(report["year"]), *[m[5:] for m in months], "TOTAL"]
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
        _table(pdf, headers, widths, rows)
        pdf.ln(2)
    return bytes(pdf.output())
