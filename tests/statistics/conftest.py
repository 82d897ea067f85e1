"""A small world built through the public API of the one-process app (every service, its
own SQLite files, demo users), and the direct counts statistics must agree with."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from canaliza.demo import CASA_MERCEDES, DIF_CDMX, FGR
from services.ids import new_id, new_random_id
from services.settings import get_settings
from tests.conftest import demo_login

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def world_app(all_services_app: Any) -> Any:
    return all_services_app


def sign_government_agreement() -> None:
    """The demo institutions and agreement, and FGR ↔ DIF CDMX (a government receiver: the
    demo signs only FGR ↔ Casa de las Mercedes). Set up in the referral database, as the
    demo seed does; what is under test goes through the API."""
    from referral.database import db
    from referral.demo import load_demo
    from referral.models import Agreement, AgreementParty

    with db.new_session(write=True) as session:
        load_demo(session)  # the demo institutions (idempotent)
        agreement = Agreement(
            number="TEST/GOB/001",
            title="Convenio de prueba con el DIF de la Ciudad de México",
            valid_from=date(2020, 1, 1),
            valid_to=date(2030, 12, 31),
            status="signed",
            scope_sexes=["F", "M", "X"],
            scope_age_groups=["minors", "adults"],
            created_by="test",
            created_at=T0,
            signed_at=T0,
        )
        session.add(agreement)
        session.flush()
        for party in (FGR.id, DIF_CDMX.id):
            session.add(AgreementParty(agreement_id=agreement.id, institution_id=party))
        session.commit()


async def service_headers(client: httpx.AsyncClient) -> dict[str, str]:
    s = get_settings()
    resp = await client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": s.service_client_id or "",
            "client_secret": s.service_client_secret or "",
        },
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def facility_with_pool(
    client: httpx.AsyncClient, operator: str = CASA_MERCEDES.id, total: int = 40
) -> tuple[str, str]:
    """An active facility of ``operator`` in CDMX with one pool for everybody."""
    admin = await demo_login(client, "admin")
    fac = await client.post(
        "/api/v1/facilities",
        json={"name": f"Refugio {new_random_id()[:6]}", "kind": "refugio", "operator_institution_id":
              operator, "state": "09", "municipality": "Cuauhtémoc", "status": "active"},
        headers=admin,
    )  # fmt: skip
    assert fac.status_code == 201, fac.text
    pool = await client.post(
        f"/api/v1/facilities/{fac.json()['id']}/pools",
        json={"name": "Todas", "sexes": ["F", "M", "X"], "min_age": 0, "max_age": 120,
              "total": total, "accepts_children": True, "max_child_age": 12,
              "max_children": 5, "accepts_witnesses": True, "accepts_indirect_victims": True},
        headers=admin,
    )  # fmt: skip
    assert pool.status_code == 201, pool.text
    return fac.json()["id"], pool.json()["id"]


def historical(
    *,
    receiver: str,
    facility_id: str,
    people: list[dict[str, Any]],
    status: str,
    day: int = 0,
) -> dict[str, Any]:
    """One past referral from FGR in its final ``status``, every step timed."""
    created = T0 + timedelta(days=day)
    row: dict[str, Any] = {
        "id": new_id(),
        "sending_institution_id": FGR.id,
        "receiving_institution_id": receiver,
        "facility_id": facility_id,
        "urgency": "urgent",
        "state": "09",
        "people": people,
        "consent": {"given": True},
        "status": status,
        "created_at": created.isoformat(),
        "sent_at": (created + timedelta(hours=1)).isoformat(),
    }
    if status in ("accepted", "declined", "admitted", "discharged"):
        row["answered_at"] = (created + timedelta(hours=3)).isoformat()
    if status in ("admitted", "discharged"):
        row["admitted_at"] = (created + timedelta(hours=8)).isoformat()
    if status == "discharged":
        row["discharged_at"] = (created + timedelta(days=20)).isoformat()
        row["outcome"] = "reintegrated_origin"
    if status == "declined":
        row["reason"] = "Sin cupo para el perfil."
    return row


async def import_batch(client: httpx.AsyncClient, rows: list[dict[str, Any]]) -> None:
    resp = await client.post(
        "/api/v1/referrals/import",
        json={"referrals": rows},
        headers=await service_headers(client),
    )
    assert resp.status_code in (200, 201), resp.text
    assert resp.json()["imported"] == len(rows)


async def settled(
    client: httpx.AsyncClient, headers: dict[str, str], people: int, *, rounds: int = 400
) -> None:
    """Wait (by rounds, not by a clock) until the trail's statistics hold ``people``."""
    got = None
    for _ in range(rounds):
        r = await client.get("/api/v1/reports/people", params={"by": "sex"}, headers=headers)
        got = r.json()["totals"]["people"]
        if got == people:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the statistics hold {got} people, the databases {people}")
