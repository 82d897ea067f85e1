"""Request-scoped dependencies of the audit service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from audit import permissions
from audit.database import db
from services.security import PrincipalDep
from services.tokens import Principal

SessionDep = Annotated[Session, Depends(db.request_session, scope="function")]


async def trail_reader(principal: PrincipalDep) -> Principal:
    """The caller, if they may read the trail."""
    permissions.ensure_trail_reader(principal)
    return principal


TrailReader = Annotated[Principal, Depends(trail_reader)]
