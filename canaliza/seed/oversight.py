"""SEGOB's roster as the CNDH found it (003:517): a few facilities registered, fewer visited.

Drawn with a generator of its own, so that the rest of the dataset stays byte for byte what
it was for the same seed. Casa de las Mercedes, the contract's shelter, stays unregistered
and unvisited: its coordinator's story starts by asking for registration.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from canaliza import demo
from canaliza.seed import figures as fig

TEAM = ["Dirección General de Estrategias para la Atención de Derechos Humanos (SEGOB)"]
FINDINGS = (
    "Visita de supervisión: instalaciones y expedientes revisados; sin observaciones graves.",
    "Visita de supervisión: se recomienda actualizar el reglamento interno y la señalización.",
    "Visita de supervisión: personal suficiente; falta capacitación en atención a víctimas.",
)


def draw_oversight(
    scale: str, seed: int, reference: date, facilities: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The facilities registered on SEGOB's roster and the visits made, as
    ``({"facility_id"}, {"facility_id", "done_on", "team", "findings"})`` rows."""
    rng = random.Random(f"canaliza-seed:{scale}:{seed}:oversight")
    open_doors = sorted(
        (
            f["id"]
            for f in facilities
            if f["status"] == "active"
            and f["body"]["operator_institution_id"] != demo.CASA_MERCEDES.id
        ),
    )
    registered = sorted(rng.sample(open_doors, min(fig.ROSTER_REGISTERED, len(open_doors))))
    unregistered = [fid for fid in open_doors if fid not in set(registered)]
    visited = rng.sample(registered, min(fig.ROSTER_VISITED_REGISTERED, len(registered)))
    others = fig.ROSTER_VISITED_FACILITIES - len(visited)
    visited += rng.sample(unregistered, min(others, len(unregistered)))
    # every visited facility once, the rest of the visits repeat some of them
    total = sum(fig.ROSTER_VISITS_BY_YEAR)
    order = visited + [rng.choice(visited) for _ in range(max(0, total - len(visited)))]
    rng.shuffle(order)
    visits: list[dict[str, Any]] = []
    years = len(fig.ROSTER_VISITS_BY_YEAR)
    for n, count in enumerate(fig.ROSTER_VISITS_BY_YEAR):
        start = date(reference.year - years + n, 1, 1)
        for facility_id in order[:count]:
            done_on = min(start + timedelta(days=rng.randrange(365)), reference)
            visits.append(
                {
                    "facility_id": facility_id,
                    "done_on": done_on.isoformat(),
                    "team": list(TEAM),
                    "findings": rng.choice(FINDINGS),
                }
            )
        order = order[count:]
    visits.sort(key=lambda v: (v["done_on"], v["facility_id"]))
    return [{"facility_id": fid} for fid in registered], visits
