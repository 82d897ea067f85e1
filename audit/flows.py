"""The audit service's workflows: a read and the trail entry it leaves, or a change to a
visit and the answer it gives, each in its own unit of work.

Handlers are thin: they parse, authorise and call one function here. Every write opens
``db.unit_of_work()`` in the caller's thread (sync handlers run in the thread pool), so
SQLite's write lock is taken and released in the same thread (ADR 0004).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlmodel import Session
from starlette.responses import StreamingResponse

from audit import directory, exports, monthly, pdfs, reports, roster, visits
from audit.database import db
from audit.models import FollowUpAction, Visit
from audit.projection import get_roster_facility
from audit.service import record_export
from services.db import is_sqlite
from services.tokens import Principal

# The media type of each export format of a statistics report (written by ``audit.exports``).
REPORT_FORMATS: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def export_recorded(principal: Principal, *, name: str, fmt: str) -> None:
    """An export is a sensitive read: it enters the trail, committed before the file is
    sent (the read session is read-only, so it takes its own write transaction)."""
    with db.unit_of_work() as session:
        record_export(session, principal, name=name, fmt=fmt)


# --- reads that leave a trail entry ------------------------------------------------------


def roster_pdf(principal: Principal, items: list[dict[str, Any]]) -> bytes:
    export_recorded(principal, name="roster", fmt="pdf")
    return pdfs.roster_pdf(items, roster.flag_counts(items))


def monthly_report(
    session: Session, *, facility_id: str, year: int, month: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A facility's monthly figures (one month, or every month of ``year``) and its card."""
    fac = get_roster_facility(session, facility_id)
    report = monthly.build(
        session,
        facility_id=facility_id,
        year=year,
        months=[month] if month else list(range(1, 13)),
    )
    return report, {"name": fac.name, "kind": fac.kind, "state": fac.state}


def monthly_report_pdf(principal: Principal, report: dict[str, Any], info: dict[str, Any]) -> bytes:
    """The printable monthly report, small counts hidden."""
    export_recorded(principal, name="facility-monthly", fmt="pdf")
    return pdfs.monthly_pdf(monthly.suppressed(report), info)


def hsds_directory(session: Session, principal: Principal) -> StreamingResponse:
    """The public directory (HSDS 3.0), its export entered in the trail, streamed as the
    facilities are read.

    The request's ``session`` closes before the first chunk, so the stream reads in its
    own, in one snapshot (PostgreSQL: repeatable read) as it reads the facilities once
    per list."""
    export_recorded(principal, name="directory-hsds", fmt="json")

    def body() -> Iterator[bytes]:
        with db.unit_of_work(write=False) as session:
            if not is_sqlite(db.url):
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield from directory.hsds_chunks(session)

    return StreamingResponse(body(), media_type="application/json")


def report_view(session: Session, name: str, keys: list[str], *, suppress: bool) -> dict[str, Any]:
    """One statistics report as JSON (small counts suppressed when asked)."""
    raw = reports.build(session, name, keys)
    return {
        "name": name,
        "by": keys,
        "dimensions": list(reports.REPORTS[name].dimensions),
        "unit": reports.unit(name, keys),
        "rows": reports.present(name, raw, suppress=suppress, by=keys),
        "totals": reports.totals(name, raw, suppress=suppress, by=keys),
    }


def report_file(
    session: Session, principal: Principal, name: str, keys: list[str], fmt: str
) -> tuple[Iterator[bytes], str]:
    """A statistics report as a file (always suppressed), as the chunks of its body, and
    its media type. Everything that can fail runs here, before the first chunk: the
    figures are folded and the export entered in the trail; the chunks only render."""
    raw = reports.build(session, name, keys)
    rows = reports.present(name, raw, suppress=True, by=keys)
    rows.append(reports.totals(name, raw, suppress=True, by=keys))
    labels = exports.Labels(
        institutions={
            iid: str(info["institution_name"])
            for iid, info in directory.institutions(session).items()
            if info.get("institution_name")
        }
    )
    export_recorded(principal, name=name, fmt=fmt)
    return exports.WRITERS[fmt](name, rows, keys, labels), REPORT_FORMATS[fmt]


# --- visits and follow-up actions --------------------------------------------------------


def visit_answer(session: Session, visit: Visit) -> dict[str, Any]:
    return visits.visit_view(visit, visits.actions_of(session, visit.id))


def create_visit(
    principal: Principal,
    *,
    facility_id: str,
    planned_for: date | None,
    done_on: date | None,
    team: list[str],
    findings: str | None,
    actions: list[tuple[str, date]],
) -> dict[str, Any]:
    with db.unit_of_work() as session:
        visit = visits.create_visit(
            session,
            principal=principal,
            facility_id=facility_id,
            planned_for=planned_for,
            done_on=done_on,
            team=team,
            findings=findings,
            actions=actions,
        )
        return visit_answer(session, visit)


def record_visit_done(
    principal: Principal,
    *,
    visit_id: str,
    done_on: date,
    team: list[str] | None,
    findings: str,
    actions: list[tuple[str, date]],
) -> dict[str, Any]:
    with db.unit_of_work() as session:
        visit = visits.record_visit_done(
            session,
            principal=principal,
            visit_id=visit_id,
            done_on=done_on,
            team=team,
            findings=findings,
            actions=actions,
        )
        return visit_answer(session, visit)


def cancel_visit(principal: Principal, *, visit_id: str, reason: str) -> dict[str, Any]:
    with db.unit_of_work() as session:
        visit = visits.cancel_visit(session, principal=principal, visit_id=visit_id, reason=reason)
        return visit_answer(session, visit)


def add_action(
    principal: Principal, *, visit_id: str, description: str, due_on: date
) -> dict[str, Any]:
    with db.unit_of_work() as session:
        visit = visits.get_visit(session, visit_id)
        action: FollowUpAction = visits.add_action(
            session, principal=principal, visit=visit, description=description, due_on=due_on
        )
        return visits.action_view(action)


def complete_action(principal: Principal, *, action_id: str, note: str | None) -> dict[str, Any]:
    with db.unit_of_work() as session:
        action = visits.complete_action(
            session, principal=principal, action_id=action_id, note=note
        )
        return visits.action_view(action)
