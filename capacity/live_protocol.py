"""The live feed's protocol: close codes, tunables, subscribe filters and message encoding.

The protocol is documented in ``docs/live-feed.md``; the hub that runs it is
``capacity.live_hub``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from services.vocabulary import PersonRole, Sex, UserRole

POOL_EVENT = "capacity.pool.changed"
FACILITY_EVENT_PREFIX = "capacity.facility."
CAPACITY_SUBJECT = "canaliza.capacity.>"
# Referral notices (a filter class of their own): the lifecycle steps of the referrals the
# connection's institution sends or receives, never a person's identity.
REFERRAL_EVENT_PREFIX = "referral.referral."
REFERRAL_SUBJECT = "canaliza.referral.referral.>"
REFERRALS_FILTER = "referrals"

# Close codes (RFC 6455 and the 4000–4999 private range).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_RECONNECT = 4000
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403

# Everyone signed in may watch capacity except observers (aggregated statistics only).
REFUSED_ROLES = frozenset({UserRole.OBSERVER})

SEXES = frozenset(Sex.values())
PERSON_ROLES = frozenset(PersonRole.values())

SnapshotProvider = Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass
class LiveOptions:
    """Tunables of the feed (tests shorten them)."""

    queue_size: int = 1000
    heartbeat_seconds: float = 20.0
    max_lifetime_seconds: float = 3600.0
    auth_timeout_seconds: float = 5.0
    max_frame_bytes: int = 64 * 1024
    replay_timeout_seconds: float = 10.0
    # How long a close may wait for a slow client's buffers before the connection is dropped.
    close_timeout_seconds: float = 5.0


class FilterError(ValueError):
    """A subscribe message whose filters cannot be understood."""


class Malformed(Exception):
    """A frame the protocol cannot take: the error to send and the close code."""

    def __init__(self, error: str, detail: str, code: int) -> None:
        super().__init__(detail)
        self.error, self.detail, self.code = error, detail, code


@dataclass(frozen=True)
class Close:
    """The writer's cue to close the connection once what was queued is sent."""

    code: int
    reason: str


# -- filters ------------------------------------------------------------------------


def _profile_matches(pool: dict[str, Any], sex: str | None, age: int | None, role: str) -> bool:
    if role == PersonRole.ACCOMPANYING_CHILD:
        # Children go with their carer whatever their sex, up to the pool's child age.
        if not pool.get("accepts_children"):
            return False
        max_child_age = pool.get("max_child_age")
        return age is None or max_child_age is None or age <= max_child_age
    if role == PersonRole.WITNESS and not pool.get("accepts_witnesses"):
        return False
    if role == PersonRole.INDIRECT_VICTIM and not pool.get("accepts_indirect_victims"):
        return False
    if sex is not None and sex not in (pool.get("sexes") or []):
        return False
    if age is not None:
        low, high = pool.get("min_age"), pool.get("max_age")
        if low is not None and age < low:
            return False
        if high is not None and age > high:
            return False
    return True


def compile_filters(filters: Any) -> Callable[[dict[str, Any]], bool]:
    """A predicate over pool snapshots from a subscribe message's ``filters``.

    ``state`` and ``facility_id`` match exactly; ``profile`` ``{"sex", "age", "role"}``
    keeps the pools that could take that person (``age`` ``null`` means unknown). Pools
    of facilities that are not active never match.
    """
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        raise FilterError("filters debe ser un objeto.")
    if REFERRALS_FILTER in filters:
        if filters[REFERRALS_FILTER] is not True or len(filters) != 1:
            raise FilterError(
                "referrals admite solo true y no se combina con otros filtros "
                "(abra otra conexión para la capacidad)."
            )
        return lambda pool: False  # a connection for referral notices sees no pool
    unknown = set(filters) - {"state", "facility_id", "profile"}
    if unknown:
        raise FilterError(f"Filtro desconocido: {', '.join(sorted(unknown))}.")
    state = filters.get("state")
    if state is not None and (
        not isinstance(state, str)
        or len(state) != 2
        or not state.isdigit()
        or not 1 <= int(state) <= 32
    ):
        raise FilterError("state debe ser la clave INEGI de dos dígitos, de '01' a '32'.")
    facility_id = filters.get("facility_id")
    if facility_id is not None and (not isinstance(facility_id, str) or len(facility_id) > 64):
        raise FilterError("facility_id debe ser un identificador de instalación.")
    profile = filters.get("profile")
    sex: str | None = None
    age: int | None = None
    role: str = PersonRole.VICTIM
    if profile is not None:
        if not isinstance(profile, dict) or set(profile) - {"sex", "age", "role"}:
            raise FilterError("profile admite solo sex, age y role.")
        sex = profile.get("sex")
        if sex is not None and sex not in SEXES:
            raise FilterError("sex debe ser 'F', 'M' o 'X'.")
        age = profile.get("age")
        if (age is not None and (isinstance(age, bool) or not isinstance(age, int))) or (
            isinstance(age, int) and not 0 <= age <= 120
        ):
            raise FilterError("age debe ser un entero entre 0 y 120, o null si se desconoce.")
        role = profile.get("role") or PersonRole.VICTIM
        if role not in PERSON_ROLES:
            raise FilterError(
                "role debe ser victim, indirect_victim, witness o accompanying_child."
            )

    def matches(pool: dict[str, Any]) -> bool:
        # Only active facilities are offered; a suspended or closed one leaves every view.
        if pool.get("facility_status", "active") != "active":
            return False
        if state is not None and pool.get("state") != state:
            return False
        if facility_id is not None and pool.get("facility_id") != facility_id:
            return False
        return profile is None or _profile_matches(pool, sex, age, role)

    return matches


def filter_class_key(filters: dict[str, Any], institution_id: str | None) -> str:
    """Which connections share a filter class: the same (valid) filters; for referral
    notices, the same institution (its notices are the same for all its connections)."""
    if filters.get(REFERRALS_FILTER) is True:
        return f"referrals:{institution_id or ''}"
    return orjson.dumps(filters, option=orjson.OPT_SORT_KEYS).decode()


def referral_audience(payload: dict[str, Any], step: str) -> dict[str, str]:
    """The institutions told of a referral step, each with its side (``sender`` or
    ``receiver``); the receiver learns of a referral only once it is sent."""
    audience: dict[str, str] = {}
    receiver = payload.get("receiving_institution_id")
    if receiver and step != "created":
        audience[str(receiver)] = "receiver"
    sender = payload.get("sending_institution_id")
    if sender:
        audience[str(sender)] = "sender"
    return audience


def referral_notice(
    payload: dict[str, Any], *, step: str, side: str, sequence: int | None
) -> dict[str, Any]:
    """What a notice says: the step, the referral, its urgency and deadline, how many people
    (never who)."""
    return {
        "type": "referral",
        "sequence": sequence,
        "event": step,
        "side": side,
        "referral_id": payload.get("referral_id"),
        "status": payload.get("status"),
        "urgency": payload.get("urgency"),
        "facility_id": payload.get("facility_id"),
        "response_due_at": payload.get("response_due_at"),
        "people": len(payload.get("people") or []),
    }


def dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message, default=str).decode()


class Gone(Exception):
    """The client went away."""
