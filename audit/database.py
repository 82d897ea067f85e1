"""The audit service's database and outbox."""

from __future__ import annotations

from audit.models import metadata
from services.db import ServiceDatabase
from services.events import Outbox, outbox_table

outbox = Outbox(outbox_table(metadata))
db = ServiceDatabase("audit", metadata)
