"""The anchor log: every signed checkpoint, also appended to a file outside the audit database.

Someone who can write the audit database can rewrite the chain, re-compute every hash and
delete the checkpoints; they cannot rewrite this log when it lives on storage the database's
writer has no write access to (``CANALIZA_AUDIT_ANCHOR_PATH``: another volume, WORM or
append-only storage). One JSON line per checkpoint, signed with the trail's Ed25519 key:
``{"position", "hash", "created_at", "signature"}``. A line is appended only after the
transaction that made its checkpoint has committed, so the log never names a checkpoint the
database never held; a line lost to a crash only lengthens the unsigned tail until the next
checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import URL, event, make_url
from sqlmodel import Session

from services.settings import get_settings

log = logging.getLogger("canaliza.audit")

_PENDING = "audit_anchors_pending"
_LISTENING = "audit_anchors_listening"
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Anchor:
    """One line of the log: the chain's hash at ``position`` was ``hash``, signed."""

    position: int
    hash: str
    created_at: str
    signature: str


def anchor_path(database_url: str | URL) -> Path:
    """Where the log of the trail in ``database_url`` is: the setting, or by default a file
    of that database's own in a folder of the data directory (so a fresh database, say a
    test cluster's, never meets the anchors of another that shares the data directory)."""
    settings = get_settings()
    if settings.audit_anchor_path is not None:
        return settings.audit_anchor_path
    return settings.data_dir / "anchors" / f"audit-{trail_id(database_url)}.jsonl"


def trail_id(database_url: str | URL) -> str:
    """Which database a trail lives in: its place (backend, host, port, name), not the
    credentials, so rotating a password keeps the same log."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    where = url.database or ""
    if backend == "sqlite" and where and where != ":memory:":
        where = str(Path(where).resolve())
    place = f"{backend}://{url.host or ''}:{url.port or ''}/{where}"
    return hashlib.sha256(place.encode()).hexdigest()[:16]


def _message(position: int, hash_: str, created_at: str) -> bytes:
    # Not the checkpoint's message: a line of the log is never a copy of a database row.
    return f"canaliza-audit-anchor:{position}:{hash_}:{created_at}".encode()


def sign(key: Ed25519PrivateKey, position: int, hash_: str, created_at: str) -> Anchor:
    """The signed line for the checkpoint at ``position``."""
    signature = key.sign(_message(position, hash_, created_at))
    return Anchor(position, hash_, created_at, base64.b64encode(signature).decode())


def append_after_commit(session: Session, path: Path, anchor: Anchor) -> None:
    """Append ``anchor`` to the log at ``path`` once ``session``'s transaction commits
    (never if it does not)."""
    if not session.info.get(_LISTENING):
        event.listen(session, "after_commit", _write_pending)
        event.listen(session, "after_rollback", _drop_pending)
        session.info[_LISTENING] = True
    session.info.setdefault(_PENDING, []).append((path, anchor))


def _write_pending(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint: the transaction may still roll back
        return
    pending: list[tuple[Path, Anchor]] = session.info.pop(_PENDING, [])
    for path, anchor in pending:
        try:
            append(path, anchor)
        except OSError:
            log.exception("could not append checkpoint %s to %s", anchor.position, path)
            raise


def _drop_pending(session: Session) -> None:
    # Any rollback (even of a savepoint) drops what is pending: a missing line is safe.
    session.info.pop(_PENDING, None)


def append(path: Path, anchor: Anchor) -> None:
    """Append one line with ``O_APPEND`` (one write), then ``fsync``; the file is ``0600``."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    created = not path.exists()
    data = (json.dumps(asdict(anchor), separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # after a torn write, start a line of our own
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _problem(position: int, detail: str) -> dict[str, Any]:
    return {"position": position, "kind": "anchor_invalid", "detail": detail}


def _parse(line: bytes) -> Anchor | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or set(data) != {"position", "hash", "created_at", "signature"}:
        return None
    position, hash_ = data["position"], data["hash"]
    if type(position) is not int or position < 1:
        return None
    if not isinstance(hash_, str) or len(hash_) != 64 or not set(hash_) <= _HEX:
        return None
    if not isinstance(data["created_at"], str) or not isinstance(data["signature"], str):
        return None
    return Anchor(position, hash_, data["created_at"], data["signature"])


def read(path: Path, public: Ed25519PublicKey) -> tuple[list[Anchor], list[dict[str, Any]]]:
    """The log's correctly signed lines, and a problem for every other line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError:
        return [], [_problem(0, "No se pudo leer el registro de anclaje externo.")]
    lines = raw.split(b"\n")
    lines.pop()  # after the last newline: nothing, or a line still being written
    anchors: list[Anchor] = []
    problems: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        anchor = _parse(line)
        if anchor is None:
            problems.append(
                _problem(0, f"La línea {number} del registro de anclaje externo no es válida.")
            )
            continue
        try:
            signature = base64.b64decode(anchor.signature, validate=True)
            public.verify(signature, _message(anchor.position, anchor.hash, anchor.created_at))
        except (InvalidSignature, binascii.Error, ValueError):
            problems.append(
                _problem(
                    anchor.position,
                    f"La firma de la línea {number} del registro de anclaje externo no es válida.",
                )
            )
            continue
        anchors.append(anchor)
    return anchors, problems
