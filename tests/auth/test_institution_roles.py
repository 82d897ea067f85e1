"""Issue 20, item 5 (resource capture), end to end on the demo app: an NGO's admin can no
longer mint prosecutor, DIF, INM or CEAV users (roles must fit the institution's type; auth
learns institutions from the referral service's events), and a prosecutor can no longer hold
every free CDMX bed for 7 days in 9 requests (TTL cap, per-institution quota, SEGOB alert)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from auth import institutions
from auth.exceptions import InstitutionUnknown, RoleNotAllowedForInstitution
from canaliza.composition import available_packages, build_app, load_spec
from canaliza.demo import CASA_MERCEDES, FGR
from services.settings import get_settings
from tests.conftest import demo_login, running

PASSWORD = "una-clave-larga-de-prueba"
ALERT = "capacity.hold.concentration_alert"


@pytest.fixture
def demo_app(monkeypatch) -> Iterator[Any]:
    """Every service in one app, demo users loaded at start-up (no generated world)."""
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    monkeypatch.setenv("CANALIZA_HOLD_QUOTA_BEDS", "60")
    get_settings.cache_clear()
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is not None:
            spec.database.configure()
    yield build_app("all")
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is not None:
            spec.database.dispose()


async def _until(call: Callable[[], Any], ok: Callable[[httpx.Response], bool]) -> httpx.Response:
    """Repeat ``call`` until ``ok``: other services learn of changes through the bus."""
    for _ in range(100):
        resp = await call()
        if ok(resp):
            return resp
        await asyncio.sleep(0.1)
    raise AssertionError(f"never satisfied: {resp.status_code} {resp.text[:300]}")


def _user(username: str, role: str, institution_id: str) -> dict[str, Any]:
    return {
        "username": username,
        "display_name": username,
        "password": PASSWORD,
        "roles": [role],
        "institution_id": institution_id,
    }


async def _sign_in(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    resp = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": PASSWORD,
            "client_id": "canaliza-cli",
        },
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def test_an_ngo_admin_cannot_mint_officers_of_other_institution_types(demo_app):
    async with running(demo_app) as client:
        admin = await demo_login(client, "admin")
        # A new NGO registered in the referral service: auth learns it from the bus.
        made = await client.post(
            "/api/v1/institutions",
            json={"name": "Refugio Nuevo, A.C.", "type": "ngo", "state": "09"},
            headers=admin,
        )
        assert made.status_code == 201, made.text
        ngo = made.json()["id"]
        # At once: on a miss auth asks the referral service rather than wait for the bus.
        created = await client.post(
            "/api/v1/auth/users", json=_user("dir.nuevo", "institution_admin", ngo), headers=admin
        )
        assert created.status_code == 201, created.text
        ngo_admin = await _sign_in(client, "dir.nuevo")

        for n, role in enumerate(("prosecutor", "dif_officer", "inm_officer", "ceav_officer")):
            r = await client.post(
                "/api/v1/auth/users", json=_user(f"falso-{n}", role, ngo), headers=ngo_admin
            )
            assert r.status_code == 422, (role, r.text)
            body = r.json()
            assert body["error"] == "role_not_allowed_for_institution"
            assert role in body["detail"] and "Organización de la sociedad civil" in body["detail"]
        # Nor can the platform's own admin, nor under another institution's id.
        r = await client.post(
            "/api/v1/auth/users", json=_user("falso-admin", "prosecutor", ngo), headers=admin
        )
        assert r.status_code == 422 and r.json()["error"] == "role_not_allowed_for_institution"
        r = await client.post(
            "/api/v1/auth/users", json=_user("falso-fgr", "prosecutor", FGR.id), headers=ngo_admin
        )
        assert r.status_code == 403
        # A user of an institution nobody registered is refused.
        r = await client.post(
            "/api/v1/auth/users",
            json=_user("fantasma", "shelter_coordinator", "00000000-0000-0000-0000-000000000000"),
            headers=admin,
        )
        assert r.status_code == 422 and r.json()["error"] == "institution_not_found"
        # What an NGO has: coordinators.
        r = await client.post(
            "/api/v1/auth/users",
            json=_user("coord.nuevo", "shelter_coordinator", ngo),
            headers=ngo_admin,
        )
        assert r.status_code == 201, r.text
        # An institution the bus has not brought (yet, or before an upgrade added the
        # registry): auth asks the referral service once and learns it.
        from auth.database import db
        from auth.models import KnownInstitution

        with db.unit_of_work() as session:
            known = session.get(KnownInstitution, ngo)
            assert known is not None
            session.delete(known)
        r = await client.post(
            "/api/v1/auth/users",
            json=_user("coord.mercedes2", "shelter_coordinator", ngo),
            headers=admin,
        )
        assert r.status_code == 201, r.text
        with db.unit_of_work(write=False) as session:
            assert session.get(KnownInstitution, ngo) is not None
        users = (await client.get("/api/v1/auth/users", headers=admin)).json()
        assert not [u for u in users if u["username"].startswith("falso")]
        # The demo's users were created (their institutions are seeded with them).
        assert {"fiscal", "coordinadora", "dif", "inm", "ceav", "auditor"} <= {
            u["username"] for u in users
        }


async def test_a_prosecutor_cannot_hold_every_cdmx_bed_and_segob_is_alerted(demo_app):
    async with running(demo_app) as client:
        admin = await demo_login(client, "admin")
        fiscal = await demo_login(client, "fiscal")
        auditor = await demo_login(client, "auditor")
        fac = await client.post(
            "/api/v1/facilities",
            json={"name": "Refugio Grande", "kind": "refugio",
                  "operator_institution_id": CASA_MERCEDES.id, "state": "09",
                  "municipality": "Cuauhtémoc", "address": "Calle 1", "services": ["legal"],
                  "security_level": "high", "max_stay_days": 90},
            headers=admin,
        )  # fmt: skip
        assert fac.status_code == 201, fac.text
        r = await client.patch(
            f"/api/v1/facilities/{fac.json()['id']}",
            json={"status": "active", "reason": "visita"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        pool = await client.post(
            f"/api/v1/facilities/{fac.json()['id']}/pools",
            json={"name": "Mujeres", "sexes": ["F"], "total": 88},
            headers=admin,
        )
        assert pool.status_code == 201, pool.text
        pool_id = pool.json()["id"]

        def hold(beds: int, **extra: Any) -> Any:
            return client.post(
                "/api/v1/holds",
                json={"allocations": [{"pool_id": pool_id, "beds": beds}], **extra},
                headers=fiscal,
            )

        sizes = [10] * 8 + [8]  # 88 beds in 9 requests
        week = [(await hold(b, ttl_minutes=7 * 24 * 60)).status_code for b in sizes]
        assert week == [422] * 9
        codes = [(await hold(b)).status_code for b in sizes]
        # Quota 60 here (a setting): six holds, then refused; the fifth crossed half the state.
        assert codes == [201] * 6 + [409] * 3, codes
        refused = await hold(1)
        assert refused.json()["error"] == "hold_quota_exceeded"
        assert "60 camas reservadas" in refused.json()["detail"]
        alerts = await _until(
            lambda: client.get(f"/api/v1/audit/events?type={ALERT}", headers=auditor),
            lambda r: r.status_code == 200 and r.json()["total"] >= 1,
        )
        [alert] = alerts.json()["items"]
        payload = alert["entry"]["payload"]
        assert (payload["institution_id"], payload["state"], payload["held"]) == (FGR.id, "09", 50)
        assert payload["capacity"] == 88 and payload["share"] > 0.5


def test_the_documented_table_is_the_code_s():
    from pathlib import Path

    from services.vocabulary import INSTITUTION_ROLES, InstitutionType

    text = (Path(__file__).parents[2] / "docs" / "security" / "permissions.md").read_text()
    documented: dict[str, set[str]] = {}
    header = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("|"):
            header = False
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if [c.lower() for c in cells] == ["institution type", "roles"]:
            header = True
        elif header and not set(cells[0]) <= set("-: "):
            documented[cells[0]] = {r.strip() for r in cells[1].split(",")}
    code = {k.value: {r.value for r in v} for k, v in INSTITUTION_ROLES.items()}
    assert documented == code
    assert set(code) == set(InstitutionType.values())


async def test_auth_learns_institutions_from_the_referral_service_s_events(tmp_path):
    from auth.database import db
    from auth.models import KnownInstitution
    from services.contracts.referral import InstitutionCreated, InstitutionUpdated
    from services.events import Event
    from services.vocabulary import InstitutionType

    db.configure(f"sqlite:///{tmp_path}/auth.db")
    db.migrate()
    try:
        handle = institutions.event_handler()
        inst = "11111111-2222-3333-4444-555555555555"
        created = InstitutionCreated(id=inst, name="Fiscalía de Prueba", type=InstitutionType.FISCALIA_ESTATAL,
                                     state="14")  # fmt: skip
        for payload in (created, InstitutionUpdated(id=inst, name="Fiscalía de Jalisco")):
            await handle(
                Event(
                    type=payload.TYPE,
                    aggregate_type="institution",
                    aggregate_id=inst,
                    payload=payload.model_dump(mode="json"),
                )
            )
        with db.unit_of_work(write=False) as session:
            known = session.get(KnownInstitution, inst)
            assert known is not None
            assert (known.name, known.type, known.state) == (
                "Fiscalía de Jalisco", "fiscalia_estatal", "14"
            )  # fmt: skip
        with db.unit_of_work() as session:
            institutions.ensure_roles_fit(session, roles=["prosecutor"], institution_id=inst)
            with pytest.raises(RoleNotAllowedForInstitution):
                institutions.ensure_roles_fit(session, roles=["inm_officer"], institution_id=inst)
            with pytest.raises(InstitutionUnknown):
                institutions.ensure_roles_fit(session, roles=["prosecutor"], institution_id="x")
            # Platform-wide roles are the platform's to grant, to any institution.
            institutions.ensure_roles_fit(session, roles=["platform_admin"], institution_id=inst)
    finally:
        db.dispose()
