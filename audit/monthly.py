"""The monthly per-facility report, in the shape of the shelters' annex (``002:365-558``).

Rows as the annex has them — people served (direct and secondary victims), new, reintegrated,
transferred, offences and national origin of the direct victims, services by type — one
column per month and a TOTAL column. Every total (a section's total row, the TOTAL column)
is computed from the cells, never typed: the annex's own sums do not add up (``002:392-396``).
Built from the trail's referral events for the facility; no identity is involved.

Direct victims are the referred victims and witnesses; secondary victims are indirect
victims and accompanying children. A person is served in a month when admitted before it
ends and not discharged before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from audit.reports import SI, SUPPRESSED, WITHHELD, ReferralFold, referrals, trail_events
from services.vocabulary import SERVICE_LABELS

DIRECT_ROLES = frozenset({"victim", "witness", "direct"})
REINTEGRATED = frozenset({"reintegrated_origin", "reintegrated_elsewhere"})
CENTRAL_AMERICA = frozenset({"GTM", "HND", "SLV", "NIC", "CRI", "PAN", "BLZ"})
OFFENCE_LABELS = {
    "art10-I": "Esclavitud",
    "art10-II": "Condición de siervo",
    "art10-III": "Explotación sexual",
    "art10-IV": "Explotación laboral",
    "art10-V": "Trabajo o servicios forzados",
    "art10-VI": "Mendicidad forzosa",
    "art10-VII": "Utilización de menores en actividades delictivas",
    "art10-VIII": "Adopción ilegal",
    "art10-IX": "Matrimonio forzoso o servil",
    "art10-X": "Tráfico de órganos",
    "art10-XI": "Experimentación biomédica ilícita",
}
# Services given to a person and recorded by the shelter (``referral.service.provided``).
SERVICE_PROVIDED = "referral.service.provided"
TWO_OR_MORE_LABEL = "Dos o más delitos"


def _month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass
class _Stay:
    ref: ReferralFold
    admitted: datetime | None
    discharged: datetime | None


def _origin(nat: str | None) -> str:
    if not nat:
        return "S.I."
    if nat == "MEX":
        return "Mexicana"
    if nat in CENTRAL_AMERICA:
        return "Centroamericana"
    if nat == "USA":
        return "Estadounidense"
    return "Otra"


def _kind(role: str | None) -> str:
    """Direct or secondary victim; S.I. for a person admitted on the ledger without a role
    (counted with the direct victims' offences and origin: nothing says otherwise)."""
    if role is None:
        return SI
    return "direct" if role in DIRECT_ROLES else "secondary"


def _offence_row(offences: list[str]) -> str:
    """A person's one row: her offence, "two or more", or S.I. (each person counted once)."""
    if not offences:
        return SI
    if len(offences) > 1:
        return TWO_OR_MORE_LABEL
    code = offences[0]
    if code in OFFENCE_LABELS:
        return OFFENCE_LABELS[code]
    return f"Artículo {code[3:]} de la Ley General" if code.startswith("art") else code


def build(session: Session, *, facility_id: str, year: int, months: list[int]) -> dict[str, Any]:
    """The report's sections, one value per month, totals computed."""
    stays = [
        _Stay(r, r.status_at.get("admitted"), r.status_at.get("discharged"))
        for r in referrals(session)
        if r.payload.get("facility_id") == facility_id
    ]
    columns = [f"{year}-{m:02d}" for m in months]
    sections: dict[str, dict[str, list[int]]] = {
        "served": {},
        "new": {},
        "reintegrated": {},
        "transferred": {},
        "offence": {},
        "origin": {},
        "services": {},
        "provided": {},
    }

    def add(section: str, label: str, i: int, n: int = 1) -> None:
        row = sections[section].setdefault(label, [0] * len(months))
        row[i] += n

    for i, month in enumerate(months):
        start, end = _month_bounds(year, month)
        for stay in stays:
            if stay.admitted is None or stay.admitted >= end:
                continue
            people = stay.ref.payload.get("people") or []
            served = stay.discharged is None or stay.discharged >= start
            outcome = stay.ref.payload.get("outcome")
            left_now = stay.discharged is not None and start <= stay.discharged < end
            for person in people:
                kind = _kind(person.get("role"))
                if served:
                    add("served", kind, i)
                    if kind != "secondary":
                        add("offence", _offence_row(person.get("offences") or []), i)
                        add("origin", _origin(person.get("nationality")), i)
                    for service in stay.ref.payload.get("services") or [SI]:
                        add("services", SERVICE_LABELS.get(service, service), i)
                if start <= stay.admitted < end:
                    add("new", kind, i)
                if left_now and outcome in REINTEGRATED:
                    add("reintegrated", kind, i)
                if left_now and outcome == "transferred_onward":
                    add("transferred", kind, i)
    for event in trail_events(session, SERVICE_PROVIDED):
        given = event["payload"]
        when = str(given.get("provided_on") or "")
        if given.get("facility_id") != facility_id or when[:7] not in columns:
            continue
        service = str(given.get("service"))
        add("provided", SERVICE_LABELS.get(service, service), columns.index(when[:7]))
    return {
        "facility_id": facility_id,
        "year": year,
        "columns": columns,
        "sections": [
            _section("Personas atendidas", sections["served"], _VICTIM_ROWS, len(months)),
            _section("Personas de nuevo ingreso", sections["new"], _VICTIM_ROWS, len(months)),
            _section(
                "Personas reintegradas a la sociedad",
                sections["reintegrated"],
                _VICTIM_ROWS,
                len(months),
            ),
            _section(
                "Personas trasladadas a otra institución",
                sections["transferred"],
                _VICTIM_ROWS,
                len(months),
            ),
            _section(
                "Tipo de delito (víctimas directas atendidas)",
                sections["offence"],
                None,
                len(months),
            ),
            _section(
                "Origen nacional (víctimas directas atendidas)",
                sections["origin"],
                None,
                len(months),
            ),
            _section(
                "Servicios solicitados para las personas atendidas, por tipo",
                sections["services"],
                None,
                len(months),
                with_total=False,
            ),
            _section(
                "Servicios proporcionados, por tipo",
                sections["provided"],
                None,
                len(months),
            ),
        ],
    }


_VICTIM_ROWS = {
    "direct": "Víctimas directas",
    "secondary": "Víctimas secundarias (hijas e hijos, indirectas)",
}
# Listed only when someone is in it: people admitted on the ledger with no role recorded.
_VICTIM_ROWS_SI = {**_VICTIM_ROWS, SI: "Sin información (ingresos registrados en la bitácora)"}


def _section(
    title: str,
    rows: dict[str, list[int]],
    fixed: dict[str, str] | None,
    n: int,
    *,
    with_total: bool = True,
) -> dict[str, Any]:
    """A section: its rows (fixed ones even when zero), each with a computed TOTAL, and a
    computed total row (none for services: one person receives several)."""
    if fixed is not None:
        if SI in rows:
            fixed = _VICTIM_ROWS_SI
        labelled = [(label, rows.get(code, [0] * n)) for code, label in fixed.items()]
    else:
        labelled = sorted(rows.items(), key=lambda kv: (kv[0] == SI, kv[0]))
    out: list[dict[str, Any]] = [
        {"label": label, "values": list(vals), "total": sum(vals)} for label, vals in labelled
    ]
    section: dict[str, Any] = {"title": title, "rows": out}
    if with_total:
        sums = [sum(r["values"][i] for r in out) for i in range(n)]
        section["total"] = {"label": "Total", "values": sums, "total": sum(sums)}
    return section


def suppressed(report: dict[str, Any]) -> dict[str, Any]:
    """The report as exported: counts 1-4 as "<5", any total over a hidden cell withheld."""

    def small(v: int) -> bool:
        return 1 <= v <= 4

    sections = []
    for sec in report["sections"]:
        rows = []
        for r in sec["rows"]:
            rows.append(
                {
                    "label": r["label"],
                    "values": [SUPPRESSED if small(v) else v for v in r["values"]],
                    "total": WITHHELD
                    if any(small(v) for v in r["values"])
                    else (SUPPRESSED if small(r["total"]) else r["total"]),
                }
            )
        new = {"title": sec["title"], "rows": rows}
        if "total" in sec:
            t = sec["total"]
            hidden_cols = [
                any(small(r["values"][i]) for r in sec["rows"]) for i in range(len(t["values"]))
            ]
            new["total"] = {
                "label": "Total",
                "values": [
                    WITHHELD if h else (SUPPRESSED if small(v) else v)
                    for v, h in zip(t["values"], hidden_cols, strict=True)
                ],
                "total": WITHHELD
                if any(small(v) for r in sec["rows"] for v in r["values"])
                else (SUPPRESSED if small(t["total"]) else t["total"]),
            }
        sections.append(new)
    return {**report, "sections": sections}
