"""Suppression that subtraction cannot undo (issue 20, item 6).

An observer (or anyone with an export) asks for every report by nothing, by each variable
and by each pair of variables, and runs ``tests.audit.differencing``: every identity between
the published numbers (a marginal is the sum of the cells that refine it, a totals line the
sum of its rows, the same people counted in two reports), with every figure read as the
range of values it can stand for, tightened until nothing changes.

What is asserted, precisely:

1. every published count is "<5" or a multiple of 5, so any sum or difference of published
   numbers is a multiple of 5 and never the 1-4 behind a "<5" (plain differencing, the
   reported attack, recovers nothing); and no listed row is all "<5";
2. after bounds propagation across all those queries, no "<5" cell is narrowed to a single
   value from 1 to 4 (the only cells it pins are zeros of groups nobody is in) - the
   attacker knowing every value each variable takes, and that a combination not listed
   stands for 0-4 in each count (a row of nothing but "<5" is not listed: its listing
   would tell that someone is in it);
3. the attacker is sound: the exact figures (as a SEGOB auditor reads them) lie inside every
   range it derived, so "nothing recovered" is not a broken attacker;
4. the same attacker, fed the old rule's output (exact counts, "<5" for 1-4, "*" for a total
   over one), recovers cells from the same data - the attack is real.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from audit import reports
from audit.main import consume
from services.events import Event
from tests.audit.differencing import REPORTED, Attacker, attack, domain_of, full_plan
from tests.audit.exported import as_exported, exported_rows
from tests.conftest import running

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SENDERS = ["fge-chis", "inm-chis", "dif-chis", "fge-tab", "cndh"]
RECEIVERS = ["casa-a", "casa-b", "dif-albergue"]


STEP = {"sent": "send", "accepted": "accept", "declined": "decline", "admitted": "admit",
        "discharged": "discharge", "expired": "expired"}  # fmt: skip


def _small_cells_fixture() -> None:
    """Many small groups: 70 referrals of 1-4 people over every variable, 40 unmet searches
    and 30 refusals, as their producers' contracts describe them."""
    rng = random.Random(20261204)
    for iid, kind in [("casa-a", "ngo"), ("casa-b", "ngo"), ("dif-albergue", "dif_estatal")]:
        consume(
            Event(
                type="referral.institution.created",
                aggregate_type="institution",
                aggregate_id=iid,
                payload={"id": iid, "name": iid, "type": kind, "state": "07"},
            )
        )
    for n in range(70):
        at = T0 + timedelta(days=rng.randrange(0, 120), hours=rng.randrange(0, 24))
        people = []
        for _ in range(rng.choice([1, 1, 2, 3, 4])):
            band = rng.choice(["0-12", "13-17", "18-59", "60+", "unknown"])
            people.append(
                {
                    "sex": rng.choice(["F", "F", "M", "X"]),
                    "age_group": band,
                    "age_band": band,
                    "nationality": rng.choice(["MEX", "HND", "GTM", "SLV", "VEN"]),
                    "state_of_origin": rng.choice(["07", "27", None]),
                    "vulnerable_groups": rng.choice([[], ["indigenous"], ["lgbti", "disabled"]]),
                    "offences": rng.choice([[], ["art10-III"], ["art10-III", "art10-IV"]]),
                    "role": rng.choice(["victim", "victim", "accompanying_child"]),
                }
            )
        rid = f"r-{n}"
        base = {
            "referral_id": rid,
            "sending_institution_id": rng.choice(SENDERS),
            "receiving_institution_id": rng.choice(RECEIVERS),
            "facility_id": "fac-1",
            "urgency": "normal",
            "state": rng.choice(["07", "27"]),
            "services": [],
            "sent_at": at.isoformat(),
            "response_due_at": (at + timedelta(hours=rng.choice([4, 24, 10**5]))).isoformat(),
            "people": people,
        }
        path = rng.choice(
            [["sent"], ["sent", "admitted"], ["sent", "admitted", "discharged"], ["sent", "declined"],
             ["sent", "expired"], ["sent", "accepted"]]
        )  # fmt: skip
        for step, status in enumerate(path):
            payload: dict[str, Any] = {**base, "status": status}
            if status == "discharged":
                payload["outcome"] = rng.choice(["reintegrated_origin", "transferred_onward"])
            consume(
                Event(
                    type=f"referral.referral.{STEP[status]}",
                    aggregate_type="referral",
                    aggregate_id=rid,
                    occurred_at=at + timedelta(hours=3 * step),
                    payload=payload,
                )
            )
    for n in range(40):
        sex, band = rng.choice(["F", "M"]), rng.choice(["0-12", "18-59", "60+"])
        size = rng.choice([1, 1, 2, 5])
        consume(
            Event(
                type="capacity.search.unmet",
                aggregate_type="unmet_request",
                aggregate_id=f"u-{n}",
                occurred_at=T0 + timedelta(days=rng.randrange(0, 90)),
                payload={
                    "unmet_id": f"u-{n}",
                    "sex": sex,
                    "age_group": band,
                    "age_band": band,
                    "state": rng.choice(["07", "27", "30"]),
                    "group_size": size,
                    "people": [{"sex": sex, "age_group": band, "age_band": band, "role": "victim"}]
                    * size,
                    "code": rng.choice(["no_capacity", "no_match"]),
                    "reason": "sin lugar",
                },
            )
        )
    for n in range(30):
        consume(
            Event(
                type="referral.agreement.refused",
                aggregate_type="referral",
                aggregate_id=f"a-{n}",
                occurred_at=T0 + timedelta(days=rng.randrange(0, 90)),
                payload={
                    "referral_id": f"a-{n}",
                    "sending_institution_id": rng.choice(SENDERS),
                    "receiving_institution_id": rng.choice(RECEIVERS),
                    "missing": "convenio",
                },
            )
        )


async def _published(client: Any, headers: dict[str, str]) -> dict[tuple[str, str], Any]:
    out = {}
    for name, by in full_plan():
        params = {"by": ",".join(by)} if by else {}
        r = await client.get(f"/api/v1/reports/{name}", params=params, headers=headers)
        assert r.status_code == 200, r.text
        out[(name, ",".join(by or []))] = r.json()
    return out


def _fetcher(published: dict[tuple[str, str], Any]):
    return lambda name, by: published[(name, ",".join(by or []))]


def _old_rule(body: dict[str, Any], name: str) -> dict[str, Any]:
    """What the previous rule published from the exact figures: "<5" for 1-4, and "*" for a
    total over any such cell (within the one query)."""
    counts = reports._counts(name) + (["total"] if reports.REPORTS[name].row_total else [])

    def small(v: Any) -> bool:
        return isinstance(v, int) and 1 <= v <= 4

    rows = []
    for r in body["rows"]:
        cells = {c: r[c] for c in reports._counts(name)}
        line = {**r, **{c: "<5" if small(v) else v for c, v in cells.items()}}
        if "total" in r:
            line["total"] = "*" if any(small(v) for v in cells.values()) else r["total"]
        rows.append(line)
    totals = dict(body["totals"])
    for c in counts:
        if c == "total":
            hidden = any(small(r[v]) for r in body["rows"] for v in reports._counts(name))
        else:
            hidden = any(small(r[c]) for r in body["rows"])
        totals[c] = "*" if hidden else totals[c]
    return {**body, "rows": rows, "totals": totals}


def _assert_sound(attacker: Attacker, exact: Attacker) -> None:
    """Every exact figure lies inside the range the attacker derived for it (a combination
    nobody is in, which the exact answers do not list, is 0)."""
    for key, (a_lo, a_hi) in attacker.bounds.items():
        lo, hi = exact.bounds.get(key, (0, 0))
        if lo == hi:
            assert a_lo <= lo <= a_hi, (key, lo, (a_lo, a_hi))


async def test_no_suppressed_cell_is_recovered_by_differencing(audit_app, auth_headers):
    _small_cells_fixture()
    async with running(audit_app) as client:
        seen = await _published(client, auth_headers("observer"))
        exact = await _published(client, auth_headers("segob_auditor"))
        # Every format of an export carries the same figures as the observer's JSON.
        for name, by in full_plan(pairs=False):
            params = {"format": "csv", **({"by": ",".join(by)} if by else {})}
            r = await client.get(
                f"/api/v1/reports/{name}", params=params, headers=auth_headers("segob_auditor")
            )
            body = seen[(name, ",".join(by or []))]
            lines = exported_rows(r.text)
            assert len(lines) == len(body["rows"]) + 1
            for line, row in zip(lines, [*body["rows"], body["totals"]], strict=True):
                assert line == as_exported(name, by, row), (name, by)

    # 1. Every published count is "<5" or a multiple of 5.
    small = 0
    for (name, _), body in seen.items():
        counts = reports._counts(name) + (["total"] if reports.REPORTS[name].row_total else [])
        for line in [*body["rows"], body["totals"]]:
            for c in counts:
                v = line[c]
                assert v == "<5" or (isinstance(v, int) and v % 5 == 0), (name, c, v)
                small += v == "<5"
        # No row of nothing but "<5": its listing would tell that someone is in it.
        assert all(any(line[c] != "<5" for c in counts) for line in body["rows"]), name
    assert small > 500  # the fixture is made of small groups

    # 2. Bounds propagation over every query recovers no "<5" cell (the attacker is told
    # every value each variable takes, so an unlisted combination is a 0-4 it can bound).
    domain = domain_of(exact.values())
    attacker = attack(_fetcher(seen), full_plan(), banded=True, domain=domain)
    assert len(attacker.small) > 500
    assert attacker.recovered() == {}
    # The reported pair: people by sex, and by sex and sending institution.
    assert attack(_fetcher(seen), REPORTED, banded=True, domain=domain).recovered() == {}

    # 3. The attacker is sound: the exact figures are inside its ranges.
    truth = attack(_fetcher(exact), full_plan(), banded=False)
    _assert_sound(attacker, truth)
    for key, value in attacker.pinned().items():
        assert truth.bounds.get(key, (0, 0)) == (value, value) == (0, 0)

    # 4. The same attacker against the old rule's output recovers cells of this data.
    old = {k: _old_rule(body, k[0]) for k, body in exact.items()}
    before = attack(_fetcher(old), full_plan(), banded=False)
    _assert_sound(before, truth)
    recovered = before.recovered()
    assert len(recovered) > 50
    assert all(truth.bounds[k] == (v, v) and 1 <= v <= 4 for k, v in recovered.items())
    assert attack(_fetcher(old), REPORTED, banded=False).recovered()


async def test_medians_are_withheld_where_their_count_is_banded_away(audit_app, auth_headers):
    """ "N/A" (nothing answered) beside a "<5" would tell the observer that count is 0."""
    _small_cells_fixture()
    async with running(audit_app) as client:
        r = await client.get(
            "/api/v1/reports/referral-times",
            params={"by": "sending_institution_id,period"},
            headers=auth_headers("observer"),
        )
    rows = r.json()["rows"]
    assert any(row["answered"] == "<5" for row in rows)
    for row in rows:
        if row["answered"] == "<5":
            assert row["median_hours_to_answer"] == "*"
        if row["admitted"] == "<5":
            assert row["median_hours_to_admission"] == "*"
