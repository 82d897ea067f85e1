"""Historical referrals as rows: exported to files and imported in bulk.

100,000 referrals through the lifecycle API would take hours and would replay every state
transition; statistics only need the rows. This module writes them under ``var/seed/``
(JSON lines, and a flat CSV of people for spreadsheets) and imports them into the referral
service in batches (``POST /api/v1/referrals/import``, service token only), then waits for
the audit trail to record the batches' events so the statistics count them (ADR 0007).
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import httpx
import orjson

from canaliza.seed.generator import Dataset
from canaliza.seed.loader import API, INTERNAL_BASE_URL, Credentials, SeedLoader
from services.settings import get_settings

PERSON_COLUMNS = (
    "referral_id",
    "pseudonym",
    "sex",
    "age",
    "role",
    "nationality",
    "state_of_origin",
    "vulnerable_groups",
    "offences",
)

Importer = Callable[[list[dict[str, Any]]], Awaitable[int]]
"""Takes one batch of referral rows, returns how many it stored."""


def default_dir() -> Path:
    """``var/seed/`` under the configured data directory."""
    return get_settings().data_dir / "seed"


def referral_rows(
    dataset: Dataset, facility_ids: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """The dataset's referrals as rows; ``facility_ids`` maps planned ids to loaded ones."""
    for r in dataset.referrals:
        if facility_ids and r["facility_id"] in facility_ids:
            yield {**r, "facility_id": facility_ids[r["facility_id"]]}
        else:
            yield r


def rows_in_id_order(
    dataset: Dataset, facility_ids: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """:func:`referral_rows` by referral id: the order a bulk import writes best (each batch
    one stretch of every index keyed by the referral; ADR 0034)."""
    return sorted(referral_rows(dataset, facility_ids), key=itemgetter("id"))


def person_rows(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One flat row per person, with the referral's id (lists joined by ``|``)."""
    for r in rows:
        for p in r["people"]:
            yield {
                "referral_id": r["id"],
                **{k: p[k] for k in PERSON_COLUMNS[1:7]},
                "vulnerable_groups": "S.I."
                if p["vulnerable_groups"] is None
                else "|".join(p["vulnerable_groups"]),
                "offences": "|".join(p["offences"]),
            }


def export_history(
    dataset: Dataset, out_dir: Path | None = None, *, facility_ids: dict[str, str] | None = None
) -> dict[str, Path]:
    """Write ``referrals-<scale>-<seed>.jsonl`` (in id order, so that ``canaliza referral
    import-history`` of it writes as the seed's batches do) and ``people-<scale>-<seed>.csv``."""
    out_dir = out_dir or default_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{dataset.scale}-{dataset.seed}"
    jsonl = out_dir / f"referrals-{stem}.jsonl"
    people = out_dir / f"people-{stem}.csv"
    with jsonl.open("w", encoding="utf-8") as fh:
        for row in rows_in_id_order(dataset, facility_ids):
            fh.write(orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode())
            fh.write("\n")
    with people.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=PERSON_COLUMNS)
        writer.writeheader()
        writer.writerows(person_rows(dataset.referrals))
    return {"referrals": jsonl, "people": people}


def read_history(path: Path) -> Iterator[dict[str, Any]]:
    """Read back an exported JSON-lines file."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield orjson.loads(line)


async def load_history(
    dataset: Dataset,
    *,
    out_dir: Path | None = None,
    facility_ids: dict[str, str] | None = None,
    importer: Importer | None = None,
    batch_size: int = 5_000,
    in_flight: int = 1,
) -> dict[str, Any]:
    """Export the historical referrals and, when an ``importer`` is given, store them
    (``HttpImporter`` posts them to the referral service), ``in_flight`` batches at a time.
    The answer says which (``"imported": None`` when nothing was stored) and how long the
    export took (``"export_seconds"``)."""
    started = time.perf_counter()
    paths = export_history(dataset, out_dir, facility_ids=facility_ids)
    export_seconds = time.perf_counter() - started
    imported: int | None = None
    if importer is not None:
        # In id order: each batch's rows then fall in one stretch of the referral's key and
        # of every index that starts with the referral's id (people, steps, obligations),
        # so a batch rewrites a few pages of each, not one page per row anywhere in them.
        rows = rows_in_id_order(dataset, facility_ids)
        batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
        slots = asyncio.Semaphore(max(1, in_flight))

        async def store(batch: list[dict[str, Any]]) -> int:
            async with slots:
                return await importer(batch)

        imported = sum(await asyncio.gather(*(store(b) for b in batches)))
    return {
        "paths": paths,
        "rows": len(dataset.referrals),
        "imported": imported,
        "export_seconds": export_seconds,
    }


IMPORT_PATH = f"{API}/referrals/import"
IMPORT_BATCH = 1_000
"""Referrals per import request: ~700 KB, under the kernel's 1 MiB request limit."""
IMPORT_IN_FLIGHT = 2
"""Import requests at a time: the service reads and validates one batch while the database
writes the other (each batch is still its own transaction; writers take turns)."""
AUDIT_EVENTS_PATH = f"{API}/audit/events"
HISTORY_EVENT = "referral.history.imported"


@dataclass
class HistoryImportReport:
    """What a history import did, with its time per phase."""

    imported: int = 0
    already_present: int = 0
    expired: int = 0
    batches: int = 0
    events: list[str] = field(default_factory=list)
    import_seconds: float = 0.0
    audit_seconds: float | None = None
    audit_recorded: bool | None = None
    failures: list[str] = field(default_factory=list)


class HttpImporter:
    """Posts batches of rows to the referral service's import endpoint (an ``Importer``).

    ``credentials`` must yield a service token (client credentials): writing the past is
    not for people. ``audit_credentials`` (a trail reader, e.g. ``admin`` in demo mode)
    let :meth:`wait_for_audit` see the trail.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        credentials: Credentials,
        *,
        audit_credentials: Credentials | None = None,
    ) -> None:
        self.loader = SeedLoader(client, credentials, progress=False)
        self.auditor = (
            SeedLoader(client, audit_credentials, progress=False) if audit_credentials else None
        )
        self.report = HistoryImportReport()
        self._audit_before: int | None = None
        self._first_sent: float | None = None

    async def audit_count(self) -> int | None:
        """How many history-import entries the audit trail holds (None: cannot tell)."""
        if self.auditor is None:
            return None
        resp = await self.auditor.call(
            "GET", AUDIT_EVENTS_PATH, params={"type": HISTORY_EVENT, "limit": 1}
        )
        if resp.status_code != 200:
            return None
        return int(resp.json().get("total", 0))

    async def start(self) -> None:
        self._audit_before = await self.audit_count()

    async def __call__(self, batch: list[dict[str, Any]]) -> int:
        if self._first_sent is None:
            self._first_sent = time.perf_counter()
        resp = await self.loader.call("POST", IMPORT_PATH, body={"referrals": batch})
        # wall time from the first request to the latest answer (batches may overlap)
        self.report.import_seconds = time.perf_counter() - self._first_sent
        if resp.status_code != 200:
            self.report.failures.append(f"lote de historial: {resp.status_code} {resp.text[:300]}")
            return 0
        body = resp.json()
        self.report.batches += 1
        self.report.imported += int(body["imported"])
        self.report.already_present += int(body["already_present"])
        self.report.expired += int(body["expired"])
        if body.get("event_id"):
            self.report.events.append(str(body["event_id"]))
        return int(body["imported"])

    async def wait_for_audit(self, limit_seconds: float = 600.0) -> bool | None:
        """Wait until the audit trail holds every batch event of this import (in one
        process, leaving before that would drop the events still on the in-process bus).
        ``None`` when the trail cannot be read."""
        if self._audit_before is None:
            return None
        started = time.perf_counter()
        wanted = self._audit_before + len(self.report.events)
        delay = 0.05
        while True:
            count = await self.audit_count()
            if count is None:
                return None
            if count >= wanted:
                self.report.audit_seconds = time.perf_counter() - started
                self.report.audit_recorded = True
                return True
            if time.perf_counter() - started > limit_seconds:
                self.report.audit_recorded = False
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def import_history(
    dataset: Dataset,
    *,
    credentials: Credentials,
    app: Any = None,
    base_url: str | None = None,
    audit_credentials: Credentials | None = None,
    facility_ids: dict[str, str] | None = None,
    out_dir: Path | None = None,
    batch_size: int = IMPORT_BATCH,
    in_flight: int = IMPORT_IN_FLIGHT,
    http_timeout: float = 300.0,
) -> tuple[dict[str, Any], HistoryImportReport]:
    """Export the history and import it into the referral service at ``app`` (in this
    process, lifespan running) or ``base_url``, ``in_flight`` batches at a time; then wait
    for the audit trail."""
    if (app is None) == (base_url is None):
        raise ValueError("give exactly one of app= or base_url=")
    transport = httpx.ASGITransport(app=app) if app is not None else None
    async with httpx.AsyncClient(
        transport=transport, base_url=base_url or INTERNAL_BASE_URL, timeout=http_timeout
    ) as client:
        importer = HttpImporter(client, credentials, audit_credentials=audit_credentials)
        await importer.start()
        result = await load_history(
            dataset,
            out_dir=out_dir,
            facility_ids=facility_ids,
            importer=importer,
            batch_size=batch_size,
            in_flight=in_flight,
        )
        if importer.report.events:
            await importer.wait_for_audit()
        return result, importer.report
