"""Historical referrals as rows: exported to files, loaded in bulk elsewhere.

100,000 referrals through the public HTTP API would take hours and would replay every
state transition; statistics only need the rows. This module writes them under
``var/seed/`` (JSON lines, and a flat CSV of people for spreadsheets).

``load_history`` is where the bulk path into the referral service plugs in: the referral
service (built in parallel) has no bulk-import endpoint yet, so today the function exports
the rows and hands them to an ``importer`` only when one is given.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from services.seed.generator import Dataset
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


def person_rows(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One flat row per person, with the referral's id (lists joined by ``|``)."""
    for r in rows:
        for p in r["people"]:
            yield {
                "referral_id": r["id"],
                **{k: p[k] for k in PERSON_COLUMNS[1:7]},
                "vulnerable_groups": "|".join(p["vulnerable_groups"]),
                "offences": "|".join(p["offences"]),
            }


def export_history(
    dataset: Dataset, out_dir: Path | None = None, *, facility_ids: dict[str, str] | None = None
) -> dict[str, Path]:
    """Write ``referrals-<scale>-<seed>.jsonl`` and ``people-<scale>-<seed>.csv``."""
    out_dir = out_dir or default_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{dataset.scale}-{dataset.seed}"
    jsonl = out_dir / f"referrals-{stem}.jsonl"
    people = out_dir / f"people-{stem}.csv"
    with jsonl.open("w", encoding="utf-8") as fh:
        for row in referral_rows(dataset, facility_ids):
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True))
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
                yield json.loads(line)


async def load_history(
    dataset: Dataset,
    *,
    out_dir: Path | None = None,
    facility_ids: dict[str, str] | None = None,
    importer: Importer | None = None,
    batch_size: int = 5_000,
) -> dict[str, Any]:
    """Export the historical referrals and, when an ``importer`` is given, store them.

    NOT YET WIRED: the referral service has no bulk-import path; until the lead connects one
    (e.g. a function writing the rows straight into the referral database, or a
    ``POST /api/v1/referrals:import`` endpoint), pass ``importer=None`` and only the export
    happens. The answer says which (``"imported": None`` when nothing was stored).
    """
    paths = export_history(dataset, out_dir, facility_ids=facility_ids)
    imported: int | None = None
    if importer is not None:
        imported = 0
        batch: list[dict[str, Any]] = []
        for row in referral_rows(dataset, facility_ids):
            batch.append(row)
            if len(batch) >= batch_size:
                imported += await importer(batch)
                batch = []
        if batch:
            imported += await importer(batch)
    return {"paths": paths, "rows": len(dataset.referrals), "imported": imported}
