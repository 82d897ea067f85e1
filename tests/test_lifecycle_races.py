"""Bed counts never disagree with referrals, whatever lifecycle actions race (issue 20, #1-2).

The one-process app (auth, capacity, referral) on SQLite and on PostgreSQL; each pair of
lifecycle actions is fired 20 times at once against one referral, then the referral, its
hold and the pool's counts and ledger must tell the same story. Also: a referral may name
only a hold of its own institution, so another institution cannot release it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import httpx
import pytest

from canaliza.composition import available_packages, build_app, load_spec
from canaliza.demo import CASA_MERCEDES, FGR, INM
from referral.states import TRANSITIONS
from services.settings import get_settings
from tests.conftest import demo_login, running

pytestmark = pytest.mark.slow

RACERS = 20
VICTIM = {"sex": "F", "age": 30, "role": "victim", "nationality": "MEX"}
# The state each action needs its referral in, and the actions that lead there.
PATH = ["send", "accept", "admit", "discharge"]
NEEDS = {"send": 0, "cancel": 0, "accept": 1, "decline": 1, "admit": 2, "discharge": 3}
PAIRS = [
    ("discharge", "discharge"),
    ("admit", "admit"),
    ("admit", "cancel"),
    ("accept", "decline"),
    ("accept", "cancel"),
    ("decline", "cancel"),
    ("send", "cancel"),
    ("cancel", "cancel"),
    ("decline", "decline"),
]


def _configure(url: str | None) -> None:
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is not None:
            if url is None:
                spec.database.configure()
            else:
                spec.database.configure(url, pool_size=RACERS + 5, max_overflow=10)


def _dispose() -> None:
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is not None:
            spec.database.dispose()


class World:
    """A Mexico City refuge of Casa de las Mercedes under a signed agreement with FGR."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.h: dict[str, dict[str, str]] = {}
        self.facility_id = ""
        self.pool_id = ""

    async def build(self) -> None:
        for user in ("admin", "fiscal", "coordinadora", "inm"):
            self.h[user] = await demo_login(self.client, user)
        admin = self.h["admin"]
        for inst in (FGR, CASA_MERCEDES, INM):
            r = await self.client.post(
                "/api/v1/institutions",
                json={"id": inst.id, "name": inst.name, "type": inst.type, "state": inst.state},
                headers=admin,
            )
            assert r.status_code in (201, 409), r.text
        r = await self.client.post(
            "/api/v1/agreements",
            json={
                "number": "CONV-CARRERAS-1",
                "title": "Convenio de canalización",
                "party_ids": [FGR.id, CASA_MERCEDES.id],
                "valid_from": "2020-01-01",
                "valid_to": "2099-12-31",
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        for party in (FGR.id, CASA_MERCEDES.id):
            s = await self.client.post(
                f"/api/v1/agreements/{r.json()['id']}/sign",
                json={"institution_id": party},
                headers=admin,
            )
            assert s.status_code == 200, s.text
        f = await self.client.post(
            "/api/v1/facilities",
            json={
                "name": "Refugio de las carreras",
                "kind": "refugio",
                "operator_institution_id": CASA_MERCEDES.id,
                "state": "09",
                "municipality": "Cuauhtémoc",
                "address": "Calle Ficticia 1",
                "status": "active",
            },
            headers=admin,
        )
        assert f.status_code == 201, f.text
        self.facility_id = f.json()["id"]
        p = await self.client.post(
            f"/api/v1/facilities/{self.facility_id}/pools",
            json={"name": "Mujeres", "sexes": ["F"], "min_age": 18, "max_age": 99, "total": 60},
            headers=admin,
        )
        assert p.status_code == 201, p.text
        self.pool_id = p.json()["id"]
        # Ten women already live there: a double discharge would have beds to wrongly free.
        e = await self.client.post(
            f"/api/v1/pools/{self.pool_id}/ledger",
            json={"kind": "admit", "beds": 10, "reason": "ocupación previa"},
            headers=self.h["coordinadora"],
        )
        assert e.status_code == 201, e.text

    async def pool(self) -> dict[str, Any]:
        r = await self.client.get(f"/api/v1/pools/{self.pool_id}", headers=self.h["admin"])
        assert r.status_code == 200, r.text
        return r.json()

    async def hold(self, user: str = "fiscal") -> dict[str, Any]:
        r = await self.client.post(
            "/api/v1/holds",
            json={"allocations": [{"pool_id": self.pool_id, "beds": 1}], "ttl_minutes": 120},
            headers=self.h[user],
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def referral_at(self, step: int) -> tuple[str, str]:
        """A referral with ``step`` actions of the happy path done: (referral id, hold id)."""
        hold = await self.hold()
        r = await self.client.post(
            "/api/v1/referrals",
            json={
                "sending_institution_id": FGR.id,
                "receiving_institution_id": CASA_MERCEDES.id,
                "facility_id": self.facility_id,
                "hold_id": hold["id"],
                "people": [VICTIM],
                "consent": {"given": True},
                "urgency": "urgent",
            },
            headers=self.h["fiscal"],
        )
        assert r.status_code == 201, r.text
        referral_id = r.json()["id"]
        for action in PATH[:step]:
            done = await self.act(referral_id, action)
            assert done.status_code == 200, done.text
        return referral_id, hold["id"]

    async def act(self, referral_id: str, action: str) -> httpx.Response:
        user = "fiscal" if action in ("send", "cancel") else "coordinadora"
        body: dict[str, Any] = {}
        if action == "decline":
            body = {"reason": "sin camas"}
        elif action == "discharge":
            body = {"outcome": "reintegrated_origin"}
        return await self.client.post(
            f"/api/v1/referrals/{referral_id}/{action}", json=body, headers=self.h[user]
        )

    async def ledger(self) -> list[dict[str, Any]]:
        r = await self.client.get(
            f"/api/v1/pools/{self.pool_id}/ledger?limit=1000", headers=self.h["coordinadora"]
        )
        assert r.status_code == 200, r.text
        return r.json()["items"]


# What a referral's status says of its hold and of its bed.
HOLD_OF_STATUS = {
    "draft": "active",
    "sent": "active",
    "accepted": "active",
    "admitted": "consumed",
    "discharged": "consumed",
    "declined": "released",
    "cancelled": "released",
}
# (held, occupied) that one referral of one bed adds to the pool, by its status.
BEDS_OF_STATUS = {
    "draft": (1, 0),
    "sent": (1, 0),
    "accepted": (1, 0),
    "admitted": (0, 1),
    "discharged": (0, 0),
    "declined": (0, 0),
    "cancelled": (0, 0),
}


async def _race(world: World, first: str, second: str) -> None:
    step = max(NEEDS[first], NEEDS[second])
    referral_id, hold_id = await world.referral_at(step)
    before = await world.pool()
    entries_before = len(await world.ledger())
    actions = [first, second] * (RACERS // 2)
    answers = await asyncio.gather(*(world.act(referral_id, a) for a in actions))
    codes = [r.status_code for r in answers]
    assert all(c in (200, 409) for c in codes), [(r.status_code, r.text) for r in answers]
    successes = [a for a, c in zip(actions, codes, strict=True) if c == 200]
    # One transition wins; a second can only follow it (send, then cancel the sent referral),
    # and no action ever succeeds twice.
    assert successes and max(Counter(successes).values()) == 1, (first, second, codes)
    if len(successes) == 2:
        done, then = successes
        assert TRANSITIONS[done][1] in TRANSITIONS[then][0], successes

    referral = (
        await world.client.get(f"/api/v1/referrals/{referral_id}", headers=world.h["fiscal"])
    ).json()
    assert referral["status"] == TRANSITIONS[successes[-1]][1]
    hold = (await world.client.get(f"/api/v1/holds/{hold_id}", headers=world.h["fiscal"])).json()
    # Releases run after the commit: give the one that follows a decline/cancel its moment.
    for _ in range(50):
        if hold["status"] == HOLD_OF_STATUS[referral["status"]]:
            break
        await asyncio.sleep(0.05)
        hold = (
            await world.client.get(f"/api/v1/holds/{hold_id}", headers=world.h["fiscal"])
        ).json()
    assert hold["status"] == HOLD_OF_STATUS[referral["status"]], (successes, referral, hold)

    after = await world.pool()
    status_before = {0: "draft", 1: "sent", 2: "accepted", 3: "admitted"}[step]
    held_delta = BEDS_OF_STATUS[referral["status"]][0] - BEDS_OF_STATUS[status_before][0]
    occupied_delta = BEDS_OF_STATUS[referral["status"]][1] - BEDS_OF_STATUS[status_before][1]
    assert (after["held"] - before["held"], after["occupied"] - before["occupied"]) == (
        held_delta,
        occupied_delta,
    ), (first, second, successes, before, after)
    entries = (await world.ledger())[entries_before:]
    kinds = Counter(e["kind"] for e in entries)
    # Exactly the ledger entries of one transition, never one per racer.
    assert kinds["discharge"] == successes.count("discharge"), kinds
    assert kinds["admit"] == successes.count("admit"), kinds
    releasing = {"admit", "decline", "cancel"}
    assert kinds["release"] == len(releasing.intersection(successes)), kinds


async def _all_pairs(world: World) -> None:
    await world.build()
    for first, second in PAIRS:
        await _race(world, first, second)
    # The counts are exactly what the ledger replays to, after every race.
    pool = await world.pool()
    entries = await world.ledger()
    assert pool["occupied"] >= 0 and pool["held"] >= 0 and pool["available"] >= 0
    held = sum(e["beds"] for e in entries if e["kind"] == "hold") - sum(
        e["beds"] for e in entries if e["kind"] == "release"
    )
    occupied = sum(e["beds"] for e in entries if e["kind"] == "admit") - sum(
        e["beds"] for e in entries if e["kind"] == "discharge"
    )
    assert (pool["held"], pool["occupied"]) == (held, occupied)


async def _no_release_of_another_institutions_hold(world: World) -> None:
    """INM names FGR's hold in its own draft and cancels it: FGR's beds stay held."""
    fgr_hold = await world.hold("fiscal")
    body = {
        "sending_institution_id": INM.id,
        "receiving_institution_id": CASA_MERCEDES.id,
        "facility_id": world.facility_id,
        "hold_id": fgr_hold["id"],
        "people": [VICTIM],
        "consent": {"given": True},
        "urgency": "urgent",
    }
    r = await world.client.post("/api/v1/referrals", json=body, headers=world.h["inm"])
    assert r.status_code == 403 and r.json()["error"] == "hold_of_another_institution", r.text
    # Nor may FGR itself name one hold in two live referrals (cancelling one frees the other).
    mine = {**body, "sending_institution_id": FGR.id}
    first = await world.client.post("/api/v1/referrals", json=mine, headers=world.h["fiscal"])
    assert first.status_code == 201, first.text
    again = await world.client.post("/api/v1/referrals", json=mine, headers=world.h["fiscal"])
    assert again.status_code == 409 and again.json()["error"] == "hold_in_use", again.text
    hold = (
        await world.client.get(f"/api/v1/holds/{fgr_hold['id']}", headers=world.h["fiscal"])
    ).json()
    assert hold["status"] == "active"
    # INM cannot release it directly at capacity either.
    direct = await world.client.delete(f"/api/v1/holds/{fgr_hold['id']}", headers=world.h["inm"])
    assert direct.status_code in (403, 404), direct.text
    hold = (
        await world.client.get(f"/api/v1/holds/{fgr_hold['id']}", headers=world.h["fiscal"])
    ).json()
    assert hold["status"] == "active"


@pytest.fixture
def race_app(monkeypatch, request):
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    _configure(url)
    if url is not None:
        get_settings().auto_migrate = True
    try:
        yield build_app("all")
    finally:
        _dispose()


@pytest.mark.parametrize(
    "race_app", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_racing_lifecycle_actions_never_disagree_with_the_ledger(race_app):
    async with running(race_app) as client:
        world = World(client)
        await _all_pairs(world)
        await _no_release_of_another_institutions_hold(world)


def test_every_pair_of_claimed_actions_is_raced():
    """The pairs above cover every racing pair that touches capacity twice."""
    touching = {"admit", "discharge", "cancel", "decline"}
    raced = {frozenset(p) for p in PAIRS}
    for a, b in itertools.combinations_with_replacement(sorted(touching), 2):
        if _can_race(a, b):
            assert frozenset((a, b)) in raced, (a, b)


def _can_race(a: str, b: str) -> bool:
    """Two actions can race on one referral when some status allows both."""
    return bool(TRANSITIONS[a][0] & TRANSITIONS[b][0])
