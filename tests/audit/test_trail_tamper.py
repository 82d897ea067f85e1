"""Tampering by someone who can write the audit database (and only it).

Each test plays the attack against the real service (consume, checkpoints, verify, the HTTP
API): a forger who knows the hashing scheme edits entries and re-computes every later hash,
deletes checkpoints or the last entries. Signed checkpoints are anchored in an append-only
log outside the database (``CANALIZA_AUDIT_ANCHOR_PATH``), and the entries after the last
anchored checkpoint are bounded (``CANALIZA_AUDIT_MAX_UNSIGNED_TAIL``), so each attack that
``GET /api/v1/audit/verify`` used to accept is now reported.
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from audit import anchors
from audit.cli import app as cli_app
from audit.database import db
from audit.main import consume
from audit.service import GENESIS, chain_hash, make_checkpoint, verify
from services.events import Event
from services.settings import get_settings
from tests.conftest import running


def _event(i: int) -> Event:
    return Event(
        type="capacity.pool.changed",
        aggregate_type="pool",
        aggregate_id=f"pool-{i}",
        actor="user-1",
        institution_id="inst-1",
        payload={"facility_id": f"fac-{i % 2}", "available": i},
    )


def _fill(n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        consume(_event(i))


def _verify() -> dict:
    with db.unit_of_work(write=False) as s:
        return verify(s)


def _kinds(result: dict) -> list[tuple[int, str]]:
    return [(p["position"], p["kind"]) for p in result["problems"]]


def _sql(stmt: str, **params) -> int:
    with db.engine.begin() as conn:
        return conn.execute(text(stmt), params).rowcount


def _edit(position: int) -> None:
    """Change what the entry at ``position`` says (its event ``i`` is ``position - 1``)."""
    i = position - 1
    changed = _sql(
        "UPDATE audit_entry SET canonical = replace(canonical, :a, :b) WHERE position = :p",
        a=f'"available":{i},',
        b='"available":999,',
        p=position,
    )
    assert changed == 1


def _rechain(start: int) -> None:
    """What a forger does after an edit: re-compute the hash of every entry from ``start``."""
    with db.engine.begin() as conn:
        prev = (
            conn.execute(
                text("SELECT hash FROM audit_entry WHERE position = :p"), {"p": start - 1}
            ).scalar()
            or GENESIS
        )
        rows = conn.execute(
            text(
                "SELECT position, canonical FROM audit_entry WHERE position >= :p ORDER BY position"
            ),
            {"p": start},
        ).all()
        for position, canonical in rows:
            new = chain_hash(prev, canonical)
            conn.execute(
                text("UPDATE audit_entry SET prev_hash = :prev, hash = :h WHERE position = :p"),
                {"prev": prev, "h": new, "p": position},
            )
            prev = new


def _anchor_file() -> Path:
    """Where the anchors go by default: a file of this database's own, in a folder of the
    data directory (not in the database)."""
    path = anchors.anchor_path(db.url)
    assert path.parent == get_settings().data_dir / "anchors"
    return path


@pytest.fixture
def small_tail(monkeypatch) -> int:
    monkeypatch.setenv("CANALIZA_AUDIT_MAX_UNSIGNED_TAIL", "3")
    get_settings.cache_clear()
    return 3


# --- (a) edit, re-chain every later hash, delete the checkpoints ---------------------------------


def test_edit_rechain_and_deleted_checkpoints_fail_verification(audit_db):
    _fill(250)  # checkpoints at 100 and 200, each anchored outside the database
    assert _verify()["ok"]
    _edit(50)
    _rechain(50)
    _sql("DELETE FROM audit_checkpoint")
    # The chain itself is consistent again: only what lives outside the database can tell.
    result = _verify()
    assert result["ok"] is False
    kinds = _kinds(result)
    assert (100, "edited") in kinds and (200, "edited") in kinds
    assert (100, "checkpoint_missing") in kinds and (200, "checkpoint_missing") in kinds
    # Nothing in the chain is anchored any more: 250 entries unsigned, above the bound.
    assert (1, "unsigned_tail_too_long") in kinds
    assert all(isinstance(p["detail"], str) and p["detail"] for p in result["problems"])


def test_deleted_checkpoints_alone_fail_verification(audit_db):
    _fill(120)
    _sql("DELETE FROM audit_checkpoint")
    result = _verify()
    assert _kinds(result) == [(100, "checkpoint_missing")]
    assert result["checkpoints"]["count"] == 0 and result["checkpoints"]["anchored"] == 1


async def test_edit_rechain_and_deleted_checkpoints_fail_over_http(audit_app, auth_headers):
    _fill(130)
    _edit(7)
    _rechain(7)
    _sql("DELETE FROM audit_checkpoint")
    async with running(audit_app) as client:
        r = await client.get("/api/v1/audit/verify", headers=auth_headers("segob_auditor"))
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is False and body["entries"] == 130
    assert {"edited", "checkpoint_missing"} <= {p["kind"] for p in body["problems"]}


# --- (b) delete the last entries (and their checkpoints) -------------------------------------


def test_deleting_the_last_entries_and_their_checkpoints_fails(audit_db):
    _fill(250)
    _sql("DELETE FROM audit_entry WHERE position > 150")
    _sql("DELETE FROM audit_checkpoint WHERE position > 150")
    result = _verify()
    assert result["ok"] is False
    kinds = _kinds(result)
    assert (151, "truncated") in kinds
    assert (200, "deleted") in kinds and (200, "checkpoint_missing") in kinds


def test_deleting_the_whole_trail_fails(audit_db):
    _fill(120)
    _sql("DELETE FROM audit_entry")
    _sql("DELETE FROM audit_checkpoint")
    result = _verify()
    assert result["ok"] is False and result["entries"] == 0
    assert (1, "truncated") in _kinds(result)


def test_deleting_the_last_entries_after_a_manual_checkpoint_fails(audit_db):
    _fill(30)
    with db.unit_of_work(write=True) as s:
        make_checkpoint(s)
    _sql("DELETE FROM audit_entry WHERE position > 20")
    _sql("DELETE FROM audit_checkpoint")
    kinds = _kinds(_verify())
    assert (21, "truncated") in kinds and (30, "deleted") in kinds


# --- (c) the unsigned tail: bounded, and kept short in normal operation -----------------------


def test_an_unsigned_tail_longer_than_the_bound_fails(audit_db, small_tail):
    _fill(small_tail)
    assert _verify()["ok"]  # at the bound: accepted
    _fill(1, start=small_tail)
    result = _verify()
    assert result["ok"] is False
    assert _kinds(result) == [(1, "unsigned_tail_too_long")]
    assert result["checkpoints"]["unsigned_tail"] == small_tail + 1
    assert result["checkpoints"]["max_unsigned_tail"] == small_tail
    with db.unit_of_work(write=True) as s:
        make_checkpoint(s)
    assert _verify()["ok"]


def test_a_rechained_tail_without_any_anchor_fails_beyond_the_bound(audit_db):
    # Anchors lost (or never written) while the chain grew past the bound: not trusted.
    _fill(250)
    _anchor_file().unlink()
    _edit(240)
    _rechain(240)
    _sql("DELETE FROM audit_checkpoint WHERE position = 200")
    result = _verify()
    assert result["ok"] is False
    assert (1, "unsigned_tail_too_long") in _kinds(result)


def test_checkpoints_keep_the_tail_short_in_normal_operation(audit_db):
    bound = get_settings().audit_max_unsigned_tail
    for _ in range(5):
        _fill(97, start=_verify()["entries"])
        result = _verify()
        assert result["ok"], result["problems"]
        assert result["checkpoints"]["unsigned_tail"] < 100 <= bound
    assert result["entries"] == 485
    assert result["checkpoints"]["anchored"] == 4
    assert result["checkpoints"]["last_anchored_position"] == 400


async def test_the_tail_is_anchored_when_the_service_stops(audit_app, auth_headers):
    async with running(audit_app) as client:
        _fill(30)
        r = await client.get("/api/v1/audit/verify", headers=auth_headers("segob_auditor"))
        assert r.json()["ok"] is True
    # The service is stopped: a forger edits and re-chains what was the unsigned tail.
    result = _verify()
    assert result["ok"] and result["checkpoints"]["unsigned_tail"] == 0
    _edit(12)
    _rechain(12)
    _sql("DELETE FROM audit_checkpoint")
    result = _verify()
    assert result["ok"] is False
    assert (30, "edited") in _kinds(result)


@pytest.fixture
def quick_checkpoints(monkeypatch) -> None:
    monkeypatch.setenv("CANALIZA_AUDIT_CHECKPOINT_SECONDS", "0.05")
    get_settings.cache_clear()


async def test_a_quiet_tail_is_anchored_periodically(quick_checkpoints, audit_app, auth_headers):
    h = auth_headers("segob_auditor")
    async with running(audit_app) as client:
        _fill(7)
        for _ in range(200):
            body = (await client.get("/api/v1/audit/verify", headers=h)).json()
            if body["checkpoints"]["unsigned_tail"] == 0:
                break
            await asyncio.sleep(0.02)
        assert body["ok"] and body["checkpoints"]["unsigned_tail"] == 0, body
        _edit(3)
        _rechain(3)
        _sql("DELETE FROM audit_checkpoint")
        body = (await client.get("/api/v1/audit/verify", headers=h)).json()
        assert body["ok"] is False
        assert (7, "edited") in [(p["position"], p["kind"]) for p in body["problems"]]


# --- (d) the anchor log itself --------------------------------------------------------------


def test_a_forged_anchor_line_is_reported(audit_db):
    _fill(5)
    with db.unit_of_work(write=True) as s:
        cp = make_checkpoint(s)
    assert cp is not None and _verify()["ok"]
    path = _anchor_file()
    line = json.loads(path.read_text().splitlines()[-1])
    # Claim the trail went further, signed with a signature of something else.
    forged = {**line, "position": 500, "hash": "a" * 64}
    with path.open("a") as f:
        f.write(json.dumps(forged) + "\n")
        f.write("not json\n")
    result = _verify()
    assert result["ok"] is False
    assert _kinds(result) == [(500, "anchor_invalid"), (0, "anchor_invalid")]
    assert result["checkpoints"]["anchored"] == 1  # the genuine line still counts


def test_anchors_go_to_the_configured_path_with_private_permissions(
    audit_db, tmp_path, monkeypatch
):
    default = _anchor_file()
    target = tmp_path / "worm" / "trail.jsonl"
    monkeypatch.setenv("CANALIZA_AUDIT_ANCHOR_PATH", str(target))
    get_settings.cache_clear()
    _fill(100)
    lines = target.read_text().splitlines()
    assert len(lines) == 1
    anchor = json.loads(lines[0])
    assert set(anchor) == {"position", "hash", "created_at", "signature"}
    assert anchor["position"] == 100
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not default.exists() and not default.parent.exists()
    assert _verify()["checkpoints"]["last_anchored_position"] == 100
    # Pointed elsewhere, the trail no longer finds its anchors: not trusted past the bound.
    monkeypatch.setenv("CANALIZA_AUDIT_ANCHOR_PATH", str(tmp_path / "empty.jsonl"))
    monkeypatch.setenv("CANALIZA_AUDIT_MAX_UNSIGNED_TAIL", "50")
    get_settings.cache_clear()
    assert (1, "unsigned_tail_too_long") in _kinds(_verify())


def test_each_database_has_its_own_default_anchor_log(audit_db, audit_template, tmp_path):
    # A data directory shared by several trails (the demo's and a test cluster's): the
    # anchors of one must not make a fresh one look truncated.
    _fill(150)
    first = _anchor_file()
    other = tmp_path / "other" / "audit.db"
    other.parent.mkdir()
    other.write_bytes(Path(audit_template).read_bytes())
    db.configure(f"sqlite:///{other}")
    assert _anchor_file() != first
    assert _verify()["ok"]
    _fill(5)
    assert _verify()["ok"]
    # The credentials are not the trail's identity: a rotated password keeps the same log.
    pg = "postgresql+psycopg://canaliza:{}@db:5432/canaliza"
    assert anchors.trail_id(pg.format("old")) == anchors.trail_id(pg.format("new"))
    assert anchors.trail_id(pg.format("x")) != anchors.trail_id(pg.format("x") + "_test")


def test_a_checkpoint_rolled_back_is_not_anchored(audit_db):
    _fill(5)
    scope = db.unit_of_work
    with pytest.raises(RuntimeError), scope(write=True) as s:
        assert make_checkpoint(s) is not None
        raise RuntimeError("the transaction fails after the checkpoint")
    assert not _anchor_file().exists()
    assert _verify()["ok"]


def test_a_checkpoint_in_a_savepoint_is_anchored_only_when_the_transaction_commits(audit_db):
    _fill(5)
    scope = db.unit_of_work
    with pytest.raises(RuntimeError), scope(write=True) as s:
        with s.begin_nested():
            assert make_checkpoint(s) is not None
        raise RuntimeError("the outer transaction fails")
    assert not _anchor_file().exists()
    with scope(write=True) as s, s.begin_nested():
        make_checkpoint(s)
    assert len(_anchor_file().read_text().splitlines()) == 1
    assert _verify()["checkpoints"]["last_anchored_position"] == 5


def test_cli_checkpoint_anchors_and_verify_fails_on_rewritten_trail(audit_db):
    runner = CliRunner()
    _fill(10)
    assert runner.invoke(cli_app, ["checkpoint"]).exit_code == 0
    assert json.loads(_anchor_file().read_text())["position"] == 10
    assert runner.invoke(cli_app, ["verify"]).exit_code == 0
    _edit(4)
    _rechain(4)
    _sql("DELETE FROM audit_checkpoint")
    result = runner.invoke(cli_app, ["verify"])
    assert result.exit_code == 1 and '"checkpoint_missing"' in result.output


def test_events_arriving_during_verification_are_no_false_alarm(audit_db, monkeypatch):
    real_read = anchors.read

    def read_while_events_arrive(path, public):
        _fill(120, start=50)  # entries 51..170 and the checkpoint at 100 commit meanwhile
        return real_read(path, public)

    _fill(50)
    monkeypatch.setattr(anchors, "read", read_while_events_arrive)
    result = _verify()
    assert result["ok"], result["problems"]
    assert result["checkpoints"]["last_anchored_position"] == 100


def test_an_empty_trail_without_anchors_verifies(audit_db):
    result = _verify()
    assert result["ok"] and result["entries"] == 0 and result["problems"] == []


def test_verify_answer_keeps_its_shape(audit_db):
    _fill(3)
    result = _verify()
    assert set(result) == {"ok", "entries", "problems", "checkpoints"}
    assert {"count", "valid", "last_signed_position", "unsigned_tail"} <= set(result["checkpoints"])
