"""Request-scoped dependencies of the capacity service."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from capacity import permissions
from capacity.database import db
from services.security import PrincipalDep
from services.tokens import Principal

SessionDep = Annotated[Session, Depends(db.request_session, scope="function")]


@contextlib.contextmanager
def unit_of_work() -> Iterator[Session]:
    """The write transaction of one request, opened inside the handler's own thread.

    Writes take SQLite's lock when they begin. Opened from a dependency, the lock would be
    taken in one thread-pool call and released (commit) in another; with many concurrent
    writers every pool thread can end up waiting for a lock whose holder waits for a
    thread. Taking and releasing it in the same call cannot starve.
    """
    yield from db.session_scope(write=True)


async def capacity_principal(principal: PrincipalDep) -> Principal:
    """The caller, if their role may use the capacity service at all."""
    permissions.ensure_capacity_access(principal)
    return principal


CapacityPrincipal = Annotated[Principal, Depends(capacity_principal)]
