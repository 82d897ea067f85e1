"""Statistics folded from the audit trail's events (never from other services' tables).

Small-count rule (every export, and observers): counts are published in bands of five.
A count from 0 to 4 is shown as "<5"; any other count as the lower end of its band (5-9 -> 5,
10-14 -> 10, 137 -> 135). Totals are computed from the exact data, then banded the same way.
Every published count is then "<5" or a multiple of 5, so no sum or difference of published
figures - cells and totals of any reports and disaggregations - gives the 1-4 behind a "<5";
and because every figure stands for five values aligned the same way (zero included: a zero
would tell "<5" cells apart), even bounding "this cell is at most that total minus the other
cells' lower ends" across queries leaves several values possible (issue 20, item 6;
tests/audit/test_differencing.py). A row whose every count is "<5" is not listed (its being
listed would tell that someone is in it); a combination not listed stands for 0-4 in every
count. Figures that are not counts (medians) are withheld ("*") where their count is under
5, since "N/A" there would show the count is zero.
"No information" (S.I.) and "not applicable" (N/A) are values of their own, never zero:
S.I. when a variable was not recorded, N/A when it cannot apply (a state of origin for a
foreign national, an offence for an accompanying child, a time for nothing answered).

People reports count PEOPLE, not referrals (ADR 0019): a person referred again carries the
same pseudonymous ``person_key`` and counts once, described by her latest referral (by her
latest admission when one reached the shelter). Admissions a coordinator entered on the
ledger count as people admitted, with whatever the coordinator recorded (S.I. otherwise).
They are disaggregated by any of the CNDH minimum variables and by institution, state and
period (``by=sex,age_group,...``). A person with two or more offences (or vulnerable groups)
sits in the "two_or_more" row, so every section adds up to the people.
Each report names what it counts in ``unit``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import product
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from audit.models import AuditEntry
from services.clock import parse_utc, utcnow
from services.errors import Unprocessable
from services.vocabulary import CNDH_AGE_BANDS, LEGACY_OUTCOMES, NO_INFORMATION, NOT_APPLICABLE

# The row of a person with two or more offences or vulnerable groups (counted once).
TWO_OR_MORE = "two_or_more"
# A vulnerable-group question asked and answered "none" (S.I. when not asked).
NONE = "none"

SUPPRESSED = "<5"
WITHHELD = "*"
SI = NO_INFORMATION
NA = NOT_APPLICABLE
REACHED = frozenset({"admitted", "discharged"})
ANSWERED = frozenset({"accepted", "declined"})


# Trail entries read per round trip: a fold holds one batch of bodies, never the trail.
EVENT_BATCH = 1000


def _events(session: Session, prefix: str) -> Iterator[dict[str, Any]]:
    rows = session.execute(
        select(col(AuditEntry.canonical))
        .where(col(AuditEntry.type).startswith(prefix, autoescape=True))
        .order_by(col(AuditEntry.position))
        .execution_options(yield_per=EVENT_BATCH)
    ).scalars()
    for r in rows:
        yield json.loads(r)


def trail_events(session: Session, prefix: str) -> Iterator[dict[str, Any]]:
    """The trail's events whose type starts with ``prefix``, oldest first (canonical
    bodies), read in batches as they are iterated."""
    return _events(session, prefix)


def _when(body: dict[str, Any]) -> datetime | None:
    return parse_utc(body.get("occurred_at"))


# --- referrals folded from their events ---------------------------------------------------


@dataclass
class ReferralFold:
    """One referral as the trail tells it: its latest payload and when each status began."""

    id: str
    payload: dict[str, Any] = field(default_factory=dict)
    first_at: datetime | None = None
    status_at: dict[str, datetime] = field(default_factory=dict)
    visa: str | None = None  # the INM obligation's humanitarian visa status, when recorded

    @property
    def status(self) -> str | None:
        return self.payload.get("status")

    @property
    def is_referral(self) -> bool:
        """A referral, not an admission entered on the ledger."""
        return not self.id.startswith(ADMISSION_PREFIX)


# One entry of referral's bulk history import: many referrals in their final state.
HISTORY_IMPORTED = "referral.history.imported"
# One entry of capacity's bulk roster import: many pool snapshots.
ROSTER_IMPORTED = "capacity.roster.imported"
# People admitted by a coordinator's ledger entry (no referral behind them).
ADMISSION_RECORDED = "capacity.admission.recorded"
ADMISSION_PREFIX = "admission:"
OBLIGATION_FULFILLED = "referral.obligation.fulfilled"


def _fold_steps(fold: ReferralFold, steps: dict[str, Any] | None) -> None:
    """The time each status began, as the event's minimum variables carry it."""
    for status, at in (steps or {}).items():
        when = parse_utc(at)
        if when is not None and status not in fold.status_at:
            fold.status_at[status] = when
    if fold.status_at:
        first = min(fold.status_at.values())
        fold.first_at = min(fold.first_at, first) if fold.first_at else first


def _fold_imported(folds: dict[str, ReferralFold], event: dict[str, Any]) -> None:
    for row in event["payload"].get("referrals") or []:
        rid = str(row.get("referral_id"))
        fold = folds.setdefault(rid, ReferralFold(rid))
        fold.payload = row
        fold.first_at = fold.first_at or parse_utc(row.get("created_on"))
        _fold_steps(fold, row.get("steps"))


def referrals(session: Session) -> list[ReferralFold]:
    """Every referral on the trail, in the order first seen (bulk-imported history included),
    then every admission entered on the ledger (as a fold ``admitted`` at its entry)."""
    folds: dict[str, ReferralFold] = {}
    for e in _events(session, "referral."):
        if e["type"] == HISTORY_IMPORTED:
            _fold_imported(folds, e)
            continue
        if not e["type"].startswith("referral.referral."):
            continue
        fold = folds.setdefault(e["aggregate_id"], ReferralFold(e["aggregate_id"]))
        fold.payload = e["payload"]
        at = _when(e)
        if at is not None:
            fold.first_at = fold.first_at or at
            status = e["payload"].get("status")
            if status and status not in fold.status_at:
                fold.status_at[status] = at
        _fold_steps(fold, e["payload"].get("steps"))
    visas = {
        str(e["payload"].get("referral_id")): str(e["payload"]["humanitarian_visa_status"])
        for e in _events(session, OBLIGATION_FULFILLED)
        if e["payload"].get("humanitarian_visa_status")
    }
    for rid, visa in visas.items():
        if rid in folds:
            folds[rid].visa = visa
    for e in _events(session, ADMISSION_RECORDED):
        aid = f"{ADMISSION_PREFIX}{e['aggregate_id']}:{e['payload'].get('entry_seq')}"
        fold = folds.setdefault(aid, ReferralFold(aid))
        fold.payload = {**e["payload"], "status": "admitted"}
        fold.first_at = _when(e)
        _fold_steps(fold, e["payload"].get("steps"))
    return list(folds.values())


def _age_group(person: dict[str, Any]) -> str:
    band = person.get("age_band") or person.get("age_group")
    return band if band in CNDH_AGE_BANDS and band != "unknown" else SI


def _outcome(ref: ReferralFold, now: datetime) -> str:
    p = ref.payload
    status = ref.status
    if status == "discharged":
        outcome = str(p.get("outcome") or SI)
        return LEGACY_OUTCOMES.get(outcome, outcome)  # old entries said "repatriated"
    if status == "admitted":
        return "in_care"
    if status in ("declined", "cancelled"):
        return str(status)
    if status == "expired":
        return "no_information"
    due = parse_utc(p.get("response_due_at"))
    if status == "sent" and due is not None and due < now:
        return "no_information"  # never answered, and the deadline is gone
    return "in_progress"


def _visa(ref: ReferralFold, nationality: str) -> str:
    """A foreign person's humanitarian visa (the INM's obligation); N/A for a Mexican."""
    if nationality == "MEX":
        return NA
    return ref.visa or SI


def _one_row(values: list[str]) -> list[str]:
    """A person's one row of a multi-valued variable: the value, or "two_or_more"."""
    return values if len(values) == 1 else [TWO_OR_MORE]


def _person_dims(ref: ReferralFold, person: dict[str, Any], now: datetime) -> dict[str, list[str]]:
    p = ref.payload
    nationality = person.get("nationality") or SI
    if "state_of_origin" not in person:
        origin = SI
    elif person["state_of_origin"]:
        origin = str(person["state_of_origin"])
    else:
        origin = SI if nationality in ("MEX", SI) else NA
    raw_groups = person.get("vulnerable_groups")
    group_mentions = [SI] if raw_groups is None else [str(g) for g in raw_groups] or [NONE]
    if person.get("role") == "accompanying_child":
        offence_mentions = [NA]
    else:
        offence_mentions = [str(o) for o in person.get("offences") or []] or [SI]
    return {
        "sex": [person.get("sex") or SI],
        "age_group": [_age_group(person)],
        "nationality": [nationality],
        "state_of_origin": [origin],
        "vulnerable_group": _one_row(group_mentions),
        "offence": _one_row(offence_mentions),
        "humanitarian_visa": [_visa(ref, nationality)],
        "role": [person.get("role") or SI],
        "sending_institution_id": [p.get("sending_institution_id") or SI],
        "receiving_institution_id": [p.get("receiving_institution_id") or SI],
        "state": [p.get("state") or SI],
        "period": [ref.first_at.strftime("%Y-%m") if ref.first_at else SI],
        "outcome": [_outcome(ref, now)],
        "detection_source": [p.get("detection_source") or SI],
        # The rescue operation the referral came from (N/A: not from an operation).
        "operation": [p.get("operation_id") or NA],
    }


PERSON_DIMENSIONS = (
    "sex",
    "age_group",
    "nationality",
    "state_of_origin",
    "vulnerable_group",
    "offence",
    "humanitarian_visa",
    "role",
    "sending_institution_id",
    "receiving_institution_id",
    "state",
    "period",
    "outcome",
    "detection_source",
    "operation",
)


@dataclass
class PersonFold:
    """One person (one ``person_key``) and every referral or admission she was in."""

    key: str
    cases: list[tuple[ReferralFold, dict[str, Any]]] = field(default_factory=list)

    @property
    def latest(self) -> tuple[ReferralFold, dict[str, Any]]:
        """What describes her: her latest case that reached a shelter, else her latest."""
        reached = [c for c in self.cases if c[0].status in REACHED]
        return (reached or self.cases)[-1]


def persons(session: Session) -> list[PersonFold]:
    """Every person on the trail, once, with her cases in the order they began.

    A person is her ``person_key``; a person recorded before keys existed (or admitted on
    the ledger) is her case and position."""
    epoch = datetime.min.replace(tzinfo=utcnow().tzinfo)
    folds = sorted(referrals(session), key=lambda r: r.first_at or epoch)
    out: dict[str, PersonFold] = {}
    for ref in folds:
        for i, person in enumerate(ref.payload.get("people") or []):
            key = str(person.get("person_key") or f"{ref.id}#{i}")
            out.setdefault(key, PersonFold(key)).cases.append((ref, person))
    return list(out.values())


def _fold_people(
    session: Session,
    by: list[str],
    values: list[str],
    measure: Callable[[PersonFold], dict[str, int]],
) -> list[dict[str, Any]]:
    now = utcnow()
    table: dict[tuple[str, ...], dict[str, int]] = {}
    for who in persons(session):
        ref, person = who.latest
        dims = _person_dims(ref, person, now)
        got = measure(who)
        for key in product(*(dims[d] for d in by)):
            row = table.setdefault(key, dict.fromkeys(values, 0))
            for k, v in got.items():
                row[k] += v
    return [{**dict(zip(by, k, strict=True)), **v} for k, v in sorted(table.items())]


def people(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """People (each once, however often referred), how many of them were referred, admitted
    and discharged, by the chosen variables; a missing variable is "S.I.".

    ``people`` also counts those admitted on the ledger with no referral behind them."""

    def measure(who: PersonFold) -> dict[str, int]:
        statuses = {ref.status for ref, _ in who.cases}
        return {
            "people": 1,
            "referred": int(any(ref.is_referral for ref, _ in who.cases)),
            "admitted": int(bool(statuses & REACHED)),
            "discharged": int("discharged" in statuses),
        }

    return _fold_people(session, by, ["people", "referred", "admitted", "discharged"], measure)


def referral_outcomes(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """People (each once): taken in by civil-society shelters, by government, or no information.

    A person counts under the type of the receiver of her latest admission; never admitted,
    nobody knows where she went, so she is "no information".
    """
    types: dict[str, str] = {}
    for e in _events(session, "referral.institution."):
        if e["payload"].get("type"):
            types[e["aggregate_id"]] = e["payload"]["type"]

    def measure(who: PersonFold) -> dict[str, int]:
        ref, _ = who.latest
        if ref.status in REACHED:
            kind = types.get(ref.payload.get("receiving_institution_id") or "")
            return {"civil_society" if kind == "ngo" else "government": 1}
        return {"no_information": 1}

    return _fold_people(session, by, ["civil_society", "government", "no_information"], measure)


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 3600, 1)


def referral_times(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """Referrals sent, answered (accepted or declined) and admitted, with median hours from
    sending to the answer and to admission ("N/A" where nothing was answered or admitted)."""
    now = utcnow()
    groups: dict[tuple[str, ...], dict[str, list[float]]] = {}
    counts: dict[tuple[str, ...], dict[str, int]] = {}
    for ref in referrals(session):
        sent = ref.status_at.get("sent")
        if sent is None:
            continue
        dims = _person_dims(ref, {}, now)
        answer = min(
            (ref.status_at[s] for s in ANSWERED | REACHED if s in ref.status_at), default=None
        )
        to_answer = _hours(sent, answer)
        to_admission = _hours(sent, ref.status_at.get("admitted"))
        for key in product(*(dims[d] for d in by)):
            g = groups.setdefault(key, {"answer": [], "admission": []})
            c = counts.setdefault(key, {"sent": 0, "answered": 0, "admitted": 0})
            c["sent"] += 1
            if to_answer is not None:
                c["answered"] += 1
                g["answer"].append(to_answer)
            if to_admission is not None:
                c["admitted"] += 1
                g["admission"].append(to_admission)
    rows = []
    for key in sorted(counts):
        g = groups[key]
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                **counts[key],
                "median_hours_to_answer": (statistics.median(g["answer"]) if g["answer"] else NA),
                "median_hours_to_admission": (
                    statistics.median(g["admission"]) if g["admission"] else NA
                ),
            }
        )
    return rows


def no_information(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """Referrals (and their people) with no known outcome, against their answer deadline:
    past it (or expired), still within it, or with no deadline recorded (S.I.)."""
    now = utcnow()
    table: dict[tuple[str, ...], dict[str, int]] = {}
    for ref in referrals(session):
        if ref.status not in ("sent", "expired"):
            continue  # answered, closed or never sent: not "no information"
        due = parse_utc(ref.payload.get("response_due_at"))
        if ref.status == "expired" or (due is not None and due < now):
            col_ = "past_deadline"
        elif due is not None:
            col_ = "within_deadline"
        else:
            col_ = "no_deadline"
        dims = _person_dims(ref, {}, now)
        dims["deadline_period"] = [due.strftime("%Y-%m") if due else SI]
        n = len(ref.payload.get("people") or [])
        for key in product(*(dims[d] for d in by)):
            row = table.setdefault(
                key,
                {"past_deadline": 0, "within_deadline": 0, "no_deadline": 0, "people_past": 0},
            )
            row[col_] += 1
            if col_ == "past_deadline":
                row["people_past"] += n
    return [{**dict(zip(by, k, strict=True)), **v} for k, v in sorted(table.items())]


def unmet_demand(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """Unmet searches by sex, age group and state: requests and people left without a bed."""
    table: dict[tuple[str, ...], dict[str, int]] = {}
    for e in _events(session, "capacity.search.unmet"):
        p = e["payload"]
        dims = {
            "sex": p.get("sex") or SI,
            "age_group": _age_group(p),
            "state": p.get("state") or SI,
            "period": str(e.get("occurred_at", ""))[:7] or SI,
            "reason_code": p.get("code") or SI,
        }
        key = tuple(dims[d] for d in by)
        row = table.setdefault(key, {"requests": 0, "people": 0})
        row["requests"] += 1
        row["people"] += int(p.get("group_size") or 1)
    return [{**dict(zip(by, k, strict=True)), **v} for k, v in sorted(table.items())]


def agreements_refused(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """Referrals refused for want of an agreement, per sender and receiver pair."""
    table: dict[tuple[str, ...], int] = {}
    for e in _events(session, "referral.agreement.refused"):
        p = e["payload"]
        dims = {
            "sending_institution_id": p.get("sending_institution_id") or SI,
            "receiving_institution_id": p.get("receiving_institution_id") or SI,
            "period": str(e.get("occurred_at", ""))[:7] or SI,
        }
        key = tuple(dims[d] for d in by)
        table[key] = table.get(key, 0) + 1
    return [{**dict(zip(by, k, strict=True)), "refusals": v} for k, v in sorted(table.items())]


def urgent_without_agreement(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """Urgent placements sent along no agreement (ADR 0021), per sender, receiver and month:
    how many, and how many of them the receiver admitted."""
    reached = {f.id for f in referrals(session) if f.status in REACHED}
    table: dict[tuple[str, ...], dict[str, int]] = {}
    for e in _events(session, "referral.placement.without_agreement"):
        p = e["payload"]
        dims = {
            "sending_institution_id": p.get("sending_institution_id") or SI,
            "receiving_institution_id": p.get("receiving_institution_id") or SI,
            "state": p.get("state") or SI,
            "period": str(e.get("occurred_at", ""))[:7] or SI,
        }
        row = table.setdefault(tuple(dims[d] for d in by), {"placements": 0, "admitted": 0})
        row["placements"] += 1
        row["admitted"] += int(p.get("referral_id") in reached)
    return [{**dict(zip(by, k, strict=True)), **v} for k, v in sorted(table.items())]


def occupancy(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """Beds and occupied beds per state and month: each pool's last snapshot in the month."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for e in _events(session, "capacity."):
        month = str(e.get("occurred_at", ""))[:7] or SI
        if e["type"] == "capacity.pool.changed":
            p = e["payload"]
            last[(month, p.get("pool_id") or e["aggregate_id"])] = p
        elif e["type"] == ROSTER_IMPORTED:
            for p in e["payload"].get("pools") or []:
                last[(month, str(p.get("pool_id")))] = p
    table: dict[tuple[str, ...], dict[str, int]] = {}
    for (month, _), p in last.items():
        dims = {
            "period": month,
            "state": p.get("state") or SI,
            "facility_kind": p.get("facility_kind") or SI,
        }
        row = table.setdefault(tuple(dims[d] for d in by), {"beds": 0, "occupied": 0})
        row["beds"] += int(p.get("total") or 0)
        row["occupied"] += int(p.get("occupied") or 0)
    return [
        {
            **dict(zip(by, k, strict=True)),
            **v,
            # Utilisation is N/A, not zero, where there were no beds at all.
            "utilisation_pct": round(100 * v["occupied"] / v["beds"], 1) if v["beds"] else NA,
        }
        for k, v in sorted(table.items())
    ]


# --- each foreign person's migration route (ADR 0022; 003:535) -----------------------------

MIGRATION_ROUTE_RECORDED = "referral.migration_route.recorded"
MIGRATION_DIMENSIONS = (
    "route",
    "status",
    "nationality",
    "sex",
    "age_group",
    "state",
    "institution_id",
    "period",
)


def _migration_routes(session: Session) -> dict[str, tuple[dict[str, Any], datetime | None]]:
    """Each person's latest route (by person), with when her route was first recorded."""
    latest: dict[str, tuple[dict[str, Any], datetime | None]] = {}
    for e in _events(session, MIGRATION_ROUTE_RECORDED):
        p = e["payload"]
        key = str(p.get("person_id"))
        first = latest[key][1] if key in latest else _when(e)
        latest[key] = (p, first)
    return latest


def migration_routes(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """Foreign people by the route chosen and where it stands; visas issued, consular contact
    consented, and people who had been held in a migration station."""
    table: dict[tuple[str, ...], dict[str, int]] = {}
    values = ("people", "visas_issued", "consular_consent", "held_in_station")
    for p, first in _migration_routes(session).values():
        dims = {
            "route": str(p.get("route") or SI),
            "status": str(p.get("status") or SI),
            "nationality": str(p.get("nationality") or SI),
            "sex": str(p.get("sex") or SI),
            "age_group": CNDH_AGE_GROUP.get(str(p.get("age_group")), SI),
            "state": str(p.get("state") or SI),
            "institution_id": str(p.get("institution_id") or SI),
            "period": first.strftime("%Y-%m") if first else SI,
        }
        row = table.setdefault(tuple(dims[d] for d in by), dict.fromkeys(values, 0))
        row["people"] += 1
        row["visas_issued"] += int(bool(p.get("humanitarian_visa_issued")))
        row["consular_consent"] += int(p.get("consular_contact_consent") is True)
        row["held_in_station"] += int((p.get("migration_station_days") or 0) > 0)
    return [{**dict(zip(by, k, strict=True)), **v} for k, v in sorted(table.items())]


# The route's event carries the referral's two age groups, not the CNDH bands.
CNDH_AGE_GROUP = {"minors": "minors", "adults": "adults"}


def humanitarian_visas(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """As the INM's table (003:535): foreign victims identified (referred), and of them how
    many have a route recorded and a humanitarian visa issued, by nationality."""
    routes = _migration_routes(session)
    by_referral: dict[str, list[dict[str, Any]]] = {}
    for p, _ in routes.values():
        by_referral.setdefault(str(p.get("referral_id")), []).append(p)
    now = utcnow()
    table: dict[tuple[str, ...], dict[str, int]] = {}
    values = ("victims_identified", "routes_recorded", "visas_issued")
    for ref in referrals(session):
        recorded = by_referral.get(ref.id, [])
        for person in ref.payload.get("people") or []:
            nationality = person.get("nationality")
            if not nationality or nationality == "MEX" or person.get("role") != "victim":
                continue
            dims = _person_dims(ref, person, now)
            row = table.setdefault(tuple(dims[d][0] for d in by), dict.fromkeys(values, 0))
            row["victims_identified"] += 1
        for p in recorded:
            if p.get("nationality") in (None, "MEX"):
                continue
            dims = {
                **_person_dims(ref, {}, now),
                "nationality": [str(p.get("nationality"))],
                "sex": [str(p.get("sex") or SI)],
            }
            row = table.setdefault(tuple(dims[d][0] for d in by), dict.fromkeys(values, 0))
            row["routes_recorded"] += 1
            row["visas_issued"] += int(bool(p.get("humanitarian_visa_issued")))
    return [{**dict(zip(by, k, strict=True)), **v} for k, v in sorted(table.items())]


def operations(session: Session, by: list[str]) -> list[dict[str, Any]]:
    """Rescue operations (operativos): people in them, placed by the plan that was held,
    groups left without a place (counted once, also in unmet demand), and the people of
    the referrals made from them, referred and admitted."""
    ops: dict[str, dict[str, Any]] = {}
    for e in _events(session, "capacity.operation.created"):
        p = e["payload"]
        ops[str(p.get("operation_id"))] = {
            "operation": str(p.get("operation_id")),
            "state": p.get("state") or SI,
            "period": str(e.get("occurred_at", ""))[:7] or SI,
            "people": int(p.get("people") or 0),
            "placed": int(p.get("placed_people") or 0),
            "unplaced_groups": int(p.get("unplaced_groups") or 0),
        }
    reached: dict[str, dict[str, int]] = {}
    for ref in referrals(session):
        op = ref.payload.get("operation_id")
        if not op:
            continue
        row = reached.setdefault(str(op), {"referred": 0, "admitted": 0})
        n = len(ref.payload.get("people") or [])
        row["referred"] += n
        row["admitted"] += n if ref.status in REACHED else 0
    values = ("people", "placed", "unplaced_groups", "referred", "admitted")
    table: dict[tuple[str, ...], dict[str, int]] = {}
    for op_id, op in ops.items():
        got = {**op, **reached.get(op_id, {"referred": 0, "admitted": 0})}
        row = table.setdefault(tuple(str(got[d]) for d in by), dict.fromkeys(values, 0))
        for v in values:
            row[v] += int(got[v])
    return [{**dict(zip(by, k, strict=True)), **v} for k, v in sorted(table.items())]


@dataclass(frozen=True)
class ReportSpec:
    builder: Callable[[Session, list[str]], list[dict[str, Any]]]
    keys: tuple[str, ...]  # the default disaggregation
    values: tuple[str, ...]  # counts (suppressed) and other figures
    dimensions: tuple[str, ...]  # what ``by`` may name
    unit: str = "people"  # what one count is: people, referrals, requests, refusals, beds
    row_total: bool = False  # cells are parts of one whole
    # Figures that are not counts (medians): withheld when their count is suppressed.
    derived: tuple[tuple[str, str], ...] = ()


REPORTS: dict[str, ReportSpec] = {
    "referral-outcomes": ReportSpec(
        referral_outcomes,
        ("sending_institution_id",),
        ("civil_society", "government", "no_information"),
        PERSON_DIMENSIONS,
        row_total=True,
    ),
    "agreements-refused": ReportSpec(
        agreements_refused,
        ("sending_institution_id", "receiving_institution_id"),
        ("refusals",),
        ("sending_institution_id", "receiving_institution_id", "period"),
        unit="refusals",
    ),
    "urgent-without-agreement": ReportSpec(
        urgent_without_agreement,
        ("sending_institution_id", "receiving_institution_id", "period"),
        ("placements", "admitted"),
        ("sending_institution_id", "receiving_institution_id", "state", "period"),
        unit="referrals",
    ),
    "people": ReportSpec(
        people,
        ("sex", "age_group", "nationality"),
        ("people", "referred", "admitted", "discharged"),
        PERSON_DIMENSIONS,
    ),
    "occupancy": ReportSpec(
        occupancy,
        ("period", "state"),
        ("beds", "occupied", "utilisation_pct"),
        ("period", "state", "facility_kind"),
        unit="beds",
        derived=(("utilisation_pct", "beds"),),
    ),
    "unmet-demand": ReportSpec(
        unmet_demand,
        ("sex", "age_group", "state"),
        ("requests", "people"),
        ("sex", "age_group", "state", "period", "reason_code"),
        unit="search_intents",
    ),
    "referral-times": ReportSpec(
        referral_times,
        ("sending_institution_id", "period"),
        ("sent", "answered", "admitted", "median_hours_to_answer", "median_hours_to_admission"),
        ("sending_institution_id", "receiving_institution_id", "state", "period"),
        unit="referrals",
        derived=(("median_hours_to_answer", "answered"), ("median_hours_to_admission", "admitted")),
    ),
    "migration-routes": ReportSpec(
        migration_routes,
        ("route", "status"),
        ("people", "visas_issued", "consular_consent", "held_in_station"),
        MIGRATION_DIMENSIONS,
    ),
    "humanitarian-visas": ReportSpec(
        humanitarian_visas,
        ("nationality",),
        ("victims_identified", "routes_recorded", "visas_issued"),
        ("nationality", "sex", "state", "period", "receiving_institution_id"),
    ),
    "no-information": ReportSpec(
        no_information,
        ("sending_institution_id", "deadline_period"),
        ("past_deadline", "within_deadline", "no_deadline", "people_past"),
        (
            "sending_institution_id",
            "receiving_institution_id",
            "state",
            "period",
            "deadline_period",
        ),
        unit="referrals",
    ),
    "operations": ReportSpec(
        operations,
        ("operation",),
        ("people", "placed", "unplaced_groups", "referred", "admitted"),
        ("operation", "state", "period"),
    ),
}
# Occupancy's beds are capacity, not people: never suppressed.
UNSUPPRESSED = {"occupancy"}


def parse_by(name: str, by: str | None) -> list[str]:
    """The disaggregation asked for (default: the report's own), checked."""
    spec = REPORTS[name]
    if not by:
        return list(spec.keys)
    wanted = [b.strip() for b in by.split(",") if b.strip()]
    bad = [b for b in wanted if b not in spec.dimensions]
    if bad or not wanted or len(wanted) > 6 or len(set(wanted)) != len(wanted):
        raise Unprocessable(
            f"Desagregación no admitida para «{name}»: {', '.join(bad) or by}. "
            f"Use hasta 6 de: {', '.join(spec.dimensions)}.",
            code="invalid_disaggregation",
        )
    return wanted


def unit(name: str, by: list[str]) -> str:
    """What one count of the report is (each person in one row: never "mentions")."""
    return REPORTS[name].unit


def build(session: Session, name: str, by: list[str]) -> list[dict[str, Any]]:
    return REPORTS[name].builder(session, by)


def _counts(name: str) -> list[str]:
    spec = REPORTS[name]
    derived = {d for d, _ in spec.derived}
    return [v for v in spec.values if v not in derived]


BAND = 5


def banded(v: Any) -> Any:
    """A count as a suppressed view publishes it: 0-4 as "<5", any other count as the lower
    end of its band of five (5-9 -> 5, 10-14 -> 10). Figures that are not counts pass."""
    if not isinstance(v, int) or isinstance(v, bool):
        return v
    return SUPPRESSED if v < BAND else BAND * (v // BAND)


def _hidden(count: Any) -> bool:
    """A count whose derived figures (medians) a suppressed view does not get."""
    return isinstance(count, int) and count < BAND


def present(
    name: str, rows: list[dict[str, Any]], *, suppress: bool, by: list[str] | None = None
) -> list[dict[str, Any]]:
    """Rows with a computed total; counts banded (0-4 as "<5") when asked."""
    spec = REPORTS[name]
    keys = by or list(spec.keys)
    suppress = suppress and name not in UNSUPPRESSED
    shown_as = banded if suppress else (lambda v: v)
    counts = _counts(name)
    out = []
    for r in rows:
        cells = {c: r[c] for c in counts}
        shown: dict[str, Any] = {c: shown_as(v) for c, v in cells.items()}
        for figure, count in spec.derived:
            shown[figure] = WITHHELD if suppress and _hidden(r[count]) else r[figure]
        line = {k: r[k] for k in keys}
        line.update({v: shown[v] for v in spec.values})
        if spec.row_total:
            line["total"] = shown_as(sum(cells.values()))
        published = [line[c] for c in counts] + ([line["total"]] if spec.row_total else [])
        if suppress and all(v == SUPPRESSED for v in published):
            continue  # listing it would tell that someone is there: unlisted means 0-4 each
        out.append(line)
    return out


def totals(
    name: str, rows: list[dict[str, Any]], *, suppress: bool, by: list[str] | None = None
) -> dict[str, Any]:
    """The column totals, computed from the exact rows (then banded when asked).

    For multi-valued variables (offence, vulnerable group) a person may sit in several rows:
    the totals then count entries, not people.
    """
    spec = REPORTS[name]
    keys = by or list(spec.keys)
    suppress = suppress and name not in UNSUPPRESSED
    shown_as = banded if suppress else (lambda v: v)
    out: dict[str, Any] = {k: ("Total" if i == 0 else "") for i, k in enumerate(keys)}
    counts = _counts(name)
    for c in counts:
        out[c] = shown_as(sum(r[c] for r in rows))
    if spec.row_total:
        out["total"] = shown_as(sum(r[v] for r in rows for v in counts))
    for figure, _ in spec.derived:
        out[figure] = ""
    return out


def fields(name: str, by: list[str] | None = None) -> list[str]:
    """The column order of a report."""
    spec = REPORTS[name]
    return [*(by or spec.keys), *spec.values, *(["total"] if spec.row_total else [])]
