"""Typed contracts of the events the audit service produces (see services.contracts.base)."""

from __future__ import annotations
