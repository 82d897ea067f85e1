"""The referral lifecycle's states, transitions and deadlines (data, no behaviour)."""

from __future__ import annotations

from datetime import timedelta

from services.vocabulary import ReferralStatus

# How long the receiver has to answer a sent referral.
RESPONSE_DEADLINES = {"urgent": timedelta(hours=2), "normal": timedelta(hours=24)}
# An accepted referral not admitted within this time has no known outcome.
ADMISSION_DEADLINE = timedelta(hours=72)

_S = ReferralStatus
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "send": (frozenset({_S.DRAFT}), _S.SENT),
    "accept": (frozenset({_S.SENT}), _S.ACCEPTED),
    "decline": (frozenset({_S.SENT}), _S.DECLINED),
    "in_transit": (frozenset({_S.ACCEPTED}), _S.IN_TRANSIT),
    "admit": (frozenset({_S.ACCEPTED, _S.IN_TRANSIT}), _S.ADMITTED),
    "discharge": (frozenset({_S.ADMITTED}), _S.DISCHARGED),
    "cancel": (frozenset({_S.DRAFT, _S.SENT, _S.ACCEPTED, _S.IN_TRANSIT}), _S.CANCELLED),
}
ACTIONS = tuple(TRANSITIONS)
DISCLOSED_STATUSES = frozenset({_S.ACCEPTED, _S.IN_TRANSIT, _S.ADMITTED, _S.DISCHARGED})
CLOSED_STATUSES = frozenset({_S.DISCHARGED, _S.DECLINED, _S.CANCELLED, _S.EXPIRED})
RELEASING_ACTIONS = frozenset({"decline", "cancel"})
# Actions whose capacity step (consume the hold, discharge the beds) runs outside the
# referral's transaction: they claim the referral first, so that two racing actions never
# both reach capacity, and complete (or let go of) the claim afterwards.
CLAIMED_ACTIONS = frozenset({"admit", "discharge"})
# A claim older than this was interrupted (a crash between the two steps); the recovery
# sweep completes it, since the capacity steps are idempotent.
CLAIM_LEASE = timedelta(seconds=60)
