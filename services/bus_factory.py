"""The bus the configuration names: ``inprocess`` (embedded) or ``nats`` (production).

Apart from :mod:`services.bus` so that the interface never imports an implementation:
``bus_nats`` builds on ``bus``, and only this module knows both.
"""

from __future__ import annotations

from typing import Any

from services.bus import Bus, InProcessBus
from services.bus_nats import NatsBus


def create_bus(kind: str, **options: Any) -> Bus:
    """The bus named by configuration; ``options`` are :class:`NatsBus`'s (for ``nats``)."""
    if kind == "inprocess":
        return InProcessBus()
    if kind == "nats":
        return NatsBus(**options)
    raise ValueError(f"unknown bus {kind!r}")
