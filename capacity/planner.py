"""The rescue-operation planner: many groups at once, each where its needs are met.

Pure functions over the search read model (``capacity.search``): nothing here reads or
writes the database. ``plan`` turns groups into candidate placements (``Pattern``: a way
to seat a whole group, or one unit of a split group, in one facility, found by the same
``place`` the availability search uses), then asks OR-Tools' CP-SAT solver for the choice
of candidates that places the most people within every pool's free beds, keeps groups
together (a split only when it places people that would otherwise stay out, in as few
parts as possible) and prefers the operation's state, then its neighbours (ADR 0020).
The whole plan (candidates, solver, reasons) runs under one time limit; first fit comes
first, so when time runs out the answer is the best found so far and says what was cut
short (``Plan.stopped``); with no solution by then, or a worse one than the greedy first
fit it was hinted with, the greedy first fit is the answer. A split shares a group's
children among its adults, never a child without an adult of the group, never a child
away from the adult she ``stays_with``. Assignments the prosecutor pinned (``pin``) are
checked here by the same rules and kept out of the solver's choices.
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
    children_fit,
    diagnose,
    person_fits,
    person_needs_ok,
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
MAX_SCHEMES = 4  # ways of dividing a group's children among its adults, at most
# Shares of the plan's time limit: finding candidates (first fit first) may use up to
# BUILD_SHARE of it, the reasons of unplaced groups keep REASONS_SHARE (at most
# REASONS_SECONDS) after the solver.
BUILD_SHARE = 0.75
REASONS_SHARE = 0.15
REASONS_SECONDS = 0.3


class OutOfTime(Exception):
    """The plan's deadline passed while candidates were being found."""


class PinError(ValueError):
    """A pinned assignment the plan cannot take (``field`` names it, ``message`` in Spanish)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.perf_counter() > deadline


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

    def schemes(self) -> list[list[list[PersonQ]]]:
        """The ways a split may divide the group, each part one adult with some of the
        children: never a child without an adult of the group, and a child the group binds
        to an adult (``stays_with``: her mother) always with her. Every other child goes
        with the first adult (then, in turn, with each of the next two), or the children
        are shared out among the adults as evenly as they go (eldest first)."""
        adults = self.adults
        if len(adults) < 2:
            return []
        bound: dict[int, list[PersonQ]] = {a.index: [] for a in adults}
        loose: list[PersonQ] = []
        for child in self.children:
            if child.stays_with in bound:
                bound[child.stays_with].append(child)
            else:
                loose.append(child)
        shares: list[dict[int, list[PersonQ]]] = [
            {a.index: loose} for a in adults[: MAX_SCHEMES - 1]
        ]
        if len(loose) > 1:
            even: dict[int, list[PersonQ]] = {a.index: [] for a in adults}
            for child in sorted(loose, key=lambda c: -(c.age or 0)):
                lightest = min(adults, key=lambda a: len(bound[a.index]) + len(even[a.index]))
                even[lightest.index].append(child)
            shares.append(even)
        out: list[list[list[PersonQ]]] = []
        seen: set[tuple[tuple[int, ...], ...]] = set()
        for share in shares:
            scheme = [[a, *bound[a.index], *share.get(a.index, [])] for a in adults]
            key = tuple(tuple(p.index for p in unit) for unit in scheme)
            if key not in seen:
                seen.add(key)
                out.append(scheme)
        return out


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
    solver: (
        str  # "cp-sat optimal" | "cp-sat feasible" | "greedy optimal" | "greedy fallback" | "empty"
    )
    seconds: float = 0.0
    pools: set[str] = field(default_factory=set)  # every pool any candidate used
    # The first stage the deadline cut short (None: none was): "first_fit" (later groups
    # were not looked at), "candidates", "splits", "solver" or "reasons".
    stopped: str | None = None

    def placed_people(self) -> int:
        return sum(part.pattern.size for part in self.parts)

    @property
    def optimal(self) -> bool:
        """Proven the best the candidates allow, with nothing cut short."""
        return self.stopped is None and self.solver in ("cp-sat optimal", "greedy optimal", "empty")


@dataclass
class Problem:
    groups: list[GroupQ]
    whole: dict[int, list[Pattern]]
    # group -> ways of splitting it (schemes) -> parts of the scheme -> their candidates
    units: dict[int, list[list[list[Pattern]]]]
    free: dict[str, int]
    hint: dict[int, str] = field(default_factory=dict)  # group -> facility of the first fit
    stopped: str | None = None  # the stage of ``build`` the deadline cut short
    examined: set[int] = field(default_factory=set)  # groups first fit looked at

    def subset(self, keep: set[int], free: dict[str, int] | None = None) -> Problem:
        """The same candidates for the groups in ``keep`` (and other free beds)."""
        return Problem(
            [g for g in self.groups if g.index in keep],
            self.whole,
            self.units,
            self.free if free is None else {pid: free.get(pid, 0) for pid in self.free},
            self.hint,
            self.stopped,
            self.examined,
        )


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
    return _seated(fac, seated, needs, state)


def _seated(
    fac: FacilityView,
    seated: list[tuple[PoolView, list[int]]],
    needs: NeedsQ,
    state: str | None,
) -> Pattern:
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
    cannot seat it with all its beds cannot with fewer, so first fit only looks here.
    Past ``deadline`` the scan raises :class:`OutOfTime` (what it found stays found)."""

    def __init__(
        self,
        facs: list[FacilityView],
        adults: list[PersonQ],
        children: list[PersonQ],
        needs: NeedsQ,
        state: str | None,
        deadline: float | None = None,
    ) -> None:
        self.facs, self.adults, self.children = facs, adults, children
        self.needs, self.state, self.deadline = needs, state, deadline
        self.position = 0
        self.found: list[Pattern] = []

    def get(self, i: int) -> Pattern | None:
        people = self.adults + self.children
        while len(self.found) <= i and self.position < len(self.facs):
            if self.position % 64 == 0 and _past(self.deadline):
                raise OutOfTime
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
    deadline: float | None = None,
    taken: dict[str, int] | None = None,
    pinned: Iterable[int] = (),
) -> Problem:
    """Candidate placements of every group (whole) and of every part of the ways it may be
    split, nearest first, against the model's free beds now (less ``taken``: beds pinned
    to other groups). First fit comes first, so when ``deadline`` passes the candidates
    found so far still hold the first-fit plan of every group looked at (``stopped`` says
    which stage was cut short)."""
    taken = taken or {}
    # A facility with no free bed seats no one: most of them when beds are scarce.
    facs = [
        f
        for f in facilities_by_distance(model, state, registered_only=registered_only)
        if f.available > 0
    ]
    whole: dict[int, list[Pattern]] = {g.index: [] for g in groups}
    units: dict[int, list[list[list[Pattern]]]] = {}
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
                deadline,
            )
        return cache[k]

    def seats(people: list[PersonQ], needs: NeedsQ, limit: int) -> list[Pattern]:
        fit = fitting(people, needs)
        return [] if fit is None else [_renumber(pat, people) for pat in fit.first(limit)]

    stage = "first_fit"
    hint: dict[int, str] = {}
    examined: set[int] = set()
    try:
        # First fit (each group in turn, whole, first facility that can take it with the
        # beds left) is a candidate too, and the solver's hint: the plan is never worse.
        left: dict[str, int] = {}
        skip = set(pinned)  # their beds are ``taken``; candidates only, for a re-plan
        for group in groups:
            if _past(deadline):
                raise OutOfTime
            if group.index in skip:
                examined.add(group.index)
                continue
            fit = fitting(group.people, group.needs)
            for pat in fit.all() if fit is not None else ():
                fac = pat.facility
                for pid, pool in fac.pools.items():
                    left.setdefault(pid, pool.available - taken.get(pid, 0))
                if sum(left[pid] for pid in fac.pools) < len(group.people):
                    continue  # its beds are taken by now
                found = _pattern(fac, group.adults, group.children, group.needs, state, left)
                if found is None:
                    continue
                for pid, n in found.beds.items():
                    left[pid] -= n
                whole[group.index] = [found]
                hint[group.index] = fac.id
                break
            examined.add(group.index)
        stage = "candidates"
        for group in groups:
            first = whole[group.index]
            others = [
                p
                for p in seats(group.people, group.needs, CANDIDATES)
                if not first or p.facility.id != first[0].facility.id
            ]
            whole[group.index] = first + others
        stage = "splits"
        for group in groups if allow_split else ():
            schemes = group.schemes()
            if whole[group.index]:
                # It may stay together: one way to split it is enough to fall back on
                # (fewer choices keep the solver fast; ADR 0020).
                schemes = schemes[:1]
            if schemes:
                units[group.index] = [
                    [seats(unit, group.needs, UNIT_CANDIDATES) for unit in scheme]
                    for scheme in schemes
                ]
        stopped = None
    except OutOfTime:
        stopped = stage
    for pats in [
        *whole.values(),
        *(p for schemes in units.values() for scheme in schemes for p in scheme),
    ]:
        for pat in pats:
            for pid in pat.beds:
                free[pid] = max(pat.facility.pools[pid].available - taken.get(pid, 0), 0)
    return Problem(groups, whole, units, free, hint, stopped, examined)


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
        for scheme in problem.units.get(group.index, []):
            if all(scheme):
                cheapest = sum(min(p.cost for p in pats) for pats in scheme)
                options.append(PERSON * size - cheapest - SPLIT_PART)
        total += max(options, default=0)
    return total


def solve(
    problem: Problem, *, seconds: float, workers: int = 2, deadline: float | None = None
) -> tuple[list[Part], str, bool]:
    """The best choice of candidates CP-SAT finds within ``seconds``, or the greedy fit;
    and whether time ran out (building the model past ``deadline``, or the solver's
    limit before it proved its plan the best)."""
    baseline = greedy(problem)
    if _value(baseline) >= _ceiling(problem):
        return baseline, "greedy optimal", False  # nothing could do better: no need to search
    m = cp_model.CpModel()
    usage: dict[str, list[tuple[int, cp_model.IntVar]]] = {}
    objective: list[Any] = []
    whole_vars: dict[int, list[tuple[Pattern, cp_model.IntVar]]] = {}
    # group -> its schemes: (the scheme's variable, per part: candidates and variables)
    scheme_vars: dict[int, list[tuple[cp_model.IntVar, list[list[tuple[Pattern, Any]]]]]] = {}
    hinted = {(part.group, id(part.pattern)) for part in baseline}

    def var(group: int, pat: Pattern, name: str) -> cp_model.IntVar:
        v = m.new_bool_var(name)
        for pid, n in pat.beds.items():
            usage.setdefault(pid, []).append((n, v))
        m.add_hint(v, (group, id(pat)) in hinted)
        return v

    for group in problem.groups:
        if _past(deadline):
            return baseline, "greedy fallback", True
        g = group.index
        size = len(group.people)
        pairs = [(p, var(g, p, f"w{g}_{i}")) for i, p in enumerate(problem.whole.get(g, []))]
        whole_vars[g] = pairs
        chosen = [v for _, v in pairs]
        objective += [(PERSON * size - p.cost) * v for p, v in pairs]
        used: dict[str, cp_model.IntVar] = {}
        for k, scheme in enumerate(problem.units.get(g, [])):
            if not all(scheme):
                continue
            s = m.new_bool_var(f"s{g}_{k}")
            m.add_hint(s, False)
            chosen.append(s)
            # Ties go to the first way (the children with the first adult listed).
            objective.append((PERSON * size - k) * s)
            per_unit = []
            for u, pats in enumerate(scheme):
                upairs = [(p, var(g, p, f"u{g}_{k}_{u}_{i}")) for i, p in enumerate(pats)]
                per_unit.append(upairs)
                # Every part placed exactly when the group is split this way: all or none.
                m.add(sum(v for _, v in upairs) == s)
                objective += [-p.cost * v for p, v in upairs]
                for p, v in upairs:
                    fid = p.facility.id
                    if fid not in used:
                        used[fid] = m.new_bool_var(f"f{g}_{fid}")
                        m.add_hint(used[fid], False)
                    m.add_implication(v, used[fid])
            scheme_vars.setdefault(g, []).append((s, per_unit))
        # The smallest split: each facility a part of the group lands in costs a part.
        objective += [-SPLIT_PART * f for f in used.values()]
        if chosen:
            m.add_at_most_one(chosen)
    for pid, uses in usage.items():
        m.add(sum(n * v for n, v in uses) <= problem.free[pid])
    m.maximize(sum(objective))
    if deadline is not None:
        seconds = min(seconds, deadline - time.perf_counter())
    if seconds < 0.02:
        return baseline, "greedy fallback", True
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = workers
    # The hint (first fit) is a whole solution: without presolve the solver starts from it
    # at once, which under a tight limit on a loaded machine matters more than presolve's
    # reductions (bench/operations_plan.py).
    solver.parameters.cp_model_presolve = False
    status = solver.solve(m)
    log.debug("cp-sat %s in %.2f s", solver.status_name(status), solver.wall_time)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return baseline, "greedy fallback", True
    parts: list[Part] = []
    for g, pairs in whole_vars.items():
        parts += [Part(g, p, split=False) for p, v in pairs if solver.boolean_value(v)]
    for g, schemes in scheme_vars.items():
        for s, per_unit in schemes:
            if not solver.boolean_value(s):
                continue
            merged: dict[str, Pattern] = {}
            for upairs in per_unit:
                for p, v in upairs:
                    if solver.boolean_value(v):
                        _merge(merged, p)
            parts += [Part(g, p, split=True) for p in merged.values()]
    optimal = status == cp_model.OPTIMAL
    if _value(parts) < _value(baseline):
        return baseline, "greedy fallback", not optimal
    return parts, "cp-sat optimal" if optimal else "cp-sat feasible", not optimal


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


def beds_of(parts: Iterable[Part]) -> dict[str, int]:
    """Beds per pool the parts take."""
    need: dict[str, int] = {}
    for part in parts:
        for pid, beds in part.pattern.beds.items():
            need[pid] = need.get(pid, 0) + beds
    return need


def plan(
    model: Snapshot,
    groups: list[GroupQ],
    state: str | None,
    *,
    seconds: float = 1.5,
    registered_only: bool = False,
    lock: AbstractContextManager[Any] | None = None,
    pinned: dict[int, list[Part]] | None = None,
    leave: frozenset[int] = frozenset(),
) -> tuple[Plan, Problem]:
    """Plan the operation against the model's free beds now, all of it within ``seconds``
    (finding candidates, solving and explaining; ADR 0020). ``pinned`` groups keep the
    parts the prosecutor chose (their beds are not offered to others), groups in ``leave``
    stay unplaced; candidates are found for pinned groups too, so a pinned group whose
    beds went can be planned again. ``lock`` (the read model's) is held while the model
    is read, not while the solver runs."""
    started = time.perf_counter()
    pinned = pinned or {}
    with lock or nullcontext():
        problem = build(
            model,
            [g for g in groups if g.index not in leave],
            state,
            registered_only=registered_only,
            deadline=started + seconds * BUILD_SHARE,
            taken=beds_of(p for parts in pinned.values() for p in parts),
            pinned=pinned,
        )
    budget = seconds - (time.perf_counter() - started)
    result = solve_plan(
        model, groups, state, problem, seconds=budget, lock=lock, pinned=pinned, leave=leave
    )
    result.seconds = time.perf_counter() - started
    return result, problem


LEFT_UNPLACED = {
    "code": "left_unplaced",
    "reason": "Sin lugar por decisión de quien ajustó el plan: el grupo no se aparta en este "
    "operativo.",
}
PINNED_GONE = (
    "; las camas elegidas al ajustar el plan se ocuparon mientras tanto y no se encontró otro lugar"
)


def solve_plan(
    model: Snapshot,
    groups: list[GroupQ],
    state: str | None,
    problem: Problem,
    *,
    seconds: float,
    free: dict[str, int] | None = None,
    lock: AbstractContextManager[Any] | None = None,
    pinned: dict[int, list[Part]] | None = None,
    leave: frozenset[int] = frozenset(),
    lost: frozenset[int] = frozenset(),
) -> Plan:
    """Choose among the problem's candidates for every group neither ``pinned`` nor in
    ``leave``; ``free`` replaces the free beds (as read under the write lock, less the
    pinned ones, when the beds moved since the candidates were found). ``lost``: pinned
    groups whose beds went, planned again here. Unplaced groups are explained until the
    deadline, then briefly."""
    started = time.perf_counter()
    deadline = started + seconds
    pinned = pinned or {}
    keep = {g.index for g in groups if g.index not in pinned and g.index not in leave}
    sub = problem.subset(keep, free)
    reserve = min(seconds * REASONS_SHARE, REASONS_SECONDS)
    stopped = problem.stopped
    if sub.free:
        parts, how, late = solve(sub, seconds=seconds - reserve, deadline=deadline - reserve)
        if late and stopped is None:
            stopped = "solver"
    else:
        parts, how = [], "empty"
    parts = [p for g in sorted(pinned) for p in pinned[g]] + parts
    placed = {part.group for part in parts}
    unplaced: dict[int, dict[str, Any]] = {}
    memo: dict[Any, dict[str, Any]] = {}
    slowest = 0.0  # the longest a reason took: none is begun that would end past the deadline
    with lock or nullcontext():
        for g in groups:
            if g.index in leave:
                unplaced[g.index] = {**LEFT_UNPLACED, "state": state}
            elif g.index not in placed:
                begun = time.perf_counter()
                brief = begun + slowest > deadline
                if brief and stopped is None:
                    stopped = "reasons"
                why = _why(model, g, state, sub, memo, brief=brief)
                slowest = max(slowest, time.perf_counter() - begun)
                if g.index in lost:
                    why = {**why, "reason": why["reason"].rstrip(".") + PINNED_GONE + "."}
                unplaced[g.index] = why
    pools = set(problem.free) | set(beds_of(parts))
    return Plan(parts, unplaced, how, time.perf_counter() - started, pools, stopped)


def _why(
    model: Snapshot,
    group: GroupQ,
    state: str | None,
    problem: Problem,
    memo: dict[Any, dict[str, Any]],
    *,
    brief: bool = False,
) -> dict[str, Any]:
    """Why a group is left out: the deadline came before it was looked at, another group
    took the beds it could have had, or the search's own diagnosis (who cannot be taken,
    which need, no beds now; ``brief``: past the deadline, no diagnosis)."""
    if problem.stopped == "first_fit" and group.index not in problem.examined:
        return {
            "code": "operation_stopped",
            "reason": "Sin lugar por ahora: el plan se detuvo al agotarse su tiempo antes de "
            "buscar lugar para este grupo; vuelva a planear o divida el operativo.",
            "state": state,
        }
    schemes = problem.units.get(group.index, [])
    if problem.whole.get(group.index) or any(all(s) for s in schemes):
        return {
            "code": "operation_capacity",
            "reason": "No hay lugar: las camas que podían recibir a este grupo las ocupan "
            "otros grupos del operativo (se coloca primero a más personas); vuelva a "
            "planear con más estados o libere otras reservas.",
            "state": state,
        }
    if brief:
        return {
            "code": "no_place_found",
            "reason": "No hay lugar: ninguna instalación revisada puede recibir al grupo completo "
            "con las camas libres ahora, ni dividido (el detalle por persona no se calculó "
            "para no pasar el tiempo del plan).",
            "state": state,
        }
    key = (tuple((p.sex, p.age, p.role, p.languages) for p in group.people), group.needs)
    if key not in memo:
        reason = diagnose(model, group.adults, group.children, group.needs, state)
        if reason["code"] == "group_not_together":
            reason["reason"] += (
                "; tampoco se encontró una división que coloque a todas las personas del grupo"
            )
        memo[key] = reason
    return dict(memo[key])


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


@dataclass(frozen=True, slots=True)
class PinQ:
    """An assignment the prosecutor chose (or kept) for one group, or one part of it."""

    group: int
    facility_id: str
    allocations: list[tuple[str, int, list[int] | None]]  # pool, beds, people (or None)
    split: bool = False


def pin(
    model: Snapshot,
    groups: list[GroupQ],
    pins: list[PinQ],
    state: str | None,
    *,
    registered_only: bool = False,
) -> dict[int, list[Part]]:
    """The pinned assignments as parts of the plan, checked against every rule a plan
    keeps (eligibility, needs, children with an adult of the group in their pool, a child
    bound to her mother in her part, one bed per person), free beds aside: those are
    checked when the beds are held. Raises :class:`PinError` naming the field."""
    by_group: dict[int, list[tuple[int, PinQ]]] = {}
    for i, p in enumerate(pins):
        if not 0 <= p.group < len(groups):
            raise PinError(
                f"assignments[{i}].group",
                f"El grupo {p.group} no existe en el operativo: los grupos van del 0 al "
                f"{len(groups) - 1}.",
            )
        by_group.setdefault(p.group, []).append((i, p))
    out: dict[int, list[Part]] = {}
    for g, items in by_group.items():
        group = groups[g]
        if len(items) > 1 and not all(p.split for _, p in items):
            raise PinError(
                f"assignments[{items[1][0]}].group",
                f"El grupo {g} aparece más de una vez en las asignaciones; sólo las partes de "
                "un grupo dividido (split) pueden repetirlo.",
            )
        part_of: dict[int, int] = {}
        parts = [_pin_part(model, group, i, p, part_of, state, registered_only) for i, p in items]
        first = items[0][0]
        missing = sorted(set(range(len(group.people))) - set(part_of))
        if missing:
            raise PinError(
                f"assignments[{first}].allocations",
                f"Las camas asignadas al grupo {g} dejan fuera a la(s) persona(s) "
                f"{', '.join(str(i + 1) for i in missing)}: asigne cama a cada persona del "
                "grupo, o déjelo sin lugar.",
            )
        for child in group.children:
            mother = child.stays_with
            if mother is not None and part_of.get(mother) != part_of.get(child.index):
                raise PinError(
                    f"assignments[{first}].allocations",
                    f"La persona {child.index + 1} del grupo {g} debe quedarse con la persona "
                    f"{mother + 1} (su madre o padre): no pueden ir en partes distintas.",
                )
        out[g] = parts
    return out


def _pin_part(
    model: Snapshot,
    group: GroupQ,
    i: int,
    p: PinQ,
    part_of: dict[int, int],
    state: str | None,
    registered_only: bool,
) -> Part:
    """One pinned assignment checked and seated (``part_of``: person -> pin, filled in)."""
    at = f"assignments[{i}]"
    g, needs = group.index, group.needs
    fac = model.facilities.get(p.facility_id)
    if fac is None or (
        registered_only and fac.registration_status != RegistrationStatus.REGISTERED
    ):
        raise PinError(
            f"{at}.facility_id",
            f"La instalación «{p.facility_id}» no existe o no puede recibir canalizaciones ahora.",
        )
    misses = needs.facility_misses(fac)
    if misses:
        wanted = needs.labels()
        what = ", ".join(wanted.get(code, code) for code in misses)
        raise PinError(
            f"{at}.facility_id",
            f"{fac.name} no cumple lo que necesita el grupo {g}: {what}.",
        )
    for j, (pid, _beds, _people) in enumerate(p.allocations):
        if pid not in fac.pools:
            raise PinError(
                f"{at}.allocations[{j}].pool_id",
                f"El lugar «{pid}» no existe en {fac.name}.",
            )
    named = [people for _, _, people in p.allocations if people is not None]
    if not named:
        if p.split:
            raise PinError(
                f"{at}.allocations",
                "Una parte de un grupo dividido (split) debe decir quiénes van en cada lugar "
                "(people).",
            )
        beds = sum(b for _, b, _ in p.allocations)
        if beds != len(group.people):
            raise PinError(
                f"{at}.allocations",
                f"Se asignaron {beds} cama(s) al grupo {g}, de {len(group.people)} persona(s): "
                "una cama por persona.",
            )
        limit = {pid: 0 for pid in fac.pools}
        for pid, b, _ in p.allocations:
            limit[pid] += b
        seated = place(fac, group.adults, group.children, needs, limit)
        if seated is None:
            raise PinError(
                f"{at}.allocations",
                f"Los lugares asignados al grupo {g} en {fac.name} no pueden recibir a todas "
                "sus personas (sexo, edad, papel, necesidades, o niñas y niños junto a una "
                "persona adulta del grupo).",
            )
        for person in group.people:
            part_of[person.index] = i
        return Part(g, _seated(fac, seated, needs, state), split=False)
    if len(named) != len(p.allocations):
        raise PinError(
            f"{at}.allocations",
            "Diga quiénes van en cada lugar (people) en todos los lugares de la asignación, "
            "o en ninguno.",
        )
    seats: list[tuple[PoolView, list[int]]] = []
    for j, (pid, beds, people) in enumerate(p.allocations):
        here = f"{at}.allocations[{j}]"
        assert people is not None
        if beds != len(people):
            raise PinError(
                f"{here}.beds",
                f"{beds} cama(s) para {len(people)} persona(s): una cama por persona.",
            )
        pool = fac.pools[pid]
        adults: list[PersonQ] = []
        children: list[PersonQ] = []
        for idx in people:
            if not 0 <= idx < len(group.people) or idx in part_of:
                raise PinError(
                    f"{here}.people",
                    f"La persona {idx + 1} no existe en el grupo {g} o ya tiene cama asignada.",
                )
            part_of[idx] = i
            person = group.people[idx]
            (children if person.is_child else adults).append(person)
        for person in adults:
            if not (
                person_fits(pool, person) and person_needs_ok(pool, person) and needs.pool_ok(pool)
            ):
                raise PinError(
                    f"{here}.pool_id",
                    f"{pool.name} ({fac.name}) no puede recibir a la persona {person.index + 1} "
                    f"del grupo {g} ({person.label()}) con lo que el grupo necesita.",
                )
        if children and not (adults and children_fit(pool, children)):
            raise PinError(
                f"{here}.pool_id",
                f"Las niñas y niños del grupo {g} van en un lugar que los recibe y junto a una "
                f"persona adulta del grupo; {pool.name} ({fac.name}) no lo cumple así.",
            )
        seats.append((pool, list(people)))
    return Part(g, _seated(fac, seats, needs, state), split=p.split)


def candidates(
    model: Snapshot,
    group: GroupQ,
    people: list[int],
    state: str | None,
    *,
    limit: int,
    registered_only: bool = False,
    taken: dict[str, int] | None = None,
) -> list[Pattern]:
    """Where these people of the group (all of it, or one part of a split) could go
    instead, nearest first: every facility that seats them together with the beds free
    now less ``taken`` (beds the rest of the plan uses), by the plan's own rules."""
    chosen = [group.people[i] for i in people]
    adults = [p for p in chosen if not p.is_child]
    children = [p for p in chosen if p.is_child]
    taken = taken or {}
    out: list[Pattern] = []
    for fac in facilities_by_distance(model, state, registered_only=registered_only):
        if not _could_seat(fac, chosen, group.needs):
            continue
        free = {pid: pool.available - taken.get(pid, 0) for pid, pool in fac.pools.items()}
        found = _pattern(fac, adults, children, group.needs, state, free)
        if found is not None:
            out.append(found)
            if len(out) >= limit:
                break
    return out
