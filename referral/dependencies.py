"""FastAPI dependencies of the referral service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from sqlmodel import Session

from referral.database import db
from services.app import Runtime
from services.clients.capacity import CapacityClient
from services.pages import MAX_CURSOR_LENGTH, MAX_PAGE
from services.validation import SafeText

ReadSessionDep = Annotated[Session, Depends(db.read_only, scope="function")]
"""The read-only session of a GET handler; a write handler opens its own unit of work."""

PageLimit = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_PAGE,
        description="Rows per page (1–500); the next page's cursor is in the X-Next-Cursor header.",
    ),
]
"""A list's page size (``services.pages``); left out, the list answers as it did before."""

PageCursor = Annotated[
    SafeText | None,
    Query(max_length=MAX_CURSOR_LENGTH, description="The X-Next-Cursor of the page before."),
]
"""Where a list's page starts: the ``X-Next-Cursor`` of the one before."""

CAPACITY_CLIENT_KEY = "referral.capacity_client"


def capacity_client(runtime: Runtime) -> CapacityClient:
    """The capacity client (tests may put a stand-in in ``runtime.state``)."""
    if runtime.state.get(CAPACITY_CLIENT_KEY) is None:
        runtime.state[CAPACITY_CLIENT_KEY] = CapacityClient(runtime)
    client: CapacityClient = runtime.state[CAPACITY_CLIENT_KEY]
    return client
