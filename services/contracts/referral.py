"""Typed contracts of the events the referral service produces (see services.contracts.base)."""

from __future__ import annotations
