"""Fan-out by filter class: subscribers with the same filter share one match and one text.

A :class:`FilterClass` holds the live connections of one process that subscribed with the
same filter (for referral notices: the same institution). An event is matched once per
class and the same pre-encoded text is handed to every member, so the work per event
grows with the number of distinct filters, and per member it is one write.

The class keeps what its members have been shown (pool → version). A member that joins
with a view that differs from the class's (its snapshot was newer than what the class had
seen, or a resume replayed only part of what it holds) keeps its own version for those
pools only, and follows the per-connection rule for them until its view and the class's
agree again; ``docs/adr/0032-live-feed-fan-out-by-filter-class.md`` explains why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from capacity.live_protocol import dumps
from services.events import Event


class Member(Protocol):
    """What a class needs of a live connection (``capacity.live_hub.Member``)."""

    versions: dict[str, int]  # pool id → the version this connection was shown
    facilities: set[str]  # facilities of those pools
    own: dict[str, int | None]  # pools it sees differently from its class

    def send_data(self, text: str) -> None: ...


def start_now(coro: Coroutine[Any, Any, None]) -> Coroutine[Any, Any, None] | None:
    """Run ``coro`` at once, up to its first wait: None if it finished without waiting,
    else a coroutine that finishes it (to run in a task).

    A WebSocket send with room in the socket's buffer never waits, so the fan-out writes
    to every member in one pass, without a task wake-up per member (Python 3.12's eager
    tasks do the same). Exceptions raised before the first wait propagate.
    """
    try:
        waiting = coro.send(None)
    except StopIteration:
        return None
    return _finish(coro, waiting)


async def _finish(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    try:
        while True:
            if isinstance(waiting, asyncio.Future):
                await asyncio.wait([waiting])  # done (or failed): the coroutine reads it
            else:
                await asyncio.sleep(0)  # a bare yield
            waiting = coro.send(None)
    except StopIteration:
        return
    finally:
        coro.close()


class FilterClass:
    """The live connections that share one filter, and what they have been shown."""

    def __init__(self, key: str, matches: Callable[[dict[str, Any]], bool]) -> None:
        self.key = key
        self.matches = matches
        self.members: dict[Member, None] = {}  # insertion-ordered set
        self.shown: dict[str, int] = {}  # pool id → last version sent to the class
        self.facilities: set[str] = set()  # facilities of the pools shown
        self.diverging: set[Member] = set()  # members with pools of their own

    def join(self, conn: Member) -> None:
        """Add a connection that has caught up (its snapshot or replay, then what it held)."""
        if not self.members:
            self.shown = dict(conn.versions)
            self.facilities = set(conn.facilities)
            conn.own = {}
        else:
            own: dict[str, int | None] = {}
            for pool_id, version in conn.versions.items():
                if self.shown.get(pool_id) != version:
                    own[pool_id] = version
            for pool_id in self.shown.keys() - conn.versions.keys():
                own[pool_id] = None  # the class shows it, this member does not
            conn.own = own
            if own:
                self.diverging.add(conn)
            self.facilities |= conn.facilities
        self.members[conn] = None

    def leave(self, conn: Member) -> None:
        self.members.pop(conn, None)
        self.diverging.discard(conn)

    def pool_changed(self, event: Event, render: Callable[[], str]) -> None:
        """Match one pool change once; hand the same text to every member."""
        pool = event.payload
        pool_id = str(pool.get("pool_id") or event.aggregate_id)
        version = int(pool.get("version") or event.aggregate_version)
        matched = self.matches(pool)
        text: str | None = None
        if self.shown.get(pool_id, -1) >= version:
            pass  # already sent (duplicate delivery)
        elif matched:
            self.shown[pool_id] = version
            if pool.get("facility_id"):
                self.facilities.add(str(pool["facility_id"]))
            text = render()
        elif pool_id in self.shown:
            # It no longer matches (its eligibility changed): members drop it.
            del self.shown[pool_id]
            text = removed_text(event, pool_id, version)
        if text is None and not self.diverging:
            return
        for conn in self.members:
            if conn.own and pool_id in conn.own:
                self._follow_own(conn, event, pool_id, version, matched, render)
            elif text is not None:
                conn.send_data(text)

    def _follow_own(
        self,
        conn: Member,
        event: Event,
        pool_id: str,
        version: int,
        matched: bool,
        render: Callable[[], str],
    ) -> None:
        """The per-connection rule, for a pool this member sees differently from its class."""
        mine = conn.own[pool_id]
        now = mine
        if mine is not None and mine >= version:
            pass
        elif matched:
            now = version
            conn.send_data(render())
        elif mine is not None:
            now = None
            conn.send_data(removed_text(event, pool_id, version))
        if now == self.shown.get(pool_id):
            del conn.own[pool_id]  # back in step with the class
            if not conn.own:
                self.diverging.discard(conn)
        else:
            conn.own[pool_id] = now

    def send_all(self, text: str) -> None:
        for conn in self.members:
            conn.send_data(text)


def removed_text(event: Event, pool_id: str, version: int) -> str:
    return dumps(
        {"type": "pool_removed", "sequence": event.sequence, "pool_id": pool_id, "version": version}
    )


def facility_text(event: Event, facility_id: str) -> str:
    return dumps(
        {
            "type": "facility",
            "sequence": event.sequence,
            "event": event.type,
            "facility_id": facility_id,
            "version": event.aggregate_version,
            "status": event.payload.get("status"),
        }
    )
