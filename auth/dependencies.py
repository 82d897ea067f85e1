"""FastAPI dependencies of the auth service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from auth.database import db

# GET/HEAD handlers read; a write handler opens ``db.unit_of_work()`` in its own thread.
ReadSessionDep = Annotated[Session, Depends(db.read_only, scope="function")]
