"""Rescue-operation planning benchmark (prints figures; not a test).

Builds the national roster the search benchmark uses (2,000 facilities, 20,000 pools, in a
temporary SQLite file, ``bench.capacity_search.build_dataset``), loads the search read
model from it, and plans an operation of 536 people in 200 family groups (the Zamora
rescue, seed 003) in Michoacán (16), in this process:

- the planner (``capacity.planner.plan``: candidates + CP-SAT, ADR 0020): seconds to a
  plan, people placed, groups whole / split / unplaced;
- a greedy first-fit baseline (each group in turn, whole, first facility that fits, the
  operation's state first then nearest) in the same run;
- the upper bound: the operation's people capped by the free beds of every pool at least
  one of its adults is eligible for.

    .venv/bin/python bench/operations_plan.py [--facilities 2000] [--people 536] [--groups 200]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def operation(rng: random.Random, people: int, groups: int) -> list[list[tuple[str, int, str]]]:
    """``groups`` family groups of ``people`` in all: mostly women and girls, some with
    children, some men (day labourers), a few witnesses and indirect victims."""
    sizes = [1] * groups
    for _ in range(people - groups):
        sizes[rng.randrange(groups)] += 1
    out = []
    for size in sizes:
        sex = rng.choice(["F", "F", "F", "M"])
        lead = (sex, rng.randint(14, 45), "victim")
        rest: list[tuple[str, int, str]] = []
        for _ in range(size - 1):
            if lead[1] >= 18 and rng.random() < 0.6:
                rest.append((rng.choice(["F", "M"]), rng.randint(0, 11), "accompanying_child"))
            else:
                role = rng.choice(["victim", "victim", "witness", "indirect_victim"])
                rest.append((sex, rng.randint(18, 50), role))
        out.append([lead, *rest])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--facilities", type=int, default=2000)
    parser.add_argument("--people", type=int, default=536)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--state", default="16")
    parser.add_argument(
        "--seconds",
        type=float,
        default=1.5,
        help="the whole plan's time limit (candidates, solver, reasons)",
    )
    parser.add_argument(
        "--scarce",
        type=float,
        default=0.97,
        help="second scenario: this share of pools full (beds scarce: choices matter)",
    )
    args = parser.parse_args()

    from sqlalchemy import create_engine

    from bench.capacity_search import build_dataset
    from capacity.planner import GroupQ
    from capacity.search import NeedsQ, PersonQ, ReadModel

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "capacity.db"
        built = build_dataset(path, args.facilities)
        model = ReadModel()
        engine = create_engine(f"sqlite:///{path}")
        model.catch_up(engine.connect)
        engine.dispose()
    snapshot = model.snapshot
    pools = sum(len(f.pools) for f in snapshot.facilities.values())
    rng = random.Random(16)
    groups = [
        GroupQ(g, [PersonQ(i, s, a, r) for i, (s, a, r) in enumerate(members)], NeedsQ())
        for g, members in enumerate(operation(rng, args.people, args.groups))
    ]
    people = sum(len(g.people) for g in groups)
    print(
        f"roster: {len(snapshot.facilities)} active facilities, {pools} pools "
        f"(built in {built:.1f} s); operation: {people} people in {len(groups)} groups, "
        f"state {args.state}; solver limit {args.seconds} s"
    )
    measure("roster as built", snapshot, groups, args.state, args.seconds)
    # Most beds taken: the operation competes for the few left, and choices matter.
    full = random.Random(3)
    for fac in snapshot.facilities.values():
        for pool in fac.pools.values():
            if full.random() < args.scarce:
                pool.available = 0
        fac.recompute()
    measure(f"{args.scarce:.0%} of pools full", snapshot, groups, args.state, args.seconds)


def measure(title: str, model: Any, groups: list[Any], state: str, seconds: float) -> None:
    from capacity.planner import greedy_first_fit, plan, upper_bound

    bound = upper_bound(model, groups)
    started = time.perf_counter()
    baseline = greedy_first_fit(model, groups, state)
    greedy_s = time.perf_counter() - started
    greedy_people = sum(p.pattern.size for p in baseline)
    started = time.perf_counter()
    result, _ = plan(model, groups, state, seconds=seconds)
    plan_s = time.perf_counter() - started
    placed = result.placed_people()
    split = {p.group for p in result.parts if p.split}
    whole = {p.group for p in result.parts if not p.split}
    print(f"-- {title}: upper bound {bound} people (eligible free beds)")
    print(
        f"planner ({result.solver}, stopped: {result.stopped}): {plan_s:.2f} s, {placed}/{bound} people placed "
        f"({placed / max(bound, 1):.0%} of the bound), {len(whole)} groups whole, "
        f"{len(split)} split, {len(result.unplaced)} unplaced"
    )
    print(
        f"greedy first fit: {greedy_s:.2f} s, {greedy_people}/{bound} people placed "
        f"({greedy_people / max(bound, 1):.0%}), {len(baseline)} groups whole, "
        f"{len(groups) - len(baseline)} unplaced"
    )
    print(
        f"ratio planner/greedy: people placed x{placed / max(greedy_people, 1):.2f}, "
        f"time x{plan_s / max(greedy_s, 1e-9):.1f}; target: plan < 2 s "
        f"({'met' if plan_s < 2 else 'NOT met'}), placed >= greedy "
        f"({'met' if placed >= greedy_people else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
