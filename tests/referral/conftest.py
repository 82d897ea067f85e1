"""Fixtures of the referral tests: the service on a tmp SQLite, a stand-in capacity."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from referral import main as referral_main
from referral.database import db
from referral.dependencies import CAPACITY_CLIENT_KEY
from services.app import create_app
from services.bus import InProcessBus
from services.clients.capacity import (
    Allocation,
    Facility,
    Hold,
    SearchAnswer,
    SearchFacility,
    SearchResult,
)
from services.clock import clock
from services.errors import Conflict, NotFound
from services.ids import new_id, new_random_id
from tests.conftest import running

FGR = "00000000-0000-4000-8000-000000000001"
NGO = "00000000-0000-4000-8000-000000000002"
OTHER_NGO = "00000000-0000-4000-8000-000000000003"
DIF = "00000000-0000-4000-8000-000000000004"
INM = "00000000-0000-4000-8000-000000000005"
CEAV = "00000000-0000-4000-8000-000000000006"
SEGOB = "00000000-0000-4000-8000-000000000007"


class FakeCapacity:
    """Stands in for the capacity service's typed client; records every call."""

    def __init__(self) -> None:
        self.holds: dict[str, Hold] = {}
        self.calls: list[tuple[str, Any]] = []
        self.operators: dict[str, str] = {}
        self.max_stay_days: dict[str, int] = {}

    def new_hold(
        self, beds: int = 1, *, institution_id: str = FGR, facility_id: str = "fac-1"
    ) -> str:
        hold_id = new_id()
        self.holds[hold_id] = Hold(
            id=hold_id,
            facility_id=facility_id,
            status="active",
            allocations=[Allocation(pool_id="pool-1", beds=beds)],
            institution_id=institution_id,
        )
        return hold_id

    async def get_hold(self, hold_id: str) -> Hold:
        self.calls.append(("get_hold", hold_id))
        if hold_id not in self.holds:
            raise NotFound("No existe esa reserva.", code="hold_not_found")
        return self.holds[hold_id]

    async def release_hold(self, hold_id: str) -> None:
        self.calls.append(("release_hold", hold_id))
        if self.holds[hold_id].status == "active":
            self.holds[hold_id].status = "released"

    async def consume_hold(self, hold_id: str, *, reference: str | None = None) -> Hold:
        self.calls.append(("consume_hold", hold_id))
        hold = self.holds[hold_id]
        if hold.status == "consumed":  # as capacity: consuming twice answers the same hold
            return hold
        if hold.status != "active":
            raise Conflict("La reserva no está activa.", code="hold_not_active")
        hold.status = "consumed"
        return hold

    async def discharge(self, pool_id: str, *, beds: int, reason: str, key: str) -> None:
        self.calls.append(("discharge", (pool_id, beds)))

    async def search(self, *, people: list[dict[str, Any]], state: str | None) -> SearchAnswer:
        self.calls.append(("search", state))
        return SearchAnswer(
            results=[
                SearchResult(
                    facility=SearchFacility(id=fid, name=name, operator_institution_id=op),
                    available=2,
                )
                for fid, name, op in (("fac-1", "Refugio", NGO), ("fac-2", "Casa B", OTHER_NGO))
            ]
        )

    async def get_facility(self, facility_id: str) -> Facility:
        self.calls.append(("get_facility", facility_id))
        return Facility(
            id=facility_id,
            name="Refugio",
            state="09",
            status="active",
            operator_institution_id=self.operators.get(facility_id, NGO),
            address="Calle Secreta 1",
            max_stay_days=self.max_stay_days.get(facility_id),
        )


@dataclass
class Ctx:
    client: httpx.AsyncClient
    h: Callable[..., dict[str, str]]
    capacity: FakeCapacity
    bus: InProcessBus
    runtime: Any
    events: list[Any] = field(default_factory=list)

    @property
    def admin(self) -> dict[str, str]:
        return self.h("platform_admin", institution_id=None)

    @property
    def fiscal(self) -> dict[str, str]:
        return self.h("prosecutor", institution_id=FGR, sub="fiscal")

    @property
    def coord(self) -> dict[str, str]:
        return self.h("shelter_coordinator", institution_id=NGO, sub="coord")

    async def agreement(
        self,
        *,
        parties: tuple[str, ...] = (FGR, NGO),
        sign: bool = True,
        valid_from: date | None = None,
        valid_to: date | None = None,
        **scope: Any,
    ) -> dict[str, Any]:
        today = clock.now().date()
        body = {
            "number": f"CONV-{new_random_id()[:8]}",
            "title": "Convenio de canalización",
            "party_ids": list(parties),
            "valid_from": str(valid_from or today - timedelta(days=30)),
            "valid_to": str(valid_to or today + timedelta(days=365)),
            **scope,
        }
        r = await self.client.post("/api/v1/agreements", json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        agreement = r.json()
        if sign:
            for party in parties:
                r = await self.client.post(
                    f"/api/v1/agreements/{agreement['id']}/sign",
                    json={"institution_id": party},
                    headers=self.h("institution_admin", institution_id=party),
                )
                assert r.status_code == 200, r.text
            agreement = r.json()
        return agreement

    def referral_body(self, **over: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sending_institution_id": FGR,
            "receiving_institution_id": NGO,
            "facility_id": "fac-1",
            "hold_id": self.capacity.new_hold(
                institution_id=over.get("sending_institution_id", FGR),
                facility_id=over.get("facility_id", "fac-1"),
            ),
            "people": [{"sex": "F", "age": 30, "role": "victim", "nationality": "MEX"}],
            "consent": {"given": True},
            "urgency": "normal",
        }
        body.update(over)
        return body

    async def referral(self, **over: Any) -> dict[str, Any]:
        r = await self.client.post(
            "/api/v1/referrals", json=self.referral_body(**over), headers=self.fiscal
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def act(
        self, referral_id: str, action: str, headers: dict[str, str], **body: Any
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/referrals/{referral_id}/{action}", json=body or None, headers=headers
        )

    async def sent_referral(self, **over: Any) -> dict[str, Any]:
        ref = await self.referral(**over)
        r = await self.act(ref["id"], "send", self.fiscal)
        assert r.status_code == 200, r.text
        return r.json()


INSTITUTIONS = [
    (FGR, "FGR — FEVIMTRA", "fiscalia_federal", "09"),
    (NGO, "Casa de las Mercedes", "ngo", "09"),
    (OTHER_NGO, "Otra A.C.", "ngo", "14"),
    (DIF, "Sistema Nacional DIF", "dif_nacional", "09"),
    (INM, "Instituto Nacional de Migración", "inm", "09"),
    (CEAV, "Comisión Ejecutiva de Atención a Víctimas", "ceav", "09"),
    (SEGOB, "SEGOB", "segob", "09"),
]


@pytest.fixture
def referral_db_url() -> str | None:
    """The referral database of a test (None: SQLite in the test's data directory)."""
    return None


@pytest.fixture
async def ctx(test_verifier, auth_headers, referral_db_url) -> AsyncIterator[Ctx]:
    db.configure(referral_db_url)
    bus = InProcessBus()
    app = create_app([referral_main.service()], bus=bus)
    fake = FakeCapacity()
    runtime = app.state.runtime
    runtime.state[CAPACITY_CLIENT_KEY] = fake
    try:
        async with running(app) as client:
            c = Ctx(client=client, h=auth_headers, capacity=fake, bus=bus, runtime=runtime)

            async def collect(ev: Any) -> None:
                c.events.append(ev)

            await bus.subscribe("canaliza.referral.>", collect)
            for iid, name, type_, state in INSTITUTIONS:
                r = await client.post(
                    "/api/v1/institutions",
                    json={"id": iid, "name": name, "type": type_, "state": state},
                    headers=c.admin,
                )
                assert r.status_code == 201, r.text
            yield c
    finally:
        db.dispose()
