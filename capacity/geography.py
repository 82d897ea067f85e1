"""Mexico's 32 entidades federativas as neighbours (INEGI codes), for "prefer nearby states".

A rescue operation prefers its own state, then the states that share a border with it,
then the states two borders away, and so on; ``hops`` is that distance (0 for the same
state). The table is public geography, written once and made symmetric on load.
"""

from __future__ import annotations

from collections import deque
from functools import cache

_BORDERS: dict[str, tuple[str, ...]] = {
    "01": ("14", "32"),
    "02": ("03", "26"),
    "03": ("02",),
    "04": ("23", "27", "31"),
    "05": ("08", "10", "19", "24", "32"),
    "06": ("14", "16"),
    "07": ("20", "27", "30"),
    "08": ("05", "10", "25", "26"),
    "09": ("15", "17"),
    "10": ("05", "08", "14", "18", "25", "32"),
    "11": ("14", "16", "22", "24", "32"),
    "12": ("15", "16", "17", "20", "21"),
    "13": ("15", "21", "22", "24", "29", "30"),
    "14": ("01", "06", "10", "11", "16", "18", "24", "32"),
    "15": ("09", "12", "13", "16", "17", "21", "22", "29"),
    "16": ("06", "11", "12", "14", "15", "22"),
    "17": ("09", "12", "15", "21"),
    "18": ("10", "14", "25", "32"),
    "19": ("05", "24", "28", "32"),
    "20": ("07", "12", "21", "30"),
    "21": ("12", "13", "15", "17", "20", "29", "30"),
    "22": ("11", "13", "15", "16", "24"),
    "23": ("04", "31"),
    "24": ("05", "11", "13", "14", "19", "22", "28", "30", "32"),
    "25": ("08", "10", "18", "26"),
    "26": ("02", "08", "25"),
    "27": ("04", "07", "30"),
    "28": ("19", "24", "30"),
    "29": ("13", "15", "21"),
    "30": ("07", "13", "20", "21", "24", "27", "28"),
    "31": ("04", "23"),
    "32": ("01", "05", "10", "11", "14", "18", "19", "24"),
}


def _symmetric() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {code: set(near) for code, near in _BORDERS.items()}
    for code, near in _BORDERS.items():
        for other in near:
            out.setdefault(other, set()).add(code)
    return {code: frozenset(near) for code, near in out.items()}


NEIGHBOURS: dict[str, frozenset[str]] = _symmetric()
FAR = 99  # a state with no land route (never happens among the 32) or no state given


@cache
def _distances(origin: str) -> dict[str, int]:
    seen = {origin: 0}
    queue = deque([origin])
    while queue:
        here = queue.popleft()
        for near in NEIGHBOURS.get(here, ()):
            if near not in seen:
                seen[near] = seen[here] + 1
                queue.append(near)
    return seen


def hops(origin: str | None, state: str) -> int:
    """Borders crossed from ``origin`` to ``state`` (0: the same state; ``FAR``: unknown)."""
    if origin is None:
        return 0
    return _distances(origin).get(state, FAR)
