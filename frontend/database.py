"""The frontend's database (sessions only; no outbox: the frontend emits no events)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

from sqlmodel import Session

from frontend.models import metadata
from services.db import ServiceDatabase

db = ServiceDatabase("frontend", metadata)

T = TypeVar("T")


def in_transaction(work: Callable[[Session], T], *, write: bool = True) -> T:
    """Run ``work`` in one unit of work: committed when it returns, rolled back if it raises."""
    with contextlib.contextmanager(db.session_scope)(write=write) as session:
        return work(session)
