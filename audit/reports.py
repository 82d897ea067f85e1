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


def referral_outcomes(session: Session) -> list[dict[str, Any]]:
    """People referred per sending institution: to civil-society shelters, to government, S.I.

    A referral counts under its receiver's type once admitted (or discharged); until then
    nobody knows where those people went, so they are "no information".
    """
    types: dict[str, str] = {}
    for e in _events(session, "referral.institution."):
        if e["payload"].get("type"):
            types[e["aggregate_id"]] = e["payload"]["type"]
    latest: dict[str, dict[str, Any]] = {}
    for e in _events(session, "referral.referral."):
        latest[e["aggregate_id"]] = e["payload"]
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


COLUMNS = ["civil_society", "government", "no_information"]


def present(rows: list[dict[str, Any]], *, suppress: bool) -> list[dict[str, Any]]:
    """Rows with a computed total; small counts suppressed when asked."""
    out = []
    for r in rows:
        cells = {c: r[c] for c in COLUMNS}
        hidden = suppress and any(1 <= v <= 4 for v in cells.values())
        shown: dict[str, Any] = {
            c: (SUPPRESSED if suppress and 1 <= v <= 4 else v) for c, v in cells.items()
        }
        total = sum(cells.values())
        shown["total"] = WITHHELD if hidden else total
        out.append({"sending_institution_id": r["sending_institution_id"], **shown})
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV with a header line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["sending_institution_id", *COLUMNS, "total"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
