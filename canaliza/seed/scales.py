"""How big a generated dataset is, and the constants every part of the generator shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

REFERENCE_DATE = date(2026, 1, 1)
"""Default reference date: the history ends here and agreements are valid around it."""
HISTORY_DAYS = 730
"""How far back the referral history goes from the reference date (two years)."""

KINDS = ("refugio", "albergue", "casa_de_medio_camino")
# Wire names of the capacity service (002:397-415 lists legal, medical, mental health,
# social services, education; interpreters 001:181)
SERVICES = ("legal", "medical", "mental_health", "social_work", "education", "interpretation")
ADULT_MAX_AGE = 99


@dataclass(frozen=True, slots=True)
class Scale:
    """How big a dataset is."""

    name: str
    facilities: int | None  # None: whatever the documented core plus extras gives
    pools: int | None
    referrals: int
    ngo_count: int
    dif_facilities: int
    ngo_facilities: int


SCALES: dict[str, Scale] = {
    "demo": Scale("demo", None, None, referrals=600, ngo_count=4, dif_facilities=10,
                  ngo_facilities=6),
    # calibrated to the seeds: ~1,000 distinct victims a year (003:127) over the two-year
    # history, plus the re-referrals of groups declined for want of a bed
    "national": Scale("national", 2_000, 20_000, referrals=2_600, ngo_count=420,
                      dif_facilities=880, ngo_facilities=1_100),
    # load, not realism: the national roster with a history fifty times the documented
    # one, the volume the speed benches measure (bench/seed_national.py)
    "stress": Scale("stress", 2_000, 20_000, referrals=100_000, ngo_count=420,
                    dif_facilities=880, ngo_facilities=1_100),
}  # fmt: skip

SCENARIOS = ("adult_men_shelter",)
"""Optional additions: ``adult_men_shelter`` adds the facility for adult men that is
missing in reality (003:673), to show what changes when one exists."""
