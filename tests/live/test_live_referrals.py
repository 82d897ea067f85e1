"""Referral notices on the live feed (the ``referrals`` filter class): to the institutions
concerned only, no pool snapshot, never a person's identity."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from capacity.live import LiveOptions
from services.events import Event
from tests.live.conftest import pool_row
from tests.live.test_live_feed import _open, _recv, _subscribe, _until

FAST = LiveOptions(heartbeat_seconds=30, auth_timeout_seconds=0.5)
FGR, NGO, OTHER = "fgr", "ngo", "other-ngo"


def referral_event(step: str, status: str, urgency: str = "urgent") -> Event:
    return Event(
        type=f"referral.referral.{step}",
        aggregate_type="referral",
        aggregate_id="ref-1",
        aggregate_version=2,
        payload={
            "referral_id": "ref-1",
            "status": status,
            "sending_institution_id": FGR,
            "receiving_institution_id": NGO,
            "facility_id": "fac-1",
            "urgency": urgency,
            "state": "09",
            "services": [],
            "sent_at": None,
            "response_due_at": "2026-12-06T12:00:00Z",
            "people": [
                {"sex": "F", "age_group": "adults", "age_band": "18-59", "nationality": "MEX",
                 "role": "victim", "state_of_origin": None, "vulnerable_groups": [],
                 "offences": []},
            ],
        },
    )  # fmt: skip


async def _nothing_within(ws: Any, seconds: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False


async def test_a_referral_step_reaches_only_the_institutions_concerned(make_feed, make_token):
    pools = [pool_row("women09", state="09", sexes=["F"])]
    async with make_feed(options=FAST, pools=pools) as feed:
        sender, snap = await _subscribe(
            feed, make_token("prosecutor", institution_id=FGR), {"referrals": True}
        )
        assert snap["type"] == "snapshot" and snap["pools"] == []  # no capacity on this one
        receiver, _ = await _subscribe(
            feed, make_token("shelter_coordinator", institution_id=NGO), {"referrals": True}
        )
        stranger, _ = await _subscribe(
            feed, make_token("shelter_coordinator", institution_id=OTHER), {"referrals": True}
        )
        capacity_only, _ = await _subscribe(
            feed, make_token("shelter_coordinator", institution_id=NGO)
        )

        # A draft is the sender's alone.
        await feed.publish(referral_event("created", "draft"))
        created = await _recv(sender)
        assert (created["type"], created["event"], created["side"]) == (
            "referral",
            "created",
            "sender",
        )
        assert await _nothing_within(receiver)

        await feed.publish(referral_event("send", "sent"))
        to_receiver = await _recv(receiver)
        to_sender = await _recv(sender)
        assert to_receiver == {
            "type": "referral",
            "sequence": to_receiver["sequence"],
            "event": "send",
            "side": "receiver",
            "referral_id": "ref-1",
            "status": "sent",
            "urgency": "urgent",
            "facility_id": "fac-1",
            "response_due_at": "2026-12-06T12:00:00Z",
            "people": 1,
        }
        assert to_sender["side"] == "sender"
        assert await _nothing_within(stranger)
        assert await _nothing_within(capacity_only)
        for ws in (sender, receiver, stranger, capacity_only):
            await ws.close()


async def test_the_referrals_filter_does_not_combine_with_capacity_filters(make_feed, make_token):
    async with make_feed(options=FAST, pools=[]) as feed:
        ws, answer = await _subscribe(
            feed, make_token("prosecutor", institution_id=FGR), {"referrals": True, "state": "09"}
        )
        assert answer["type"] == "error" and answer["error"] == "invalid_filters"
        await ws.send(json.dumps({"type": "subscribe", "filters": {"referrals": True}}))
        assert (await _recv(ws))["type"] == "snapshot"
        await ws.close()


async def test_a_resuming_page_gets_the_referral_steps_it_missed(make_feed, make_token):
    """A page that lost its connection resumes from the last sequence it saw and gets the
    steps of its institution's referrals that happened meanwhile, then goes live."""
    async with make_feed(options=FAST, pools=[]) as feed:
        token = make_token("prosecutor", institution_id=FGR)
        ws, snap = await _subscribe(feed, token, {"referrals": True})
        assert snap["type"] == "snapshot"
        await feed.publish(referral_event("send", "sent"))
        seen = await _recv(ws)
        assert seen["event"] == "send"
        await ws.close()
        # while the page is away: the shelter accepts; another institution's referral moves
        await feed.publish(referral_event("accept", "accepted"))
        other = referral_event("send", "sent")
        other.payload.update(sending_institution_id=OTHER, referral_id="ref-2")
        await feed.publish(other)
        ws, first = await _subscribe(feed, token, {"referrals": True}, resume_from=seen["sequence"])
        assert (first["type"], first["event"], first["side"], first["status"]) == (
            "referral",
            "accept",
            "sender",
            "accepted",
        )
        assert first["sequence"] > seen["sequence"]
        assert await _nothing_within(ws)  # nothing of the other institution's referral
        await feed.publish(referral_event("in_transit", "in_transit"))
        live = await _recv(ws)
        assert live["event"] == "in_transit"
        await ws.close()


async def test_a_notice_arriving_while_a_page_subscribes_is_not_lost(make_feed, make_token):
    """A referral step published after the position a subscription starts from, but before
    the connection is registered for fan-out, reaches it, in order with what follows."""
    async with make_feed(options=FAST, pools=[]) as feed:
        hub = feed.runtime.state["capacity_live_hub"]
        token = make_token("prosecutor", institution_id=FGR)
        ws, _ = await _subscribe(feed, token, {"referrals": True})
        await feed.publish(referral_event("send", "sent"))
        seen = await _recv(ws)
        await ws.close()
        replay = hub.replay

        async def replay_then_a_step(start: int, end: int) -> Any:
            # The race point: the replay is read, the connection is not yet registered.
            got = await replay(start, end)
            before = hub.referral_events_seen
            await hub.bus.publish(referral_event("accept", "accepted"))
            while hub.referral_events_seen == before:  # noqa: ASYNC110 - the hub counts only
                await asyncio.sleep(0)
            return got

        hub.replay = replay_then_a_step
        ws = await _open(feed, token)
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "filters": {"referrals": True},
                    "resume_from": seen["sequence"],
                }
            )
        )
        await _until(lambda: any(conn.live for conn in hub.connections))
        hub.replay = replay
        await feed.publish(referral_event("in_transit", "in_transit"))
        first = await _recv(ws)
        assert (first["type"], first["event"], first["side"]) == ("referral", "accept", "sender")
        second = await _recv(ws)
        assert (second["type"], second["event"]) == ("referral", "in_transit")
        assert seen["sequence"] < first["sequence"] < second["sequence"]
        await ws.close()
