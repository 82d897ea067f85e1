"""FastAPI dependencies of the referral service."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header
from sqlmodel import Session

from referral.database import db
from services.app import Runtime
from services.clients.capacity import CapacityClient
from services.errors import Unprocessable

SessionDep = Annotated[Session, Depends(db.request_session, scope="function")]

CAPACITY_CLIENT_KEY = "referral.capacity_client"


@contextlib.contextmanager
def unit_of_work(*, write: bool = True) -> Iterator[Session]:
    """One transaction for routes that call other services before or after it."""
    yield from db.session_scope(write=write)


def capacity_client(runtime: Runtime) -> CapacityClient:
    """The capacity client (tests may put a stand-in in ``runtime.state``)."""
    client = runtime.state.get(CAPACITY_CLIENT_KEY)
    if client is None:
        client = runtime.state[CAPACITY_CLIENT_KEY] = CapacityClient(runtime)
    return client  # type: ignore[no-any-return]


def if_match_version(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """``If-Match: <version>`` (quotes and a weak prefix tolerated)."""
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        # Malformed, not stale: 422 like capacity's pools (412 means "your version is old").
        raise Unprocessable("If-Match debe ser el número de versión.", code="bad_if_match")
    return int(raw)


IfMatchDep = Annotated[int | None, Depends(if_match_version)]
