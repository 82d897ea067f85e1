"""Data at rest is the service user's only: data directory 0700, every file 0600.

The reported attack: as ``nobody``, ``cat var/auth.db`` gave the ES256 signing key (a token
forged with it as platform admin was accepted) and ``var/referral.db`` victims' names. Here
the data directory sits under a parent anyone may traverse (as ``/srv/canaliza`` would), the
whole app runs on SQLite in it, and a process running as ``nobody`` tries to read the files.
The tests run as root; ``setpriv`` (util-linux) drops to ``nobody``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from canaliza.cluster import Cluster, Member
from canaliza.composition import available_packages, build_app, load_specs
from services import at_rest
from services.at_rest import KeyEncryptionError, keyring, new_kek
from services.settings import get_settings
from tests.conftest import demo_login, running, unavailable

SECRET_NAME = "María Canario Testigo"  # stands for a victim's name in referral.db


@pytest.fixture
def shell_umask() -> Iterator[None]:
    """The umask of a usual login shell (022), whatever earlier tests left."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, shell_umask: None) -> Iterator[Path]:
    """``<parent>/var`` where ``<parent>`` is world-traversable (0755) like ``/srv/canaliza``."""
    parent = Path(tempfile.mkdtemp(prefix="canaliza-at-rest-", dir="/tmp"))
    parent.chmod(0o755)
    path = parent / "var"
    monkeypatch.setenv("CANALIZA_DATA_DIR", str(path))
    get_settings.cache_clear()
    yield path
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def all_services(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Any]]:
    """``make()`` → the embedded default: every service, its SQLite file in the data dir."""
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    databases = [s.database for s in load_specs(available_packages()) if s.database is not None]

    def make() -> Any:
        for database in databases:
            database.configure()  # the settings' URL: <data_dir>/<service>.db
        return build_app("all")

    yield make
    for database in databases:
        database.dispose()


def _dispose_all() -> None:
    for spec in load_specs(available_packages()):
        if spec.database is not None:
            spec.database.dispose()


def _write_victim_name() -> None:
    """A row with a name in referral.db (the kind of data the report read)."""
    from referral.database import db as referral_db

    with referral_db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS canary_person (full_name TEXT)")
        conn.exec_driver_sql("INSERT INTO canary_person VALUES (?)", (SECRET_NAME,))


def _modes(root: Path) -> dict[str, str]:
    """``{relative path: octal mode}`` of ``root`` and everything under it."""
    found = {".": oct(stat.S_IMODE(root.lstat().st_mode))}
    for path in root.rglob("*"):
        found[path.relative_to(root).as_posix()] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def _not_private(root: Path) -> dict[str, str]:
    wrong = {}
    for name, mode in _modes(root).items():
        is_dir = (root / name).is_dir()
        if mode != ("0o700" if is_dir else "0o600"):
            wrong[name] = mode
    return wrong


def _require_other_user() -> None:
    """Reading as ``nobody`` needs root and ``setpriv``: skip locally, fail on CI."""
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return
    unavailable("reading the files as `nobody` needs root and setpriv (util-linux)")


def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _assert_nobody_is_refused(path: Path) -> None:
    result = _as_nobody("cat", str(path))
    assert result.returncode != 0 and not result.stdout, f"nobody read {path}"
    assert "Permission denied" in result.stderr, result.stderr


async def test_data_dir_is_0700_and_every_file_0600_after_start_and_writes(all_services, data_dir):
    app = all_services()
    async with running(app) as client:
        await demo_login(client, "fiscal")  # writes to auth.db
        _write_victim_name()
        # Files written later by this process (a seed export, say) are private too.
        (data_dir / "seed").mkdir(exist_ok=True)
        (data_dir / "seed" / "referrals-demo.jsonl").write_text("{}\n")
        assert _not_private(data_dir) == {}
        for db in ("auth.db", "referral.db"):
            assert (data_dir / f"{db}-wal").exists() and (data_dir / f"{db}-shm").exists()
        assert (data_dir / "secrets" / "kek").exists()
        assert (data_dir / "audit-ed25519.pem").exists()
        assert {"auth.db", "referral.db", "capacity.db", "audit.db"} <= set(_modes(data_dir))
    assert _not_private(data_dir) == {}


async def test_nobody_cannot_read_the_databases_or_the_keys(all_services, data_dir):
    _require_other_user()
    control = data_dir.parent / "control.txt"
    control.write_text("readable by anyone\n")
    control.chmod(0o644)
    async with running(all_services()) as client:
        await demo_login(client, "fiscal")
        _write_victim_name()
        assert SECRET_NAME.encode() in b"".join(
            (data_dir / n).read_bytes() for n in ("referral.db", "referral.db-wal")
        )
        # The probe works: nobody reads a world-readable file next to the data directory.
        assert _as_nobody("cat", str(control)).stdout == "readable by anyone\n"
        assert _as_nobody("ls", str(data_dir)).returncode != 0
        secrets_ = ("auth.db", "auth.db-wal", "referral.db", "referral.db-wal", "referral.db-shm")
        for name in (*secrets_, "secrets/kek", "audit-ed25519.pem"):
            _assert_nobody_is_refused(data_dir / name)
        # Second layer: with the directory opened up by mistake, each file still refuses.
        data_dir.chmod(0o755)
        (data_dir / "secrets").chmod(0o755)
        for name in (*secrets_, "secrets/kek", "audit-ed25519.pem"):
            _assert_nobody_is_refused(data_dir / name)


async def test_an_old_installation_is_made_private_on_start(all_services, data_dir):
    async with running(all_services()) as client:
        await demo_login(client, "fiscal")
    _dispose_all()
    # What an older version left: everything readable by others, a WAL kept after a crash.
    (data_dir / "seed").mkdir(exist_ok=True)
    (data_dir / "seed" / "referrals-demo.jsonl").write_text("{}\n")
    (data_dir / "referral.db-wal").write_bytes(b"")
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert _not_private(data_dir)

    async with running(all_services()) as client:
        await demo_login(client, "fiscal")
        _write_victim_name()
        # SQLite gives a new WAL the database's mode: the database had to be fixed first.
        assert (data_dir / "auth.db-wal").exists()
        assert _not_private(data_dir) == {}
    # Then the files themselves, read as another user (skipped locally without root and
    # setpriv, failed on CI, like every test that needs what the machine may lack).
    _require_other_user()
    data_dir.chmod(0o755)
    _assert_nobody_is_refused(data_dir / "auth.db")
    _assert_nobody_is_refused(data_dir / "referral.db")


def test_cluster_logs_are_private(tmp_path, shell_umask):
    log_dir = tmp_path / "cluster"
    log_dir.mkdir(mode=0o755)
    (log_dir / "auth.log").write_text("from an older run\n")
    (log_dir / "auth.log").chmod(0o644)
    cluster = Cluster(log_dir=log_dir)
    member = Member("auth", ["true"], 0)
    cluster.start_member(member)
    assert member.process is not None
    member.process.wait(timeout=10)
    cluster.members = {"auth": member}
    cluster.write_state()
    assert _not_private(log_dir) == {}
    assert (log_dir / "auth.log").read_text() == "from an older run\n"


# --- the key-encryption key ----------------------------------------------------------


def test_the_generated_key_encryption_key_has_a_private_file_of_its_own(data_dir):
    ring = keyring()
    path = data_dir / "secrets" / "kek"
    assert ring.source == str(path)
    assert _modes(data_dir)["secrets"] == "0o700" and _modes(data_dir)["secrets/kek"] == "0o600"
    assert keyring().key_id == ring.key_id  # generated once, then read
    sealed = ring.seal(b"secret", purpose="test", context="row-1")
    assert b"secret" not in sealed.encode() and sealed.startswith("enc:v1:" + ring.key_id)
    assert ring.unseal(sealed, purpose="test", context="row-1") == b"secret"
    with pytest.raises(KeyEncryptionError, match="copied from another record"):
        ring.unseal(sealed, purpose="test", context="row-2")


def test_the_key_encryption_key_from_the_environment_or_a_file(tmp_path, monkeypatch):
    kek = new_kek()
    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY", kek)
    get_settings.cache_clear()
    from_env = keyring()
    assert from_env.source == "CANALIZA_KEY_ENCRYPTION_KEY"
    assert not (get_settings().data_dir / "secrets").exists()  # nothing generated

    key_file = tmp_path / "kek"
    key_file.write_text(kek + "\n")
    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY_FILE", str(key_file))
    get_settings.cache_clear()
    with pytest.raises(KeyEncryptionError, match="not both"):
        keyring()
    monkeypatch.delenv("CANALIZA_KEY_ENCRYPTION_KEY")
    get_settings.cache_clear()
    assert keyring().key_id == from_env.key_id
    assert "CANALIZA_KEY_ENCRYPTION_KEY_FILE" in keyring().source

    for bad in ("too-short", "x" * 80):
        monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY_FILE", "")
        monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY", bad)
        get_settings.cache_clear()
        with pytest.raises(KeyEncryptionError, match="32 random bytes in base64"):
            keyring()
    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY", "")
    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY_FILE", str(tmp_path / "missing"))
    get_settings.cache_clear()
    with pytest.raises(KeyEncryptionError, match="cannot be read"):
        keyring()


def _plain_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_the_audit_checkpoint_key_is_encrypted_and_an_old_plain_one_migrated(monkeypatch):
    from audit.service import signing_key

    first, second = new_kek(), new_kek()
    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY", first)
    get_settings.cache_clear()
    path = get_settings().data_dir / "audit-ed25519.pem"
    old = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True)
    path.write_bytes(_plain_pem(old))  # as older versions wrote it
    path.chmod(0o600)

    assert _raw_public(signing_key()) == _raw_public(old)
    stored = path.read_bytes()
    assert stored.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # no password: it does not open
        serialization.load_pem_private_key(stored, password=None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY", second)
    get_settings.cache_clear()
    with pytest.raises(KeyEncryptionError, match="does not open with the key-encryption key"):
        signing_key()
    assert path.read_bytes() == stored  # left as it was

    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY_PREVIOUS", first)
    get_settings.cache_clear()
    assert _raw_public(signing_key()) == _raw_public(old)  # re-encrypted under the new KEK
    monkeypatch.delenv("CANALIZA_KEY_ENCRYPTION_KEY_PREVIOUS")
    get_settings.cache_clear()
    assert _raw_public(signing_key()) == _raw_public(old)


async def test_the_audit_service_does_not_start_with_a_wrong_key_encryption_key(
    all_services, monkeypatch
):
    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY", new_kek())
    get_settings.cache_clear()
    async with running(all_services()):
        pass
    _dispose_all()
    data_dir = get_settings().data_dir
    for path in data_dir.glob("auth.db*"):  # auth starts afresh: audit's key is the one left
        path.unlink()
    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY", new_kek())
    get_settings.cache_clear()
    with pytest.raises(KeyEncryptionError, match=r"audit checkpoint key .* does not open"):
        async with running(all_services()):
            pass


def test_a_data_dir_that_cannot_be_made_private_stops_the_start(tmp_path, monkeypatch):
    def refuse(path: Any, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted", str(path))

    root = tmp_path / "var"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    monkeypatch.setattr(os, "chmod", refuse)
    with pytest.raises(at_rest.StorageError, match="private"):
        at_rest.make_tree_private(root)
