"""Data at rest: private files and the key-encryption key.

Files. Everything Canaliza writes — the SQLite databases and their ``-wal``/``-shm``/
``-journal`` files, the audit checkpoint key, seed exports, cluster logs — is for the
service's own user only: directories ``0700``, files ``0600``. A process sets the umask
``077`` when it starts (:func:`restrict_umask`), and an app's start-up makes the data
directory private again (:func:`protect_data_dir`), so an installation from before this
rule is fixed on its next start. SQLite gives a database's WAL and shared-memory files the
database file's own mode whatever the umask, so each database file is created ``0600``
before SQLite opens it and an existing one is chmodded (:func:`protect_sqlite_file`).

Secrets. A private key kept in a database or a file is encrypted with the key-encryption
key (KEK): 32 random bytes from ``CANALIZA_KEY_ENCRYPTION_KEY`` (base64) or from the file
named by ``CANALIZA_KEY_ENCRYPTION_KEY_FILE``. With neither, one is generated in
``<data_dir>/secrets/kek`` — fine for the embedded default and the demo; production supplies
the key from its secret store, off the database's volume and out of its backups. A sealed
value is ``enc:v1:<kek id>:<base64url(nonce ‖ AES-256-GCM ciphertext)>``, under a key
derived from the KEK for one purpose, with the record it belongs to (a key id) as associated
data: a sealed value copied onto another row does not open. Former KEKs listed in
``CANALIZA_KEY_ENCRYPTION_KEY_PREVIOUS`` still open what they sealed, so that the services
re-seal it under the current one at start-up (a KEK rotation).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from services.settings import Settings, get_settings

log = logging.getLogger("canaliza.at_rest")

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

SEALED_PREFIX = "enc:v1:"
KEK_BYTES = 32
NONCE_BYTES = 12
KEK_ENV = "CANALIZA_KEY_ENCRYPTION_KEY"
KEK_FILE_ENV = "CANALIZA_KEY_ENCRYPTION_KEY_FILE"
KEK_PREVIOUS_ENV = "CANALIZA_KEY_ENCRYPTION_KEY_PREVIOUS"


class StorageError(RuntimeError):
    """Data at rest cannot be kept private or opened; the process must not start."""


class KeyEncryptionError(StorageError):
    """The key-encryption key is missing, malformed or not the one a secret was sealed with."""


# --- files ---------------------------------------------------------------------------


def restrict_umask() -> None:
    """Files and directories this process creates from now on are its user's only."""
    previous = os.umask(PRIVATE_UMASK)
    os.umask(previous | PRIVATE_UMASK)


def _make_private(path: Path, st: os.stat_result) -> None:
    mode = stat.S_IMODE(st.st_mode)
    wanted = (mode | 0o700 if stat.S_ISDIR(st.st_mode) else mode) & ~PRIVATE_UMASK
    if mode != wanted:
        os.chmod(path, wanted)


def private_dir(path: Path) -> Path:
    """``path`` as a directory of this user only (created if missing); its parents untouched."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    try:
        _make_private(path, path.stat())
    except OSError as exc:
        raise StorageError(f"cannot make {path} private (mode 0700): {exc}") from exc
    return path


def make_tree_private(root: Path) -> None:
    """``root`` and everything under it: directories ``0700``, files without group/other bits.

    Symbolic links are neither followed nor changed. Raises :class:`StorageError` when
    something cannot be changed (a file of another user, a read-only mount).
    """
    private_dir(root)
    failures: list[str] = []
    for top, dirs, files in os.walk(root, onerror=lambda exc: failures.append(str(exc))):
        for name in (*dirs, *files):
            path = Path(top) / name
            try:
                st = path.lstat()
                if not stat.S_ISLNK(st.st_mode):
                    _make_private(path, st)
            except FileNotFoundError:
                continue  # removed meanwhile (a WAL checkpointed away)
            except OSError as exc:
                failures.append(f"{path}: {exc}")
    if failures:
        raise StorageError(
            f"cannot make the data directory {root} private: " + "; ".join(failures[:5])
        )


def protect_sqlite_file(path: Path) -> None:
    """Create ``path`` (an empty file is an empty SQLite database) ``0600`` if missing, and
    make it and its side files private: SQLite creates ``-wal``/``-shm`` with its mode."""
    if not path.parent.exists():
        private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
    for candidate in (path, *(path.with_name(path.name + s) for s in SQLITE_SIDE_FILES)):
        try:
            _make_private(candidate, candidate.stat())
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"cannot make {candidate} private (mode 0600): {exc}") from exc


def write_private_file(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``path`` (mode ``0600``) whole or not at all; readers never see half a file.

    With ``replace=False`` an existing file wins (several processes creating it at once agree
    on one); returns whether this call's ``data`` is the file's content.
    """
    if not path.parent.exists():
        private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def protect_data_dir(settings: Settings | None = None) -> Path:
    """At start-up: the umask ``077``, the data directory and all it holds private."""
    settings = settings or get_settings()
    restrict_umask()
    make_tree_private(settings.data_dir)
    return settings.data_dir


# --- the key-encryption key ----------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    text = text.strip().replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_kek(text: str, origin: str) -> bytes:
    """32 bytes from their base64 (standard or URL-safe, padded or not)."""
    try:
        key = _unb64(text)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEK_BYTES:
        raise KeyEncryptionError(
            f"{origin} must be {KEK_BYTES} random bytes in base64 "
            "(for example the output of `openssl rand -base64 32`)"
        )
    return key


def new_kek() -> str:
    """A fresh key-encryption key, as ``CANALIZA_KEY_ENCRYPTION_KEY`` takes it."""
    return _b64url(secrets.token_bytes(KEK_BYTES))


def kek_id(key: bytes) -> str:
    """A short public name of a KEK (reveals nothing of it), recorded in each sealed value."""
    return hashlib.sha256(b"canaliza-kek-id\x00" + key).hexdigest()[:16]


@lru_cache(maxsize=64)
def _subkey(key: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"canaliza:" + purpose.encode()
    ).derive(key)


def _aad(purpose: str, context: str) -> bytes:
    return f"{purpose}\x00{context}".encode()


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


@dataclass(frozen=True)
class Keyring:
    """The current KEK (seals) and former ones (still open what they sealed)."""

    current: bytes = field(repr=False)
    previous: tuple[bytes, ...] = field(default=(), repr=False)
    source: str = ""

    @property
    def key_id(self) -> str:
        return kek_id(self.current)

    def _keys(self) -> tuple[bytes, ...]:
        return (self.current, *self.previous)

    def seal(self, plaintext: bytes, *, purpose: str, context: str = "") -> str:
        """``plaintext`` encrypted under the current KEK, bound to ``purpose`` and ``context``."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(_subkey(self.current, purpose)).encrypt(
            nonce, plaintext, _aad(purpose, context)
        )
        return f"{SEALED_PREFIX}{self.key_id}:{_b64url(nonce + ciphertext)}"

    def sealed_with(self, sealed: str) -> str | None:
        """The id of the KEK that sealed ``sealed`` (None if it is not a sealed value)."""
        if not is_sealed(sealed):
            return None
        return sealed[len(SEALED_PREFIX) :].split(":", 1)[0]

    def is_current(self, sealed: str) -> bool:
        return self.sealed_with(sealed) == self.key_id

    def unseal(self, sealed: str, *, purpose: str, context: str = "", what: str = "") -> bytes:
        """The plaintext of ``sealed``; :class:`KeyEncryptionError` if no KEK here opens it."""
        what = what or f"a {purpose} secret"
        parts = sealed[len(SEALED_PREFIX) :].split(":", 1) if is_sealed(sealed) else []
        if len(parts) != 2:
            raise KeyEncryptionError(f"{what} is not an encrypted value")
        sealed_id, blob = parts
        keys = [k for k in self._keys() if kek_id(k) == sealed_id]
        if not keys:
            raise KeyEncryptionError(
                f"{what} was encrypted with the key-encryption key {sealed_id}, but this "
                f"process has {self.key_id} (from {self.source})"
                + (f" and {len(self.previous)} former one(s)" if self.previous else "")
                + f". Set {KEK_ENV} (or {KEK_FILE_ENV}) to the key this installation was "
                f"set up with, or list that key in {KEK_PREVIOUS_ENV} to move to a new one."
            )
        try:
            raw = _unb64(blob)
            nonce, ciphertext = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
            return AESGCM(_subkey(keys[0], purpose)).decrypt(
                nonce, ciphertext, _aad(purpose, context)
            )
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise KeyEncryptionError(
                f"{what} does not decrypt with the key-encryption key {sealed_id}: "
                "it was altered, or copied from another record"
            ) from exc

    def passwords(self, purpose: str) -> list[bytes]:
        """A password per KEK (the current one first) for formats that take one (PKCS#8)."""
        return [_b64url(_subkey(k, purpose)).encode() for k in self._keys()]


@lru_cache(maxsize=32)
def _read_kek_file(path: str, _signature: tuple[int, int, int]) -> bytes:
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyEncryptionError(f"cannot read the key-encryption key file {path}: {exc}") from exc
    return decode_kek(text, f"the key-encryption key file {path}")


def _kek_from_file(path: Path, *, supplied: bool) -> bytes:
    try:
        st = path.stat()
    except OSError as exc:
        raise KeyEncryptionError(
            f"the key-encryption key file {path} ({KEK_FILE_ENV}) cannot be read: {exc}"
        ) from exc
    if supplied and stat.S_IMODE(st.st_mode) & 0o077:
        _warn_once(f"the key-encryption key file {path} is readable by other users")
    return _read_kek_file(str(path), (st.st_ino, st.st_size, st.st_mtime_ns))


def default_kek_path(settings: Settings) -> Path:
    return settings.data_dir / "secrets" / "kek"


def _generated_kek(settings: Settings) -> bytes:
    path = default_kek_path(settings)
    if not path.exists():
        private_dir(path.parent)
        if write_private_file(path, (new_kek() + "\n").encode(), replace=False):
            log.warning(
                "generated a key-encryption key in %s: fine for a demo or one machine; "
                "production supplies %s (or %s) from its secret store, off the data volume",
                path,
                KEK_ENV,
                KEK_FILE_ENV,
            )
    return _kek_from_file(path, supplied=False)


@lru_cache(maxsize=16)
def _warn_once(message: str) -> None:
    log.warning(message)


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def keyring(settings: Settings | None = None) -> Keyring:
    """The keyring of this process's settings (the generated default KEK made if needed)."""
    settings = settings or get_settings()
    env = _secret(settings.key_encryption_key)
    file = settings.key_encryption_key_file.strip()
    if env and file:
        raise KeyEncryptionError(f"set {KEK_ENV} or {KEK_FILE_ENV}, not both")
    if env:
        current, source = decode_kek(env, KEK_ENV), KEK_ENV
    elif file:
        current, source = _kek_from_file(Path(file), supplied=True), f"{KEK_FILE_ENV}={file}"
    else:
        current, source = _generated_kek(settings), str(default_kek_path(settings))
    former = _secret(settings.key_encryption_key_previous)
    previous = tuple(
        decode_kek(part, f"an entry of {KEK_PREVIOUS_ENV}")
        for part in former.replace(",", " ").split()
    )
    return Keyring(current, tuple(k for k in previous if k != current), source)
