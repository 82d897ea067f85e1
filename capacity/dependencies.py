"""Request-scoped dependencies of the capacity service.

GET handlers read through :data:`ReadSessionDep`; a write handler opens its own
``db.unit_of_work()`` inside its thread (see ``ServiceDatabase.unit_of_work``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from capacity import permissions
from capacity.database import db
from services.security import PrincipalDep
from services.tokens import Principal

ReadSessionDep = Annotated[Session, Depends(db.read_only, scope="function")]


async def capacity_principal(principal: PrincipalDep) -> Principal:
    """The caller, if their role may use the capacity service at all."""
    permissions.ensure_capacity_access(principal)
    return principal


CapacityPrincipal = Annotated[Principal, Depends(capacity_principal)]
