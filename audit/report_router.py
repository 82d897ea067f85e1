"""Statistics routes (thin: figures come from ``audit.reports``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from audit import reports
from audit.dependencies import SessionDep
from audit.permissions import ensure_report_reader, sees_suppressed_only
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
    format: Literal["json", "csv"] = Query(default="json"),
) -> Any:
    """One statistics report; exports and observers always get small counts suppressed."""
    if name != "referral-outcomes":
        raise NotFound("No existe ese reporte.", code="report_not_found")
    raw = reports.referral_outcomes(session)
    if format == "csv":
        return Response(
            reports.to_csv(reports.present(raw, suppress=True)),
            media_type="text/csv; charset=utf-8",
        )
    return {"name": name, "rows": reports.present(raw, suppress=sees_suppressed_only(principal))}
