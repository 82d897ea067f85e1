"""Statistics folded from the audit trail's events (never from other services' tables).

Small-count rule: a count from 1 to 4 is shown as "<5" in every export and to observers.
A total is computed from its rows; when any cell it sums was suppressed, the total is
withheld too ("*"), so one suppressed cell can never be recovered as total minus the rest.
"No information" (S.I.) is its own column, never folded into zero.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from audit.models import AuditEntry

SUPPRESSED = "<5"
WITHHELD = "*"
REACHED = frozenset({"admitted", "discharged"})


def _events(session: Session, prefix: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(col(AuditEntry.canonical))
        .where(col(AuditEntry.type).startswith(prefix, autoescape=True))
        .order_by(col(AuditEntry.position))
    ).scalars()
    return [json.loads(r) for r in rows]


HISTORY_IMPORTED = "referral.history.imported"
ROSTER_IMPORTED = "capacity.roster.imported"


def _latest_referrals(session: Session) -> dict[str, dict[str, Any]]:
    """Each referral's latest known state, in trail order: from its lifecycle events, and
    from the rows of a bulk history import (one event listing many referrals)."""
    rows = session.execute(
        select(col(AuditEntry.canonical))
        .where(
            col(AuditEntry.type).startswith("referral.referral.", autoescape=True)
            | (col(AuditEntry.type) == HISTORY_IMPORTED)
        )
        .order_by(col(AuditEntry.position))
    ).scalars()
    latest: dict[str, dict[str, Any]] = {}
    for raw in rows:
        e = json.loads(raw)
        if e["type"] == HISTORY_IMPORTED:
            for row in e["payload"].get("referrals") or []:
                latest[str(row.get("referral_id"))] = row
        else:
            latest[e["aggregate_id"]] = e["payload"]
    return latest


def referral_outcomes(session: Session) -> list[dict[str, Any]]:
    """People referred per sending institution: to civil-society shelters, to government, S.I.

    A referral counts under its receiver's type once admitted (or discharged); until then
    nobody knows where those people went, so they are "no information".
    """
    types: dict[str, str] = {}
    for e in _events(session, "referral.institution."):
        if e["payload"].get("type"):
            types[e["aggregate_id"]] = e["payload"]["type"]
    latest = _latest_referrals(session)
    table: dict[str, dict[str, int]] = {}
    for p in latest.values():
        sender = p.get("sending_institution_id") or "S.I."
        row = table.setdefault(sender, {"civil_society": 0, "government": 0, "no_information": 0})
        n = len(p.get("people") or [])
        if p.get("status") in REACHED:
            kind = types.get(p.get("receiving_institution_id") or "")
            row["civil_society" if kind == "ngo" else "government"] += n
        else:
            row["no_information"] += n
    return [{"sending_institution_id": k, **v} for k, v in sorted(table.items())]


def unmet_demand(session: Session) -> list[dict[str, Any]]:
    """Unmet searches by sex, age group and state: requests and people left without a bed."""
    table: dict[tuple[str, str, str], dict[str, int]] = {}
    for e in _events(session, "capacity.search.unmet"):
        p = e["payload"]
        key = (p.get("sex") or "S.I.", p.get("age_group") or "S.I.", p.get("state") or "S.I.")
        row = table.setdefault(key, {"requests": 0, "people": 0})
        row["requests"] += 1
        row["people"] += int(p.get("group_size") or 1)
    return [{"sex": k[0], "age_group": k[1], "state": k[2], **v} for k, v in sorted(table.items())]


def agreements_refused(session: Session) -> list[dict[str, Any]]:
    """Referrals refused for want of an agreement, per sender and receiver pair."""
    table: dict[tuple[str, str], int] = {}
    for e in _events(session, "referral.agreement.refused"):
        p = e["payload"]
        key = (
            p.get("sending_institution_id") or "S.I.",
            p.get("receiving_institution_id") or "S.I.",
        )
        table[key] = table.get(key, 0) + 1
    return [
        {"sending_institution_id": k[0], "receiving_institution_id": k[1], "refusals": v}
        for k, v in sorted(table.items())
    ]


def occupancy(session: Session) -> list[dict[str, Any]]:
    """Beds and occupied beds per state and month: each pool's last snapshot in the month."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for e in _events(session, "capacity."):
        month = str(e.get("occurred_at", ""))[:7] or "S.I."
        if e["type"] == "capacity.pool.changed":
            p = e["payload"]
            last[(month, p.get("pool_id") or e["aggregate_id"])] = p
        elif e["type"] == ROSTER_IMPORTED:  # one entry holding many pool snapshots
            for p in e["payload"].get("pools") or []:
                last[(month, str(p.get("pool_id")))] = p
    table: dict[tuple[str, str], dict[str, int]] = {}
    for (month, _), p in last.items():
        row = table.setdefault((month, p.get("state") or "S.I."), {"beds": 0, "occupied": 0})
        row["beds"] += int(p.get("total") or 0)
        row["occupied"] += int(p.get("occupied") or 0)
    return [{"period": k[0], "state": k[1], **v} for k, v in sorted(table.items())]


def people(session: Session) -> list[dict[str, Any]]:
    """People referred, admitted and discharged by sex, age group and nationality.

    Each referral counts at its latest known status; a missing variable is "S.I.".
    """
    latest = _latest_referrals(session)
    table: dict[tuple[str, str, str], dict[str, int]] = {}
    for p in latest.values():
        status = p.get("status")
        for person in p.get("people") or []:
            key = (
                person.get("sex") or "S.I.",
                person.get("age_group") or "S.I.",
                person.get("nationality") or "S.I.",
            )
            row = table.setdefault(key, {"referred": 0, "admitted": 0, "discharged": 0})
            row["referred"] += 1
            row["admitted"] += status in REACHED
            row["discharged"] += status == "discharged"
    return [
        {"sex": k[0], "age_group": k[1], "nationality": k[2], **v} for k, v in sorted(table.items())
    ]


# name -> (builder, key columns, count columns); a row total only where cells are parts
# of one whole (requests and people are not).
ROW_TOTAL = {"referral-outcomes"}
REPORTS: dict[str, tuple[Any, list[str], list[str]]] = {
    "referral-outcomes": (
        referral_outcomes,
        ["sending_institution_id"],
        ["civil_society", "government", "no_information"],
    ),
    "agreements-refused": (
        agreements_refused,
        ["sending_institution_id", "receiving_institution_id"],
        ["refusals"],
    ),
    "people": (
        people,
        ["sex", "age_group", "nationality"],
        ["referred", "admitted", "discharged"],
    ),
    "occupancy": (occupancy, ["period", "state"], ["beds", "occupied"]),
    "unmet-demand": (unmet_demand, ["sex", "age_group", "state"], ["requests", "people"]),
}


def present(name: str, rows: list[dict[str, Any]], *, suppress: bool) -> list[dict[str, Any]]:
    """Rows with a computed total; small counts suppressed when asked."""
    _, keys, values = REPORTS[name]
    out = []
    for r in rows:
        cells = {c: r[c] for c in values}
        hidden = suppress and any(1 <= v <= 4 for v in cells.values())
        shown: dict[str, Any] = {
            c: (SUPPRESSED if suppress and 1 <= v <= 4 else v) for c, v in cells.items()
        }
        if name in ROW_TOTAL:
            shown["total"] = WITHHELD if hidden else sum(cells.values())
        out.append({**{k: r[k] for k in keys}, **shown})
    return out


def fields(name: str) -> list[str]:
    """The column order of a report."""
    _, keys, values = REPORTS[name]
    return [*keys, *values, *(["total"] if name in ROW_TOTAL else [])]


def to_csv(name: str, rows: list[dict[str, Any]]) -> bytes:
    """CSV with a header line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields(name))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def to_xlsx(name: str, rows: list[dict[str, Any]]) -> bytes:
    """One worksheet: header then rows."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = name[:31]
    cols = fields(name)
    ws.append(cols)
    for r in rows:
        ws.append([r[c] for c in cols])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_pdf(name: str, rows: list[dict[str, Any]]) -> bytes:
    """A plain table, one line per row."""
    from fpdf import FPDF

    pdf = FPDF(orientation="L")
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.cell(0, 10, f"Canaliza - {name}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    cols = fields(name)
    width = (pdf.w - 2 * pdf.l_margin) / len(cols)
    for c in cols:
        pdf.cell(width, 6, c, border=1)
    pdf.ln()
    for r in rows:
        for c in cols:
            pdf.cell(width, 6, str(r[c])[:40], border=1)
        pdf.ln()
    return bytes(pdf.output())
