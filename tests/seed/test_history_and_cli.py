"""History export, the ``canaliza seed`` command, and the main job's demo hook."""

from __future__ import annotations

import csv
import json

import pytest
import typer
from typer.testing import CliRunner

from canaliza.seed import load_demo_if_empty
from canaliza.seed.cli import COMMANDS
from canaliza.seed.history import export_history, load_history, read_history


def test_history_export_round_trips(demo_dataset, tmp_path):
    paths = export_history(demo_dataset, tmp_path)
    rows = list(read_history(paths["referrals"]))
    # every referral, in id order (what the import writes best, ADR 0034)
    assert rows == sorted(demo_dataset.referrals, key=lambda r: r["id"])
    with paths["people"].open(encoding="utf-8") as fh:
        people = list(csv.DictReader(fh))
    assert len(people) == demo_dataset.counts()["people"]
    assert {p["referral_id"] for p in people} == {r["id"] for r in rows}


async def test_load_history_hands_every_row_to_an_importer_in_batches(demo_dataset, tmp_path):
    batches: list[int] = []

    async def importer(batch):
        batches.append(len(batch))
        return len(batch)

    loaded = {f["id"]: f"real-{f['id']}" for f in demo_dataset.facilities}
    result = await load_history(
        demo_dataset, out_dir=tmp_path, facility_ids=loaded, importer=importer, batch_size=250
    )
    assert result["imported"] == len(demo_dataset.referrals) == sum(batches)
    assert max(batches) == 250
    first = next(read_history(result["paths"]["referrals"]))
    assert first["facility_id"].startswith("real-")


async def test_load_history_sends_the_referrals_in_id_order(demo_dataset, tmp_path):
    """A batch covers one stretch of ids (so of every index keyed by the referral), and the
    batches follow each other: none writes all over a large table's indexes."""
    batches: list[list[str]] = []

    async def importer(batch):
        batches.append([r["id"] for r in batch])
        return len(batch)

    await load_history(demo_dataset, out_dir=tmp_path, importer=importer, batch_size=100)
    assert len(batches) > 2
    sent = [rid for batch in batches for rid in batch]
    assert sorted(sent) == sorted(r["id"] for r in demo_dataset.referrals)
    assert sent == sorted(sent)


async def test_load_history_without_importer_only_exports(demo_dataset, tmp_path):
    result = await load_history(demo_dataset, out_dir=tmp_path)
    assert result["imported"] is None
    assert result["paths"]["referrals"].exists()


def _cli() -> typer.Typer:
    app = typer.Typer()
    for name, command in COMMANDS.items():
        app.command(name)(command)
    app.command("noop")(lambda: None)  # two commands: the name must be given, as in canaliza
    return app


def test_seed_command_exports_the_same_data_for_the_same_seed(tmp_path):
    runner = CliRunner()
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        result = runner.invoke(
            _cli(), ["seed", "--scale", "demo", "--seed", "11", "--export", str(out)]
        )
        assert result.exit_code == 0, result.output
    for name in ("institutions.json", "facilities.json", "pools.json", "agreements.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    meta = json.loads((first / "meta.json").read_text(encoding="utf-8"))
    assert meta["seed"] == 11 and meta["counts"]["facilities"] > 0
    assert (first / "referrals-demo-11.jsonl").exists()


def test_seed_command_refuses_an_unknown_scale(tmp_path):
    result = CliRunner().invoke(_cli(), ["seed", "--scale", "galactic", "--export", str(tmp_path)])
    assert result.exit_code != 0


@pytest.mark.slow
def test_load_demo_if_empty_in_this_build(monkeypatch):
    """Without an auth service nothing can be loaded (None); with every service merged the
    demo data loads with no failure, and a second call loads nothing."""
    import importlib
    from pathlib import Path

    from canaliza.composition import available_packages

    root = Path(__file__).resolve().parents[2]
    for package in available_packages():
        origin = Path(importlib.import_module(package).__file__ or "").resolve()
        if root not in origin.parents:
            # e.g. an editable install pointing at another checkout: its migrations are not
            # in this one, so the app cannot start here
            pytest.fail(f"{package} comes from {origin.parent}, not from this checkout")
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    report = load_demo_if_empty()
    if "auth" not in available_packages():
        assert report is None
        return
    assert report is not None and report.failures == []
    again = load_demo_if_empty()
    assert again is not None and again.skipped_reason
