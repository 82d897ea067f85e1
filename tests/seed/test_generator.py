"""The generator: deterministic, calibrated to the documented figures, and consistent with
the rules of the capacity and referral services."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

import pytest

from canaliza import demo
from canaliza.seed import figures as fig
from canaliza.seed.generator import Dataset, generate, pool_admits
from canaliza.seed.scales import HISTORY_DAYS
from canaliza.seed.states import STATE_CODES
from services.ids import stable_id

KINDS = {"refugio", "albergue", "casa_de_medio_camino"}
PERSON_ROLES = {"victim", "indirect_victim", "witness", "accompanying_child"}
FISCALIAS = {"fiscalia_federal", "fiscalia_estatal"}


def _victims(ds: Dataset) -> list[dict]:
    return [p for r in ds.referrals for p in r["people"] if p["role"] == "victim"]


def _victims_once(ds: Dataset) -> list[dict]:
    """Each victim once (a re-referred victim keeps its person key): the documented shares
    are of victims, and re-referrals skew towards those who fit a pool (women)."""
    return list({p["person_key"]: p for p in _victims(ds)}.values())


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.removesuffix("Z"))


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_demo_data():
    assert generate("demo", 7).to_json() == generate("demo", 7).to_json()


def test_same_seed_gives_byte_identical_national_data(national_dataset):
    assert generate("national", 2026).to_json() == national_dataset.to_json()


def test_same_seed_gives_byte_identical_stress_data(stress_dataset):
    # the roster in full; the history (same code at every scale) on its first 5,000 rows,
    # which keeps this test from generating 100,000 referrals a second time
    again = generate("stress", 2026, referrals=5_000)
    assert again.counts()["facilities"] == 2_000
    for part in ("institutions", "facilities", "pools", "agreements"):
        assert getattr(again, part) == getattr(stress_dataset, part), part
    assert again.referrals == stress_dataset.referrals[:5_000]
    cut = Dataset(**{**vars(stress_dataset), "referrals": stress_dataset.referrals[:5_000]})
    assert again.to_json() == cut.to_json()


def test_another_seed_gives_other_data(demo_dataset):
    other = generate("demo", 2027)
    assert other.to_json() != demo_dataset.to_json()
    # the reference institutions keep their stable ids whatever the seed
    assert {i["id"] for i in other.institutions if i["type"] != "ngo"} == {
        i["id"] for i in demo_dataset.institutions if i["type"] != "ngo"
    }


def test_unknown_scale_or_scenario_is_refused():
    with pytest.raises(ValueError):
        generate("planetary", 1)
    with pytest.raises(ValueError):
        generate("demo", 1, scenarios=("prison",))


# --------------------------------------------------------------------------- size


def test_stress_scale_has_the_benchmark_sizes(stress_dataset, national_dataset):
    counts = stress_dataset.counts()
    assert counts["facilities"] == 2_000
    assert counts["pools"] == 20_000
    assert counts["referrals"] == 100_000
    # the national scale: the same roster sizes, the history calibrated to the seeds
    national = national_dataset.counts()
    assert (national["facilities"], national["pools"]) == (2_000, 20_000)
    assert national["referrals"] < 5_000


def _distinct_victims(ds: Dataset) -> set[str]:
    return {p["person_key"] for p in _victims(ds)}


def test_national_history_has_about_a_thousand_victims_a_year(national_dataset):
    """5,245 victims identified in five years (003:127): ~1,049 a year nationally, counted
    as people (a re-referred victim once), within the stated tolerance."""
    years = HISTORY_DAYS / 365
    per_year = len(_distinct_victims(national_dataset)) / years
    assert per_year == pytest.approx(fig.VICTIMS_PER_YEAR, rel=fig.VICTIMS_PER_YEAR_TOLERANCE)
    # victims are counted per person: the re-referrals of declined groups are not new victims
    assert len(_distinct_victims(national_dataset)) < len(national_dataset.referrals)


def test_national_shelters_are_far_scarcer_than_demand(national_dataset):
    """364 sheltered of 5,245 identified (003:295): declines for want of a bed are common,
    and fewer victims reach a bed than are referred."""
    referrals = national_dataset.referrals
    reasons = Counter(r["reason"] for r in referrals if r["status"] == "declined")
    assert reasons["sin_cupo"] / len(referrals) == pytest.approx(
        fig.NO_BED_DECLINE_SHARE * 0.8, abs=0.06
    )  # the share of referrals that found an eligible facility (adult men never do)
    assert reasons["sin_cupo"] > reasons["riesgo_de_seguridad"] + reasons["perfil_no_atendido"]
    admitted = {
        p["person_key"]
        for r in referrals
        if r["admitted_at"] is not None
        for p in r["people"]
        if p["role"] == "victim"
    }
    demand = _distinct_victims(national_dataset)
    assert len(admitted) / len(demand) < 0.6
    # every group declined for want of a bed and referred again keeps its person keys
    keys = Counter(p["person_key"] for p in _victims(national_dataset))
    assert sum(n > 1 for n in keys.values()) > reasons["sin_cupo"] / 4


def test_institutions_cover_every_state_and_the_federal_ones(national_dataset):
    by_type: dict[str, set[str]] = {}
    for i in national_dataset.institutions:
        by_type.setdefault(i["type"], set()).add(i["state"])
    for type_ in ("fiscalia_estatal", "dif_estatal", "inm"):
        assert by_type[type_] == set(STATE_CODES), type_
    assert by_type["ceeav"] == set(fig.CEEAV_STATES)
    for type_ in ("fiscalia_federal", "dif_nacional", "ceav", "segob", "cndh", "sre"):
        assert type_ in by_type
    names = {i["name"] for i in national_dataset.institutions}
    for ngo in (
        "Casa Alianza",
        "Alternativas Pacíficas",
        "Casa de las Mercedes",
        "CIAM",
        "Camino a Casa",
    ):
        assert any(ngo in n for n in names), ngo
    ids = [i["id"] for i in national_dataset.institutions]
    assert len(ids) == len(set(ids))
    # the INM's Oficinas de Representación belong to the national INM, seated in Mexico City
    inm = [i for i in national_dataset.institutions if i["type"] == "inm"]
    assert [i["id"] for i in inm if not i.get("parent_id")] == [demo.INM.id]
    assert all(i["parent_id"] == demo.INM.id for i in inm if i["id"] != demo.INM.id)


# --------------------------------------------------------------------------- documented figures


def test_prosecution_facilities_match_the_cndh_diagnosis(demo_dataset):
    """12 offices run 10 refuges, 9 shelters and 1 half-way house; one shelter closed in
    November 2017 (003:293, 309)."""
    fiscalias = {i["id"] for i in demo_dataset.institutions if i["type"] in FISCALIAS}
    run = [f for f in demo_dataset.facilities if f["body"]["operator_institution_id"] in fiscalias]
    assert Counter(f["body"]["kind"] for f in run) == {
        "refugio": 10,
        "albergue": 9,
        "casa_de_medio_camino": 1,
    }
    assert len({f["body"]["operator_institution_id"] for f in run}) == 12
    closed = [f for f in run if f["status"] == "closed"]
    assert [c["closed_on"] for c in closed] == ["2017-11-30"]


# Tolerances: sampling error of 100,000 draws is far smaller (σ ≈ 0.001–0.005); these
# bounds allow the assumed extras (S.I. ages, sex "X") without hiding a wrong figure.
def test_victims_follow_the_documented_distributions(stress_dataset):
    assert len(_victims(stress_dataset)) == 100_000  # one direct victim per referral
    victims = _victims_once(stress_dataset)
    n = len(victims)
    female = sum(p["sex"] == "F" for p in victims) / n
    assert female == pytest.approx(fig.FEMALE_SHARE, abs=0.02)
    known = [p for p in victims if p["age"] is not None]
    assert sum(p["age"] < 18 for p in known) / len(known) == pytest.approx(0.27, abs=0.02)
    females = [p for p in known if p["sex"] == "F"]
    males = [p for p in known if p["sex"] == "M"]
    assert sum(p["age"] < 18 for p in females) / len(females) == pytest.approx(0.25, abs=0.03)
    assert sum(p["age"] < 18 for p in males) / len(males) == pytest.approx(0.37, abs=0.04)
    foreign = [p for p in victims if p["nationality"] != "MEX"]
    assert len(foreign) / n == pytest.approx(0.13, abs=0.015)
    mix = Counter(p["nationality"] for p in foreign)
    assert mix["HND"] / len(foreign) == pytest.approx(0.47, abs=0.04)
    assert mix["GTM"] / len(foreign) == pytest.approx(0.22, abs=0.03)
    assert mix["SLV"] / len(foreign) == pytest.approx(0.07, abs=0.02)
    assert len(mix) >= 12  # the rest spread over the other countries INM names
    assert sum(p["sex"] == "F" for p in foreign) / len(foreign) == pytest.approx(0.88, abs=0.03)


def test_exploitation_types_follow_the_reported_shares(stress_dataset):
    victims = _victims_once(stress_dataset)

    # each victim's offences as one category: S.I. (none identified) or "two or more"
    def category(p: dict) -> str:
        recorded = tuple(p["offences"])
        for code, written in fig.OFFENCE_AS_RECORDED.items():
            if recorded == written:
                return code
        assert len(recorded) == 1, recorded
        return recorded[0]

    offences = Counter(category(p) for p in victims)
    assert offences["art10-III"] / len(victims) == pytest.approx(0.70, abs=0.02)
    sexual = [p for p in victims if p["offences"] == ["art10-III"]]
    assert sum(p["sex"] == "F" for p in sexual) / len(sexual) == pytest.approx(0.95, abs=0.02)
    assert set(offences) <= set(fig.OFFENCE_CODES)
    # labour exploitation is the remainder of the reported shares (about 29 %)
    assert offences["art10-IV"] / len(victims) == pytest.approx(
        fig.OFFENCE_WEIGHTS[fig.OFFENCE_CODES.index("art10-IV")], abs=0.02
    )
    assert offences["art10-VI"] > 0 and offences["art10-IX"] > 0  # the rare ones exist
    assert offences["art10-SI"] > 0 and offences["art10-multiple"] > 0
    # what is stored uses only the referral service's catalogue (S.I. is no code at all)
    stored = {code for p in victims for code in p["offences"]}
    assert stored <= set(fig.OFFENCE_CODES) - set(fig.OFFENCE_AS_RECORDED)
    # minors-only offences never name an adult
    assert all(
        p["age"] is not None and p["age"] < 18
        for p in victims
        if set(p["offences"]) & {"art10-VII", "art10-VIII"}
    )


def test_mexican_victims_have_a_state_of_origin_and_foreigners_none(national_dataset):
    victims = _victims(national_dataset)
    assert all(p["state_of_origin"] in STATE_CODES for p in victims if p["nationality"] == "MEX")
    assert all(p["state_of_origin"] is None for p in victims if p["nationality"] != "MEX")


# --------------------------------------------------------------------------- capacity invariants


@pytest.mark.parametrize("scale", ["demo", "national"])
def test_capacity_invariants_hold(scale, demo_dataset, national_dataset):
    ds = demo_dataset if scale == "demo" else national_dataset
    facilities = {f["key"]: f for f in ds.facilities}
    institutions = {i["id"]: i for i in ds.institutions}
    assert len(facilities) == len(ds.facilities)
    for f in ds.facilities:
        body = f["body"]
        assert body["kind"] in KINDS
        assert body["state"] in STATE_CODES
        assert body["operator_institution_id"] in institutions
        assert institutions[body["operator_institution_id"]]["type"] != "inm"  # never detention
        assert f["status"] in ("registered", "active", "suspended", "closed")
        assert (f["closed_on"] is not None) == (f["status"] == "closed")
    for p in ds.pools:
        body = p["body"]
        assert p["facility_key"] in facilities
        assert 0 <= p["occupied"] <= body["total"]
        assert 0 <= p["occupied"] + p["out_of_service"] <= body["total"]
        assert 0 <= body["min_age"] <= body["max_age"]
        assert body["total"] >= 1
        assert body["sexes"] and set(body["sexes"]) <= {"F", "M", "X"}
        # no pool for adult men in the default scenario (003:297, 673)
        assert not ("M" in body["sexes"] and body["max_age"] >= 18), body
        if body["accepts_children"]:
            assert body["max_children"] >= 1 and body["max_child_age"] is not None
        else:
            assert body["max_children"] == 0
        operator = institutions[facilities[p["facility_key"]]["body"]["operator_institution_id"]]
        if operator["type"] in FISCALIAS:
            # children admitted only until 13 in prosecution-run facilities (003:673)
            assert body["max_age"] <= 13 or body["min_age"] >= 18, body
            assert not body["accepts_children"] or body["max_child_age"] <= 12, body
        if facilities[p["facility_key"]]["status"] != "active":
            assert p["occupied"] == 0  # admissions only in active facilities


@pytest.mark.parametrize("scale", ["demo", "national"])
def test_facilities_are_unique_by_operator_and_name(scale, demo_dataset, national_dataset):
    """The loaders' natural key: a repeated (operator, name) would be taken for a facility
    already loaded and its pools silently merged into the other's."""
    ds = demo_dataset if scale == "demo" else national_dataset
    keys = [(f["body"]["operator_institution_id"], f["body"]["name"]) for f in ds.facilities]
    assert len(set(keys)) == len(keys)
    pool_keys = [(p["facility_key"], p["body"]["name"]) for p in ds.pools]
    assert len(set(pool_keys)) == len(pool_keys)


def test_adult_men_scenario_adds_the_missing_facility():
    ds = generate("demo", 2026, scenarios=("adult_men_shelter",))
    men = [p for p in ds.pools if "M" in p["body"]["sexes"] and p["body"]["max_age"] >= 18]
    assert len(men) == 1


def test_addresses_and_names_are_fictitious(demo_dataset, national_dataset):
    address = re.compile(r"^Calle Ficticia \d{1,3}, Col\. Ejemplo [\w ]+, [\w .áéíóúÁÉÍÓÚñ]+$")
    for ds in (demo_dataset, national_dataset):
        for f in ds.facilities:
            assert address.match(f["body"]["address"]), f["body"]["address"]
    demo_names = set(demo.DEMO_USERS)
    pseudonym = re.compile(r"^\w+ \d{3}$")
    for r in national_dataset.referrals:
        for p in r["people"]:
            assert pseudonym.match(p["pseudonym"]), p["pseudonym"]
            assert p["pseudonym"].lower() not in demo_names
    generated = [i["name"] for i in national_dataset.institutions]
    assert not demo_names & {n.lower() for n in generated}


# --------------------------------------------------------------------------- agreements


@pytest.mark.parametrize("scale", ["demo", "national"])
def test_agreements_are_few_and_well_formed(scale, demo_dataset, national_dataset):
    ds = demo_dataset if scale == "demo" else national_dataset
    institutions = {i["id"]: i for i in ds.institutions}
    for a in ds.agreements:
        parties = a["body"]["party_ids"]
        assert len(set(parties)) == len(parties) >= 2
        assert all(p in institutions for p in parties)
        assert set(a["signed_by"]) <= set(parties)
        assert a["body"]["valid_from"] < a["body"]["valid_to"]
    numbers = [a["body"]["number"] for a in ds.agreements]
    assert len(numbers) == len(set(numbers))
    # only 3 prosecution offices have one (003:675)
    prosecution_parties = {
        p
        for a in ds.agreements
        for p in a["body"]["party_ids"]
        if institutions[p]["type"] in FISCALIAS
    }
    assert len(prosecution_parties) == fig.PROSECUTION_OFFICES_WITH_AGREEMENTS
    assert len(ds.agreements) < len(ds.institutions) / 5


# --------------------------------------------------------------------------- referral invariants


@pytest.mark.parametrize("scale", ["demo", "national"])
def test_referral_invariants_hold(scale, demo_dataset, national_dataset):
    ds = demo_dataset if scale == "demo" else national_dataset
    institutions = {i["id"] for i in ds.institutions}
    facilities = {f["id"]: f for f in ds.facilities}
    agreements = {a["body"]["number"]: a for a in ds.agreements}
    reference = datetime.fromisoformat(ds.reference_date)
    ids = set()
    for r in ds.referrals:
        ids.add(r["id"])
        assert r["sending_institution_id"] in institutions
        assert r["receiving_institution_id"] in institutions
        assert r["sending_institution_id"] != r["receiving_institution_id"]
        facility = facilities[r["facility_id"]]
        assert facility["body"]["operator_institution_id"] == r["receiving_institution_id"]
        # only along an agreement signed by every party and in force at the time
        agreement = agreements[r["agreement_number"]]
        parties = agreement["body"]["party_ids"]
        assert sorted(agreement["signed_by"]) == sorted(parties)
        assert {r["sending_institution_id"], r["receiving_institution_id"]} <= set(parties)
        created = _ts(r["created_at"])
        assert created is not None
        assert (
            agreement["body"]["valid_from"] <= r["created_at"][:10] <= agreement["body"]["valid_to"]
        )
        assert created < reference
        # the outcome agrees with the timestamps
        sent, answered = _ts(r["sent_at"]), _ts(r["answered_at"])
        admitted, discharged = _ts(r["admitted_at"]), _ts(r["discharged_at"])
        assert sent is not None and created <= sent
        status = r["status"]
        assert (answered is not None) == (
            status in ("accepted", "declined", "admitted", "discharged")
        )
        assert (admitted is not None) == (status in ("admitted", "discharged"))
        assert (discharged is not None) == (status == "discharged")
        assert (r["cancelled_at"] is not None) == (status == "cancelled")
        assert (r["outcome"] is not None) == (status == "discharged")
        assert (r["reason"] is not None) == (status in ("declined", "cancelled"))
        chain = [t for t in (sent, answered, admitted, discharged) if t is not None]
        assert chain == sorted(chain)
        assert all(t < reference for t in chain)
        # people: one direct victim; children are minors travelling with an adult
        roles = [p["role"] for p in r["people"]]
        assert set(roles) <= PERSON_ROLES and roles.count("victim") == 1
        adults = [
            p for p in r["people"]
            if p["role"] in ("victim", "indirect_victim") and p["age"] is not None and p["age"] >= 18
        ]  # fmt: skip
        for p in r["people"]:
            assert p["sex"] in ("F", "M", "X")
            assert p["age"] is None or 0 <= p["age"] <= 99
            if p["role"] == "accompanying_child":
                assert p["age"] is not None and p["age"] < 18
                assert adults
        # an admitted group fits a pool of the facility (families stay together)
        if status in ("admitted", "discharged"):
            pools = (
                [p["body"] for p in ds.pools if p["facility_key"] == facility["key"]]
                if scale == "demo"
                else None
            )
            if pools is not None:
                assert any(pool_admits(b, r["people"]) for b in pools)
    assert len(ids) == len(ds.referrals)


def test_history_shows_the_documented_gap_for_adult_men(national_dataset):
    """No facility houses adult men (003:673): their referrals end declined."""
    men = [
        r for r in national_dataset.referrals
        if r["people"][0]["sex"] == "M" and (r["people"][0]["age"] or 0) >= 18
    ]  # fmt: skip
    assert men
    assert all(r["status"] in ("declined", "cancelled", "sent") for r in men)
    statuses = Counter(r["status"] for r in national_dataset.referrals)
    # shelters far scarcer than demand: more referrals declined than admitted and discharged
    assert statuses["declined"] > statuses["discharged"] > statuses["cancelled"] > 0


# --------------------------------------------------------------------------- the demo story


def test_demo_has_the_contract_institutions_with_their_ids(demo_dataset):
    by_id = {i["id"]: i for i in demo_dataset.institutions}
    for inst in demo.DEMO_INSTITUTIONS:
        assert by_id[inst.id] == {
            "id": inst.id,
            "name": inst.name,
            "type": inst.type,
            "state": inst.state,
        }
    assert stable_id("institution", "ngo-casa-de-las-mercedes") == demo.CASA_MERCEDES.id


def test_demo_story_a_mother_and_two_children_find_a_bed_in_cdmx(demo_dataset):
    facilities = {f["key"]: f for f in demo_dataset.facilities}
    family = [
        {"sex": "F", "age": 29, "role": "victim"},
        {"sex": "M", "age": 4, "role": "accompanying_child"},
        {"sex": "F", "age": 9, "role": "accompanying_child"},
    ]
    found = []
    for p in demo_dataset.pools:
        f = facilities[p["facility_key"]]
        available = p["body"]["total"] - p["occupied"] - p["out_of_service"]
        if (
            f["status"] == "active"
            and f["body"]["state"] == "09"
            and available >= len(family)
            and pool_admits(p["body"], family)
        ):
            found.append(f["body"]["operator_institution_id"])
    assert demo.CASA_MERCEDES.id in found
    mercedes = [
        f for f in demo_dataset.facilities
        if f["body"]["operator_institution_id"] == demo.CASA_MERCEDES.id
        and f["body"]["kind"] == "refugio" and f["status"] == "active" and f["body"]["state"] == "09"
    ]  # fmt: skip
    pools = [p["body"] for p in demo_dataset.pools if p["facility_key"] == mercedes[0]["key"]]
    assert any(
        b["sexes"] == ["F"] and b["accepts_children"] and b["max_child_age"] == 12 for b in pools
    )


@pytest.mark.parametrize("scale", ["demo", "national"])
def test_story_a_girl_of_16_and_her_baby_have_a_place_in_cdmx(
    scale, demo_dataset, national_dataset
):
    """The mission's example: the place for both is Casa de las Mercedes' refuge (reachable
    from FEVIMTRA by agreement); in the demo it is the only one in CDMX, so search ranks it
    first whatever the order facilities were loaded in."""
    ds = demo_dataset if scale == "demo" else national_dataset
    facilities = {f["key"]: f for f in ds.facilities}
    group = [
        {"sex": "F", "age": 16, "role": "victim"},
        {"sex": "F", "age": 0, "role": "accompanying_child"},
    ]
    places = {
        p["facility_key"]
        for p in ds.pools
        if facilities[p["facility_key"]]["status"] == "active"
        and facilities[p["facility_key"]]["body"]["state"] == "09"
        and p["body"]["total"] - p["occupied"] - p["out_of_service"] >= len(group)
        and pool_admits(p["body"], group)
    }
    assert "fac-casa-de-las-mercedes-refugio" in places
    if scale == "demo":
        assert places == {"fac-casa-de-las-mercedes-refugio"}
    assert sum(p["body"]["total"] for p in ds.pools) == ds.counts()["beds"]
    if scale == "national":
        assert ds.counts()["pools"] == 20_000  # the story replaced a pool, added none


def test_demo_agreements_of_fevimtra_are_signed_and_in_force(demo_dataset):
    reference = demo_dataset.reference_date
    signed_partners = set()
    for a in demo_dataset.agreements:
        parties = a["body"]["party_ids"]
        if (
            demo.FGR.id in parties
            and sorted(a["signed_by"]) == sorted(parties)
            and a["body"]["valid_from"] <= reference <= a["body"]["valid_to"]
        ):
            signed_partners |= set(parties) - {demo.FGR.id}
    assert {demo.CASA_MERCEDES.id, demo.SNDIF.id} <= signed_partners
    # in force when the demo runs, too (valid for years after the reference date)
    assert all(a["body"]["valid_to"] >= "2027-01-01" for a in demo_dataset.agreements[:2])


def test_ngo_beds_are_mostly_for_women_with_children_and_dif_beds_for_minors(national_dataset):
    """Mothers with children are the norm in NGO shelters (002:521-522); DIF's centres take
    children and adolescents (003:539)."""
    types = {i["id"]: i["type"] for i in national_dataset.institutions}
    facilities = {f["key"]: f for f in national_dataset.facilities}
    ngo_beds = mothers = 0
    for p in national_dataset.pools:
        operator = types[facilities[p["facility_key"]]["body"]["operator_institution_id"]]
        body = p["body"]
        if operator == "ngo":
            ngo_beds += body["total"]
            if body["accepts_children"] and body["min_age"] >= 15 and body["sexes"] == ["F"]:
                mothers += body["total"]
        elif operator in ("dif_estatal", "dif_nacional"):
            assert body["max_age"] <= 17, body
    assert mothers / ngo_beds > 0.5


def test_same_seed_gives_the_same_bytes_in_another_process():
    """No dependence on hash randomisation (set order) or anything else per process."""
    import subprocess
    import sys

    code = (
        "import hashlib, sys; from canaliza.seed.generator import generate; "
        "sys.stdout.write(hashlib.sha256(generate('demo', 5).to_json()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": hash_seed, "PYTHONPATH": "."},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    import hashlib

    assert digests == {hashlib.sha256(generate("demo", 5).to_json()).hexdigest()}


def test_segob_roster_has_the_registrations_and_visits_the_cndh_found(
    demo_dataset, national_dataset
):
    """10 facilities registered, only one of them visited; 8 visits in three years (4, 3, 1)
    to 6 facilities, 5 of them not registered (003:517). Casa de las Mercedes is left to its
    coordinator's own request."""
    for ds in (demo_dataset, national_dataset):
        facilities = {f["id"]: f for f in ds.facilities}
        registered = {r["facility_id"] for r in ds.registrations}
        assert len(registered) == len(ds.registrations) == fig.ROSTER_REGISTERED
        visited = {v["facility_id"] for v in ds.visits}
        assert len(ds.visits) == sum(fig.ROSTER_VISITS_BY_YEAR) == 8
        assert len(visited) == fig.ROSTER_VISITED_FACILITIES == 6
        assert len(visited & registered) == 1
        years = Counter(v["done_on"][:4] for v in ds.visits)
        ref = int(ds.reference_date[:4])
        assert [years[str(ref - 3)], years[str(ref - 2)], years[str(ref - 1)]] == [4, 3, 1]
        for fid in registered | visited:
            assert facilities[fid]["status"] == "active"
            assert facilities[fid]["body"]["operator_institution_id"] != demo.CASA_MERCEDES.id
    again = generate("demo", 2026)
    assert (again.registrations, again.visits) == (demo_dataset.registrations, demo_dataset.visits)
