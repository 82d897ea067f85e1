"""National-scale seed benchmark (prints figures; not a test).

Loads the synthetic dataset (``--scale stress``: the national roster of 2,000 facilities
and 20,000 pools with 100,000 historical referrals; ``national`` is the same roster with the
history calibrated to the seeds, ~2,600 referrals) into the all-services app of this process on fresh SQLite
files (or PostgreSQL with ``--postgres URL``), and prints the seconds of every phase:
generation, start-up, institutions, the roster (facilities, pools and occupancy),
agreements, the history import and the audit trail catching up.

Baselines measured in the same run, on samples held back from the bulk paths:
- the roster one record per HTTP call (``POST /facilities``, ``PATCH`` status,
  ``POST /pools``, ``POST /ledger``) for ``--baseline-facilities`` facilities, against the
  bulk path's facilities per second;
- the history one referral per ``POST /referrals/import`` for ``--baseline-referrals``
  referrals, against the batched import's referrals per second (both with the loader's
  two requests in flight, so the ratio is the batching's alone; wall time).

    .venv/bin/python bench/seed_national.py [--scale stress|national|demo] [--referrals N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="stress", choices=("demo", "national", "stress"))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--referrals", type=int, default=None, help="override the history size")
    parser.add_argument("--baseline-facilities", type=int, default=20)
    parser.add_argument("--baseline-referrals", type=int, default=200)
    parser.add_argument(
        "--collector",
        default="tuned",
        choices=("tuned", "default"),
        help="the cyclic collector's thresholds: as `canaliza seed` sets them "
        "(services.app.COLLECTOR_THRESHOLDS) or CPython's defaults",
    )
    parser.add_argument(
        "--postgres",
        default=None,
        help="server URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres "
        "(a throwaway database is created on it and dropped afterwards)",
    )
    return parser.parse_args()


async def _run(args: argparse.Namespace) -> None:
    from canaliza.composition import build_app
    from canaliza.seed import Credentials, generate, import_history, load_dataset
    from canaliza.seed import service_credentials as service_creds
    from services.app import tune_collector
    from services.settings import get_settings

    if args.collector == "tuned":
        tune_collector()  # as `canaliza seed` does
    phases: dict[str, float] = {}
    loads = [_load("start")]
    cpu = {"start": time.process_time()}
    wall = t0 = time.perf_counter()
    full = generate(args.scale, args.seed, referrals=args.referrals)
    phases["generate"] = time.perf_counter() - t0

    # hold back samples for the one-call-at-a-time baselines
    nf, nr = args.baseline_facilities, args.baseline_referrals
    held_keys = {f["key"] for f in full.facilities[-nf:]}
    bulk_ids = {f["id"] for f in full.facilities[:-nf]}
    bulk = dataclasses.replace(
        full,
        facilities=full.facilities[:-nf],
        pools=[p for p in full.pools if p["facility_key"] not in held_keys],
        referrals=full.referrals[:-nr],
        # SEGOB's registrations and visits of the facilities loaded in bulk
        registrations=[r for r in full.registrations if r["facility_id"] in bulk_ids],
        visits=[v for v in full.visits if v["facility_id"] in bulk_ids],
    )
    sample_roster = dataclasses.replace(
        full,
        institutions=[],
        agreements=[],
        facilities=full.facilities[-nf:],
        pools=[p for p in full.pools if p["facility_key"] in held_keys],
        referrals=[],
        registrations=[],  # the baseline times the roster alone
        visits=[],
    )
    sample_history = dataclasses.replace(full, referrals=full.referrals[-nr:])

    get_settings().data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    app = build_app("all")
    async with app.router.lifespan_context(app):
        phases["startup"] = time.perf_counter() - t0
        admin = Credentials(username="admin", password=get_settings().demo_password)
        service = service_creds()
        assert service is not None, "no service credentials: is the auth service built in?"
        report = await load_dataset(
            bulk, app=app, credentials=admin, bulk_credentials=service, progress=False
        )
        assert not report.failures, report.failures[:5]
        phases.update(report.phase_seconds)
        loads.append(_load("roster loaded"))
        cpu["roster loaded"] = time.process_time()
        out = get_settings().data_dir / "seed-export"  # removed with the data directory
        exported, history = await import_history(
            bulk,
            app=app,
            credentials=service,
            audit_credentials=admin,
            facility_ids=report.ids,
            out_dir=out,
        )
        assert not history.failures, history.failures[:5]
        phases["history export (files)"] = exported["export_seconds"]
        phases["history import"] = history.import_seconds
        phases["audit trail catch-up"] = history.audit_seconds or 0.0
        wall = time.perf_counter() - wall
        loads.append(_load("history imported"))
        cpu["history imported"] = time.process_time()

        # baselines: one HTTP call per record
        t0 = time.perf_counter()
        base = await load_dataset(sample_roster, app=app, credentials=admin, progress=False)
        roster_one = time.perf_counter() - t0
        assert not base.failures, base.failures[:5]
        ids = {**report.ids, **base.ids}
        _, one = await import_history(
            sample_history,
            app=app,
            credentials=service,
            audit_credentials=admin,
            facility_ids=ids,
            out_dir=out,
            batch_size=1,
        )
        assert not one.failures, one.failures[:5]

    total = sum(phases.values())
    print(f"\nSeed benchmark — scale {args.scale}, seed {args.seed}, database "
          f"{'PostgreSQL' if args.postgres else 'SQLite (embedded)'}")  # fmt: skip
    print(f"  {len(full.facilities):,} facilities, {len(full.pools):,} pools, "
          f"{len(full.referrals):,} historical referrals")  # fmt: skip
    import gc

    print(f"  collector: {args.collector}, thresholds {gc.get_threshold()}")
    for name, seconds in phases.items():
        print(f"  {name:<24} {seconds:8.1f} s")
    print(f"  {'total':<24} {total:8.1f} s")
    print(f"  {'wall, start to trail':<24} {wall:8.1f} s   (what the user waits for)")
    loads.append(_load("end"))
    # CPU seconds of this process, every thread (the database server's apart): other jobs
    # on the machine move the wall time more than this
    print(
        f"  CPU of this process      {cpu['history imported'] - cpu['start']:8.1f} s   "
        f"(to the roster {cpu['roster loaded'] - cpu['start']:.1f} s, "
        f"history {cpu['history imported'] - cpu['roster loaded']:.1f} s)"
    )
    print("  load average (1, 5, 15 min): " + "; ".join(loads))
    bulk_fac = len(bulk.facilities) / max(report.phase_seconds.get("facilities", 0.0), 1e-9)
    one_fac = nf / roster_one
    bulk_ref = history.imported / max(history.import_seconds, 1e-9)
    one_ref = one.imported / max(one.import_seconds, 1e-9)
    print("\nBaselines (same run):")
    print(f"  roster, bulk path        {bulk_fac:10.1f} facilities/s")
    print(f"  roster, one call/record  {one_fac:10.1f} facilities/s   (ratio {bulk_fac / one_fac:.0f}×)")  # fmt: skip
    print(f"  history, batches of 1000 {bulk_ref:10.1f} referrals/s")
    print(f"  history, one per request {one_ref:10.1f} referrals/s   (ratio {bulk_ref / one_ref:.0f}×)")  # fmt: skip
    full_one = len(full.facilities) / one_fac + len(full.referrals) / one_ref
    print(f"  the whole load one call at a time would take ≈ {full_one / 60:.0f} min "
          f"(roster and history only)")  # fmt: skip


def _load(when: str) -> str:
    """The machine's load average now (other jobs move every figure: note it beside them)."""
    one, five, fifteen = os.getloadavg()
    return f"{when} {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    args = _args()
    data = tempfile.mkdtemp(prefix="canaliza-seed-bench-")
    os.environ["CANALIZA_DATA_DIR"] = data
    os.environ["CANALIZA_DEMO"] = "1"
    try:
        _with_database(args)
    finally:  # the SQLite files and exports of a national run take hundreds of MB
        shutil.rmtree(data, ignore_errors=True)


def _with_database(args: argparse.Namespace) -> None:
    if not args.postgres:
        asyncio.run(_run(args))
        return
    # a throwaway database on the given server (each service owns a schema in it)
    import uuid

    import sqlalchemy as sa

    name = f"canaliza_seed_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    os.environ["CANALIZA_DATABASE_URL"] = args.postgres.rsplit("/", 1)[0] + f"/{name}"
    try:
        asyncio.run(_run(args))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
