"""Identifiers: random UUIDs for new rows, stable ones for seeded reference data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

_NAMESPACE = uuid.UUID("6f1c1f9e-5a77-4c52-9c1e-2b8f0c0a7a11")


def new_id() -> str:
    """A new random identifier (UUID4 text)."""
    return str(uuid.uuid4())


def new_ids(batch: int = 512) -> Iterator[str]:
    """Endless new random identifiers, as :func:`new_id` makes them, drawing the randomness
    of ``batch`` at a time (one system call, not one per row, on bulk paths)."""
    while True:
        raw = os.urandom(16 * batch)
        for i in range(0, len(raw), 16):
            yield str(uuid.UUID(bytes=raw[i : i + 16], version=4))


def stable_id(kind: str, key: str) -> str:
    """The same identifier for the same (kind, key) on every machine (UUID5 text)."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{key}"))
