"""The seeds' own tables, reproduced from data entered through the public API and read back
from the statistics (docs/statistics-seed-tables.md shows each call).

- The INM's 133 foreign victims (``003:207, 535``): 93 adult women, 17 girls, 17 adult men,
  6 boys; 21 referred to civil-society shelters, 8 to government, 104 with no information;
  90 humanitarian visas.
- The CEEAV's 139 direct victims by form of exploitation (``003:199``): sexual exploitation
  59, forced labour or services 9, forced begging 5, forced or servile marriage 1, not
  identified 65.
"""

from __future__ import annotations

from typing import Any

import pytest

from canaliza.demo import CASA_MERCEDES, DIF_CDMX
from tests.conftest import demo_login, running
from tests.statistics.conftest import (
    facility_with_pool,
    historical,
    import_batch,
    settled,
    sign_government_agreement,
)

pytestmark = pytest.mark.slow

# (sex, age, how many): adult women, girls, adult men, boys
INM_PROFILES = (("F", 27, 93), ("F", 15, 17), ("M", 31, 17), ("M", 14, 6))
# Honduras 47 %, Guatemala 22 %, El Salvador 7 % (003:209); the rest from elsewhere.
INM_COUNTRIES = ("HND",) * 62 + ("GTM",) * 29 + ("SLV",) * 9 + ("NIC", "COL", "VEN") * 11


def _inm_people() -> list[dict[str, Any]]:
    people = [
        {"sex": sex, "age": age, "role": "victim", "offences": ["art10-III"]}
        for sex, age, n in INM_PROFILES
        for _ in range(n)
    ]
    for person, country in zip(people, INM_COUNTRIES, strict=True):
        person["nationality"] = country
    return people


async def test_inm_table_133_foreign_victims(world_app):
    async with running(world_app) as client:
        sign_government_agreement()
        casa, _ = await facility_with_pool(client, CASA_MERCEDES.id)
        dif, _ = await facility_with_pool(client, DIF_CDMX.id)
        rows = []
        for i, person in enumerate(_inm_people()):
            # 21 taken in by civil society, 8 by government, 104 never known to arrive
            if i < 21:
                receiver, facility, status = CASA_MERCEDES.id, casa, "admitted"
            elif i < 29:
                receiver, facility, status = DIF_CDMX.id, dif, "discharged"
            else:
                receiver, facility = CASA_MERCEDES.id, casa
                status = "declined" if i % 2 else "sent"
            rows.append(historical(receiver=receiver, facility_id=facility, people=[person],
                                   status=status, day=i))  # fmt: skip
        await import_batch(client, rows)

        # the INM records 90 humanitarian visas on its obligation of 90 of them
        inm = await demo_login(client, "inm")
        for row in rows[:90]:
            ref = await client.get(f"/api/v1/referrals/{row['id']}", headers=inm)
            assert ref.status_code == 200, ref.text
            (obligation,) = [o for o in ref.json()["obligations"]
                             if o["kind"] == "inm_migration_status"]  # fmt: skip
            done = await client.post(
                f"/api/v1/referrals/{row['id']}/obligations/{obligation['id']}/fulfil",
                json={"humanitarian_visa_status": "granted"},
                headers=inm,
            )
            assert done.status_code == 200, done.text

        auditor = await demo_login(client, "auditor")
        await settled(client, auditor, 133)
        r = await client.get("/api/v1/reports/people", params={"by": "sex,age_group"},
                             headers=auditor)  # fmt: skip
        body = r.json()
        assert body["unit"] == "people"
        table = {(x["sex"], x["age_group"]): x["people"] for x in body["rows"]}
        assert table == {("F", "18-59"): 93, ("F", "13-17"): 17, ("M", "18-59"): 17,
                         ("M", "13-17"): 6}  # fmt: skip
        assert body["totals"]["people"] == 133

        r = await client.get("/api/v1/reports/referral-outcomes", headers=auditor)
        totals = r.json()["totals"]
        assert (totals["civil_society"], totals["government"], totals["no_information"]) == (
            21, 8, 104,
        )  # fmt: skip
        assert totals["total"] == 133

        r = await client.get("/api/v1/reports/people", params={"by": "humanitarian_visa"},
                             headers=auditor)  # fmt: skip
        visas = {x["humanitarian_visa"]: x["people"] for x in r.json()["rows"]}
        assert visas == {"granted": 90, "S.I.": 43}

        r = await client.get("/api/v1/reports/people", params={"by": "nationality"},
                             headers=auditor)  # fmt: skip
        countries = {x["nationality"]: x["people"] for x in r.json()["rows"]}
        assert (countries["HND"], countries["GTM"], countries["SLV"]) == (62, 29, 9)


# Forms of exploitation as the CEEAV reported them, and how each is recorded: stand-alone
# offences of the General Law (arts. 13-20 sexual, 22 forced labour, 24 begging, 28
# marriage), apart from trafficking for a purpose (art. 10); not identified is S.I.
CEEAV_FORMS = (("art13", 59), ("art22", 9), ("art24", 5), ("art28", 1), (None, 65))


async def test_ceeav_table_139_direct_victims_by_exploitation(world_app):
    async with running(world_app) as client:
        sign_government_agreement()
        casa, _ = await facility_with_pool(client, CASA_MERCEDES.id)
        rows = []
        i = 0
        for code, n in CEEAV_FORMS:
            for _ in range(n):
                person = {"sex": "F" if i % 4 else "M", "age": 20 + i % 30, "role": "victim",
                          "nationality": "MEX", "offences": [code] if code else []}  # fmt: skip
                rows.append(historical(receiver=CASA_MERCEDES.id, facility_id=casa,
                                       people=[person], status="admitted", day=i))  # fmt: skip
                i += 1
        await import_batch(client, rows)

        auditor = await demo_login(client, "auditor")
        await settled(client, auditor, 139)
        r = await client.get("/api/v1/reports/people", params={"by": "offence"},
                             headers=auditor)  # fmt: skip
        body = r.json()
        table = {x["offence"]: x["people"] for x in body["rows"]}
        assert table == {"art13": 59, "art22": 9, "art24": 5, "art28": 1, "S.I.": 65}
        assert body["totals"]["people"] == 139  # no section total exceeds the victims
