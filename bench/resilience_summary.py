"""The resilience summary: what the platform withstood, in figures.

Reads whichever result files the suite wrote in ``var/resilience/`` (``CANALIZA_RESILIENCE_DIR``
overrides it) and prints a Markdown table, also written to ``summary.md`` there:

- ``load.json`` (tests/resilience/load, bench/load_mixed.py): ``users``, ``requests``,
  ``errors`` and ``runs`` per target;
- ``faults.json`` (tests/resilience/faults): a list of ``{fault, injected, requests_lost,
  double_bookings, events_lost, events_duplicated, detail}``;
- ``fuzz.json``, ``invariants.json``, ``badinput.json``, ``leaks.json``
  (tests/resilience/input and tests/resilience/attacks).

    .venv/bin/python bench/resilience_summary.py [--check]

``--check`` exits 1 when a figure that must be zero is not (requests lost, double
bookings, leaks, load errors, fuzzing failures), or when a part has no result at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("load", "faults", "fuzz", "invariants", "badinput", "leaks")


def results_dir() -> Path:
    return Path(os.environ.get("CANALIZA_RESILIENCE_DIR") or ROOT / "var" / "resilience")


def read(directory: Path) -> dict[str, Any]:
    """Each part's JSON, or nothing for a part that did not run."""
    found: dict[str, Any] = {}
    for part in PARTS:
        path = directory / f"{part}.json"
        try:
            found[part] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return found


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def figures(found: dict[str, Any]) -> dict[str, Any]:
    """The headline figures (``None`` where the part did not run)."""
    load = found.get("load") or {}
    faults = found.get("faults") or []
    faults = faults if isinstance(faults, list) else []
    fuzz = found.get("fuzz") or {}
    invariants = found.get("invariants") or {}
    badinput = found.get("badinput") or {}
    leaks = found.get("leaks") or {}
    sequences = sum(_int(part.get("sequences")) for part in invariants.values())
    return {
        "load_users": load.get("users"),
        "load_requests": load.get("requests"),
        "load_errors": load.get("errors"),
        "load_targets": sorted((load.get("runs") or {}).keys()),
        "cases_per_service": fuzz.get("cases_per_service"),
        "fuzz_cases": fuzz.get("cases_total"),
        "fuzz_failures": fuzz.get("operations_failing"),
        "invariant_sequences": sequences if invariants else None,
        "bad_input_cases": badinput.get("cases"),
        "faults_injected": sum(_int(f.get("injected")) for f in faults) if faults else None,
        "fault_kinds": len(faults) if faults else None,
        "requests_lost": sum(_int(f.get("requests_lost")) for f in faults) if faults else None,
        "double_bookings": (
            sum(_int(f.get("double_bookings")) for f in faults) if faults else None
        ),
        "events_lost_or_duplicated": (
            sum(_int(f.get("events_lost")) + _int(f.get("events_duplicated")) for f in faults)
            if faults
            else None
        ),
        "leaks": (_int(leaks.get("leaks")) + _int(leaks.get("log_leaks"))) if leaks else None,
        "leak_responses_scanned": leaks.get("responses_scanned"),
        "leak_roles": leaks.get("roles"),
    }


MUST_BE_ZERO = (
    "load_errors",
    "requests_lost",
    "double_bookings",
    "events_lost_or_duplicated",
    "leaks",
    "fuzz_failures",
)


def _cell(value: Any) -> str:
    return "—" if value is None else str(value)


def render(f: dict[str, Any], found: dict[str, Any]) -> str:
    """The summary as Markdown."""

    def verdict(key: str) -> str:
        value = f[key]
        if value is None:
            return "no ejecutado"
        return "✔" if value == 0 else "✘"

    cases = f["cases_per_service"] or {}
    lines = [
        "# Canaliza — resumen de resiliencia",
        "",
        "| figura | valor | debe ser | resultado |",
        "|---|---|---|---|",
        f"| carga sostenida: usuarios simultáneos | {_cell(f['load_users'])} | 200 | "
        f"{'✔' if f['load_users'] and f['load_users'] >= 200 else 'no ejecutado'} |",
        f"| carga: peticiones ({', '.join(f['load_targets']) or '—'}) | "
        f"{_cell(f['load_requests'])} | | |",
        f"| carga: errores | {_cell(f['load_errors'])} | 0 | {verdict('load_errors')} |",
        f"| casos de fuzzing (OpenAPI, todos los roles) | {_cell(f['fuzz_cases'])} | | |",
        *(
            f"| — casos del servicio {name} | {count} | | |"
            for name, count in sorted(cases.items())
        ),
        f"| operaciones con fallos del fuzzing | {_cell(f['fuzz_failures'])} | 0 | "
        f"{verdict('fuzz_failures')} |",
        f"| secuencias de invariantes (hypothesis) | {_cell(f['invariant_sequences'])} | | |",
        f"| casos de entrada maliciosa (HTTP y WebSocket) | {_cell(f['bad_input_cases'])} | | |",
        f"| fallas inyectadas ({_cell(f['fault_kinds'])} tipos) | "
        f"{_cell(f['faults_injected'])} | | |",
        f"| peticiones perdidas | {_cell(f['requests_lost'])} | 0 | {verdict('requests_lost')} |",
        f"| dobles reservas | {_cell(f['double_bookings'])} | 0 | {verdict('double_bookings')} |",
        f"| eventos perdidos o duplicados | {_cell(f['events_lost_or_duplicated'])} | 0 | "
        f"{verdict('events_lost_or_duplicated')} |",
        f"| fugas (direcciones, nombres, tokens) en {_cell(f['leak_responses_scanned'])} "
        f"respuestas de {_cell(f['leak_roles'])} roles y en los registros | "
        f"{_cell(f['leaks'])} | 0 | {verdict('leaks')} |",
    ]
    faults = found.get("faults") or []
    if isinstance(faults, list) and faults:
        lines += [
            "",
            "## Fallas",
            "",
            "| falla | inyectadas | perdidas | detalle |",
            "|---|---|---|---|",
        ]
        for fault in faults:
            lines.append(
                f"| {fault.get('fault')} | {fault.get('injected')} | "
                f"{fault.get('requests_lost')} | {fault.get('detail', '')} |"
            )
    runs = (found.get("load") or {}).get("runs") or {}
    for target, run in runs.items():
        lines += [
            "",
            f"## Carga — {target}: {run.get('users')} usuarios, {run.get('requests')} "
            f"peticiones, {run.get('errors')} errores",
            "",
            "| operación | n | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|---|",
        ]
        for op, v in (run.get("per_operation") or {}).items():
            lines.append(
                f"| {op} | {v.get('count')} | {v.get('p50_ms')} | {v.get('p95_ms')} | "
                f"{v.get('p99_ms')} |"
            )
    missing = [p for p in PARTS if p not in found]
    if missing:
        lines += ["", f"Partes sin resultados: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail unless every zero is zero")
    args = parser.parse_args(argv)
    directory = results_dir()
    found = read(directory)
    f = figures(found)
    text = render(f, found)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.md").write_text(text)
    print(text)
    if args.check:
        bad = [k for k in MUST_BE_ZERO if f[k] != 0]
        if bad:
            print(f"not zero or not run: {', '.join(bad)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
