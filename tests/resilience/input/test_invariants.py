"""Property tests of the core invariants, driving the real services (hypothesis).

Capacity: any sequence of ledger entries, holds (created, released, consumed) and expiries
(the platform clock moved forward, then the expiry sweep) keeps every count ≥ 0, the
available beds ≥ 0, the held beds equal to the active holds' allocations, and the counts
equal to the replay of the ledger.

Referral: any sequence of lifecycle actions, by any of the parties, with deadlines passing,
moves a referral only along ``referral.states.TRANSITIONS`` (or the expiry of a sent
referral); a refused action changes nothing; a closed referral never moves again.

``CANALIZA_INVARIANT_EXAMPLES`` sets the number of sequences (``make resilience`` runs more).
Figures go to ``var/resilience/invariants.json`` (both tests merge their part into it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from canaliza.demo import CASA_MERCEDES
from capacity import holds as capacity_holds
from capacity import ledger as capacity_ledger
from capacity.database import db as capacity_db_handle
from capacity.models import Hold, HoldAllocation, Pool
from capacity.schemas import CLIENT_LEDGER_KINDS
from referral import deadlines as referral_deadlines
from referral import main as referral_main
from referral import states as referral_states
from referral.database import db as referral_db_handle
from referral.dependencies import CAPACITY_CLIENT_KEY
from services.app import create_app
from services.bus import InProcessBus
from services.clock import clock
from tests.capacity.conftest import (  # noqa: F401 - fixtures used by name
    Cap,
    bus,
    capacity_app,
    capacity_db,
    migrated_template,
)
from tests.conftest import running
from tests.referral.conftest import CEAV, FGR, INSTITUTIONS, NGO, OTHER_NGO, Ctx, FakeCapacity
from tests.resilience.conftest import results_dir, write_result

EXAMPLES = int(os.environ.get("CANALIZA_INVARIANT_EXAMPLES", "25"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@contextlib.contextmanager
def _client_on_own_loop(app: Any) -> Iterator[tuple[asyncio.Runner, httpx.AsyncClient]]:
    """The app's lifespan and a client on a private event loop.

    Hypothesis runs examples synchronously; each example's async body runs on this loop.
    """
    with asyncio.Runner() as runner:
        manager = running(app)
        client = runner.run(manager.__aenter__())
        try:
            yield runner, client
        finally:
            runner.run(manager.__aexit__(None, None, None))


def _merge_result(part: str, figures: dict[str, Any]) -> None:
    path = results_dir() / "invariants.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[part] = figures
    write_result("invariants", data)


# --- capacity -----------------------------------------------------------------------------

pool_index = st.integers(min_value=0, max_value=1)
hold_index = st.integers(min_value=0, max_value=7)
hold_step = st.tuples(
    st.just("hold"),
    st.lists(st.tuples(pool_index, st.integers(min_value=1, max_value=4)), min_size=1, max_size=2),
    st.integers(min_value=1, max_value=180),
)
capacity_step = st.one_of(
    hold_step,
    hold_step,
    st.tuples(
        st.just("ledger"),
        pool_index,
        st.sampled_from(CLIENT_LEDGER_KINDS),
        st.integers(min_value=-4, max_value=6),
    ),
    st.tuples(st.just("release"), hold_index),
    st.tuples(st.just("consume"), hold_index),
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=240)),
)


def _check_capacity_invariants() -> None:
    with capacity_db_handle.unit_of_work(write=False) as session:
        assert capacity_ledger.ledger_mismatches(session) == []
        held: Counter[str] = Counter()
        rows = session.execute(
            select(HoldAllocation.pool_id, HoldAllocation.beds)
            .join(Hold, Hold.id == HoldAllocation.hold_id)  # type: ignore[arg-type]
            .where(Hold.status == "active")
        )
        for pool_id, beds in rows:
            held[pool_id] += beds
        for pool in session.execute(select(Pool)).scalars():
            counts = (pool.total, pool.occupied, pool.held, pool.out_of_service)
            assert min(counts) >= 0, (pool.id, counts)
            assert capacity_ledger.available_of(pool) >= 0, (pool.id, counts)
            assert pool.held == held[pool.id], (pool.id, pool.held, held[pool.id])


def test_capacity_counts_survive_any_sequence(capacity_app, auth_headers) -> None:  # noqa: F811
    with _client_on_own_loop(capacity_app) as (runner, client):
        _capacity_sequences(runner, Cap(client, auth_headers))


def _capacity_sequences(runner: asyncio.Runner, cap: Cap) -> None:
    clock.freeze()
    tally: Counter[str] = Counter()
    statuses: Counter[str] = Counter()

    @SETTINGS
    @given(steps=st.lists(capacity_step, min_size=5, max_size=30))
    def run(steps: list[tuple[Any, ...]]) -> None:
        runner.run(sequence(steps))

    async def sequence(steps: list[tuple[Any, ...]]) -> None:
        facility = await cap.facility()
        pools = [
            await cap.pool(facility["id"], total=4),
            await cap.pool(facility["id"], total=6, sexes=["F", "M", "X"]),
        ]
        holds: list[str] = []
        for step in steps:
            kind = step[0]
            tally[kind] += 1
            if kind == "ledger":
                _, index, entry_kind, beds = step
                resp = await cap.client.post(
                    f"/api/v1/pools/{pools[index]['id']}/ledger",
                    json={"kind": entry_kind, "beds": beds, "reason": "prueba de invariantes"},
                    headers=cap.coordinator(CASA_MERCEDES.id),
                )
            elif kind == "hold":
                _, allocations, ttl = step
                resp = await cap.hold(
                    [{"pool_id": pools[i]["id"], "beds": beds} for i, beds in allocations],
                    ttl_minutes=ttl,
                )
                if resp.status_code == 201:
                    holds.append(resp.json()["id"])
            elif kind in ("release", "consume") and holds:
                hold_id = holds[step[1] % len(holds)]
                if kind == "release":
                    resp = await cap.client.delete(
                        f"/api/v1/holds/{hold_id}", headers=cap.prosecutor()
                    )
                else:
                    resp = await cap.client.post(
                        f"/api/v1/holds/{hold_id}/consume",
                        json={},
                        headers=cap.coordinator(CASA_MERCEDES.id),
                    )
            elif kind == "advance":
                clock.advance(timedelta(minutes=step[1]))
                with capacity_db_handle.unit_of_work() as session:
                    capacity_holds.expire_holds(session)
                _check_capacity_invariants()
                continue
            else:
                continue
            statuses[str(resp.status_code)] += 1
            assert resp.status_code < 500, resp.text
            if resp.status_code >= 400:
                assert set(resp.json()) >= {"error", "detail"}, resp.text
            _check_capacity_invariants()

    run()
    _merge_result(
        "capacity",
        {"sequences": EXAMPLES, "steps": dict(tally), "statuses": dict(statuses)},
    )
    assert tally["ledger"] and tally["hold"] and tally["advance"]
    assert statuses.get("201") and statuses.get("409"), statuses  # both paths were exercised


# --- referral -----------------------------------------------------------------------------

# "party": the institution the action belongs to (sender or receiver); the others must fail.
ACTORS = ("party", "party", "party", "fiscal", "coord", "other_coord", "ceav", "admin")
SENDER_ACTIONS = ("send", "cancel")
referral_step = st.one_of(
    st.tuples(
        st.just("act"),
        st.sampled_from((*referral_states.ACTIONS, "expire", "next", "next", "next")),
        st.sampled_from(ACTORS),
        st.sampled_from((True, True, False)),  # give a reason / an outcome
    ),
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=30)),
)
# "next": the happy path's next action from the current status.
HAPPY_PATH = {
    "draft": "send",
    "sent": "accept",
    "accepted": "in_transit",
    "in_transit": "admit",
    "admitted": "discharge",
}
ALLOWED_MOVES = {
    (source, target)
    for sources, target in referral_states.TRANSITIONS.values()
    for source in sources
} | {("sent", "expired")}


def test_referrals_stay_inside_the_state_machine(test_verifier, auth_headers) -> None:
    referral_db_handle.configure(None)
    app = create_app([referral_main.service()], bus=InProcessBus())
    fake = FakeCapacity()
    app.state.runtime.state[CAPACITY_CLIENT_KEY] = fake
    try:
        with _client_on_own_loop(app) as (runner, client):
            ctx = Ctx(
                client=client, h=auth_headers, capacity=fake, bus=InProcessBus(), runtime=None
            )
            for iid, name, type_, state in INSTITUTIONS:
                body = {"id": iid, "name": name, "type": type_, "state": state}
                resp = runner.run(client.post("/api/v1/institutions", json=body, headers=ctx.admin))
                assert resp.status_code == 201, resp.text
            _referral_sequences(runner, ctx)
    finally:
        referral_db_handle.dispose()


def _referral_sequences(runner: asyncio.Runner, ctx: Ctx) -> None:
    clock.freeze()
    runner.run(ctx.agreement())
    # Tokens are signed at the (moving) platform time, so each request gets a fresh one.
    headers = {
        "fiscal": lambda: ctx.fiscal,
        "coord": lambda: ctx.coord,
        "other_coord": lambda: ctx.h("shelter_coordinator", institution_id=OTHER_NGO, sub="otra"),
        "ceav": lambda: ctx.h("ceav_officer", institution_id=CEAV, sub="ceav"),
        "admin": lambda: ctx.admin,
    }
    moves: Counter[str] = Counter()
    statuses: Counter[str] = Counter()

    @SETTINGS
    @given(steps=st.lists(referral_step, min_size=4, max_size=20))
    def run(steps: list[tuple[Any, ...]]) -> None:
        runner.run(sequence(steps))

    async def sequence(steps: list[tuple[Any, ...]]) -> None:
        referral = await ctx.referral(
            urgency="normal", sending_institution_id=FGR, receiving_institution_id=NGO
        )
        rid, status, version = referral["id"], referral["status"], referral["version"]
        assert status == "draft"
        for step in steps:
            if step[0] == "advance":
                clock.advance(timedelta(hours=step[1]))
                with referral_db_handle.unit_of_work() as session:
                    referral_deadlines.expire_overdue(session)
            else:
                _, action, actor, with_body = step
                if action == "next":  # by the party it belongs to
                    action, actor = HAPPY_PATH.get(status, "cancel"), "party"
                if actor == "party":
                    actor = "fiscal" if action in SENDER_ACTIONS else "coord"
                body: dict[str, Any] = {}
                if with_body:
                    body = {"reason": "motivo de la prueba"}
                    if action == "discharge":
                        body["outcome"] = "reintegrated_origin"
                resp = await ctx.act(rid, action, headers[actor](), **body)
                statuses[str(resp.status_code)] += 1
                assert resp.status_code < 500, resp.text
                if resp.status_code >= 400:
                    assert set(resp.json()) >= {"error", "detail"}, resp.text
            now = await ctx.client.get(f"/api/v1/referrals/{rid}", headers=ctx.admin)
            assert now.status_code == 200, now.text
            new_status, new_version = now.json()["status"], now.json()["version"]
            if new_status != status:
                assert (status, new_status) in ALLOWED_MOVES, (status, new_status, step)
                assert status not in referral_states.CLOSED_STATUSES
                assert new_version > version
                moves[f"{status}->{new_status}"] += 1
            elif step[0] == "act" and resp.status_code >= 400:
                assert new_version == version, "a refused action changed the referral"
            status, version = new_status, new_version

    run()
    _merge_result(
        "referral",
        {"sequences": EXAMPLES, "moves": dict(moves), "statuses": dict(statuses)},
    )
    # The sequences reached well past the first step of the lifecycle.
    assert moves["draft->sent"] and moves["sent->accepted"] and moves["in_transit->admitted"], moves
