"""Statistics routes (thin: figures come from ``audit.reports``)."""

from __future__ import annotations

import contextlib
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from audit import reports
from audit.database import db
from audit.dependencies import SessionDep
from audit.permissions import ensure_report_reader, sees_suppressed_only
from audit.service import record_export
from services.errors import NotFound
from services.security import PrincipalDep
from services.tokens import Principal

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


async def _reader(principal: PrincipalDep) -> Principal:
    ensure_report_reader(principal)
    return principal


@router.get("/{name}")
def report(
    name: str,
    session: SessionDep,
    principal: Principal = Depends(_reader),
    format: Literal["json", "csv", "xlsx", "pdf"] = Query(default="json"),
    by: str | None = Query(default=None, max_length=300),
) -> Any:
    """One statistics report; exports and observers always get small counts suppressed.

    ``by`` disaggregates by a comma-separated list of variables (see ``dimensions``).
    """
    if name not in reports.REPORTS:
        raise NotFound("No existe ese reporte.", code="report_not_found")
    keys = reports.parse_by(name, by)
    raw = reports.build(session, name, keys)
    if format == "json":
        hide = sees_suppressed_only(principal)
        return {
            "name": name,
            "by": keys,
            "dimensions": list(reports.REPORTS[name].dimensions),
            "rows": reports.present(name, raw, suppress=hide, by=keys),
            "totals": reports.totals(name, raw, suppress=hide, by=keys),
        }
    rows = reports.present(name, raw, suppress=True, by=keys)
    rows.append(reports.totals(name, raw, suppress=True, by=keys))
    # An export is a sensitive read: it enters the trail, committed before the file is
    # sent (GET sessions are read-only, so it takes its own write transaction).
    with contextlib.contextmanager(db.session_scope)(write=True) as write:
        record_export(write, principal, name=name, fmt=format)
    writer, media = _FORMATS[format]
    return Response(
        writer(name, rows, keys),
        media_type=media,
        headers={"content-disposition": f'attachment; filename="{name}.{format}"'},
    )


_FORMATS: dict[str, tuple[Any, str]] = {
    "csv": (reports.to_csv, "text/csv; charset=utf-8"),
    "xlsx": (
        reports.to_xlsx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "pdf": (reports.to_pdf, "application/pdf"),
}
