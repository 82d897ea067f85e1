"""Statistical vocabulary shared by every service (the CNDH minimum variables)."""

from __future__ import annotations

# The CNDH's age groups (``003:795``); "unknown" is S.I. (no information), never a zero.
CNDH_AGE_BANDS = ("0-12", "13-17", "18-59", "60+", "unknown")
NO_INFORMATION = "S.I."
NOT_APPLICABLE = "N/A"


def cndh_age_band(age: int | None) -> str:
    """The CNDH statistical age group of an age in years."""
    if age is None:
        return "unknown"
    if age <= 12:
        return "0-12"
    if age <= 17:
        return "13-17"
    return "18-59" if age <= 59 else "60+"
