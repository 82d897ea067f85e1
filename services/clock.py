"""One clock for the whole platform, so tests can move time instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator


class Clock:
    """Wall-clock time in UTC, which tests may freeze and advance."""

    def __init__(self) -> None:
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return self._frozen if self._frozen is not None else datetime.now(UTC)

    def freeze(self, at: datetime | None = None) -> datetime:
        """Stop the clock at ``at`` (default: now)."""
        self._frozen = (at or datetime.now(UTC)).astimezone(UTC)
        return self._frozen

    def advance(self, delta: timedelta) -> datetime:
        """Move a frozen clock forward."""
        self._frozen = self.now() + delta
        return self._frozen

    def unfreeze(self) -> None:
        """Go back to real time."""
        self._frozen = None


clock = Clock()


def utcnow() -> datetime:
    """The platform's current time (UTC, aware)."""
    return clock.now()


def as_utc(value: datetime) -> datetime:
    """Treat naive datetimes read back from SQLite as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    """:func:`as_utc` of an optional value (a column that may be NULL)."""
    return None if value is None else as_utc(value)


def parse_utc(value: object) -> datetime | None:
    """An ISO timestamp read from an event payload, in UTC; None when absent or unreadable."""
    if not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
"""A datetime answered with its UTC offset (SQLite gives naive values back), as RFC 3339
``date-time`` requires and the OpenAPI promises."""
