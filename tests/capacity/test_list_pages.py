"""Issue 18: the capacity lists that grow are read page by page with a cursor, in a stable
order (a unique id breaks ties), every row once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.pages import walk


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


async def test_the_roster_walks_every_facility_once_in_order(cap):
    # Names and states repeat: only the id tells some of them apart.
    for name, state in [("B", "09"), ("A", "14"), ("A", "09"), ("A", "09"), ("C", "09")] * 2:
        await cap.facility(name=name, state=state, active=False)
    h = cap.prosecutor()
    whole = (await cap.client.get("/api/v1/facilities", params={"limit": 500}, headers=h)).json()
    assert whole["total"] == 10 and len(whole["items"]) == 10
    expected = sorted(whole["items"], key=lambda f: (f["state"], f["name"], f["id"]))
    assert _ids(whole["items"]) == _ids(expected)
    got, pages = await walk(
        cap.client, "/api/v1/facilities", h, limit=3, items=lambda body: body["items"]
    )
    assert _ids(got) == _ids(expected) and pages == 4
    # Filters travel with the cursor (the Link repeats the query).
    nine, pages = await walk(
        cap.client,
        "/api/v1/facilities",
        h,
        limit=2,
        params={"state": "09"},
        items=lambda body: body["items"],
    )
    assert _ids(nine) == [f["id"] for f in expected if f["state"] == "09"] and pages == 4
    # The body keeps the contract's shape; offset (deprecated) still pages.
    r = await cap.client.get("/api/v1/facilities", params={"limit": 3, "offset": 3}, headers=h)
    assert set(r.json()) == {"items", "total", "limit", "offset"}
    assert _ids(r.json()["items"]) == _ids(expected[3:6])
    cursor = r.headers["x-next-cursor"]
    r = await cap.client.get(
        "/api/v1/facilities", params={"cursor": cursor, "offset": 3}, headers=h
    )
    assert r.status_code == 422 and r.json()["error"] == "invalid_cursor"


async def test_pools_ledger_and_holds_walk_every_row_once(cap):
    fac = await cap.facility()
    pools = [
        await cap.pool(fac["id"], name=name, total=8) for name in ("Mujeres", "Hombres", "Mujeres")
    ]
    h = cap.admin()
    url = f"/api/v1/facilities/{fac['id']}/pools"
    got, pages = await walk(cap.client, url, h, limit=2)
    assert _ids(got) == _ids(sorted(pools, key=lambda p: (p["name"], p["id"]))) and pages == 2

    pool = pools[0]
    for beds in (1, 2, 1, 1):
        r = await cap.client.post(
            f"/api/v1/pools/{pool['id']}/ledger",
            json={"kind": "admit", "beds": beds, "reason": "ingreso"},
            headers=h,
        )
        assert r.status_code in (200, 201), r.text
    ledger = f"/api/v1/pools/{pool['id']}/ledger"
    whole = (await cap.client.get(ledger, headers=h)).json()["items"]
    assert len(whole) >= 4
    got, pages = await walk(cap.client, ledger, h, limit=2, items=lambda body: body["items"])
    assert got == whole and pages == (len(whole) + 1) // 2

    made = []
    for ttl in (30, 10, 30, 20, 10):
        r = await cap.hold([{"pool_id": pools[1]["id"], "beds": 1}], ttl_minutes=ttl)
        assert r.status_code == 201, r.text
        made.append(r.json())
    whole = (await cap.client.get("/api/v1/holds", headers=cap.prosecutor())).json()
    assert sorted(_ids(whole)) == sorted(_ids(made))
    assert [h["expires_at"] for h in whole] == sorted(h["expires_at"] for h in whole)
    got, pages = await walk(cap.client, "/api/v1/holds", cap.prosecutor(), limit=2)
    assert _ids(got) == _ids(whole) and pages == 3


@pytest.mark.parametrize(
    "cursor", ["nope", "W10", "WyJhIl0", "WzEsMiwzXQ", "x" * 700, "eyJhIjogMX0", "WzEsMiwzLDRd"]
)
async def test_a_cursor_the_list_did_not_make_is_a_422(cap, cursor):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"])
    h = cap.admin()
    for url in (
        "/api/v1/facilities",
        f"/api/v1/facilities/{fac['id']}/pools",
        f"/api/v1/pools/{pool['id']}/ledger",
    ):
        r = await cap.client.get(url, params={"cursor": cursor}, headers=h)
        assert r.status_code == 422, (url, r.text)
        assert r.json()["error"] == "invalid_cursor", (url, r.json())
    r = await cap.client.get("/api/v1/holds", params={"cursor": cursor}, headers=cap.prosecutor())
    assert r.status_code == 422 and r.json()["error"] == "invalid_cursor"
