"""Statistics exports as a person reads them: Spanish titles, headers and labels.

This is the rendering layer only: the rows and columns come from ``audit.reports``
unchanged (``fields``, ``present``, ``totals``); here each column gets its Spanish header,
each code its name (sex, age group, state, country, institution, outcome...), every file
a legend for the small-count rule and its local generation time (America/Mexico_City),
and the PDF a table that wraps instead of overlapping, on a Letter page.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from audit.pdfs import local_time, new_document, table
from audit.reports import NA, REPORTS, SI, SUPPRESSED, WITHHELD, fields
from services.clock import utcnow
from services.countries import country_label
from services.vocabulary import (
    OFFENCES,
    STATE_NAMES,
    TRAFFICKING_FOR_A_PURPOSE,
    FacilityKind,
    Outcome,
    PersonRole,
    ReferralStatus,
    Sex,
)

TITLES = {
    "people": "Personas canalizadas, ingresadas y egresadas",
    "referral-outcomes": "Personas canalizadas según su destino",
    "occupancy": "Ocupación de camas",
    "unmet-demand": "Demanda no atendida",
    "referral-times": "Tiempos de canalización",
    "no-information": "Canalizaciones sin información al vencer el plazo",
    "agreements-refused": "Canalizaciones rechazadas por falta de convenio",
}

HEADERS = {
    # disaggregations
    "sex": "Sexo",
    "age_group": "Grupo de edad",
    "nationality": "Nacionalidad",
    "state_of_origin": "Entidad de origen",
    "vulnerable_group": "Grupo en situación de vulnerabilidad",
    "offence": "Forma de explotación",
    "role": "Calidad de la persona",
    "humanitarian_visa": "Visa humanitaria",
    "sending_institution_id": "Institución que canaliza",
    "receiving_institution_id": "Institución que recibe",
    "state": "Entidad federativa",
    "period": "Mes",
    "outcome": "Resultado",
    "deadline_period": "Mes del plazo de respuesta",
    "facility_kind": "Tipo de instalación",
    "reason_code": "Motivo",
    # figures
    "referred": "Personas canalizadas",
    "admitted": "Personas ingresadas",
    "discharged": "Personas egresadas",
    "civil_society": "A sociedad civil",
    "government": "A instituciones de gobierno",
    "no_information": "Sin información",
    "total": "Total",
    "refusals": "Rechazos por falta de convenio",
    "beds": "Camas",
    "occupied": "Camas ocupadas",
    "utilisation_pct": "Ocupación (%)",
    "requests": "Búsquedas sin lugar",
    "people": "Personas sin lugar",
    "sent": "Canalizaciones enviadas",
    "answered": "Canalizaciones respondidas",
    "median_hours_to_answer": "Mediana de horas hasta la respuesta",
    "median_hours_to_admission": "Mediana de horas hasta el ingreso",
    "past_deadline": "Vencidas sin respuesta",
    "within_deadline": "Dentro del plazo",
    "no_deadline": "Sin plazo registrado",
    "people_past": "Personas en canalizaciones vencidas",
}
# Where a report's column means something else than elsewhere.
REPORT_HEADERS = {
    "referral-times": {"admitted": "Canalizaciones con ingreso"},
    "people": {"people": "Personas"},
}

AGE_GROUPS = {
    "0-12": "0 a 12 años",
    "13-17": "13 a 17 años",
    "18-59": "18 a 59 años",
    "60+": "60 años o más",
}
OUTCOMES = {
    **Outcome.labels(),
    "in_care": "En atención (ingresada)",
    "in_progress": "En curso",
    "no_information": "Sin información",
    ReferralStatus.DECLINED.value: "Rechazada por la receptora",
    ReferralStatus.CANCELLED.value: "Cancelada",
}
VULNERABLE_GROUPS = {
    "indigenous": "Persona indígena",
    "lgbtttiq": "Persona LGBTTTIQ",
    "disability": "Persona con discapacidad",
    "migrant_in_transit": "Persona migrante en tránsito",
}
UNMET_REASONS = {
    "child_age_unknown": "Edad de una niña o niño sin registrar",
    "children_without_adult": "Niñas o niños sin persona adulta",
    "no_eligible_pool": "Ningún lugar admite a la persona",
    "needs_not_met": "Necesidades no atendidas",
    "children_not_accepted": "No se admiten sus hijas o hijos",
    "no_beds_now": "Sin camas libres ahora",
    "group_not_together": "El grupo no cabe junto",
}
VISAS = {
    "not_started": "Trámite sin iniciar",
    "requested": "Solicitada",
    "granted": "Otorgada",
    "denied": "Negada",
}
# Values a people report gives any multi-valued variable.
SHARED_VALUES = {"two_or_more": "Dos o más", "none": "Ninguno"}
OFFENCE_ARTICLE = "Ley General, art. 10, fracción "

LEGEND = (
    "Cifras publicadas en bandas de cinco para que nadie pueda ser identificado: "
    "«<5» es una cifra de 0 a 4; cualquier otra es el inicio de su banda (7 se publica "
    "como 5, 12 como 10). Una combinación que no aparece tiene de 0 a 4 en cada cifra.",
    "«*»: mediana no publicada porque cuenta menos de 5 casos.",
    "«Sin información» (S.I.): el dato no se registró. «No aplica» (N/A): el dato no "
    "corresponde (p. ej. la entidad de origen de una persona extranjera).",
    "Fila «Total»: sumas de los datos exactos, publicadas con la misma regla; por eso no "
    "siempre coinciden con la suma de las filas publicadas.",
)


def _offence(code: str) -> str:
    """An offence of the shared catalogue as the exports cite it (the General Law's article,
    and fraction for art. 10); a code the catalogue does not know, as it came."""
    if code not in OFFENCES:
        return code
    if code in TRAFFICKING_FOR_A_PURPOSE:
        return OFFENCE_ARTICLE + code.removeprefix("art10-")
    return "Ley General, art. " + code.removeprefix("art")


# The name of each code, by the column it stands in.
CODE_NAMES: dict[str, Mapping[str, str]] = {
    "sex": Sex.labels(),
    "age_group": AGE_GROUPS,
    "state": STATE_NAMES,
    "state_of_origin": STATE_NAMES,
    "outcome": OUTCOMES,
    "role": PersonRole.labels(),
    "vulnerable_group": VULNERABLE_GROUPS,
    "facility_kind": FacilityKind.labels(),
    "reason_code": UNMET_REASONS,
    "humanitarian_visa": VISAS,
}


@dataclass
class Labels:
    """How one export names things: institutions by name, everything else by vocabulary."""

    institutions: Mapping[str, str] = field(default_factory=dict)
    generated_at: datetime = field(default_factory=utcnow)

    def value(self, column: str, value: Any) -> Any:
        """The cell as a person reads it (figures pass unchanged)."""
        if value is None:
            return ""
        if value == SI:
            return "Sin información"
        if value == NA:
            return "No aplica"
        if not isinstance(value, str) or value in (SUPPRESSED, WITHHELD, "Total", ""):
            return value
        return self._named(column, value)

    def _named(self, column: str, value: str) -> str:
        if value in SHARED_VALUES:
            return SHARED_VALUES[value]
        if column == "nationality":
            return country_label(value)
        if column == "offence":
            return _offence(value)
        if column in ("sending_institution_id", "receiving_institution_id"):
            return self.institutions.get(value, value)
        table = CODE_NAMES.get(column)
        return table.get(value, value) if table is not None else value


def headers(name: str, by: list[str] | None) -> list[str]:
    special = REPORT_HEADERS.get(name, {})
    return [special.get(c, HEADERS.get(c, c)) for c in fields(name, by)]


def _table(
    name: str, rows: list[dict[str, Any]], by: list[str] | None, labels: Labels
) -> list[list[Any]]:
    cols = fields(name, by)
    return [_cells(cols, r, labels) for r in rows]


def _cells(cols: list[str], row: dict[str, Any], labels: Labels) -> list[Any]:
    return [labels.value(c, row.get(c, "")) for c in cols]


def _notes(name: str, labels: Labels) -> list[str]:
    return [
        f"{TITLES.get(name, name)} - Canaliza (SEGOB).",
        f"Generado el {local_time(labels.generated_at)}.",
        *LEGEND,
    ]


# Rows rendered per chunk of a streamed file: a chunk is a few tens of kilobytes at most.
BATCH = 500
# Bytes per chunk read back from a finished spreadsheet.
CHUNK = 64 * 1024
# A spreadsheet stays in memory up to this size, then spills to a temporary file.
SPOOL = 1024 * 1024


def csv_chunks(
    name: str, rows: Iterable[dict[str, Any]], by: list[str] | None, labels: Labels
) -> Iterator[bytes]:
    """The CSV export, ``BATCH`` rows per chunk: Spanish headers (UTF-8 with BOM, so
    spreadsheets read the accents), the totals line last, then a blank line and the legend."""
    cols = fields(name, by)
    buf = io.StringIO()
    writer = csv.writer(buf)

    def flush() -> bytes:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text.encode("utf-8")

    buf.write("\ufeff")
    writer.writerow(headers(name, by))
    for i, r in enumerate(rows, start=1):
        writer.writerow(_cells(cols, r, labels))
        if i % BATCH == 0:
            yield flush()
    writer.writerow([])
    for note in _notes(name, labels):
        writer.writerow([note])
    yield flush()


def to_csv(name: str, rows: list[dict[str, Any]], by: list[str] | None, labels: Labels) -> bytes:
    """The whole CSV export at once (see :func:`csv_chunks`)."""
    return b"".join(csv_chunks(name, rows, by, labels))


def _write_xlsx(
    target: IO[bytes],
    name: str,
    rows: Iterable[dict[str, Any]],
    by: list[str] | None,
    labels: Labels,
) -> None:
    """A "Datos" sheet (headers, rows, totals) and a "Notas" sheet (title, time, legend),
    written row by row (openpyxl's write-only mode keeps no cell in memory)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Datos")
    titles = headers(name, by)
    # A write-only sheet takes its column widths before its first row.
    for i, header in enumerate(titles, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(12, min(40, len(header) + 2))
    bold = Font(bold=True)
    head = []
    for header in titles:
        cell = WriteOnlyCell(ws, value=header)
        cell.font = bold
        head.append(cell)
    ws.append(head)
    cols = fields(name, by)
    for r in rows:
        ws.append(_cells(cols, r, labels))
    notes = wb.create_sheet("Notas")
    notes.column_dimensions["A"].width = 120
    for note in _notes(name, labels):
        notes.append([note])
    wb.save(target)  # openpyxl saves to any binary file object


def xlsx_chunks(
    name: str, rows: Iterable[dict[str, Any]], by: list[str] | None, labels: Labels
) -> Iterator[bytes]:
    """The XLSX export in chunks of ``CHUNK`` bytes. A zip is complete only at its end, so
    the workbook is written first, to a file that stays in memory only while small."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL) as spool:
        _write_xlsx(spool, name, rows, by, labels)
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk


def to_xlsx(name: str, rows: list[dict[str, Any]], by: list[str] | None, labels: Labels) -> bytes:
    """The whole XLSX export at once (see :func:`xlsx_chunks`)."""
    return b"".join(xlsx_chunks(name, rows, by, labels))


def to_pdf(name: str, rows: list[dict[str, Any]], by: list[str] | None, labels: Labels) -> bytes:
    """A landscape page (Letter or A4): Spanish title, time, legend, then a table that wraps long
    names inside their cell and repeats its headings on every page."""
    notes = _notes(name, labels)
    pdf = new_document(TITLES.get(name, name), *notes[1:])
    keys = len(by or REPORTS[name].keys)
    # Names (the disaggregation) get twice the room of a figure.
    widths = [2.0 if i < keys else 1.0 for i in range(len(fields(name, by)))]
    pdf.set_font("Helvetica", size=7.5)
    table(pdf, headers(name, by), widths, _table(name, rows, by, labels))
    return bytes(pdf.output())


Writer = Callable[[str, list[dict[str, Any]], list[str] | None, Labels], Iterator[bytes]]


def pdf_chunks(
    name: str, rows: list[dict[str, Any]], by: list[str] | None, labels: Labels
) -> Iterator[bytes]:
    """The PDF export in one chunk, laid out here (fpdf writes a document only whole), so
    a failure is an error answer rather than a broken download."""
    return iter((to_pdf(name, rows, by, labels),))


# Each format's writer, as the chunks of a streamed response.
WRITERS: dict[str, Writer] = {
    "csv": csv_chunks,
    "xlsx": xlsx_chunks,
    "pdf": pdf_chunks,
}
