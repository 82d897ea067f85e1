"""The oficio de canalización: the printable referral sheet the people travel with (fpdf2).

Issued once the receiver has accepted, to the two institutions of the referral. It names
the institutions, the facility, the agreement, the dates and the people as the receiver
sees them (sex, age, role, nationality, languages) — never a name nor the address, which
leave the service only through their audited disclosures — and leaves lines to sign.
Core PDF fonts speak Latin-1 only: other characters are replaced, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from referral import catalogue
from referral.models import Agreement, Obligation, Referral, ReferralHistory, ReferralPerson
from services.clock import as_utc
from services.countries import country_label
from services.settings import get_settings
from services.vocabulary import STATE_NAMES, PersonRole, ReferralStatus, Sex

LOCAL = ZoneInfo("America/Mexico_City")
_REPLACE = {"—": "-", "–": "-", "“": '"', "”": '"', "‘": "'", "’": "'", "…": "...", "·": "-"}


def _text(value: Any) -> str:
    text = "Sin información" if value is None else str(value)
    for a, b in _REPLACE.items():
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


def local_time(value: datetime | None) -> str:
    if value is None:
        return "Sin información"
    return as_utc(value).astimezone(LOCAL).strftime("%d/%m/%Y %H:%M") + " (hora del centro)"


@dataclass
class OficioData:
    referral: Referral
    people: list[ReferralPerson]
    history: list[ReferralHistory]
    obligations: list[Obligation]
    agreement: Agreement | None
    sender_name: str
    receiver_name: str
    facility_name: str


def _person_row(position: int, p: ReferralPerson) -> list[str]:
    age = "Sin información" if p.age is None else f"{p.age} {'año' if p.age == 1 else 'años'}"
    return [
        str(position),
        Sex(p.sex).label if p.sex else "Sin información",
        age,
        PersonRole(p.role).label,
        country_label(p.nationality),
        ", ".join(p.languages) or "-",
    ]


def oficio_pdf(data: OficioData, *, issued_at: datetime) -> bytes:
    """The oficio as a one- or two-page PDF on the deployment's paper (Letter or A4)."""
    from fpdf import FPDF

    r = data.referral
    pdf = FPDF(orientation="P", unit="mm", format=get_settings().paper_size)
    pdf.set_title(_text(f"Oficio de canalización {catalogue.folio(r.id)}"))
    pdf.set_author("Canaliza")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_margins(20, 18, 20)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_font("Helvetica", style="B", size=15)
    pdf.cell(width, 9, _text("Oficio de canalización"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.cell(width, 6, _text(f"Folio: {catalogue.folio(r.id)}"), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(width, 6, _text(f"Emitido: {local_time(issued_at)}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    accepted = next((h.at for h in data.history if h.action == "accept"), None)
    agreement = (
        f"{data.agreement.number} - {data.agreement.title}" if data.agreement else "Sin convenio"
    )
    place = data.facility_name
    if r.state:
        place += f", {STATE_NAMES.get(r.state, r.state)}"
    lines = [
        ("Institución remitente", data.sender_name),
        ("Institución receptora", data.receiver_name),
        ("Lugar de acogida", place),
        ("Convenio", agreement),
        ("Urgencia", "Urgente" if r.urgency == "urgent" else "Normal"),
        ("Estado", ReferralStatus(r.status).label),
        ("Enviada", local_time(r.sent_at)),
        ("Aceptada", local_time(accepted)),
    ]
    if r.expected_arrival_at is not None:
        lines.append(("Llegada prevista", local_time(r.expected_arrival_at)))
    if r.case_reference:
        lines.append(("Referencia del expediente", r.case_reference))
    for label, value in lines:
        pdf.set_font("Helvetica", style="B", size=10)
        pdf.cell(55, 6, _text(label), new_x="RIGHT", new_y="TOP")
        pdf.set_font("Helvetica", size=10)
        pdf.multi_cell(width - 55, 6, _text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    pdf.set_font("Helvetica", style="B", size=11)
    pdf.cell(width, 7, _text(f"Personas ({len(data.people)})"), new_x="LMARGIN", new_y="NEXT")
    headers = ["#", "Sexo", "Edad", "Calidad", "Nacionalidad", "Idiomas"]
    widths = [8, 28, 22, 42, 38, width - 138]
    pdf.set_font("Helvetica", style="B", size=9)
    for h, w in zip(headers, widths, strict=True):
        pdf.cell(w, 7, _text(h), border=1)
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    for i, person in enumerate(data.people, start=1):
        for value, w in zip(_person_row(i, person), widths, strict=True):
            text = _text(value)
            while text and pdf.get_string_width(text) > w - 2:
                text = text[:-1]
            pdf.cell(w, 7, text, border=1)
        pdf.ln()
    pdf.ln(2)
    pdf.set_font("Helvetica", style="I", size=8)
    pdf.multi_cell(
        width,
        4.5,
        _text(
            "Los nombres de las personas y el domicilio del lugar no se imprimen: se consultan "
            "en Canaliza, donde cada consulta queda registrada."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    if data.obligations:
        pdf.ln(2)
        pdf.set_font("Helvetica", style="B", size=10)
        pdf.cell(
            width, 6, _text("Obligaciones de otras instituciones"), new_x="LMARGIN", new_y="NEXT"
        )
        pdf.set_font("Helvetica", size=9)
        for o in data.obligations:
            state = "atendida" if o.status == "fulfilled" else "pendiente"
            pdf.multi_cell(
                width,
                5,
                _text(f"- {catalogue.OBLIGATIONS.get(o.kind, o.kind)}: {state}"),
                new_x="LMARGIN",
                new_y="NEXT",
            )

    # The signature lines stay together on one page.
    if pdf.get_y() > pdf.h - 70:
        pdf.add_page()
    pdf.set_y(max(pdf.get_y() + 18, pdf.h - 62))
    half = (width - 10) / 2
    y = pdf.get_y()
    for i, (who, inst) in enumerate(
        (("Entrega", data.sender_name), ("Recibe", data.receiver_name))
    ):
        x = pdf.l_margin + i * (half + 10)
        pdf.line(x, y, x + half, y)
        pdf.set_xy(x, y + 1)
        pdf.set_font("Helvetica", style="B", size=9)
        pdf.cell(half, 5, _text(f"{who}: nombre, cargo y firma"), new_x="LEFT", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)
        pdf.multi_cell(half, 4.5, _text(inst), new_x="LEFT", new_y="NEXT")
        pdf.cell(half, 5, _text("Fecha y hora: ____________________"))
    return bytes(pdf.output())
