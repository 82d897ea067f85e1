"""The capacity service's database and outbox."""

from __future__ import annotations

from capacity.models import metadata
from services.db import ServiceDatabase
from services.events import Outbox, outbox_table

outbox = Outbox(outbox_table(metadata))
db = ServiceDatabase("capacity", metadata)
