"""Identifiers: time-ordered UUIDs for new rows, stable ones for seeded reference data.

New rows get UUIDv7 (RFC 9562): 48 bits of Unix time in milliseconds, then 74 random bits.
Ids made close in time sort close together, so a row's key lands at the right-hand edge of
its table's indexes instead of on a random page of them: SQLite and PostgreSQL write a few
pages per batch, not one page per row (ADR 0034). The 74 random bits keep ids unguessable;
the time they carry is the row's creation time, which every such row shows anyway.
Referrals keep random ids (:func:`new_random_id`): their folio is their id's first
characters.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

_NAMESPACE = uuid.UUID("6f1c1f9e-5a77-4c52-9c1e-2b8f0c0a7a11")

_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def _v7(millis: int, random: int) -> str:
    """UUIDv7 text: ``millis`` in the first 48 bits; 74 of ``random``'s 80 bits in the rest."""
    value = (
        (millis & 0xFFFF_FFFF_FFFF) << 80
        | _VERSION_7
        | ((random >> 64) & _RAND_A) << 64
        | _VARIANT
        | (random & _RAND_B)
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_id() -> str:
    """A new identifier: UUIDv7 text, ordered by the millisecond it was made."""
    return _v7(time.time_ns() // 1_000_000, int.from_bytes(os.urandom(10), "big"))


def new_random_id() -> str:
    """A new identifier with no order (UUID4 text), for a row whose id's first characters
    are shown to people as its short name: a referral's folio (``referral.catalogue.folio``)
    must tell apart referrals made in the same minute, which UUIDv7's leading time cannot."""
    return str(uuid.uuid4())


def new_ids(batch: int = 512) -> Iterator[str]:
    """Endless new identifiers, as :func:`new_id` makes them, drawing the randomness of
    ``batch`` at a time (one system call, not one per row, on bulk paths)."""
    while True:
        raw = os.urandom(10 * batch)
        millis = time.time_ns() // 1_000_000
        for i in range(0, len(raw), 10):
            yield _v7(millis, int.from_bytes(raw[i : i + 10], "big"))


def stable_id(kind: str, key: str) -> str:
    """The same identifier for the same (kind, key) on every machine (UUID5 text)."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{key}"))
