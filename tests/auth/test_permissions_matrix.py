"""Every route of every service, as every role, against docs/security/permissions.md.

The routes come from the one-process app itself (HTTP and WebSocket), so a new route
cannot escape: it fails here until the matrix has a row for it. The tokens are real ones
from the app's own auth service (password grant in demo mode, client credentials for
``service``), and the path parameters name demo objects each role owns where scope
matters. All refusals are checked first, while the objects are untouched — including the
other half of an ``own`` cell: the same route on another institution's object or naming
another institution in its body is refused (403, or 404 where existence is secret) — then
every allowed call, reads before writes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, WebSocketRoute

from canaliza.composition import available_packages, build_app, load_spec
from canaliza.demo import (
    CASA_MERCEDES,
    CEAV,
    CNDH,
    DEMO_INSTITUTIONS,
    DEMO_USERS,
    FGR,
    INM,
    SNDIF,
)
from capacity.registration import CHECKLIST_CODES
from services.security import ROLES as SECURITY_ROLES
from services.settings import ROOT, get_settings
from tests.auth.conftest import websocket_first_reply
from tests.conftest import running

MATRIX_PATH = ROOT / "docs" / "security" / "permissions.md"
ROLES = SECURITY_ROLES  # the matrix's columns: every role the platform knows
CELLS = frozenset({"yes", "no", "own"})

# Routes that need no token. Keep in step with the list in the matrix document.
PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/auth/jwks"),
        ("POST", "/auth/token"),
        ("POST", "/auth/revoke"),
        ("POST", "/auth/introspect"),
        ("GET", "/auth/authorize"),
        ("POST", "/auth/authorize"),
        ("GET", "/auth/federation/{institution_key}/login"),
        ("GET", "/auth/federation/{institution_key}/callback"),
    }
)

Key = tuple[str, str]


# --- the matrix document -------------------------------------------------------------


def parse_matrix(text: str) -> dict[Key, dict[str, str]]:
    """Rows of every table whose header starts ``| method | path |``.

    Tolerant on purpose: other tables and prose are skipped, backticks and case ignored,
    so rows can be added by hand at merge time.
    """
    rows: dict[Key, dict[str, str]] = {}
    header: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip().strip("`").strip() for c in line.strip("|").split("|")]
        lowered = [c.lower() for c in cells]
        if lowered[:2] == ["method", "path"]:
            header = lowered
            continue
        if header is None or all(set(c) <= set("-: ") for c in cells):
            continue
        row = dict(zip(header, cells, strict=False))
        key = (row["method"].upper(), row["path"])
        if key in rows:
            raise AssertionError(f"the matrix lists {key} twice")
        rows[key] = {role: row.get(role, "").lower() for role in ROLES}
    return rows


def app_routes(app: Any) -> Iterator[Key]:
    """(method, path) of every route of ``app``; ``WS`` for WebSocket routes."""
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, Mount):  # static files, never data
            continue
        path = ctx.path or ""
        if ctx.methods:
            for method in sorted(ctx.methods - {"HEAD"}):
                yield method, path
        elif isinstance(route, WebSocketRoute) or "WebSocket" in type(route).__name__:
            yield "WS", path


# Web UI pages anyone may open (the sign-in page, its callback, language, sign-out, assets).
WEB_PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/"),  # the welcome page: a sign-in button, no data
        ("GET", "/entrar"),
        ("GET", "/callback"),
        ("POST", "/idioma"),
        ("POST", "/salir"),
        ("GET", "/static/{name}"),
        ("GET", "/vendor/{name}"),
    }
)


def web_ui_routes() -> set[Key]:
    """Every route of the web UI, from the frontend's own routers (none without it)."""
    spec = load_spec("frontend")
    keys: set[Key] = set()
    for router in [*spec.routers, *spec.public_routers]:
        keys.update(app_routes(router))
    return keys


@pytest.fixture
def all_app(monkeypatch):
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    specs = [load_spec(name) for name in available_packages()]
    for spec in specs:
        if spec.database is not None:
            spec.database.configure()  # this test's own SQLite files
    yield build_app("all")
    for spec in specs:
        if spec.database is not None:
            spec.database.dispose()


def test_matrix_covers_exactly_the_routes_of_the_app(all_app):
    matrix = parse_matrix(MATRIX_PATH.read_text(encoding="utf-8"))
    routes = set(app_routes(all_app))
    private = routes - PUBLIC_ROUTES - web_ui_routes()
    missing = sorted(private - set(matrix))
    stale = sorted(set(matrix) - routes)
    assert not missing, f"routes without a row in {MATRIX_PATH.name}: {missing}"
    assert not stale, f"rows of {MATRIX_PATH.name} naming no route: {stale}"
    assert not set(matrix) & PUBLIC_ROUTES, "a public route is listed in the matrix"
    bad = {k: v for k, v in matrix.items() if set(v.values()) - CELLS}
    assert not bad, f"cells must be one of {sorted(CELLS)}: {bad}"
    # The WebSocket feed is enumerated too (a route the HTTP walk alone would miss).
    assert ("WS", "/api/v1/capacity/live") in routes


def test_parser_is_tolerant_and_strict_where_it_matters():
    text = (
        "prose\n| method | path | platform_admin | service |\n|---|---|---|---|\n"
        "| get | `/x` | YES | no |\n\n| a | b |\n|---|---|\n| GET | /ignored |\n"
    )
    assert parse_matrix(text) == {
        ("GET", "/x"): {r: {"platform_admin": "yes", "service": "no"}.get(r, "") for r in ROLES}
    }
    with pytest.raises(AssertionError, match="twice"):
        parse_matrix(text + "| method | path |\n|---|---|\n| GET | /x |\n")


# --- calling the routes --------------------------------------------------------------


async def _login(client: httpx.AsyncClient, username: str, password: str | None = None) -> str:
    r = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": password or get_settings().demo_password,
            "client_id": "canaliza-cli",
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _ok(r: httpx.Response, *codes: int) -> dict[str, Any]:
    assert r.status_code in (codes or (200, 201)), f"{r.request.method} {r.request.url}: {r.text}"
    return dict(r.json())


ROLE_INSTITUTION: dict[str, str] = {}
for _role, _inst in DEMO_USERS.values():  # the contract's user of each role comes first
    ROLE_INSTITUTION.setdefault(_role, _inst.id)
ROLE_INSTITUTION["institution_admin"] = CASA_MERCEDES.id
OPERATION_GROUP = {"people": [{"sex": "F", "age": 30, "role": "victim"}]}
SENDERS = {"prosecutor": FGR, "dif_officer": SNDIF, "inm_officer": INM, "ceav_officer": CEAV}
OBLIGATION_OF = {
    "prosecutor": "witness_protection",
    "dif_officer": "dif_child_protection",
    "inm_officer": "inm_migration_status",
    "ceav_officer": "ceav_registration",
}
PEOPLE = [
    {"sex": "F", "age": 29, "role": "victim", "nationality": "GTM"},
    {"sex": "M", "age": 5, "role": "accompanying_child", "nationality": "MEX"},
]
NIL_ID = "00000000-0000-0000-0000-000000000000"


class World:
    """Tokens for every role and the demo objects each one owns."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}
        self.by_institution: dict[tuple[str, str], str] = {}
        self.obligation_tokens: dict[str, str] = {}
        self.params: dict[str, dict[str, str]] = {role: {} for role in ROLES}
        # Objects outside each role's scope, for the other half of an ``own`` cell.
        self.foreign: dict[str, dict[str, str]] = {role: {} for role in ROLES}
        self.counter = 0

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def build(self, runtime: Any) -> None:
        c = self.client
        # The contract's demo users exist once the one-process app has started.
        for username, (role, inst) in DEMO_USERS.items():
            token = await _login(c, username)
            claims = _claims(token)
            assert (claims["roles"], claims["institution_id"]) == ([role], inst.id), username
            # The contract's user of each role (listed first) speaks for it; extra demo
            # users of a role (a state DIF's officer, say) are still checked above.
            self.tokens.setdefault(role, token)
            self.by_institution[(role, inst.id)] = token
        password = "clave-de-prueba-larga"
        _ok(
            await c.post(
                "/api/v1/auth/users",
                json={
                    "username": "admin-mercedes",
                    "display_name": "Administración Casa de las Mercedes",
                    "password": password,
                    "roles": ["institution_admin"],
                    "institution_id": CASA_MERCEDES.id,
                },
                headers=self.h("platform_admin"),
            )
        )
        self.tokens["institution_admin"] = await _login(c, "admin-mercedes", password)
        # Accounts to deactivate, reactivate and reset: one of Casa de las Mercedes (the
        # institution admin's own) and one of FGR (another institution's).
        for username, role, inst, scope in (
            ("permisos-mercedes", "shelter_coordinator", CASA_MERCEDES, self.params),
            ("permisos-fgr", "prosecutor", FGR, self.foreign),
        ):
            made = await c.post(
                "/api/v1/auth/users",
                json={"username": username, "display_name": username, "password": password,
                      "roles": [role], "institution_id": inst.id},
                headers=self.h("platform_admin"),
            )  # fmt: skip
            for each in ROLES:
                if scope is self.params or each == "institution_admin":
                    scope[each]["user_id"] = str(_ok(made, 201)["id"])
        r = await c.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": runtime.settings.service_client_id,
                "client_secret": runtime.settings.service_client_secret,
            },
        )
        self.tokens["service"] = str(_ok(r)["access_token"])

        admin = self.h("platform_admin")
        for inst in DEMO_INSTITUTIONS:
            body = {"id": inst.id, "name": inst.name, "type": inst.type, "state": inst.state}
            _ok(await c.post("/api/v1/institutions", json=body, headers=admin))
        facility = _ok(
            await c.post(
                "/api/v1/facilities",
                json={
                    "name": "Refugio de prueba de permisos",
                    "kind": "refugio",
                    "operator_institution_id": CASA_MERCEDES.id,
                    "state": "09",
                    "municipality": "Cuauhtémoc",
                    "address": "Calle Reservada 1",
                    "status": "active",
                },
                headers=admin,
            )
        )
        pool = _ok(
            await c.post(
                f"/api/v1/facilities/{facility['id']}/pools",
                json={
                    "name": "Mujeres con hijas e hijos",
                    "sexes": ["F", "M"],
                    "min_age": 0,
                    "total": 30,
                    "accepts_children": True,
                    "max_child_age": 12,
                    "max_children": 10,
                },
                headers=admin,
            )
        )
        # One signed agreement covering every sender and the receiving NGO; another,
        # left in draft, for the routes that change agreements.
        parties = [FGR.id, SNDIF.id, INM.id, CEAV.id, CASA_MERCEDES.id]
        main = await self._agreement("PERM-1", parties)
        for party in parties:
            _ok(
                await c.post(
                    f"/api/v1/agreements/{main}/sign",
                    json={"institution_id": party},
                    headers=admin,
                )
            )
        spare = await self._agreement("PERM-2", [CASA_MERCEDES.id, CNDH.id])
        shared = {
            "facility_id": facility["id"],
            "pool_id": pool["id"],
            "agreement_id": spare,
            "institution_id": CASA_MERCEDES.id,
            "name": "occupancy",
            "action": "in_transit",
            "obligation_id": NIL_ID,
        }
        for role in ROLES:
            self.params[role].update(shared)
        await self._oversight(facility["id"])
        # Each sender holds a bed and refers its own group; the NGO accepts every one.
        for role, inst in SENDERS.items():
            hold = _ok(
                await c.post(
                    "/api/v1/holds",
                    json={"allocations": [{"pool_id": pool["id"], "beds": 2}]},
                    headers=self.h(role),
                ),
                201,
            )
            referral = _ok(
                await c.post(
                    "/api/v1/referrals",
                    json={
                        "sending_institution_id": inst.id,
                        "receiving_institution_id": CASA_MERCEDES.id,
                        "facility_id": facility["id"],
                        "hold_id": hold["id"],
                        "people": PEOPLE,
                        "consent": {"given": True},
                        "urgency": "normal",
                        # Only the prosecutor's case is under witness protection (it then
                        # carries all four obligations); the others disclose identities.
                        "witness_protection": role == "prosecutor",
                    },
                    headers=self.h(role),
                ),
                201,
            )
            rid = referral["id"]
            _ok(await c.post(f"/api/v1/referrals/{rid}/send", json={}, headers=self.h(role)))
            _ok(
                await c.post(
                    f"/api/v1/referrals/{rid}/accept",
                    json={},
                    headers=self.h("shelter_coordinator"),
                )
            )
            operation = _ok(
                await c.post(
                    "/api/v1/operations",
                    json={"name": f"Operativo {role}", "state": "09", "groups": [OPERATION_GROUP]},
                    headers=self.h(role),
                ),
                201,
            )
            self.params[role].update(
                hold_id=hold["id"], referral_id=rid, operation_id=operation["id"]
            )
            if role == "prosecutor":
                obligations = {o["kind"]: o["id"] for o in referral["obligations"]}
                owed_by = {o["kind"]: o["institution_id"] for o in referral["obligations"]}
        fiscal = self.params["prosecutor"]
        for role in ROLES:
            own = self.params[role]
            own.setdefault("hold_id", fiscal["hold_id"])
            own.setdefault("operation_id", fiscal["operation_id"])
            # The receiving NGO's staff look at a case not under witness protection.
            own.setdefault("referral_id", self.params["dif_officer"]["referral_id"])
            # Obligations are checked on the prosecutor's referral, which has all four.
            own["referral_id_for_obligation"] = fiscal["referral_id"]
            kind = OBLIGATION_OF.get(role, "ceav_registration")
            own["obligation_id"] = obligations[kind]
            # An obligation is owed by one institution (the state DIF for a minor in its
            # state): that institution's user of the role acts on it.
            owed_token = self.by_institution.get((role, owed_by[kind]))
            if owed_token:
                self.obligation_tokens[role] = owed_token
        await self._build_foreign(obligations)

    async def _build_foreign(self, obligations: dict[str, str]) -> None:
        """A facility of another operator, and cases none of the own-scoped roles are in."""
        c, admin = self.client, self.h("platform_admin")
        facility = _ok(
            await c.post(
                "/api/v1/facilities",
                json={
                    "name": "Albergue de otra institución",
                    "kind": "albergue",
                    "operator_institution_id": SNDIF.id,
                    "state": "09",
                    "municipality": "Tlalpan",
                    "status": "active",
                },
                headers=admin,
            )
        )
        pool = _ok(
            await c.post(
                f"/api/v1/facilities/{facility['id']}/pools",
                json={"name": "Mujeres", "sexes": ["F"], "total": 5},
                headers=admin,
            )
        )
        hold = _ok(
            await c.post(
                "/api/v1/holds",
                json={"allocations": [{"pool_id": pool["id"], "beds": 1}]},
                headers=self.h("prosecutor"),
            ),
            201,
        )
        # FGR → CNDH, an adult Mexican witness: no obligation, nobody else involved.
        outside = _ok(
            await c.post(
                "/api/v1/referrals",
                json={
                    "sending_institution_id": FGR.id,
                    "receiving_institution_id": CNDH.id,
                    "facility_id": facility["id"],
                    "people": [{"sex": "F", "age": 40, "role": "witness", "nationality": "MEX"}],
                    "consent": {"given": True},
                    "urgency": "normal",
                },
                headers=self.h("prosecutor"),
            ),
            201,
        )
        agreement = await self._agreement("PERM-3", [FGR.id, CNDH.id])
        for role in ("institution_admin", "shelter_coordinator"):
            self.foreign[role].update(
                pool_id=pool["id"],
                hold_id=hold["id"],
                referral_id=outside["id"],
                agreement_id=agreement,
            )
        for role in SENDERS:
            other = "dif_officer" if role == "prosecutor" else "prosecutor"
            self.foreign[role].update(
                hold_id=self.params[other]["hold_id"],
                operation_id=self.params[other]["operation_id"],
                referral_id=self.params["dif_officer"]["referral_id"]
                if role == "prosecutor"
                else outside["id"],
                obligation_id=obligations[OBLIGATION_OF[other]],
            )

    async def _oversight(self, facility_id: str) -> None:
        """A done visit with one follow-up action, once the roster knows the facility."""
        auditor = self.h("segob_auditor")
        for _ in range(100):  # the audit service learns of the facility through the bus
            r = await self.client.get(f"/api/v1/roster/{facility_id}", headers=auditor)
            if r.status_code == 200:
                break
            await asyncio.sleep(0.05)
        visit = _ok(
            await self.client.post(
                "/api/v1/visits",
                json={
                    "facility_id": facility_id,
                    "done_on": str(date.today()),
                    "team": ["Lic. Prueba de Permisos"],
                    "findings": "Visita de prueba de permisos.",
                    "actions": [{"description": "Seguimiento", "due_on": "2030-01-01"}],
                },
                headers=auditor,
            ),
            201,
        )
        for role in ROLES:
            self.params[role].update(visit_id=visit["id"], action_id=visit["actions"][0]["id"])

    async def _agreement(self, number: str, parties: list[str]) -> str:
        body = {
            "number": number,
            "title": "Convenio de prueba de permisos",
            "party_ids": parties,
            "valid_from": "2024-01-01",
            "valid_to": "2035-12-31",
        }
        r = await self.client.post(
            "/api/v1/agreements", json=body, headers=self.h("platform_admin")
        )
        return str(_ok(r, 201)["id"])

    # -- one call ----------------------------------------------------------------------

    def path_for(self, path: str, role: str, *, foreign: bool = False) -> str:
        params = dict(self.params[role if role in self.params else "platform_admin"])
        if foreign:  # (obligations stay on the prosecutor's case: another one's obligation)
            params.update(self.foreign.get(role, {}))

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "referral_id" and "/obligations/" in path:
                return params.get("referral_id_for_obligation", params["referral_id"])
            return params.get(name, NIL_ID)

        return re.sub(r"\{(\w+)\}", value, path)

    def foreign_body(self, method: str, path: str, role: str) -> dict[str, Any] | None:
        """A body naming another institution than the caller's (None: scope is not in it)."""
        other = FGR.id if ROLE_INSTITUTION.get(role) != FGR.id else SNDIF.id
        key = (method, path)
        if key == ("POST", "/api/v1/auth/users"):
            body = self.body_for(method, path, role)["json"]
            return {"json": {**body, "institution_id": other}}
        if key == ("POST", "/api/v1/agreements"):
            body = self.body_for(method, path, role)["json"]
            return {"json": {**body, "party_ids": [other, CNDH.id]}}
        if key == ("POST", "/api/v1/agreements/{agreement_id}/sign"):
            return {"json": {"institution_id": other}}
        if key == ("POST", "/api/v1/referrals"):
            body = self.body_for(method, path, role)["json"]
            return {"json": {**body, "sending_institution_id": other}}
        return None

    def body_for(self, method: str, path: str, role: str) -> dict[str, Any]:
        """Keyword arguments for httpx: a valid body, so refusals are not masked by 422."""
        self.counter += 1
        own = ROLE_INSTITUTION.get(role) or CASA_MERCEDES.id
        pool_id = self.params["platform_admin"]["pool_id"]
        n = self.counter
        bodies: dict[Key, Any] = {
            ("POST", "/auth/mfa/confirm"): {"code": "000000"},
            ("POST", "/api/v1/auth/users"): {
                "username": f"permisos-{n}",
                "display_name": "Persona de prueba",
                "password": "clave-de-prueba-larga",
                "roles": ["shelter_coordinator"],
                "institution_id": CASA_MERCEDES.id,
            },
            ("POST", "/api/v1/facilities"): {
                "name": f"Albergue {n}",
                "kind": "albergue",
                "operator_institution_id": CASA_MERCEDES.id,
                "state": "09",
                "municipality": "Coyoacán",
            },
            ("PATCH", "/api/v1/facilities/{facility_id}"): {"name": f"Refugio renombrado {n}"},
            ("POST", "/api/v1/facilities/{facility_id}/pools"): {
                "name": f"Sala {n}",
                "sexes": ["F"],
                "total": 2,
            },
            ("PATCH", "/api/v1/pools/{pool_id}"): {"wheelchair_accessible": n % 2 == 0},
            ("POST", "/api/v1/pools/{pool_id}/ledger"): {
                "kind": "adjust",
                "beds": 1,
                "reason": "Prueba de permisos",
            },
            ("POST", "/api/v1/availability/search"): {
                "people": [{"sex": "F", "age": 30, "role": "victim"}],
                "state": "09",
            },
            ("POST", "/api/v1/holds"): {"allocations": [{"pool_id": pool_id, "beds": 1}]},
            ("POST", "/api/v1/operations/plan"): {"state": "09", "groups": [OPERATION_GROUP]},
            ("POST", "/api/v1/operations/candidates"): {"state": "09", "group": OPERATION_GROUP},
            ("POST", "/api/v1/operations"): {
                "name": f"Operativo {n}",
                "state": "09",
                "groups": [OPERATION_GROUP],
            },
            ("POST", "/api/v1/institutions"): {
                "name": f"Institución {n}",
                "type": "ngo",
                "state": "09",
            },
            ("PATCH", "/api/v1/institutions/{institution_id}"): {"legal_form": "I.A.P."},
            ("POST", "/api/v1/agreements"): {
                "number": f"PERM-X-{n}",
                "title": "Convenio",
                "party_ids": [CASA_MERCEDES.id, CNDH.id],
                "valid_from": "2024-01-01",
                "valid_to": "2030-12-31",
            },
            ("POST", "/api/v1/agreements/{agreement_id}/sign"): {"institution_id": own},
            ("POST", "/api/v1/referrals"): {
                "sending_institution_id": own,
                "receiving_institution_id": CASA_MERCEDES.id if own != CASA_MERCEDES.id else FGR.id,
                "facility_id": self.params["platform_admin"]["facility_id"],
                "people": PEOPLE,
                "consent": {"given": True},
                "urgency": "normal",
            },
        }
        facility_id = self.params["platform_admin"]["facility_id"]
        bodies.update(
            {
                ("POST", "/api/v1/facilities/{facility_id}/registration/review"): {
                    "outcome": "returned",
                    "checklist": [{"item": c, "met": True} for c in CHECKLIST_CODES],
                    "observations": "Prueba de permisos.",
                },
                ("POST", "/api/v1/visits"): {
                    "facility_id": facility_id,
                    "planned_for": "2030-01-15",
                    "team": ["Lic. Prueba"],
                },
                ("POST", "/api/v1/visits/{visit_id}/done"): {
                    "done_on": str(date.today()),
                    "findings": "Prueba de permisos.",
                },
                ("POST", "/api/v1/visits/{visit_id}/cancel"): {"reason": "Prueba de permisos."},
                ("POST", "/api/v1/visits/{visit_id}/actions"): {
                    "description": "Seguimiento",
                    "due_on": "2030-01-01",
                },
                # migration routes, stays and aftercare (ADR 0022)
                ("PUT", "/api/v1/referrals/{referral_id}/people/{person_id}/migration-route"): {
                    "route": "humanitarian_regularisation",
                    "status": "requested",
                    "started_on": str(date.today()),
                },
                ("POST", "/api/v1/referrals/{referral_id}/stay/extensions"): {
                    "days": 30,
                    "reason": "risk",
                    "detail": "Persiste el riesgo.",
                    "approved_by": "Dirección del refugio",
                },
                ("POST", "/api/v1/referrals/{referral_id}/stay/follow-ups"): {
                    "due_on": "2030-01-01",
                },
                ("POST", "/api/v1/referrals/{referral_id}/stay/follow-ups/{follow_up_id}/result"): {
                    "done_on": str(date.today()),
                    "result": "stable",
                },
                ("POST", "/api/v1/referrals/{referral_id}/stay/services"): {
                    "person_id": NIL_ID,
                    "service": "legal",
                    "provided_on": str(date.today()),
                },
            }
        )
        if (method, path) == ("POST", "/api/v1/referrals") and role == "shelter_coordinator":
            # A shelter refers only onward, from a referral it received (ADR 0021); this one
            # is accepted, not admitted: refused for that (409), never for the role.
            body = dict(bodies[(method, path)])
            del body["people"]
            body["previous_referral_id"] = self.params["dif_officer"]["referral_id"]
            bodies[(method, path)] = body
        if (method, path) == ("POST", "/api/v1/agreements/{agreement_id}/document"):
            return {"content": b"%PDF-1.4\n%%EOF\n", "headers": {"content-type": "application/pdf"}}
        if (method, path) in bodies:
            return {"json": bodies[(method, path)]}
        return {"json": {}} if method in ("POST", "PATCH", "PUT") else {}

    def out_of_scope(self, method: str, path: str, role: str) -> bool:
        """Whether there is an out-of-scope variant of this call for ``role``."""
        names = set(re.findall(r"\{(\w+)\}", path))
        return bool(names & set(self.foreign.get(role, {}))) or (
            self.foreign_body(method, path, role) is not None
        )

    async def call(self, method: str, path: str, role: str | None, *, foreign: bool = False) -> int:
        """The status of one call (``role=None``: no token; ``foreign``: out of scope)."""
        url = self.path_for(path, role or "platform_admin", foreign=foreign)
        kwargs = self.body_for(method, path, role or "platform_admin")
        if foreign and role is not None:
            kwargs = self.foreign_body(method, path, role) or kwargs
        if role is not None:
            kwargs["headers"] = {**kwargs.get("headers", {}), **self.h(role)}
            if "/obligations/" in path and role in self.obligation_tokens:
                kwargs["headers"]["Authorization"] = f"Bearer {self.obligation_tokens[role]}"
        r = await self.client.request(method, url, **kwargs)
        return r.status_code


def _ordered(keys: list[Key]) -> list[Key]:
    """Reads first, then writes; lifecycle actions and deletions last."""

    def rank(key: Key) -> tuple[int, str]:
        method, path = key
        if method in ("GET", "WS"):
            return 0, path
        if path.endswith("/{action}") or method == "DELETE" or path.endswith("/consume"):
            return 2, path
        return 1, path

    return sorted(keys, key=rank)


@pytest.mark.slow
async def test_every_route_as_every_role_matches_the_matrix(all_app):
    matrix = parse_matrix(MATRIX_PATH.read_text(encoding="utf-8"))
    routes = [k for k in app_routes(all_app) if k in matrix]
    failures: list[str] = []
    async with running(all_app) as client:
        world = World(client)
        await world.build(all_app.state.runtime)

        async def check(key: Key, role: str | None, cell: str) -> None:
            method, path = key
            if method == "WS":
                token = world.tokens[role] if role else ""
                reply = await websocket_first_reply(all_app, path, token)
                kind = (reply["message"] or {}).get("type")
                if role is None:
                    good = reply["close"] == 4401
                elif cell == "no":
                    good = reply["close"] == 4403 and kind == "error"
                else:
                    good = kind == "ready"
                if not good:
                    failures.append(f"WS {path} as {role or 'no token'} ({cell}): {reply}")
                return
            status = await world.call(method, path, role)
            if role is None:
                good = status == 401
            elif cell == "no":
                good = status == 403
            else:
                good = status not in (401, 403)
            if not good:
                failures.append(f"{method} {path} as {role or 'no token'} ({cell}): {status}")

        # Refusals first: nothing has been changed by an allowed call yet. That includes
        # the other half of ``own``: out of scope, 403 (or 404 where existence is secret).
        for key in routes:
            await check(key, None, "no")
            for role in ROLES:
                if matrix[key][role] == "no":
                    await check(key, role, "no")
                elif matrix[key][role] == "own" and world.out_of_scope(*key, role):
                    status = await world.call(*key, role, foreign=True)
                    if status not in (403, 404):
                        failures.append(f"{key[0]} {key[1]} as {role} out of scope: {status}")
        for key in _ordered(routes):
            for role in ROLES:
                if matrix[key][role] in ("yes", "own"):
                    await check(key, role, matrix[key][role])
    assert not failures, "the matrix and the code disagree:\n" + "\n".join(failures)


async def test_web_ui_pages_need_a_session(all_app):
    """Without a browser session no page of the web UI shows anything: pages send the
    visitor to the sign-in page, form posts are refused. New pages are covered as they
    are added (the routes come from the frontend itself)."""
    private = sorted(web_ui_routes() - WEB_PUBLIC_ROUTES)
    assert ("GET", "/canalizaciones/nueva") in private
    failures: list[str] = []
    async with running(all_app) as client:
        for method, path in private:
            if method == "WS":
                continue  # the live proxy's session and Origin checks: tests/frontend
            url = re.sub(r"\{\w+\}", NIL_ID, path)
            r = await client.request(method, url, follow_redirects=False)
            if method == "GET":
                good = r.status_code in (302, 303) and "/entrar" in r.headers.get("location", "")
            else:
                good = r.status_code in (302, 303, 400, 401, 403) and (
                    r.status_code >= 400 or "/entrar" in r.headers.get("location", "")
                )
            if not good:
                failures.append(f"{method} {path}: {r.status_code} {r.headers.get('location')}")
    assert not failures, failures
