"""SEGOB roster benchmark (prints figures; not a test).

Fills a temporary, migrated audit SQLite database with N facilities (3 pools each, a visit
and a follow-up action for one in three) and times, in-process, the roster with its flags
computed (``audit.roster.roster``) against a bare ``SELECT`` of the same facility rows (plain
rows, as the roster reads them) (the baseline), at 200 / 2,000 / 20,000 facilities. Also times
the HSDS directory export, one page of the paged roster (``audit.roster.roster_page``, 100
rows) at the start and 90 % of the way in against a bare keyset select of the same rows, a
page filtered by a flag, and the flag counts of a paged request (``audit.roster.count_flags``).

The rows are inserted directly, then given their kept columns by
``audit.roster_state.refresh`` as the projection and the migration's backfill would (ADR 0027).

    .venv/bin/python bench/roster.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(path: Path, n: int) -> None:
    from sqlalchemy import insert
    from sqlmodel import Session

    from audit.database import db
    from audit.models import FollowUpAction, RosterFacility, RosterPool, Visit
    from audit.roster_state import refresh
    from services.clock import utcnow

    db.configure(f"sqlite:///{path}")
    db.migrate()
    now = utcnow()
    facs, pools, visits, actions = [], [], [], []
    for i in range(n):
        fid = f"f{i}"
        facs.append(
            {"facility_id": fid, "name": f"Instalación {i}", "kind": "albergue",
             "operator_institution_id": f"i{i % 50}", "state": f"{i % 32 + 1:02d}",
             "municipality": "Centro", "services": ["legal"], "status": "active",
             "registration_status": "registered" if i % 2 else "not_submitted",
             "version": 1, "first_seen_at": now - timedelta(days=400)}
        )  # fmt: skip
        for p in range(3):
            pools.append(
                {"pool_id": f"{fid}-p{p}", "facility_id": fid, "total": 6, "occupied": 2,
                 "version": 1, "last_confirmed_at": now - timedelta(hours=i % 48)}
            )  # fmt: skip
        if i % 3 == 0:
            vid = f"v{i}"
            visits.append(
                {"id": vid, "facility_id": fid, "status": "done", "done_on": now.date(),
                 "team": ["Equipo"], "findings": "ok", "created_by": "bench",
                 "created_at": now, "updated_at": now, "version": 1}
            )  # fmt: skip
            actions.append(
                {"id": f"a{i}", "visit_id": vid, "facility_id": fid, "description": "x",
                 "due_on": now.date(), "created_by": "bench", "created_at": now}
            )  # fmt: skip
    with db.engine.begin() as conn:
        for model, rows in (
            (RosterFacility, facs),
            (RosterPool, pools),
            (Visit, visits),
            (FollowUpAction, actions),
        ):
            for start in range(0, len(rows), 5000):
                conn.execute(insert(model.__table__), rows[start : start + 5000])  # type: ignore[union-attr]
    with Session(db.engine) as session:  # what the projection keeps on each row
        refresh(session, [str(f["facility_id"]) for f in facs])
        session.commit()


def bare_page(session, columns, cursor: str | None, limit: int) -> list:
    """The baseline of a page: a bare keyset select of the same rows, no flags, no joins."""
    from sqlalchemy import func, select, tuple_

    from audit.models import RosterFacility
    from services.pages import decode_cursor

    order = (RosterFacility.state, func.coalesce(RosterFacility.name, ""),
             RosterFacility.facility_id)  # fmt: skip
    stmt = select(*columns).order_by(*order).limit(limit)
    if cursor:
        stmt = stmt.where(tuple_(*order) > tuple_(*decode_cursor(cursor, 3)))
    return list(session.execute(stmt))


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="200,2000,20000", help="facility counts")
    parser.add_argument("--page", type=int, default=100, help="rows per roster page")
    args = parser.parse_args()

    from sqlalchemy import select
    from sqlmodel import Session

    from audit.database import db
    from audit.directory import hsds_export
    from audit.models import RosterFacility
    from audit.roster import count_flags, roster, roster_page

    columns = list(RosterFacility.__table__.c)  # type: ignore[attr-defined]
    print("facilities  baseline_ms  roster_ms  ratio  flagged_never_visited  hsds_ms  "
          "page_bare_ms  page_first_ms  page_deep_ms  page_ratio  flag_page_ms  counts_ms")  # fmt: skip
    for n in (int(x) for x in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp) / "audit.db", n)
            with Session(db.engine) as s:
                base = timed(lambda s=s: list(s.execute(select(*columns))), args.repeat)
                full = timed(lambda s=s: roster(s), args.repeat)
                flagged = sum(1 for e in roster(s) if "never_visited" in e["flags"])
                hsds = timed(lambda s=s: hsds_export(s), args.repeat)
                # one page of 100 (the API's default) at the start and 90 % of the way in,
                # against a bare select of the same 100 rows by the same keyset
                deep_cursor = None
                walked = 0
                while walked < n * 0.9 - args.page:
                    _, deep_cursor = roster_page(s, limit=args.page, cursor=deep_cursor)
                    walked += args.page
                page_bare = timed(
                    lambda s=s, c=deep_cursor: bare_page(s, columns, c, args.page), args.repeat
                )
                first = timed(lambda s=s: roster_page(s, limit=args.page), args.repeat)
                deep = timed(
                    lambda s=s, c=deep_cursor: roster_page(s, limit=args.page, cursor=c),
                    args.repeat,
                )
                flagged_page = timed(
                    lambda s=s: roster_page(s, limit=args.page, flag="follow_up_overdue"),
                    args.repeat,
                )
                counts = timed(lambda s=s: count_flags(s), args.repeat)
            db.dispose()
        print(f"{n:>10}  {base:>11.1f}  {full:>9.1f}  {full / base:>5.1f}  "
              f"{flagged:>21}  {hsds:>7.1f}  {page_bare:>12.2f}  {first:>13.2f}  "
              f"{deep:>12.2f}  {max(first, deep) / page_bare:>10.1f}  {flagged_page:>12.2f}  "
              f"{counts:>9.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
