"""The frontend's database (sessions only; no outbox: the frontend emits no events)."""

from __future__ import annotations

from frontend.models import metadata
from services.db import ServiceDatabase

db = ServiceDatabase("frontend", metadata)
