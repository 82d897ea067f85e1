"""Typed contracts of the events the capacity service produces (see services.contracts.base)."""

from __future__ import annotations
