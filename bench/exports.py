"""Streamed exports against the in-memory build they replace (prints figures; not a test).

For a statistics report of N rows (CSV and XLSX) and an HSDS directory of N facilities (a
temporary, migrated audit SQLite database), each export is produced twice: built whole in
memory (``audit.exports.to_csv`` / ``to_xlsx``, ``audit.directory.hsds_export`` then
``json.dumps``, as before issue 18) and streamed chunk by chunk (``csv_chunks``,
``xlsx_chunks``, ``hsds_chunks``), the chunks dropped as a server sends them. Time is
measured without tracing; peak memory is what ``tracemalloc`` saw allocated during a
second run (the rows of a report are made as the writer asks, so only the writer counts).

    .venv/bin/python bench/exports.py [--rows 20000,100000] [--facilities 2000,20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audit import directory, exports  # noqa: E402
from bench.roster import build  # noqa: E402

BY = ["state", "period", "reason_code"]


def rows(n: int) -> Iterator[dict[str, Any]]:
    """An unmet-demand report by state, month and reason, ``n`` rows long."""
    for i in range(n):
        yield {
            "state": f"{i % 32 + 1:02d}",
            "period": f"{2000 + i // 12 % 100}-{i % 12 + 1:02d}",
            "reason_code": "no_beds_now" if i % 2 else "needs_not_met",
            "requests": 5 * (i % 40 + 1),
            "people": "<5" if i % 7 == 0 else 5 * (i % 9 + 1),
        }


def measure(produce: Callable[[], Iterable[bytes]]) -> tuple[float, float, int]:
    """Seconds, peak MiB and bytes of one export, its chunks dropped as they come."""
    start = time.perf_counter()
    size = sum(len(chunk) for chunk in produce())
    seconds = time.perf_counter() - start
    tracemalloc.start()
    try:
        for _ in produce():
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return seconds, peak / 2**20, size


Figures = tuple[float, float, int]


def line(what: str, n: int, whole: Figures, streamed: Figures) -> None:
    print(
        f"{what:<5} {n:>8,} {whole[2] / 2**20:>8.1f} MiB | in memory {whole[0]:>6.2f} s "
        f"{whole[1]:>7.1f} MiB | streamed {streamed[0]:>6.2f} s {streamed[1]:>7.1f} MiB"
    )


def report(n: int, labels: exports.Labels) -> None:
    whole = measure(lambda: [exports.to_csv("unmet-demand", list(rows(n)), BY, labels)])
    streamed = measure(lambda: exports.csv_chunks("unmet-demand", rows(n), BY, labels))
    line("csv", n, whole, streamed)
    whole = measure(lambda: [exports.to_xlsx("unmet-demand", list(rows(n)), BY, labels)])
    streamed = measure(lambda: exports.xlsx_chunks("unmet-demand", rows(n), BY, labels))
    line("xlsx", n, whole, streamed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", default="20000,100000")
    parser.add_argument("--facilities", default="2000,20000")
    args = parser.parse_args()
    labels = exports.Labels()
    print("format  rows/facs     size | built whole: time, peak | streamed: time, peak")
    for n in (int(x) for x in args.rows.split(",")):
        report(n, labels)

    from audit.database import db

    for n in (int(x) for x in args.facilities.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp) / "audit.db", n)
            with db.unit_of_work(write=False) as s:

                def built(s: Any = s) -> list[bytes]:
                    doc = directory.hsds_export(s)
                    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
                    return [text.encode()]

                whole = measure(built)
                streamed = measure(partial(directory.hsds_chunks, s))
            line("hsds", n, whole, streamed)
            db.dispose()


if __name__ == "__main__":
    main()
