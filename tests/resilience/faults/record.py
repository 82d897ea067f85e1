"""The faults' figures, for the resilience summary: ``var/resilience/faults.json``.

Each fault test records one entry (replacing the entry of the same name from an earlier
run) before it asserts, so the summary shows what was measured even when a test fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from services.settings import ROOT

RESULTS_DIR = Path(os.environ.get("CANALIZA_RESILIENCE_DIR", ROOT / "var" / "resilience"))


def record_fault(
    fault: str,
    *,
    injected: int,
    requests_lost: int,
    double_bookings: int = 0,
    events_lost: int = 0,
    events_duplicated: int = 0,
    detail: str = "",
    **extra: Any,
) -> dict[str, Any]:
    entry = {
        "fault": fault,
        "injected": injected,
        "requests_lost": requests_lost,
        "double_bookings": double_bookings,
        "events_lost": events_lost,
        "events_duplicated": events_duplicated,
        "detail": detail,
        **extra,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "faults.json"
    try:
        entries = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        entries = []
    entries = [e for e in entries if isinstance(e, dict) and e.get("fault") != fault]
    entries.append(entry)
    entries.sort(key=lambda e: str(e.get("fault")))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return entry
