"""Audit domain errors."""

from __future__ import annotations

from services.errors import Forbidden


class NotAnAuditor(Forbidden):
    """Only SEGOB auditors and platform admins read the trail."""
