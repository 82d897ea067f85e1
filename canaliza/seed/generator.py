"""A pure, deterministic generator of a Mexico-shaped synthetic dataset.

Everything comes from one ``random.Random(seed)`` and a reference date passed in; nothing
reads the clock or the global random state, so the same ``(scale, seed, reference)`` gives
byte-identical data on every machine. Records are plain dicts shaped like the public
contract's request bodies (``docs/contract.md``), plus the few fields the loader
needs (intended status, initial occupancy, which parties sign). No person is real: every
person carries a generated pseudonym, and every address is ``Calle Ficticia …``.

The parts, each drawn from the same generator in this order: :mod:`~canaliza.seed.roster`
(institutions, facilities, pools), :mod:`~canaliza.seed.agreements`,
:mod:`~canaliza.seed.referrals` (the history); :mod:`~canaliza.seed.scales` says how big,
:mod:`~canaliza.seed.draws` holds the draws they share.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from canaliza.seed.agreements import draw_agreements
from canaliza.seed.oversight import draw_oversight
from canaliza.seed.referrals import draw_history, pool_admits
from canaliza.seed.roster import draw_facilities_and_pools, draw_institutions
from canaliza.seed.scales import REFERENCE_DATE, SCALES, SCENARIOS, Scale

__all__ = [
    "REFERENCE_DATE",
    "SCALES",
    "SCENARIOS",
    "Dataset",
    "Scale",
    "generate",
    "pool_admits",
]


@dataclass
class Dataset:
    """A generated dataset: institutions, facilities, pools, agreements and history."""

    scale: str
    seed: int
    reference_date: str
    scenarios: tuple[str, ...]
    institutions: list[dict[str, Any]] = field(default_factory=list)
    facilities: list[dict[str, Any]] = field(default_factory=list)
    pools: list[dict[str, Any]] = field(default_factory=list)
    agreements: list[dict[str, Any]] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    # SEGOB's roster: facilities registered, visits made (canaliza.seed.oversight)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many of each record the dataset holds."""
        return {
            "institutions": len(self.institutions),
            "facilities": len(self.facilities),
            "pools": len(self.pools),
            "beds": sum(p["body"]["total"] for p in self.pools),
            "occupied": sum(p["occupied"] for p in self.pools),
            "agreements": len(self.agreements),
            "referrals": len(self.referrals),
            "registrations": len(self.registrations),
            "visits": len(self.visits),
            "people": sum(len(r["people"]) for r in self.referrals),
        }

    def parts(self) -> dict[str, Any]:
        """The dataset as JSON-ready parts (one file each when exported)."""
        return {
            "meta": {
                "scale": self.scale,
                "seed": self.seed,
                "reference_date": self.reference_date,
                "scenarios": list(self.scenarios),
                "counts": self.counts(),
            },
            "institutions": self.institutions,
            "facilities": self.facilities,
            "pools": self.pools,
            "agreements": self.agreements,
            "referrals": self.referrals,
            "registrations": self.registrations,
            "visits": self.visits,
        }

    def to_json(self) -> bytes:
        """Canonical bytes of the whole dataset (sorted keys): equal data, equal bytes."""
        return json.dumps(
            self.parts(), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")


# --------------------------------------------------------------------------- entry point


def generate(
    scale: str = "demo",
    seed: int = 2026,
    *,
    reference_date: date = REFERENCE_DATE,
    scenarios: Sequence[str] = (),
    referrals: int | None = None,
) -> Dataset:
    """Generate the dataset of ``scale`` (``demo`` or ``national``) for ``seed``;
    ``referrals`` overrides how many historical referrals the scale has."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {sorted(SCALES)}")
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}; use one of {SCENARIOS}")
    spec = SCALES[scale]
    if referrals is not None:
        spec = dataclasses.replace(spec, referrals=referrals)
    rng = random.Random(f"canaliza-seed:{scale}:{seed}")
    institutions, ngo_ids = draw_institutions(rng, spec)
    ngo_states = {i["id"]: i["state"] for i in institutions if i["type"] == "ngo"}
    facilities, pools = draw_facilities_and_pools(rng, spec, ngo_ids, ngo_states, tuple(scenarios))
    operators = [f["body"]["operator_institution_id"] for f in facilities]
    agreements = draw_agreements(rng, spec, reference_date, ngo_ids, ngo_states, operators)
    history = draw_history(rng, spec, reference_date, institutions, facilities, pools, agreements)
    registrations, visits = draw_oversight(scale, seed, reference_date, facilities)
    return Dataset(
        scale=scale,
        seed=seed,
        reference_date=reference_date.isoformat(),
        scenarios=tuple(scenarios),
        institutions=institutions,
        facilities=facilities,
        pools=pools,
        agreements=agreements,
        referrals=history,
        registrations=registrations,
        visits=visits,
    )
