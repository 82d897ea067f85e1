"""The loader against a stand-in of the public contract (tests/seed/fake_canaliza.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from canaliza import demo
from canaliza.seed import Credentials, load_dataset, load_demo_into_app
from canaliza.seed.generator import Dataset, generate
from canaliza.seed.loader import LoadError
from tests.seed.fake_canaliza import PASSWORD, create_fake

CREDS = Credentials(username="admin", password=PASSWORD)


async def _load(app, ds: Dataset, **kw):
    return await load_dataset(ds, app=app, credentials=CREDS, progress=False, **kw)


async def test_demo_dataset_loads_through_the_public_api(demo_dataset):
    app = create_fake()
    report = await _load(app, demo_dataset)
    assert report.failures == []
    data = app.state.data
    assert set(data["institutions"]) == {i["id"] for i in demo_dataset.institutions}
    for inst in demo.DEMO_INSTITUTIONS:
        assert data["institutions"][inst.id]["name"] == inst.name
    assert len(data["facilities"]) == len(demo_dataset.facilities)
    assert len(data["pools"]) == len(demo_dataset.pools)
    # intended statuses reached through PATCH, the 422 on extra fields retried minimal
    assert Counter(f["status"] for f in data["facilities"].values()) == Counter(
        f["status"] for f in demo_dataset.facilities
    )
    # occupancy arrived through ledger entries
    assert sum(p["occupied"] for p in data["pools"].values()) == sum(
        p["occupied"] for p in demo_dataset.pools
    )
    assert sum(p["out_of_service"] for p in data["pools"].values()) == sum(
        p["out_of_service"] for p in demo_dataset.pools
    )
    assert report.created["facilities"] == len(demo_dataset.facilities)
    assert report.ids[demo_dataset.facilities[0]["id"]] in data["facilities"]


async def test_the_cdmx_story_holds_after_loading(demo_dataset):
    app = create_fake()
    await _load(app, demo_dataset)
    data = app.state.data
    refuges = [
        f for f in data["facilities"].values()
        if f["operator_institution_id"] == demo.CASA_MERCEDES.id
        and f["kind"] == "refugio" and f["state"] == "09" and f["status"] == "active"
    ]  # fmt: skip
    assert refuges
    free = [
        p["total"] - p["occupied"] - p["out_of_service"]
        for p in data["pools"].values()
        if p["facility_id"] == refuges[0]["id"]
        and p["accepts_children"] and p["max_child_age"] == 12 and p["sexes"] == ["F"]
    ]  # fmt: skip
    assert free and max(free) >= 3
    signed = [a for a in data["agreements"].values() if a["status"] == "signed"]
    partners = {p for a in signed if demo.FGR.id in a["party_ids"] for p in a["party_ids"]}
    assert {demo.CASA_MERCEDES.id, demo.SNDIF.id} <= partners
    # the agreement awaiting a signature is not signed
    assert any(a["status"] == "ready" for a in data["agreements"].values())


async def test_loading_twice_creates_nothing_new(demo_dataset):
    app = create_fake()
    await _load(app, demo_dataset)
    before = {k: len(v) for k, v in app.state.data.items()}
    again = await _load(app, demo_dataset)
    assert again.failures == []
    assert sum(again.created.values()) == 0
    assert again.skipped["institutions"] == len(demo_dataset.institutions)
    assert again.skipped["facilities"] == len(demo_dataset.facilities)
    assert {k: len(v) for k, v in app.state.data.items()} == before


async def test_only_if_empty_leaves_a_populated_roster_alone(demo_dataset):
    app = create_fake()
    await _load(app, demo_dataset)
    report = await _load(app, generate("demo", 99), only_if_empty=True)
    assert report.skipped_reason
    assert sum(report.created.values()) == 0


async def test_ids_assigned_by_the_target_are_followed():
    app = create_fake(stable_ids=False)
    ds = generate("demo", 5)
    report = await _load(app, ds)
    assert report.failures == []
    assert any("otro id" in w for w in report.warnings)
    operators = {f["operator_institution_id"] for f in app.state.data["facilities"].values()}
    assert operators <= set(app.state.data["institutions"])
    for a in app.state.data["agreements"].values():
        assert set(a["party_ids"]) <= set(app.state.data["institutions"])


async def test_wrong_credentials_stop_the_load(demo_dataset):
    app = create_fake()
    with pytest.raises(LoadError):
        await load_dataset(
            demo_dataset,
            app=app,
            credentials=Credentials(username="admin", password="nope"),
            progress=False,
        )
    assert app.state.data["institutions"] == {}


async def test_a_refused_record_is_reported_not_hidden():
    ds = generate("demo", 3)
    ds.pools[0]["occupied"] = ds.pools[0]["body"]["total"] + 1  # the fake answers 409
    app = create_fake()
    report = await _load(app, ds)
    assert len(report.failures) == 1 and "409" in report.failures[0]


async def test_load_demo_into_app_runs_the_lifespan_and_exports_history(tmp_path, monkeypatch):
    monkeypatch.setenv("CANALIZA_DEMO_PASSWORD", PASSWORD)
    app = create_fake()
    report = await load_demo_into_app(app)
    assert report.failures == [] and report.created["facilities"] > 0
    from services.settings import get_settings

    exported = list((get_settings().data_dir / "seed").glob("referrals-demo-*.jsonl"))
    assert exported
    second = await load_demo_into_app(app)
    assert second.skipped_reason and sum(second.created.values()) == 0


async def test_existing_records_are_found_beyond_the_first_page(demo_dataset):
    """The fake pages 100 at a time (institutions by cursor, the rest by offset); the demo
    has more institutions than that."""
    app = create_fake()
    await _load(app, demo_dataset)
    again = await _load(app, demo_dataset)
    assert len(demo_dataset.institutions) > 100
    # found by listing, not by a 409 on a second POST
    assert again.skipped["institutions"] == len(demo_dataset.institutions)
    posts = [c for c in app.state.calls if c == ("POST", "/api/v1/institutions")]
    assert len(posts) == len(demo_dataset.institutions)


async def test_a_partial_demo_roster_is_completed_on_the_next_start(demo_dataset):
    """E.g. the roster was loaded before the referral service (agreements) existed."""
    app = create_fake()
    partial = generate("demo", 2026)
    partial.agreements = []
    await _load(app, partial)
    assert app.state.data["agreements"] == {}
    report = await load_demo_into_app(app, credentials=CREDS)
    assert report.created["agreements"] == len(demo_dataset.agreements)
    assert report.created["facilities"] == 0 and report.created["institutions"] == 0
