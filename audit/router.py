"""HTTP routes of the audit service (thin: logic lives in ``audit.service``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query

from audit import service
from audit.database import db
from audit.dependencies import ReadSessionDep, TrailReader
from audit.schemas import EntryOut, EntryPage, PublicKeyOut
from services.clock import as_utc
from services.errors import Unprocessable
from services.pages import MAX_CURSOR_LENGTH
from services.validation import MAX_OFFSET

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("/events", response_model=EntryPage)
def list_events(
    session: ReadSessionDep,
    _: TrailReader,
    actor: str | None = Query(default=None, max_length=200),
    institution_id: str | None = Query(default=None, max_length=64),
    facility_id: str | None = Query(default=None, max_length=64),
    type: str | None = Query(default=None, max_length=200),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
    cursor: str | None = Query(default=None, max_length=MAX_CURSOR_LENGTH),
    order: Literal["asc", "desc"] = "asc",
) -> Any:
    """The trail, filtered (``type`` is a prefix) and paginated, in chain order (``order=desc``:
    newest first). Keyset pages: follow ``next_cursor`` with ``cursor``; ``offset`` still
    works, and the two are not combined."""
    if cursor is not None and offset:
        raise Unprocessable(
            "offset: no se combina con cursor; siga el next_cursor de cada respuesta.",
            code="cursor_with_offset",
        )
    total, rows, next_cursor = service.search_entries(
        session,
        actor=actor,
        institution_id=institution_id,
        facility_id=facility_id,
        type=type,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
        cursor=cursor,
        newest_first=order == "desc",
    )
    items = [
        EntryOut(
            position=r.position,
            event_id=r.event_id,
            type=r.type,
            actor=r.actor,
            institution_id=r.institution_id,
            facility_id=r.facility_id,
            occurred_at=as_utc(r.occurred_at),
            entry=json.loads(r.canonical),
            hash=r.hash,
        )
        for r in rows
    ]
    return EntryPage(items=items, total=total, limit=limit, offset=offset, next_cursor=next_cursor)


@router.get("/verify")
def verify_trail(session: ReadSessionDep, _: TrailReader) -> dict[str, Any]:
    """Check the whole chain and every signed checkpoint."""
    return service.verify(session)


@router.post("/checkpoints")
def checkpoint(_: TrailReader) -> dict[str, Any]:
    """Sign the chain's current head now."""
    with db.unit_of_work() as session:
        cp = service.make_checkpoint(session)
    if cp is None:
        return {"position": 0}
    return {"position": cp.position, "hash": cp.hash, "signature": cp.signature}


@router.get("/public-key", response_model=PublicKeyOut)
def public_key(_: TrailReader) -> PublicKeyOut:
    """The Ed25519 key that signs checkpoints."""
    return PublicKeyOut(algorithm="Ed25519", public_key_pem=service.public_key_pem())
