"""The rescue-operation planner: many groups at once, each where its needs are met.

Pure functions over the search read model (``capacity.search``): nothing here reads or
writes the database. ``plan`` turns groups into candidate placements (``Pattern``: a way
to seat a whole group, or one unit of a split group, in one facility, found by the same
``place`` the availability search uses), then asks OR-Tools' CP-SAT solver for the choice
of candidates that places the most people within every pool's free beds, keeps groups
together (a split only when it places people that would otherwise stay out, in as few
parts as possible) and prefers the operation's state, then its neighbours (ADR 0020).
The solver runs under a time limit; with no solution by then, or a worse one than the
greedy first fit it was hinted with, the greedy first fit is the answer.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from ortools.sat.python import cp_model

from capacity.geography import hops
from capacity.search import (
    FacilityView,
    NeedsQ,
    PersonQ,
    PoolView,
    Snapshot,
    diagnose,
    person_fits,
    place,
    reserved_note,
)
from services.vocabulary import RegistrationStatus

log = logging.getLogger("canaliza.capacity.planner")

# The objective's weights: a person placed outweighs every preference; a split part costs
# more than the farthest whole placement; each border crossed and each bed kept for a need
# the group does not have costs a little.
PERSON = 100_000
SPLIT_PART = 5_000
HOP = 40
RESERVED_BED = 15
CANDIDATES = 12  # whole-group candidates per group (nearest first)
UNIT_CANDIDATES = 6  # candidates per unit of a group that may have to split


@dataclass(slots=True)
class GroupQ:
    """One family group of an operation: its people (indexes within the group) and needs."""

    index: int
    people: list[PersonQ]
    needs: NeedsQ

    @property
    def adults(self) -> list[PersonQ]:
        return [p for p in self.people if not p.is_child]

    @property
    def children(self) -> list[PersonQ]:
        return [p for p in self.people if p.is_child]

    def units(self) -> list[list[PersonQ]]:
        """The parts a split may make: the children stay with the first adult (the group's
        mother or father as listed first); every other adult is a part of one."""
        adults = self.adults
        if not adults:
            return []
        return [[adults[0], *self.children], *([a] for a in adults[1:])]


@dataclass(slots=True, eq=False)
class Pattern:
    """Seating some of a group's people in one facility: beds and people per pool."""

    facility: FacilityView
    beds: dict[str, int]
    people: dict[str, list[int]]
    cost: int
    reserved: list[str]

    @property
    def size(self) -> int:
        return sum(self.beds.values())


@dataclass(slots=True)
class Part:
    """A group's place in the plan: whole (``split`` False) or one part of a split."""

    group: int
    pattern: Pattern
    split: bool


@dataclass
class Plan:
    parts: list[Part]
    unplaced: dict[int, dict[str, Any]]
    solver: str  # "cp-sat optimal" | "cp-sat feasible" | "greedy fallback" | "empty"
    seconds: float = 0.0
    pools: set[str] = field(default_factory=set)  # every pool any candidate used

    def placed_people(self) -> int:
        return sum(part.pattern.size for part in self.parts)


@dataclass
class Problem:
    groups: list[GroupQ]
    whole: dict[int, list[Pattern]]
    units: dict[int, list[list[Pattern]]]
    free: dict[str, int]
    hint: dict[int, str] = field(default_factory=dict)  # group -> facility of the first fit


def _cost(fac: FacilityView, state: str | None, reserved: list[str], beds: int) -> int:
    return HOP * min(hops(state, fac.state), 20) + (RESERVED_BED * beds if reserved else 0)


def _pattern(
    fac: FacilityView,
    adults: list[PersonQ],
    children: list[PersonQ],
    needs: NeedsQ,
    state: str | None,
    free: dict[str, int] | None = None,
) -> Pattern | None:
    seated = place(fac, adults, children, needs, free)
    if seated is None:
        return None
    reserved = reserved_note(needs, seated)
    beds = {pool.id: len(idx) for pool, idx in seated}
    return Pattern(
        fac,
        beds,
        {pool.id: sorted(idx) for pool, idx in seated},
        _cost(fac, state, reserved, sum(beds.values())),
        reserved,
    )


def facilities_by_distance(
    model: Snapshot, state: str | None, *, registered_only: bool = False
) -> list[FacilityView]:
    """Active facilities, the operation's state first, then by borders crossed."""
    facs: Iterable[FacilityView] = model.ordered
    if registered_only:
        facs = (f for f in facs if f.registration_status == RegistrationStatus.REGISTERED)
    return sorted(facs, key=lambda f: hops(state, f.state))  # stable: keeps freshness order


def _could_seat(fac: FacilityView, people: list[PersonQ], needs: NeedsQ) -> bool:
    """A cheap first look: enough free beds and the facility meets the group's needs."""
    return fac.available >= len(people) and needs.facility_ok(fac)


class _Fitting:
    """The facilities that can seat a group (at positions 0..n-1) with every bed they have
    free now, nearest first, found lazily and once per kind of group: a facility that
    cannot seat it with all its beds cannot with fewer, so first fit only looks here."""

    def __init__(
        self,
        facs: list[FacilityView],
        adults: list[PersonQ],
        children: list[PersonQ],
        needs: NeedsQ,
        state: str | None,
    ) -> None:
        self.facs, self.adults, self.children = facs, adults, children
        self.needs, self.state = needs, state
        self.position = 0
        self.found: list[Pattern] = []

    def get(self, i: int) -> Pattern | None:
        people = self.adults + self.children
        while len(self.found) <= i and self.position < len(self.facs):
            fac = self.facs[self.position]
            self.position += 1
            if not _could_seat(fac, people, self.needs):
                continue
            pat = _pattern(fac, self.adults, self.children, self.needs, self.state)
            if pat is not None:
                self.found.append(pat)
        return self.found[i] if i < len(self.found) else None

    def first(self, limit: int) -> list[Pattern]:
        self.get(limit - 1)
        return self.found[:limit]

    def all(self) -> Iterator[Pattern]:
        i = 0
        while (pat := self.get(i)) is not None:
            yield pat
            i += 1


def _eligibility_classes(facs: list[FacilityView]) -> list[PoolView]:
    """One pool per distinct eligibility among pools with free beds (few: a quick test of
    whether anyone at all could take a person)."""
    seen: dict[tuple[Any, ...], PoolView] = {}
    for fac in facs:
        for pool in fac.pools.values():
            if pool.available > 0:
                k = (pool.sexes, pool.min_age, pool.max_age, pool.accepts_witnesses,
                     pool.accepts_indirect_victims)  # fmt: skip
                seen.setdefault(k, pool)
    return list(seen.values())


def build(
    model: Snapshot,
    groups: list[GroupQ],
    state: str | None,
    *,
    registered_only: bool = False,
    allow_split: bool = True,
) -> Problem:
    """Candidate placements of every group (whole) and of every unit of groups that have
    more than one (for a split), nearest first, against the model's free beds now."""
    facs = facilities_by_distance(model, state, registered_only=registered_only)
    whole: dict[int, list[Pattern]] = {}
    units: dict[int, list[list[Pattern]]] = {}
    cache: dict[tuple[Any, ...], _Fitting] = {}
    free: dict[str, int] = {}
    classes = _eligibility_classes(facs)
    child_limits = sorted({p.max_child_age for f in facs for p in f.pools.values()})

    fits_cache: dict[tuple[Any, ...], frozenset[int]] = {}

    def profile(p: PersonQ) -> tuple[Any, ...]:
        """People who fit the same eligibility classes are interchangeable for placing."""
        if p.is_child:
            # A child's age only matters against the pools' child-age limits.
            return ("child", None if p.age is None else bisect_left(child_limits, p.age))
        k = (p.sex, p.age, p.role)
        if k not in fits_cache:
            fits_cache[k] = frozenset(i for i, c in enumerate(classes) if person_fits(c, p))
        return (fits_cache[k], p.languages)

    def key(people: list[PersonQ], needs: NeedsQ) -> tuple[Any, ...]:
        return (tuple(profile(p) for p in people), needs)

    def fitting(people: list[PersonQ], needs: NeedsQ) -> _Fitting | None:
        adults = [p for p in people if not p.is_child]
        children = [p for p in people if p.is_child]
        if not adults or any(c.age is None for c in children):
            return None
        if any(not profile(person)[0] for person in adults):
            return None  # someone no pool with free beds takes
        # Positions, not indexes, make the cache key: re-number to the group's own.
        k = key(people, needs)
        if k not in cache:
            local = [PersonQ(i, p.sex, p.age, p.role, p.languages) for i, p in enumerate(people)]
            cache[k] = _Fitting(
                facs,
                [p for p in local if not p.is_child],
                [p for p in local if p.is_child],
                needs,
                state,
            )
        return cache[k]

    def seats(people: list[PersonQ], needs: NeedsQ, limit: int) -> list[Pattern]:
        fit = fitting(people, needs)
        return [] if fit is None else [_renumber(pat, people) for pat in fit.first(limit)]

    for group in groups:
        whole[group.index] = seats(group.people, group.needs, CANDIDATES)
    # First fit (each group in turn, whole, first facility that can take it with the beds
    # left) is a candidate too, and the solver's hint: the plan is never worse than it.
    left: dict[str, int] = {}
    hint: dict[int, str] = {}
    for group in groups:
        fit = fitting(group.people, group.needs)
        for pat in fit.all() if fit is not None else ():
            fac = pat.facility
            for pid, pool in fac.pools.items():
                left.setdefault(pid, pool.available)
            found = _pattern(fac, group.adults, group.children, group.needs, state, left)
            if found is None:
                continue
            for pid, n in found.beds.items():
                left[pid] -= n
            others = [p for p in whole[group.index] if p.facility.id != fac.id]
            whole[group.index] = [found, *others]
            hint[group.index] = fac.id
            break
    for group in groups:
        parts = group.units()
        if allow_split and len(parts) > 1:
            units[group.index] = [seats(unit, group.needs, UNIT_CANDIDATES) for unit in parts]
    for pats in [*whole.values(), *(p for us in units.values() for p in us)]:
        for pat in pats:
            for pid in pat.beds:
                free[pid] = pat.facility.pools[pid].available
    return Problem(groups, whole, units, free, hint)


def _renumber(pat: Pattern, people: list[PersonQ]) -> Pattern:
    """A cached pattern (positions 0..n-1) with the people's own indexes."""
    return Pattern(
        pat.facility,
        pat.beds,
        {pid: [people[i].index for i in idx] for pid, idx in pat.people.items()},
        pat.cost,
        pat.reserved,
    )


def greedy(problem: Problem) -> list[Part]:
    """First fit over the candidates, in group order, whole groups only, the first fit's
    facility first (the hint and the fallback when the solver has nothing better in time)."""
    left = dict(problem.free)
    out: list[Part] = []
    for group in problem.groups:
        first = problem.hint.get(group.index)
        pats = sorted(problem.whole.get(group.index, []), key=lambda p: p.facility.id != first)
        for pat in pats:
            if all(left[pid] >= n for pid, n in pat.beds.items()):
                for pid, n in pat.beds.items():
                    left[pid] -= n
                out.append(Part(group.index, pat, split=False))
                break
    return out


def _value(parts: list[Part]) -> int:
    split_groups: dict[int, set[str]] = {}
    total = 0
    for part in parts:
        total += PERSON * part.pattern.size - part.pattern.cost
        if part.split:
            split_groups.setdefault(part.group, set()).add(part.pattern.facility.id)
    return total - SPLIT_PART * sum(len(f) for f in split_groups.values())


def _ceiling(problem: Problem) -> int:
    """No plan can score more: every group with any candidate placed at its cheapest."""
    total = 0
    for group in problem.groups:
        size = len(group.people)
        options = [PERSON * size - p.cost for p in problem.whole.get(group.index, [])]
        units = problem.units.get(group.index)
        if units and all(units):
            cheapest = sum(min(p.cost for p in pats) for pats in units)
            options.append(PERSON * size - cheapest - SPLIT_PART)
        total += max(options, default=0)
    return total


def solve(problem: Problem, *, seconds: float, workers: int = 2) -> tuple[list[Part], str]:
    """The best choice of candidates CP-SAT finds within ``seconds``, or the greedy fit."""
    baseline = greedy(problem)
    if _value(baseline) >= _ceiling(problem):
        return baseline, "greedy optimal"  # nothing could do better: no need to search
    m = cp_model.CpModel()
    usage: dict[str, list[tuple[int, cp_model.IntVar]]] = {}
    objective: list[Any] = []
    whole_vars: dict[int, list[tuple[Pattern, cp_model.IntVar]]] = {}
    unit_vars: dict[int, list[list[tuple[Pattern, cp_model.IntVar]]]] = {}
    split_vars: dict[int, cp_model.IntVar] = {}
    hinted = {(part.group, id(part.pattern)) for part in baseline}

    def var(group: int, pat: Pattern, name: str) -> cp_model.IntVar:
        v = m.new_bool_var(name)
        for pid, n in pat.beds.items():
            usage.setdefault(pid, []).append((n, v))
        m.add_hint(v, (group, id(pat)) in hinted)
        return v

    for group in problem.groups:
        g = group.index
        size = len(group.people)
        pairs = [(p, var(g, p, f"w{g}_{i}")) for i, p in enumerate(problem.whole.get(g, []))]
        whole_vars[g] = pairs
        chosen = [v for _, v in pairs]
        objective += [(PERSON * size - p.cost) * v for p, v in pairs]
        unit_pats = problem.units.get(g)
        if unit_pats and all(unit_pats):
            s = m.new_bool_var(f"s{g}")
            m.add_hint(s, False)
            split_vars[g] = s
            chosen.append(s)
            objective.append(PERSON * size * s)
            per_unit = []
            used: dict[str, cp_model.IntVar] = {}
            for u, pats in enumerate(unit_pats):
                upairs = [(p, var(g, p, f"u{g}_{u}_{i}")) for i, p in enumerate(pats)]
                per_unit.append(upairs)
                # Every unit placed exactly when the group is split: everyone or no one.
                m.add(sum(v for _, v in upairs) == s)
                objective += [-p.cost * v for p, v in upairs]
                for p, v in upairs:
                    fid = p.facility.id
                    if fid not in used:
                        used[fid] = m.new_bool_var(f"f{g}_{fid}")
                        m.add_hint(used[fid], False)
                    m.add_implication(v, used[fid])
            unit_vars[g] = per_unit
            # The smallest split: each facility a part of the group lands in costs a part.
            objective += [-SPLIT_PART * f for f in used.values()]
        if chosen:
            m.add_at_most_one(chosen)
    for pid, uses in usage.items():
        m.add(sum(n * v for n, v in uses) <= problem.free[pid])
    m.maximize(sum(objective))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(seconds, 0.05)
    solver.parameters.num_workers = workers
    status = solver.solve(m)
    log.debug("cp-sat %s in %.2f s", solver.status_name(status), solver.wall_time)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return baseline, "greedy fallback"
    parts: list[Part] = []
    for g, pairs in whole_vars.items():
        parts += [Part(g, p, split=False) for p, v in pairs if solver.boolean_value(v)]
    for g, per_unit in unit_vars.items():
        if not solver.boolean_value(split_vars[g]):
            continue
        merged: dict[str, Pattern] = {}
        for upairs in per_unit:
            for p, v in upairs:
                if solver.boolean_value(v):
                    _merge(merged, p)
        parts += [Part(g, p, split=True) for p in merged.values()]
    if _value(parts) < _value(baseline):
        return baseline, "greedy fallback"
    return parts, "cp-sat optimal" if status == cp_model.OPTIMAL else "cp-sat feasible"


def _merge(merged: dict[str, Pattern], pat: Pattern) -> None:
    """Units of a split group that land in the same facility are one part there."""
    fid = pat.facility.id
    if fid not in merged:
        merged[fid] = Pattern(
            pat.facility, dict(pat.beds), {k: list(v) for k, v in pat.people.items()},
            pat.cost, list(pat.reserved),
        )  # fmt: skip
        return
    into = merged[fid]
    for pid, n in pat.beds.items():
        into.beds[pid] = into.beds.get(pid, 0) + n
        into.people[pid] = sorted(into.people.get(pid, []) + pat.people[pid])
    into.cost += pat.cost
    into.reserved = sorted(set(into.reserved) | set(pat.reserved))


def plan(
    model: Snapshot,
    groups: list[GroupQ],
    state: str | None,
    *,
    seconds: float = 1.5,
    registered_only: bool = False,
    lock: AbstractContextManager[Any] | None = None,
) -> tuple[Plan, Problem]:
    """Plan the operation against the model's free beds now. ``lock`` (the read model's)
    is held while the model is read, not while the solver runs."""
    started = time.perf_counter()
    with lock or nullcontext():
        problem = build(model, groups, state, registered_only=registered_only)
    budget = seconds - (time.perf_counter() - started)
    result = solve_plan(model, groups, state, problem, seconds=budget, lock=lock)
    result.seconds = time.perf_counter() - started
    return result, problem


def solve_plan(
    model: Snapshot,
    groups: list[GroupQ],
    state: str | None,
    problem: Problem,
    *,
    seconds: float,
    free: dict[str, int] | None = None,
    lock: AbstractContextManager[Any] | None = None,
) -> Plan:
    """Choose among the problem's candidates; ``free`` replaces the free beds (as read
    under the write lock, when the beds moved since the candidates were found)."""
    started = time.perf_counter()
    if free is not None:
        problem = Problem(
            problem.groups,
            problem.whole,
            problem.units,
            {pid: free.get(pid, 0) for pid in problem.free},
            problem.hint,
        )
    parts, how = solve(problem, seconds=seconds) if problem.free else ([], "empty")
    placed = {part.group for part in parts}
    with lock or nullcontext():
        unplaced = {
            g.index: _why(model, g, state, problem) for g in groups if g.index not in placed
        }
    return Plan(parts, unplaced, how, time.perf_counter() - started, set(problem.free))


def _why(model: Snapshot, group: GroupQ, state: str | None, problem: Problem) -> dict[str, Any]:
    """Why a group is left out: another group took the beds it could have had, or the
    search's own diagnosis (who cannot be taken, which need, no beds now)."""
    if problem.whole.get(group.index) or all(problem.units.get(group.index) or [[]]):
        return {
            "code": "operation_capacity",
            "reason": "No hay lugar: las camas que podían recibir a este grupo las ocupan "
            "otros grupos del operativo (se coloca primero a más personas); vuelva a "
            "planear con más estados o libere otras reservas.",
            "state": state,
        }
    reason = diagnose(model, group.adults, group.children, group.needs, state)
    if reason["code"] == "group_not_together":
        reason["reason"] += (
            "; tampoco se encontró una división que coloque a todas las personas del grupo"
        )
    return reason


def greedy_first_fit(
    model: Snapshot,
    groups: list[GroupQ],
    state: str | None,
    *,
    facs: list[FacilityView] | None = None,
) -> list[Part]:
    """The baseline the benchmark compares with: each group in turn, whole, in the first
    facility (operation's state first, then nearest) that can take it with what is left."""
    if facs is None:
        facs = facilities_by_distance(model, state)
    left: dict[str, int] = {}
    out: list[Part] = []
    for group in groups:
        adults, children = group.adults, group.children
        if not adults:
            continue
        for fac in facs:
            if not group.needs.facility_ok(fac):
                continue
            for pid, pool in fac.pools.items():
                left.setdefault(pid, pool.available)
            found = _pattern(fac, adults, children, group.needs, state, left)
            if found is not None:
                for pid, n in found.beds.items():
                    left[pid] -= n
                out.append(Part(group.index, found, split=False))
                break
    return out


def upper_bound(model: Snapshot, groups: list[GroupQ]) -> int:
    """People an operation could place at most: its people, capped by the free beds of
    every pool that at least one of its adults is eligible for."""
    people = [p for g in groups for p in g.people]
    kinds = {(p.sex, p.age, p.role) for p in people if not p.is_child}
    probes = [PersonQ(0, s, a, r) for s, a, r in kinds]
    beds = 0
    for fac in model.ordered:
        for pool in fac.pools.values():
            if pool.available > 0 and any(person_fits(pool, p) for p in probes):
                beds += pool.available
    return min(len(people), beds)
