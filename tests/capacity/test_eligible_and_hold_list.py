"""Issue 19: the beds a group can use (not every free bed), and an institution's holds
listed with their group, resumable from any session."""

from __future__ import annotations

from canaliza.demo import FGR

MOTHER = {"sex": "F", "age": 30, "role": "victim"}
DAUGHTER = {"sex": "F", "age": 3, "role": "accompanying_child"}


async def test_eligible_counts_only_the_beds_of_pools_that_fit_the_group(cap):
    fac = await cap.facility()
    await cap.pool(fac["id"], total=4)  # women with children: fits
    await cap.pool(fac["id"], name="Hombres", sexes=["M"], total=9, accepts_children=False)
    [result] = (await cap.search([MOTHER, DAUGHTER]))["results"]
    assert (result["available"], result["eligible"]) == (13, 4)


async def test_holds_keep_their_group_and_are_listed_for_the_institution_only(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"])
    r = await cap.hold([{"pool_id": pool["id"], "beds": 2}], people=[MOTHER, DAUGHTER])
    assert r.status_code == 201, r.text
    hold = r.json()
    # Kept as the search reads them (languages: none given; no child bound to an adult).
    unset: dict[str, object] = {"languages": [], "stays_with": None}
    assert hold["people"] == [{**MOTHER, **unset}, {**DAUGHTER, **unset}]
    bare = await cap.hold([{"pool_id": pool["id"], "beds": 1}])
    assert bare.status_code == 201 and bare.json()["people"] == []
    listed = await cap.client.get("/api/v1/holds", headers=cap.prosecutor())
    assert listed.status_code == 200, listed.text
    assert [h["id"] for h in listed.json()] == [hold["id"], bare.json()["id"]]
    assert {h["institution_id"] for h in listed.json()} == {FGR.id}
    # Another institution's prosecutor sees none of them, nor does a shelter coordinator
    # (she lists only her own institution's holds, made for onward transfers; ADR 0021).
    other = cap.headers("prosecutor", institution_id="otra-fiscalia", sub="otra")
    assert (await cap.client.get("/api/v1/holds", headers=other)).json() == []
    mine = await cap.client.get("/api/v1/holds", headers=cap.coordinator())
    assert mine.status_code == 200 and mine.json() == []
    # Released holds leave the list.
    await cap.client.delete(f"/api/v1/holds/{hold['id']}", headers=cap.prosecutor())
    listed = await cap.client.get("/api/v1/holds", headers=cap.prosecutor())
    assert [h["id"] for h in listed.json()] == [bare.json()["id"]]
