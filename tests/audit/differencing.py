"""An attacker who differences published statistics (issue 20, item 6).

It reads what a suppressed view publishes for many disaggregations of every report and
writes down every linear identity that holds between those numbers whatever the data:

* a cell of ``by=A`` is the sum of the cells of ``by=A,d`` that refine it, when ``d`` is
  single-valued (a person has one sex, but may have two offences);
* the totals line of a query is the sum of its rows, and when all its variables are
  single-valued it is the same number (the whole population) in every such query;
* in referral-outcomes a row's ``total`` is its three cells, and equals ``people.referred``
  of the same row; ``people.admitted`` is civil society plus government.

Each published figure is read as the set of exact values it can stand for: an exact count
itself, "<5" one of 1-4, "*" anything; when the legend says counts are in bands of five,
"<5" is 0-4 and ``n`` is ``n`` to ``n + 4``. A listed row has at least one person in it. It then tightens every
interval through every identity until nothing changes (bounds propagation: "this cell is
at most the total's upper bound minus the other cells' lower bounds"), which finds every
"marginal minus the visible cells" recovery and chains of them across queries.

A "<5" cell is *recovered* when its interval shrinks to a single value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import combinations
from typing import Any

from audit.reports import REPORTS, UNSUPPRESSED, _counts

# The column that is at least 1 in every listed row.
PRESENT = {
    "people": "referred",
    "referral-outcomes": "total",
    "referral-times": "sent",
    "unmet-demand": "requests",
    "agreements-refused": "refusals",
    "urgent-without-agreement": "placements",
}
MULTI_VALUED = frozenset({"vulnerable_group", "offence"})
BIG = 10**9

Key = tuple[str, str, frozenset[tuple[str, str]] | tuple[str, ...]]
Fetch = Callable[[str, list[str] | None], dict[str, Any]]
Plan = Iterable[tuple[str, list[str] | None]]


def interval(value: Any, *, banded: bool) -> tuple[int, int]:
    """The exact values a published figure can stand for, as the legend tells them."""
    if value == "<5":
        return (0, 4) if banded else (1, 4)
    if value == "*" or not isinstance(value, int):
        return (0, BIG)
    return (value, value + 4) if banded else (value, value)


def queries(name: str, *, pairs: bool = True) -> list[list[str] | None]:
    dims = REPORTS[name].dimensions
    out: list[list[str] | None] = [None, *([d] for d in dims)]
    if pairs:
        out += [list(p) for p in combinations(dims, 2)]
    return out


class Attacker:
    """``banded``: the rule that publishes counts in bands of five and lists a row only when
    one of its counts is 5 or more (an unlisted combination stands for 0-4 in every count);
    otherwise the old rule, which lists every row someone is in (an unlisted one is 0).
    ``domain``: every value each variable takes (the attacker is told them all)."""

    def __init__(self, *, banded: bool, domain: dict[str, set[str]] | None = None) -> None:
        self.banded = banded
        self.domain = {d: set(v) for d, v in (domain or {}).items()}
        self.bounds: dict[Key, tuple[int, int]] = {}
        self.small: set[Key] = set()  # the cells published as "<5"
        self.equations: list[tuple[Key, list[Key]]] = []
        self.rows: dict[tuple[str, frozenset[str]], tuple[tuple[str, ...], list[dict[str, Any]]]]
        self.rows = {}

    def _see(self, key: Key, value: Any) -> None:
        lo, hi = interval(value, banded=self.banded)
        old = self.bounds.get(key, (0, BIG))
        self.bounds[key] = (max(lo, old[0]), min(hi, old[1]))
        if value == "<5":
            self.small.add(key)

    def _cell(self, name: str, column: str, row: dict[str, Any], by: Iterable[str]) -> Key:
        if name == "referral-outcomes" and column == "total":
            name, column = "people", "referred"  # the same people, counted twice
        return (name, column, frozenset((d, str(row[d])) for d in by))

    def _total(self, name: str, column: str, by: Iterable[str]) -> Key:
        if name == "referral-outcomes" and column == "total":
            name, column = "people", "referred"
        if set(by) & MULTI_VALUED:
            return (name, column, ("entries", *by))  # counts entries, not people
        return (name, column, frozenset())

    def _columns(self, name: str) -> list[str]:
        return _counts(name) + (["total"] if REPORTS[name].row_total else [])

    def read(self, name: str, body: dict[str, Any]) -> None:
        by = tuple(body["by"])
        self.rows[(name, frozenset(by))] = (by, body["rows"])
        for row in body["rows"]:
            for d in by:
                self.domain.setdefault(d, set()).add(str(row[d]))
            for c in self._columns(name):
                self._see(self._cell(name, c, row, by), row[c])
            if name in PRESENT and not self.banded:  # a row is listed when someone is in it
                key = self._cell(name, PRESENT[name], row, by)
                lo, hi = self.bounds[key]
                self.bounds[key] = (max(lo, 1), hi)
            if name == "referral-outcomes":
                parts = [self._cell(name, c, row, by) for c in _counts(name)]
                self.equations.append((self._cell(name, "total", row, by), parts))
                self.equations.append(
                    (self._cell("people", "admitted", row, by), parts[:2])
                )  # admitted or discharged: they reached a shelter
        for c in self._columns(name):
            self._see(self._total(name, c, by), body["totals"][c])
            if not self.banded:
                parts = [self._cell(name, c, r, by) for r in body["rows"]]
                self.equations.append((self._total(name, c, by), parts))
            elif len(by) == 1:
                self.equations.append((self._total(name, c, by), self._split(name, c, {}, by[0])))

    def _split(self, name: str, column: str, group: dict[str, str], d: str) -> list[Key]:
        """The cells refining ``group`` by ``d``: every value of ``d``; one not listed is 0-4."""
        by = [*group, d]
        parts = []
        for v in sorted(self.domain.get(d, set())):
            key = self._cell(name, column, {**group, d: v}, by)
            if key not in self.bounds:
                self.bounds[key] = (0, 4)
            parts.append(key)
        return parts

    def link(self) -> None:
        """Each query's cells are the sums of a finer query's cells (single-valued split)."""
        for (name, _), (fine, rows) in list(self.rows.items()):
            for d in fine:
                if d in MULTI_VALUED:
                    continue
                coarse = tuple(x for x in fine if x != d)
                groups: dict[frozenset[tuple[str, str]], list[dict[str, Any]]] = {}
                for r in rows:
                    groups.setdefault(frozenset((x, str(r[x])) for x in coarse), []).append(r)
                if self.banded and coarse and (name, frozenset(coarse)) in self.rows:
                    for r in self.rows[(name, frozenset(coarse))][1]:
                        groups.setdefault(frozenset((x, str(r[x])) for x in coarse), [])
                for c in self._columns(name):
                    for group, members in groups.items():
                        whole = (
                            self._cell(name, c, dict(group), coarse)
                            if coarse
                            else self._total(name, c, coarse)
                        )
                        if self.banded:
                            parts = self._split(name, c, dict(group), d)
                        else:
                            parts = [self._cell(name, c, r, fine) for r in members]
                        self.equations.append((whole, parts))

    def propagate(self) -> None:
        b = self.bounds
        for whole, parts in self.equations:
            for k in (whole, *parts):
                b.setdefault(k, (0, BIG))
        changed = True
        while changed:
            changed = False
            for whole, parts in self.equations:
                lo_sum = sum(b[p][0] for p in parts)
                hi_sum = min(BIG, sum(b[p][1] for p in parts))
                wl, wh = max(b[whole][0], lo_sum), min(b[whole][1], hi_sum)
                if (wl, wh) != b[whole]:
                    b[whole], changed = (wl, wh), True
                for p in parts:
                    pl, ph = b[p]
                    others_lo = lo_sum - pl
                    others_hi = BIG if hi_sum >= BIG or ph >= BIG else hi_sum - ph
                    new = (max(pl, wl - others_hi), min(ph, wh - others_lo))
                    if new != (pl, ph):
                        b[p], changed = new, True
                        lo_sum += new[0] - pl

    def recovered(self) -> dict[Key, int]:
        """The "<5" cells whose exact value the published figures pin down (a pinned 0 is
        a group nobody is in, which "<5" does not protect; see ``pinned``)."""
        return {k: v for k, v in self.pinned().items() if v > 0}

    def pinned(self) -> dict[Key, int]:
        return {k: self.bounds[k][0] for k in self.small if self.bounds[k][0] == self.bounds[k][1]}


def attack(
    fetch: Fetch, plan: Plan, *, banded: bool, domain: dict[str, set[str]] | None = None
) -> Attacker:
    attacker = Attacker(banded=banded, domain=domain)
    for name, by in plan:
        attacker.read(name, fetch(name, by))
    attacker.link()
    attacker.propagate()
    return attacker


def full_plan(*, pairs: bool = True) -> list[tuple[str, list[str] | None]]:
    """Every report a suppressed view gets, by nothing (its default), by each variable and by
    each pair of variables."""
    return [(n, by) for n in REPORTS if n not in UNSUPPRESSED for by in queries(n, pairs=pairs)]


REPORTED = [("people", ["sex"]), ("people", ["sex", "sending_institution_id"])]


def domain_of(bodies: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """Every value each variable takes, from exact (unsuppressed) answers."""
    out: dict[str, set[str]] = {}
    for body in bodies:
        for row in body["rows"]:
            for d in body["by"]:
                out.setdefault(d, set()).add(str(row[d]))
    return out
