"""Load a generated dataset into a running Canaliza through its public HTTP API.

Only the contract's paths are used (``docs/contract.md``): institutions, facilities
(and their status), pools, ledger entries, agreements and signatures. The target is either
an app in this process (``httpx.ASGITransport``) or a base URL. Loading is idempotent:
institutions already present (by id), facilities already present (by name and operator)
and agreements already present (by number) are skipped.

Bodies carry the generator's extra fields (``specialization``, ``services``...). The contract
lets a service refuse unknown fields with 422; the loader then retries once with only the
contract's minimal fields, so it works whatever extras a service accepts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from canaliza.demo import DEMO_CLI_CLIENT_ID
from canaliza.seed.generator import Dataset
from services.pages import NEXT_CURSOR_HEADER

API = "/api/v1"
INTERNAL_BASE_URL = "http://canaliza.internal"

MINIMAL_FIELDS: dict[str, tuple[str, ...]] = {
    "institution": ("name", "type", "state"),
    "facility": ("name", "kind", "operator_institution_id", "state", "municipality", "address"),
    "status": ("status", "reason"),
    "pool": (
        "name", "sexes", "min_age", "max_age", "total", "accepts_children", "max_child_age",
        "max_children", "wheelchair_accessible",
    ),
    "agreement": ("number", "title", "party_ids", "valid_from", "valid_to"),
}  # fmt: skip
"""The contract's minimal bodies ("Minimal bodies" in docs/contract.md)."""

RETRY_STATUS = {502, 503, 504}
ROSTER_IMPORT_PATH = f"{API}/facilities/import"
BULK_FACILITIES = 50
"""Facilities per bulk request: ~500 pools, an event of a few hundred KB (NATS takes 1 MB)."""
INSTITUTIONS_IMPORT_PATH = f"{API}/institutions/import"
BULK_INSTITUTIONS = 1_000
"""Institutions per bulk request (~200 KB): the national roster's 547 in one."""
console = Console(stderr=True)


class LoadError(RuntimeError):
    """The target refused something the loader cannot work around."""


@dataclass
class Credentials:
    """How the loader gets its bearer token: a given token, client credentials, or (demo
    mode only) the password grant as ``admin``."""

    token: str | None = None
    username: str = "admin"
    password: str | None = None
    client_id: str = DEMO_CLI_CLIENT_ID
    client_secret: str | None = None


@dataclass
class LoadReport:
    """What a load did."""

    created: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    """Planned id (generator) → id the target assigned (same for institutions)."""
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds per phase: institutions, facilities (with pools and ledger), agreements."""
    skipped_reason: str | None = None
    history: Any = None
    """The ``HistoryImportReport`` when the history was imported too."""

    @property
    def ok(self) -> bool:
        return not self.failures


class _Token:
    def __init__(self, client: httpx.AsyncClient, credentials: Credentials) -> None:
        self.client = client
        self.credentials = credentials
        self._value = credentials.token
        self._expires = float("inf") if credentials.token else 0.0
        self._lock = asyncio.Lock()

    async def header(self, *, refresh: bool = False) -> dict[str, str]:
        if refresh and not self.credentials.token:
            self._expires = 0.0
        if self._value is None or time.monotonic() > self._expires - 60:
            async with self._lock:
                if self._value is None or time.monotonic() > self._expires - 60:
                    await self._fetch()
        return {"Authorization": f"Bearer {self._value}"}

    async def _fetch(self) -> None:
        c = self.credentials
        if c.client_secret:
            form = {
                "grant_type": "client_credentials",
                "client_id": c.client_id,
                "client_secret": c.client_secret,
            }
        else:
            form = {
                "grant_type": "password",
                "username": c.username,
                "password": c.password or "",
                "client_id": c.client_id,
            }
        resp = await self.client.post("/auth/token", data=form)
        if resp.status_code != 200:
            raise LoadError(
                f"no se obtuvo un token en /auth/token ({resp.status_code}): {resp.text[:200]}"
            )
        body = resp.json()
        self._value = body["access_token"]
        self._expires = time.monotonic() + float(body.get("expires_in", 300))


def _items(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("items", "results", "data"):
            if isinstance(body.get(key), list):
                return list(body[key])
    return []


class SeedLoader:
    """Posts one dataset to one Canaliza; see the module docstring."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        credentials: Credentials,
        *,
        concurrency: int = 8,
        progress: bool = True,
        bulk_credentials: Credentials | None = None,
    ) -> None:
        self.client = client
        self.token = _Token(client, credentials)
        # a service token for the roster's bulk path (None: one call per record)
        self.bulk = (
            SeedLoader(client, bulk_credentials, progress=False) if bulk_credentials else None
        )
        self.concurrency = max(1, concurrency)
        self.show_progress = progress
        self.report = LoadReport()
        self.paths: set[str] = set()

    # -- plumbing ---------------------------------------------------------------------

    async def discover(self) -> set[str]:
        """The API paths the target serves (from its public OpenAPI document)."""
        resp = await self.client.get("/openapi.json")
        if resp.status_code == 200:
            self.paths = set(resp.json().get("paths", {}))
        return self.paths

    def serves(self, path: str) -> bool:
        return not self.paths or path in self.paths

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        minimal: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One authenticated call: re-authenticates once on 401, retries 502–504 and
        transport errors, and retries a 422 with the contract's minimal body (first with its
        stable ``id``, then without)."""
        refreshed = False
        delay = 0.2
        for attempt in range(4):
            headers = await self.token.header(refresh=refreshed)
            content: bytes | None = None
            if body is not None:  # orjson: a history batch is ~1 MB of JSON
                content = orjson.dumps(body)
                headers = {**headers, "Content-Type": "application/json"}
            try:
                resp = await self.client.request(
                    method, path, content=content, params=params, headers=headers
                )
            except httpx.TransportError:
                if attempt == 3:
                    raise
                await asyncio.sleep(delay)
                delay *= 3
                continue
            if resp.status_code == 401 and not refreshed:
                refreshed = True
                continue
            if resp.status_code == 422 and minimal and body is not None:
                # the minimal body, keeping the stable id while the service takes it (the
                # agreements and history name records by it), then without it
                keep = MINIMAL_FIELDS[minimal]
                trimmed = {k: body[k] for k in (*keep, "id") if k in body}
                if trimmed == body:
                    trimmed = {k: body[k] for k in keep if k in body}
                if trimmed != body:
                    body = trimmed
                    continue
            if resp.status_code in RETRY_STATUS and attempt < 3:
                await asyncio.sleep(delay)
                delay *= 3
                continue
            return resp
        return resp

    async def list_all(self, path: str, page: int = 500) -> list[dict[str, Any]]:
        """Every item of a collection, following the ``X-Next-Cursor`` of a keyset list
        (ADR 0026), else ``limit``/``offset`` when honoured (a service that ignores them
        answers the same page again, which ends the walk)."""
        out: list[dict[str, Any]] = []
        offset = 0
        cursor: str | None = None
        while True:
            where = {"cursor": cursor} if cursor else {"offset": offset}
            resp = await self.call("GET", path, params={"limit": page, **where})
            if resp.status_code == 422:  # the service does not take these parameters
                resp = await self.call("GET", path)
                return _items(resp.json()) if resp.status_code == 200 else out
            if resp.status_code != 200:
                return out
            items = _items(resp.json())
            cursor = resp.headers.get(NEXT_CURSOR_HEADER)
            if cursor or where.get("cursor"):
                out.extend(items)
                if cursor:
                    continue
                return out
            if not items or (out and items[0].get("id") == out[0].get("id")):
                return out
            # a service may cap the page below ``page``: stop on an empty or repeated page
            out.extend(items)
            offset += len(items)

    def _fail(self, what: str, resp: httpx.Response) -> None:
        self.report.failures.append(f"{what}: {resp.status_code} {resp.text[:300]}")

    # -- the load -----------------------------------------------------------------------

    async def roster_is_empty(self) -> bool:
        """Whether the target holds no facility and no agreement yet."""
        for path in (f"{API}/facilities", f"{API}/agreements"):
            if self.serves(path):
                resp = await self.call("GET", path)
                if resp.status_code == 200 and _items(resp.json()):
                    return False
        return True

    async def load(self, dataset: Dataset) -> LoadReport:
        """Post the dataset (all but the referral history, see ``history.load_history``)."""
        started = time.perf_counter()
        if not self.paths:
            await self.discover()
        total = len(dataset.institutions) + len(dataset.facilities) + len(dataset.agreements)
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not self.show_progress,
            transient=False,
        )
        with progress:
            task = progress.add_task("Cargando datos sintéticos", total=total)

            def advance() -> None:
                progress.advance(task)

            facilities = (
                self._facilities_bulk
                if self.bulk is not None and self.serves(ROSTER_IMPORT_PATH)
                else self._facilities
            )
            for name, phase in (
                ("institutions", self._institutions),
                ("facilities", facilities),
                ("agreements", self._agreements),
                ("oversight", self._oversight),
            ):
                t0 = time.perf_counter()
                await phase(dataset, advance)
                self.report.phase_seconds[name] = time.perf_counter() - t0
        self.report.seconds = time.perf_counter() - started
        return self.report

    async def _oversight(self, dataset: Dataset, advance: Callable[[], None]) -> None:
        """SEGOB's roster as the seeds describe it: the facilities registered (submitted by
        the loader's administrator, reviewed with every checklist item met) and the visits
        made, each on its date. Skipped where the target serves neither; a facility already
        past "not submitted", or already visited, is left alone (idempotent)."""
        submit = f"{API}/facilities/{{facility_id}}/registration/submit"
        review = f"{API}/facilities/{{facility_id}}/registration/review"
        checklist_path = f"{API}/registration/checklist"
        if dataset.registrations and self.serves(submit) and self.serves(review):
            answer = await self.call("GET", checklist_path)
            items = [i["item"] for i in answer.json()] if answer.status_code == 200 else []

            async def register(row: dict[str, Any]) -> None:
                fid = self.report.ids.get(row["facility_id"], row["facility_id"])
                base = f"{API}/facilities/{fid}/registration"
                now = await self.call("GET", base)
                if now.status_code != 200 or now.json().get("registration_status") != (
                    "not_submitted"
                ):
                    self.report.skipped["registrations"] += 1
                    return
                sent = await self.call(
                    "POST", f"{base}/submit", body={"note": "Solicitud de registro (carga inicial)"}
                )
                checked = [{"item": code, "met": True} for code in items]
                done = (
                    sent.status_code == 200
                    and (
                        await self.call(
                            "POST",
                            f"{base}/review",
                            body={"outcome": "registered", "checklist": checked},
                        )
                    ).status_code
                    == 200
                )
                if done:
                    self.report.created["registrations"] += 1
                else:
                    self._fail(f"registro de la instalación {fid}", sent)

            await self._bounded([register(r) for r in dataset.registrations])
        elif dataset.registrations:
            self.report.warnings.append("el destino no sirve el registro de SEGOB; se omite")
        visits = f"{API}/visits"
        if not dataset.visits:
            return
        if not self.serves(visits):
            self.report.warnings.append("el destino no sirve las visitas de SEGOB; se omiten")
            return
        done_before: dict[str, set[str]] = {}
        for v in dataset.visits:
            fid = self.report.ids.get(v["facility_id"], v["facility_id"])
            if fid not in done_before:
                # The audit service learns of a facility from capacity's events: wait (a
                # bounded while) until its roster shows it, or the visit would be a 404.
                await self._until_on_roster(fid)
                listed = await self.call("GET", visits, params={"facility_id": fid})
                done_before[fid] = {
                    str(x.get("done_on")) for x in (listed.json() if listed.is_success else [])
                }
            if v["done_on"] in done_before[fid]:
                self.report.skipped["visits"] += 1
                continue
            body = {k: v[k] for k in ("done_on", "team", "findings")}
            made = await self.call("POST", visits, body={"facility_id": fid, **body})
            if made.status_code == 201:
                self.report.created["visits"] += 1
                done_before[fid].add(v["done_on"])
            else:
                self._fail(f"visita a la instalación {fid}", made)

    async def _until_on_roster(self, facility_id: str, seconds: float = 30.0) -> None:
        """Wait until SEGOB's roster (the audit service's projection) lists the facility."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if (await self.call("GET", f"{API}/roster/{facility_id}")).status_code == 200:
                return
            await asyncio.sleep(0.2)

    async def _bounded(self, jobs: list[Any]) -> None:
        semaphore = asyncio.Semaphore(self.concurrency)

        async def run(job: Any) -> None:
            async with semaphore:
                await job

        await asyncio.gather(*(run(j) for j in jobs))

    async def _institutions(self, dataset: Dataset, advance: Callable[[], None]) -> None:
        if self.bulk is not None and self.serves(INSTITUTIONS_IMPORT_PATH):
            await self._institutions_bulk(dataset, advance)
            return
        path = f"{API}/institutions"
        if not self.serves(path):
            self.report.warnings.append("el destino no sirve /institutions; se omiten")
            for inst in dataset.institutions:
                self.report.ids[inst["id"]] = inst["id"]
                advance()
            return
        existing = {i.get("id") for i in await self.list_all(path)}

        async def one(inst: dict[str, Any]) -> None:
            if inst["id"] in existing:
                self.report.ids[inst["id"]] = inst["id"]
                self.report.skipped["institutions"] += 1
            else:
                resp = await self.call("POST", path, body=dict(inst), minimal="institution")
                if resp.status_code in (200, 201):
                    got = str(resp.json().get("id", inst["id"]))
                    self.report.ids[inst["id"]] = got
                    self.report.created["institutions"] += 1
                    if got != inst["id"]:
                        self.report.warnings.append(
                            f"institución {inst['name']!r} recibió otro id ({got}); "
                            "el servicio no acepta ids estables"
                        )
                elif resp.status_code == 409:
                    self.report.ids[inst["id"]] = inst["id"]
                    self.report.skipped["institutions"] += 1
                else:
                    self._fail(f"institución {inst['name']!r}", resp)
            advance()

        # parents first: a regional office names the institution it belongs to
        await self._bounded([one(i) for i in dataset.institutions if not i.get("parent_id")])
        await self._bounded([one(i) for i in dataset.institutions if i.get("parent_id")])

    async def _institutions_bulk(self, dataset: Dataset, advance: Callable[[], None]) -> None:
        """The institutions through the referral service's bulk path, with their ids (one
        transaction per ``BULK_INSTITUTIONS``; the service skips the ids it already has)."""
        assert self.bulk is not None
        # parents first: a regional office's parent is stored by its batch or an earlier one
        ordered = sorted(dataset.institutions, key=lambda i: bool(i.get("parent_id")))
        for start in range(0, len(ordered), BULK_INSTITUTIONS):
            chunk = ordered[start : start + BULK_INSTITUTIONS]
            resp = await self.bulk.call(
                "POST", INSTITUTIONS_IMPORT_PATH, body={"institutions": [dict(i) for i in chunk]}
            )
            if resp.status_code != 200:
                self._fail(f"lote de instituciones ({len(chunk)})", resp)
            else:
                body = resp.json()
                self.report.created["institutions"] += body["created"]
                self.report.skipped["institutions"] += body["already_present"]
                for inst in chunk:
                    self.report.ids[inst["id"]] = inst["id"]
            for _ in chunk:
                advance()

    async def _facilities(self, dataset: Dataset, advance: Callable[[], None]) -> None:
        path = f"{API}/facilities"
        if not self.serves(path):
            self.report.warnings.append("el destino no sirve /facilities; se omiten")
            for _ in dataset.facilities:
                advance()
            return
        ids = self.report.ids
        existing = {
            (f.get("name"), f.get("operator_institution_id")): str(f.get("id"))
            for f in await self.list_all(path)
        }
        pools_by_facility: dict[str, list[dict[str, Any]]] = {}
        for p in dataset.pools:
            pools_by_facility.setdefault(p["facility_key"], []).append(p)

        async def set_status(fid: str, status: str, reason: str) -> bool:
            resp = await self.call(
                "PATCH",
                f"{path}/{fid}",
                body={"status": status, "reason": reason},
                minimal="status",
            )
            if resp.status_code >= 400:
                self._fail(f"estado {status} de la instalación {fid}", resp)
                return False
            return True

        async def one(fac: dict[str, Any]) -> None:
            try:
                await facility(fac)
            finally:
                advance()

        async def facility(fac: dict[str, Any]) -> None:
            body = dict(fac["body"])
            body["operator_institution_id"] = ids.get(
                body["operator_institution_id"], body["operator_institution_id"]
            )
            found = existing.get((body["name"], body["operator_institution_id"]))
            if found:
                ids[fac["id"]] = found
                self.report.skipped["facilities"] += 1
                return
            resp = await self.call("POST", path, body=body, minimal="facility")
            if resp.status_code not in (200, 201):
                self._fail(f"instalación {body['name']!r}", resp)
                return
            fid = str(resp.json()["id"])
            ids[fac["id"]] = fid
            self.report.created["facilities"] += 1
            if fac["status"] != "registered":
                await set_status(fid, "active", "Alta verificada (carga inicial)")
            for pool in pools_by_facility.get(fac["key"], []):
                await self._pool(fid, pool)
            if fac["status"] in ("suspended", "closed"):
                await set_status(fid, fac["status"], fac["status_reason"])

        await self._bounded([one(f) for f in dataset.facilities])

    async def _facilities_bulk(self, dataset: Dataset, advance: Callable[[], None]) -> None:
        """The roster through the capacity service's bulk path, ``BULK_FACILITIES`` at a time
        (final statuses, pools and initial occupancy in one transaction per batch)."""
        assert self.bulk is not None
        ids = self.report.ids
        pools_by_facility: dict[str, list[dict[str, Any]]] = {}
        for p in dataset.pools:
            pools_by_facility.setdefault(p["facility_key"], []).append(p)

        def item(fac: dict[str, Any]) -> dict[str, Any]:
            body = dict(fac["body"])
            body["operator_institution_id"] = ids.get(
                body["operator_institution_id"], body["operator_institution_id"]
            )
            return {
                "key": fac["id"],
                "facility": body,
                "status": fac["status"],
                "status_reason": fac["status_reason"],
                "pools": [
                    {
                        "key": p["id"],
                        "pool": p["body"],
                        "occupied": p["occupied"],
                        "out_of_service": p["out_of_service"],
                    }
                    for p in pools_by_facility.get(fac["key"], [])
                ],
            }

        async def batch(chunk: list[dict[str, Any]]) -> None:
            resp = await self.bulk.call(  # type: ignore[union-attr]
                "POST", ROSTER_IMPORT_PATH, body={"facilities": [item(f) for f in chunk]}
            )
            if resp.status_code != 200:
                self._fail(f"lote del padrón ({len(chunk)} instalaciones)", resp)
            else:
                body = resp.json()
                ids.update(body["facilities"])
                ids.update(body["pools"])
                self.report.created["facilities"] += body["created_facilities"]
                self.report.created["pools"] += body["created_pools"]
                self.report.created["ledger_entries"] += body["ledger_entries"]
                self.report.skipped["facilities"] += body["already_present"]
            for _ in chunk:
                advance()

        chunks = [
            dataset.facilities[i : i + BULK_FACILITIES]
            for i in range(0, len(dataset.facilities), BULK_FACILITIES)
        ]
        # two at a time: the database serialises writers anyway
        semaphore = asyncio.Semaphore(2)

        async def run(chunk: list[dict[str, Any]]) -> None:
            async with semaphore:
                await batch(chunk)

        await asyncio.gather(*(run(c) for c in chunks))

    async def _pool(self, facility_id: str, pool: dict[str, Any]) -> None:
        resp = await self.call(
            "POST", f"{API}/facilities/{facility_id}/pools", body=dict(pool["body"]), minimal="pool"
        )
        if resp.status_code not in (200, 201):
            self._fail(f"bolsa {pool['body']['name']!r}", resp)
            return
        pid = str(resp.json()["id"])
        self.report.ids[pool["id"]] = pid
        self.report.created["pools"] += 1
        for kind, beds, reason in (
            ("admit", pool["occupied"], "carga inicial"),
            ("out_of_service", pool["out_of_service"], "carga inicial: cama fuera de servicio"),
        ):
            if beds <= 0:
                continue
            entry: dict[str, Any] = {"kind": kind, "beds": beds, "reason": reason}
            if kind == "admit":  # occupied before the pool joined: not admissions of a period
                entry["opening_balance"] = True
            resp = await self.call("POST", f"{API}/pools/{pid}/ledger", body=entry)
            if resp.status_code == 422 and "opening_balance" in resp.text:
                # a target that knows only the contract's minimal ledger body
                entry.pop("opening_balance")
                resp = await self.call("POST", f"{API}/pools/{pid}/ledger", body=entry)
            if resp.status_code >= 400:
                self._fail(f"asiento {kind} de la bolsa {pid}", resp)
            else:
                self.report.created["ledger_entries"] += 1

    async def _agreements(self, dataset: Dataset, advance: Callable[[], None]) -> None:
        path = f"{API}/agreements"
        if not self.serves(path):
            self.report.warnings.append("el destino no sirve /agreements; se omiten")
            for _ in dataset.agreements:
                advance()
            return
        ids = self.report.ids
        existing = {a.get("number") for a in await self.list_all(path)}

        async def one(agr: dict[str, Any]) -> None:
            try:
                await agreement(agr)
            finally:
                advance()

        async def agreement(agr: dict[str, Any]) -> None:
            body = dict(agr["body"])
            if body["number"] in existing:
                self.report.skipped["agreements"] += 1
                return
            body["party_ids"] = [ids.get(p, p) for p in body["party_ids"]]
            resp = await self.call("POST", path, body=body, minimal="agreement")
            if resp.status_code not in (200, 201):
                self._fail(f"convenio {body['number']}", resp)
                return
            aid = str(resp.json()["id"])
            self.report.created["agreements"] += 1
            for party in agr["signed_by"]:
                resp = await self.call(
                    "POST", f"{path}/{aid}/sign", body={"institution_id": ids.get(party, party)}
                )
                if resp.status_code >= 400:
                    self._fail(f"firma del convenio {body['number']}", resp)
                else:
                    self.report.created["signatures"] += 1

        # each agreement's signatures one after the other (they read the agreement they
        # change); the agreements side by side (a round trip each on PostgreSQL)
        await self._bounded([one(agr) for agr in dataset.agreements])


async def load_dataset(
    dataset: Dataset,
    *,
    app: Any = None,
    base_url: str | None = None,
    credentials: Credentials | None = None,
    concurrency: int = 8,
    progress: bool = True,
    only_if_empty: bool = False,
    http_timeout: float = 60.0,
    bulk_credentials: Credentials | None = None,
) -> LoadReport:
    """Load ``dataset`` into ``app`` (in this process, lifespan already running) or the
    Canaliza at ``base_url``. With ``only_if_empty`` nothing happens when the roster
    already has facilities or agreements. With ``bulk_credentials`` (a service token) the
    facilities, pools and occupancy go through the capacity service's bulk path when the
    target serves it."""
    if (app is None) == (base_url is None):
        raise ValueError("give exactly one of app= or base_url=")
    transport = httpx.ASGITransport(app=app) if app is not None else None
    async with httpx.AsyncClient(
        transport=transport, base_url=base_url or INTERNAL_BASE_URL, timeout=http_timeout
    ) as client:
        loader = SeedLoader(
            client,
            credentials or Credentials(),
            concurrency=concurrency,
            progress=progress,
            bulk_credentials=bulk_credentials,
        )
        await loader.discover()
        if only_if_empty and not await loader.roster_is_empty():
            loader.report.skipped_reason = "el padrón ya tiene datos"
            return loader.report
        return await loader.load(dataset)
