"""Typed event contracts: every event type and its payload, as pydantic models.

One module per producing service (``services/contracts/<service>.py``) declares its events
with :func:`contract`; each payload is built by exactly one function of its producer and
recorded with :func:`emit`, the one entry point into a service's outbox. A field that names
a person or locates a refuge is declared ``Sensitive``; the audit trail keeps an event's
payload as :func:`redact_payload` leaves it, so it strips by that declaration, not by key
name. Importing this package registers every producer's contracts.
"""

from __future__ import annotations

from services.contracts import audit, auth, capacity, referral
from services.contracts.base import (
    CONTRACTS,
    SENSITIVE,
    EventPayload,
    Sensitive,
    contract,
    emit,
    emit_data,
    is_sensitive,
    redact_payload,
    redacted,
)

__all__ = [
    "CONTRACTS",
    "SENSITIVE",
    "EventPayload",
    "Sensitive",
    "audit",
    "auth",
    "capacity",
    "contract",
    "emit",
    "emit_data",
    "is_sensitive",
    "redact_payload",
    "redacted",
    "referral",
]
