"""FastAPI dependencies of the referral service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from sqlmodel import Session

from referral.database import db
from services.app import Runtime
from services.clients.capacity import CapacityClient
from services.pages import MAX_PAGE

ReadSessionDep = Annotated[Session, Depends(db.read_only, scope="function")]
"""The read-only session of a GET handler; a write handler opens its own unit of work."""

OptionalLimit = Annotated[
    int | None,
    Query(ge=1, le=MAX_PAGE, description="Rows per page (1-500); left out, as before paging."),
]
"""A list's page size (``services.pages``) a client may leave out: the list then answers
as it did before it paged (every row, or the referrals' newest 200)."""

CAPACITY_CLIENT_KEY = "referral.capacity_client"


def capacity_client(runtime: Runtime) -> CapacityClient:
    """The capacity client (tests may put a stand-in in ``runtime.state``)."""
    if runtime.state.get(CAPACITY_CLIENT_KEY) is None:
        runtime.state[CAPACITY_CLIENT_KEY] = CapacityClient(runtime)
    client: CapacityClient = runtime.state[CAPACITY_CLIENT_KEY]
    return client
