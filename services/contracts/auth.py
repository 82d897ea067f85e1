"""Typed contracts of the events the auth service produces (see services.contracts.base)."""

from __future__ import annotations
