"""Request-scoped dependencies of the audit service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from audit import permissions
from audit.database import db
from services.security import PrincipalDep
from services.tokens import Principal

# GET/HEAD handlers read; a write handler opens ``db.unit_of_work()`` in its own thread.
ReadSessionDep = Annotated[Session, Depends(db.read_only, scope="function")]


async def trail_reader(principal: PrincipalDep) -> Principal:
    """The caller, if they may read the trail."""
    permissions.ensure_trail_reader(principal)
    return principal


TrailReader = Annotated[Principal, Depends(trail_reader)]


async def oversight_writer(principal: PrincipalDep) -> Principal:
    """The caller, if they may record visits and follow-up actions."""
    permissions.ensure_oversight_writer(principal)
    return principal


OversightWriter = Annotated[Principal, Depends(oversight_writer)]
