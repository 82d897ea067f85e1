"""The generated referral history: victims drawn from the documented figures, their
companions, and each referral's path through the lifecycle."""

from __future__ import annotations

import bisect
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from canaliza.seed import figures as fig
from canaliza.seed.draws import (
    cumulative,
    iso_timestamp,
    pick,
    pseudonym,
)
from canaliza.seed.scales import ADULT_MAX_AGE, HISTORY_DAYS, Scale
from canaliza.seed.states import STATES

# --------------------------------------------------------------------------- history


@dataclass(frozen=True, slots=True)
class _Edge:
    """A direction a referral may travel: sender → receiver under a signed agreement."""

    sender: str
    sender_type: str
    receiver: str
    number: str
    valid_from: date
    valid_to: date


_SENDER_GROUP = {
    "fiscalia_federal": "fiscalia",
    "fiscalia_estatal": "fiscalia",
    "dif_nacional": "dif",
    "dif_estatal": "dif",
    "inm": "inm",
    "ceav": "ceav",
    "ceeav": "ceav",
    "ngo": "ngo",
}

# Who refers, given the victim (assumed): foreigners are INM's remit (003:535), minors DIF's.
_SENDER_PREFERENCE = {
    "foreign": (("inm", 0.45), ("fiscalia", 0.40), ("ceav", 0.10), ("ngo", 0.05)),
    "minor": (("dif", 0.45), ("fiscalia", 0.45), ("ceav", 0.05), ("ngo", 0.05)),
    "adult": (("fiscalia", 0.70), ("ceav", 0.20), ("ngo", 0.10)),
}


def _sample_victim(
    rng: random.Random, nat_cum: list[float], nat_codes: list[str]
) -> dict[str, Any]:
    r = rng.random()
    sex = "F" if r < fig.FEMALE_SHARE else "X" if r < fig.FEMALE_SHARE + fig.SEX_X_SHARE else "M"
    minor_p = (
        fig.MINOR_SHARE_FEMALE
        if sex == "F"
        else fig.MINOR_SHARE_MALE
        if sex == "M"
        else fig.MINOR_SHARE
    )
    age: int | None
    if rng.random() < fig.AGE_UNKNOWN_SHARE:
        age = None
    elif rng.random() < minor_p:
        # mostly adolescents; younger children for adoption and begging cases
        age = rng.randint(12, 17) if rng.random() < 0.8 else rng.randint(3, 11)
    else:
        age = min(ADULT_MAX_AGE, 18 + int(rng.expovariate(1 / 9)))
    female_like = sex != "M"
    foreign_p = fig.FOREIGN_SHARE * (
        fig.FOREIGN_FEMALE_SHARE / fig.FEMALE_SHARE
        if female_like
        else (1 - fig.FOREIGN_FEMALE_SHARE) / (1 - fig.FEMALE_SHARE)
    )
    nationality = pick(rng, nat_codes, nat_cum) if rng.random() < foreign_p else fig.MEXICAN
    sexual_p = (
        fig.SEXUAL_SHARE_AMONG_FEMALE_VICTIMS
        if female_like
        else (0.70 - fig.FEMALE_SHARE * fig.SEXUAL_SHARE_AMONG_FEMALE_VICTIMS)
        / (1 - fig.FEMALE_SHARE)
    )
    if rng.random() < sexual_p:
        offence = "art10-III"
    else:
        offence = pick(rng, _NON_SEXUAL_CODES, _NON_SEXUAL_CUM)
        if offence in ("art10-VIII", "art10-VII") and (age is None or age >= 18):
            offence = "art10-IV"  # these fractions are about minors by definition
    drawn = [g for g, p in fig.VULNERABLE_GROUPS if rng.random() < p]
    if nationality != fig.MEXICAN and "migrant_in_transit" not in drawn and rng.random() < 0.5:
        drawn.append("migrant_in_transit")
    # not asked: S.I., never "none"
    groups = None if not drawn and rng.random() < fig.VULNERABLE_GROUP_NOT_ASKED_SHARE else drawn
    return {
        "pseudonym": pseudonym(rng),
        "sex": sex,
        "age": age,
        "role": "victim",
        "nationality": nationality,
        "state_of_origin": None,
        "vulnerable_groups": groups,
        "offences": list(fig.OFFENCE_AS_RECORDED.get(offence, (offence,))),
    }


_NON_SEXUAL = [
    (c, w) for c, w in zip(fig.OFFENCE_CODES, fig.OFFENCE_WEIGHTS, strict=True) if c != "art10-III"
]
_NON_SEXUAL_CODES = [c for c, _ in _NON_SEXUAL]
_NON_SEXUAL_CUM = cumulative([w for _, w in _NON_SEXUAL])


def _companions(rng: random.Random, victim: dict[str, Any]) -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = []
    base = {k: victim[k] for k in ("nationality", "state_of_origin")}
    adult_woman = victim["sex"] == "F" and (victim["age"] or 0) >= 18
    if adult_woman and rng.random() < fig.ACCOMPANIED_BY_CHILDREN_SHARE:
        mother_age = victim["age"] or 30
        for _ in range(rng.randint(1, fig.MAX_ACCOMPANYING_CHILDREN)):
            people.append(
                {"pseudonym": pseudonym(rng), "sex": rng.choice("FM"),
                 "age": rng.randint(0, min(12, max(0, mother_age - 15))),
                 "role": "accompanying_child", **base, "vulnerable_groups": None, "offences": []}
            )  # fmt: skip
    if rng.random() < fig.INDIRECT_VICTIM_SHARE:
        # 77 % of indirect victims are women, 83 % adults (003:201-205)
        people.append(
            {"pseudonym": pseudonym(rng), "sex": "F" if rng.random() < 0.77 else "M",
             "age": rng.randint(18, 70) if rng.random() < 0.83 else rng.randint(10, 17),
             "role": "indirect_victim", **base, "vulnerable_groups": None, "offences": []}
        )  # fmt: skip
    if rng.random() < fig.WITNESS_SHARE:
        people.append(
            {"pseudonym": pseudonym(rng), "sex": rng.choice("FM"), "age": rng.randint(18, 60),
             "role": "witness", **base, "vulnerable_groups": None, "offences": []}
        )  # fmt: skip
    return people


def pool_admits(pool: dict[str, Any], people: list[dict[str, Any]]) -> bool:
    """Whether one pool's eligibility admits a group: adults and unaccompanied people by
    sex and age; accompanying children by the pool's child rules (families stay together)."""
    children = [p for p in people if p["role"] == "accompanying_child"]
    others = [p for p in people if p["role"] != "accompanying_child"]
    for p in others:
        if p["sex"] not in pool["sexes"]:
            return False
        if p["age"] is not None and not pool["min_age"] <= p["age"] <= pool["max_age"]:
            return False
    if children:
        if not pool["accepts_children"] or len(children) > pool["max_children"]:
            return False
        if any((c["age"] or 0) > (pool["max_child_age"] or 0) for c in children):
            return False
    return True


def draw_history(
    rng: random.Random,
    scale: Scale,
    reference: date,
    institutions: list[dict[str, Any]],
    facilities: list[dict[str, Any]],
    pools: list[dict[str, Any]],
    agreements: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    inst_type = {i["id"]: i["type"] for i in institutions}
    inst_state = {i["id"]: i["state"] for i in institutions}
    pools_by_fac: dict[str, list[dict[str, Any]]] = {}
    for p in pools:
        pools_by_fac.setdefault(p["facility_key"], []).append(p["body"])
    fac_by_operator: dict[str, list[dict[str, Any]]] = {}
    for f in facilities:
        if f["status"] != "registered":
            fac_by_operator.setdefault(f["body"]["operator_institution_id"], []).append(f)
    edges: dict[str, list[_Edge]] = {}
    for a in agreements:
        body = a["body"]
        if sorted(a["signed_by"]) != sorted(body["party_ids"]):
            continue  # only signed agreements carry referrals
        for s in body["party_ids"]:
            group = _SENDER_GROUP[inst_type[s]]
            for r in body["party_ids"]:
                if r != s and r in fac_by_operator:
                    edges.setdefault(group, []).append(
                        _Edge(s, group, r, body["number"],
                              date.fromisoformat(body["valid_from"]),
                              date.fromisoformat(body["valid_to"]))
                    )  # fmt: skip
    history_start = reference - timedelta(days=HISTORY_DAYS)
    nat_codes = [c for c, _ in fig.NATIONALITY_MIX]
    nat_cum = cumulative([w for _, w in fig.NATIONALITY_MIX])
    state_cum = cumulative([s.population for s in STATES])
    pref_cum = {
        k: (cumulative([w for _, w in v]), [g for g, _ in v]) for k, v in _SENDER_PREFERENCE.items()
    }
    outcome_names = [o for o, _ in fig.DISCHARGE_OUTCOMES]
    outcome_cum = cumulative([w for _, w in fig.DISCHARGE_OUTCOMES])
    ref_dt = datetime(reference.year, reference.month, reference.day)
    referrals: list[dict[str, Any]] = []
    fitting_memo: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    # Eligibility depends on ages only through comparisons with the pools' bounds, so a
    # group is memoised by age *bands*: the same answer, computed far fewer times.
    bodies = [p["body"] for p in pools]
    age_bounds = sorted({b["min_age"] for b in bodies} | {b["max_age"] + 1 for b in bodies})
    child_bounds = sorted({(b["max_child_age"] or 0) + 1 for b in bodies})

    def _signature(people: list[dict[str, Any]]) -> tuple[Any, ...]:
        adults = sorted(
            (p["sex"], -1 if p["age"] is None else bisect.bisect_right(age_bounds, p["age"]))
            for p in people
            if p["role"] != "accompanying_child"
        )
        kids = [p["age"] or 0 for p in people if p["role"] == "accompanying_child"]
        oldest = bisect.bisect_right(child_bounds, max(kids)) if kids else -1
        return (tuple(adults), len(kids), oldest)

    def _fitting(
        receiver: str, signature: tuple[Any, ...], people: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The receiver's active facilities with a pool that admits the whole group."""
        key = (receiver, signature)
        found = fitting_memo.get(key)
        if found is None:
            found = fitting_memo[key] = [
                f
                for f in fac_by_operator[receiver]
                if f["status"] == "active"
                and any(pool_admits(pb, people) for pb in pools_by_fac.get(f["key"], ()))
            ]
        return found

    # Groups declined for want of a free bed, waiting to be referred again (ADR 0019).
    waiting: list[tuple[datetime, list[dict[str, Any]]]] = []
    for _ in range(scale.referrals):
        again = bool(waiting) and rng.random() < fig.RE_REFERRAL_SHARE
        after: datetime | None = None
        if again:
            # the same people (the same person keys), a few days after the decline
            after, declined = waiting.pop(0)
            victim, companions = dict(declined[0]), [dict(p) for p in declined[1:]]
        else:
            victim = _sample_victim(rng, nat_cum, nat_codes)
            companions = _companions(rng, victim)
            for person in (victim, *companions):
                person["person_key"] = f"{rng.getrandbits(128):032x}"
        profile = (
            "foreign" if victim["nationality"] != fig.MEXICAN
            else "minor" if victim["age"] is not None and victim["age"] < 18
            else "adult"
        )  # fmt: skip
        cum, groups = pref_cum[profile]
        group = pick(rng, groups, cum)
        candidates = edges.get(group) or edges["fiscalia"]
        group_people = [victim, *companions]
        signature = _signature(group_people)
        edge = rng.choice(candidates)
        fitting = _fitting(edge.receiver, signature, group_people)
        for _ in range(3):  # the sender looks for a partner with an eligible bed
            if fitting:
                break
            edge = rng.choice(candidates)
            fitting = _fitting(edge.receiver, signature, group_people)
        lo = max(history_start, edge.valid_from)
        # a margin keeps every step of a referral (at most ~4 days) before the reference
        hi = min(reference - timedelta(days=5), edge.valid_to)
        created = datetime(lo.year, lo.month, lo.day) + timedelta(
            seconds=rng.randrange(max(1, int((hi - lo).total_seconds()) or 86_400))
        )
        if after is not None:  # within the new agreement's validity, as every referral
            created = max(
                datetime(lo.year, lo.month, lo.day),
                min(after + timedelta(days=rng.randint(1, 5)), datetime(hi.year, hi.month, hi.day)),
            )
        if victim["nationality"] == fig.MEXICAN:
            victim["state_of_origin"] = (
                inst_state[edge.sender]
                if rng.random() < fig.SAME_STATE_OF_ORIGIN_SHARE
                else pick(rng, STATES, state_cum).code
            )
        people = [victim, *companions]
        for p in companions:
            p["state_of_origin"] = victim["state_of_origin"]
        eligible = bool(fitting)
        facility = rng.choice(fitting) if fitting else rng.choice(fac_by_operator[edge.receiver])
        urgency = "urgent" if rng.random() < 0.4 else "normal"
        answer_after = timedelta(minutes=rng.randint(5, 240 if urgency == "urgent" else 2880))
        sent = created + timedelta(minutes=rng.randint(1, 30))
        record: dict[str, Any] = {
            # drawn from the seeded stream: deterministic, and far cheaper than UUID5
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "sending_institution_id": edge.sender,
            "receiving_institution_id": edge.receiver,
            "facility_id": facility["id"],
            "agreement_number": edge.number,
            "urgency": urgency,
            "people": people,
            "consent": {"given": True},
            "status": "",
            "outcome": None,
            "reason": None,
            "created_at": iso_timestamp(created),
            "sent_at": iso_timestamp(sent),
            "answered_at": None,
            "admitted_at": None,
            "discharged_at": None,
            "cancelled_at": None,
        }
        r = rng.random()
        if not eligible:
            record.update(status="declined", reason="sin_lugar_elegible",
                          answered_at=iso_timestamp(sent + answer_after))  # fmt: skip
        elif r < fig.NO_ANSWER_SHARE:
            record["status"] = "sent"
        elif r < fig.NO_ANSWER_SHARE + fig.CANCEL_SHARE:
            record.update(status="cancelled", reason="la_victima_desistio",
                          cancelled_at=iso_timestamp(sent + answer_after / 2))  # fmt: skip
        elif r < fig.NO_ANSWER_SHARE + fig.CANCEL_SHARE + fig.NO_BED_DECLINE_SHARE:
            record.update(status="declined", reason="sin_cupo",
                          answered_at=iso_timestamp(sent + answer_after))  # fmt: skip
            if not again:
                waiting.append((sent + answer_after, people))
        elif r < (
            fig.NO_ANSWER_SHARE + fig.CANCEL_SHARE + fig.NO_BED_DECLINE_SHARE + fig.DECLINE_SHARE
        ):
            record.update(status="declined", reason=rng.choice(("riesgo_de_seguridad", "perfil_no_atendido")),
                          answered_at=iso_timestamp(sent + answer_after))  # fmt: skip
        else:
            answered = sent + answer_after
            admitted = answered + timedelta(hours=rng.randint(1, 36))
            stay = facility["body"]["max_stay_days"]
            days = rng.randint(max(7, stay // 4), stay)
            if rng.random() < fig.STAY_EXTENSION_SHARE:
                days += rng.randint(15, 90)
            discharged = admitted + timedelta(days=days, hours=rng.randint(0, 23))
            record.update(
                status="admitted",
                answered_at=iso_timestamp(answered),
                admitted_at=iso_timestamp(admitted),
            )
            if discharged < ref_dt:
                record.update(status="discharged", discharged_at=iso_timestamp(discharged),
                              outcome=pick(rng, outcome_names, outcome_cum))  # fmt: skip
        referrals.append(record)
    return referrals
