"""The capacity service's database, outbox and the actor of what no person did."""

from __future__ import annotations

from capacity.models import metadata
from services.db import ServiceDatabase
from services.events import Outbox, outbox_table

outbox = Outbox(outbox_table(metadata))
db = ServiceDatabase("capacity", metadata)
# Who wrote a ledger entry or an event when no caller did (the hold-expiry sweep).
SYSTEM_ACTOR = "system:capacity"
