"""The contract's "Vocabulary used in bodies" in referrals: sex, age and nationality may be
not recorded (``null``, S.I.), nationality is any ISO 3166-1 country (alpha-2 normalised to
alpha-3, ``XXA`` stateless), and an optional field sent as ``null`` means left out."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from audit.main import consume
from referral.database import db
from referral.models import Referral, ReferralPerson
from tests.audit import conftest as audit_fixtures
from tests.conftest import running
from tests.referral.conftest import INM

audit_template = audit_fixtures.audit_template
audit_db = audit_fixtures.audit_db

NOT_RECORDED = {"sex": None, "age": None, "role": "victim", "nationality": None}


def _people_rows() -> list[ReferralPerson]:
    with db.new_session() as session:
        return list(session.exec(select(ReferralPerson)).all())


def _referral_count() -> int:
    with db.new_session() as session:
        return len(session.exec(select(Referral)).all())


async def test_not_recorded_sex_age_nationality_are_stored_as_null(ctx):
    """Bug: ``"sex": null`` and ``"nationality": null`` were refused (422)."""
    ref = await ctx.referral(people=[NOT_RECORDED])
    (person,) = ref["people"]
    assert person["sex"] is None and person["age"] is None and person["nationality"] is None
    (row,) = _people_rows()
    assert (row.sex, row.age, row.nationality) == (None, None, None), "NULL, never X, 0 or MEX"


async def test_null_nationality_brings_a_task_not_the_inm(ctx):
    ref = await ctx.referral(people=[NOT_RECORDED])
    kinds = {o["kind"]: o for o in ref["obligations"]}
    assert "inm_migration_status" not in kinds, "not recorded is not foreign"
    assert kinds["nationality_unconfirmed"]["label"].startswith("Nacionalidad por confirmar")
    assert kinds["nationality_unconfirmed"]["institution_id"] == ref["sending_institution_id"]
    # unknown age: presumed a minor, the DIF is brought in
    assert "dif_child_protection" in kinds
    # the sending prosecutor confirms it
    r = await ctx.client.post(
        f"/api/v1/referrals/{ref['id']}/obligations/{kinds['nationality_unconfirmed']['id']}"
        "/fulfil",
        json={"note": "Nacionalidad confirmada: hondureña"},
        headers=ctx.fiscal,
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("given", "stored", "inm"),
    [("HND", "HND", True), ("hn", "HND", True), ("MX", "MEX", False), ("MEX", "MEX", False),
     ("XXA", "XXA", True), ("GTM", "GTM", True)],
)  # fmt: skip
async def test_nationality_is_iso_3166_1_alpha_2_normalised(ctx, given, stored, inm):
    ref = await ctx.referral(
        people=[{"sex": "F", "age": 30, "role": "victim", "nationality": given}]
    )
    assert ref["people"][0]["nationality"] == stored
    kinds = {o["kind"]: o for o in ref["obligations"]}
    assert ("inm_migration_status" in kinds) is inm
    if inm:
        assert kinds["inm_migration_status"]["institution_id"] == INM
    assert "nationality_unconfirmed" not in kinds


@pytest.mark.parametrize(
    ("person", "phrase"),
    [
        ({"sex": "F", "age": 30, "role": "victim", "nationality": "ZZZ"}, "ISO 3166-1"),
        ({"sex": "F", "age": 30, "role": "victim", "nationality": "QQ"}, "ISO 3166-1"),
        ({"sex": "F", "age": 30, "role": "victim", "nationality": "E"}, "nationality"),
        ({"sex": "Q", "age": 30, "role": "victim", "nationality": "MEX"}, "sex"),
        ({"sex": "F", "age": None, "role": "accompanying_child", "nationality": "MEX"},
         "edad de una niña o niño acompañante"),
    ],
)  # fmt: skip
async def test_bad_vocabulary_is_422_in_spanish_and_nothing_written(ctx, person, phrase):
    r = await ctx.client.post(
        "/api/v1/referrals", json=ctx.referral_body(people=[person]), headers=ctx.fiscal
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "validation_error"
    assert "people.0" in body["detail"] and phrase in body["detail"]
    assert _referral_count() == 0 and _people_rows() == []


async def test_sex_and_nationality_are_stated_even_if_null(ctx):
    """Never a default: leaving sex or nationality out is refused; null says "not recorded"."""
    r = await ctx.client.post(
        "/api/v1/referrals",
        json=ctx.referral_body(people=[{"age": 30, "role": "victim"}]),
        headers=ctx.fiscal,
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "people.0.sex" in detail and "people.0.nationality" in detail


async def test_optional_referral_fields_sent_as_null_mean_left_out(ctx):
    body = ctx.referral_body(
        agreement_id=None, state=None, case_reference=None, services=None,
        witness_protection=None,
        people=[{"sex": "F", "age": 30, "role": "victim", "nationality": "MEX",
                 "pseudonym": None, "name": None, "state_of_origin": None, "languages": None,
                 "vulnerable_groups": None, "offences": None}],
        consent={"given": True, "given_by": None, "given_at": None, "scope": None},
    )  # fmt: skip
    r = await ctx.client.post("/api/v1/referrals", json=body, headers=ctx.fiscal)
    assert r.status_code == 201, r.text
    ref = r.json()
    assert ref["services"] == [] and ref["witness_protection"] is False
    await ctx.agreement()
    r = await ctx.act(ref["id"], "send", ctx.fiscal, reason=None)
    assert r.status_code == 200, r.text


async def test_unknown_sex_needs_an_agreement_open_to_every_sex(ctx):
    await ctx.agreement(populations={"sexes": ["F"], "age_groups": ["adults", "minors"]})
    ref = await ctx.referral(people=[{**NOT_RECORDED, "age": 30}])
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 403, r.text
    assert "sin sexo registrado" in r.json()["detail"]
    await ctx.agreement()  # one open to every sex (the default scope)
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 200, r.text


async def test_statistics_count_not_recorded_as_si_never_x_or_zero(ctx, audit_db):
    """A referral with null sex/age/nationality counts as S.I. in the people report."""
    from audit.main import service as audit_service
    from services.app import create_app
    from services.bus import InProcessBus
    from services.settings import get_settings

    await ctx.agreement()
    await ctx.sent_referral(people=[NOT_RECORDED])
    await ctx.sent_referral(people=[{"sex": "X", "age": 0, "role": "victim", "nationality": "MEX"}])
    for _ in range(200):  # the bus delivers to the collector asynchronously
        if sum(e.type == "referral.referral.send" for e in ctx.events) >= 2:
            break
        await asyncio.sleep(0.02)
    assert sum(e.type == "referral.referral.send" for e in ctx.events) == 2, ctx.events
    for event in ctx.events:
        consume(event)
    get_settings().auto_migrate = False
    audit_app = create_app([audit_service()], bus=InProcessBus())
    async with running(audit_app) as client:
        seen = {}
        for by in ("sex", "nationality", "age_group"):
            r = await client.get(f"/api/v1/reports/people?by={by}", headers=ctx.h("segob_auditor"))
            assert r.status_code == 200, r.text
            seen[by] = {row[by]: row for row in r.json()["rows"]}
    assert set(seen["sex"]) == {"S.I.", "X"}, seen["sex"]
    assert set(seen["nationality"]) == {"S.I.", "MEX"}, seen["nationality"]
    assert "S.I." in seen["age_group"] and "0-12" in seen["age_group"]
