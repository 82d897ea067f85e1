"""Statistics routes (thin: figures come from ``audit.reports``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from audit import flows, reports
from audit.dependencies import ReadSessionDep
from audit.permissions import ensure_report_reader, is_suppressed_only
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
    session: ReadSessionDep,
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
    if format == "json":
        return flows.report_view(session, name, keys, suppress=is_suppressed_only(principal))
    chunks, media = flows.report_file(session, principal, name, keys, format)
    return StreamingResponse(
        chunks,
        media_type=media,
        headers={"content-disposition": f'attachment; filename="{name}.{format}"'},
    )
