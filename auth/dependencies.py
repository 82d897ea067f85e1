"""FastAPI dependencies of the auth service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from auth.database import db

SessionDep = Annotated[Session, Depends(db.request_session, scope="function")]
