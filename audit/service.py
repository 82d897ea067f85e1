"""Audit logic: append events to the hash chain, sign checkpoints, verify the chain.

Checkpoints are signed in the database and anchored outside it (``audit.anchors``):
verification compares the chain with both, and bounds the entries no anchor covers yet.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import ValidationError
from sqlalchemy import Table, func, insert, select, text
from sqlmodel import Session, col

from audit import anchors
from audit.database import outbox
from audit.models import AuditEntry, Checkpoint
from audit.projection import project_many
from audit.roster_state import existing
from services import contracts
from services.at_rest import KeyEncryptionError, Keyring, StorageError, keyring, write_private_file
from services.clock import as_utc, utcnow
from services.contracts.audit import ExportMade
from services.events import Event
from services.pages import after, page_key, split_page
from services.settings import get_settings
from services.tokens import Principal

log = logging.getLogger("canaliza.audit")

GENESIS = "0" * 64
ENTRY_TABLE: Table = AuditEntry.__table__  # type: ignore[attr-defined]
# A checkpoint every this many entries (and when the service stops, and periodically), so
# the unsigned tail stays under ``CANALIZA_AUDIT_MAX_UNSIGNED_TAIL`` (default twice this).
CHECKPOINT_EVERY = 100


def trail_payload(event: Event) -> dict[str, Any]:
    """What the trail keeps of an event's payload: its contract's non-sensitive fields.

    A payload its contract does not read keeps nothing (what is not declared is not
    trusted), like an event type without a contract.
    """
    try:
        payload = contracts.redact_payload(event.type, event.payload)
    except ValidationError:
        log.warning("event %s (%s) does not match its contract: payload not kept", event.id,
                    event.type)  # fmt: skip
        return {}
    if payload is None:
        log.warning("event %s has no contract (%s): payload not kept", event.id, event.type)
        return {}
    return payload


def canonical_json(data: dict[str, Any]) -> str:
    """JSON with sorted keys and no whitespace: the bytes the hash covers."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def chain_hash(prev_hash: str, canonical: str) -> str:
    """SHA-256 of the previous hash followed by the canonical entry."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _facility_of(payload: dict[str, Any]) -> str | None:
    fid = payload.get("facility_id")
    if fid is None and isinstance(payload.get("facility"), dict):
        fid = payload["facility"].get("id")
    return str(fid)[:64] if fid else None


def _iso(dt: datetime) -> str:
    return as_utc(dt).isoformat()


# The trail is one chain: its appends (the bus consumer's, a visit recorded through the API,
# an export) and checkpoints take turns. SQLite's write lock already serialises them; on
# PostgreSQL two transactions could both read the same head and the second would fail on the
# unique position (a 409 to a SEGOB auditor recording a visit while events arrive).
CHAIN_LOCK = 0x43414E41  # "CANA": a transaction-level advisory lock, released at commit


def lock_chain(session: Session) -> None:
    """Wait for the chain's turn (PostgreSQL); nothing to do on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})


def record_event(session: Session, event: Event) -> bool:
    """Append ``event`` to the trail; ``False`` when it is already there (idempotent by id)."""
    return record_events(session, [event]) == 1


def record_events(session: Session, events: list[Event]) -> int:
    """Append ``events`` to the trail in order, in the session's transaction; how many were
    new (each is idempotent by id, also within the list).

    The chain's head is read once, the entries go in with one ``INSERT`` per run between
    checkpoints, and the roster projection refreshes each facility the entries touched once
    at the end (``audit.projection.project_many``); a checkpoint is signed at every
    ``CHECKPOINT_EVERY``-th position, as when entries come one by one."""
    lock_chain(session)
    known = existing(session, col(AuditEntry.event_id), (event.id for event in events))
    last = session.execute(
        select(col(AuditEntry.position), col(AuditEntry.hash))
        .order_by(col(AuditEntry.position).desc())
        .limit(1)
    ).first()
    position, prev = (last[0], last[1]) if last else (0, GENESIS)
    rows: list[dict[str, Any]] = []
    bodies: list[dict[str, Any]] = []
    for event in events:
        if event.id in known:
            continue
        known.add(event.id)
        position += 1
        row, body = _entry(event, position, prev)
        prev = row["hash"]
        rows.append(row)
        bodies.append(body)
        if position % CHECKPOINT_EVERY == 0:
            _insert_entries(session, rows)
            make_checkpoint(session)
    _insert_entries(session, rows)
    # The roster is a projection of the trail, kept in the same transaction (ADR 0010).
    project_many(session, bodies)
    return len(bodies)


def _insert_entries(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the entries not yet written, and forget them (one executemany)."""
    if rows:
        session.execute(insert(ENTRY_TABLE), rows)
        rows.clear()


def _entry(event: Event, position: int, prev: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The trail row of ``event`` at ``position`` after the hash ``prev``, and the canonical
    body it hashes."""
    payload = trail_payload(event)
    facility_id = _facility_of(payload)
    body: dict[str, Any] = {
        "position": position,
        "event_id": event.id,
        "type": event.type,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "aggregate_version": event.aggregate_version,
        "actor": event.actor,
        "institution_id": event.institution_id,
        "facility_id": facility_id,
        "occurred_at": _iso(event.occurred_at),
        "payload": payload,
    }
    canonical = canonical_json(body)
    row = {
        "position": position,
        "event_id": event.id,
        "type": event.type,
        "actor": event.actor,
        "institution_id": event.institution_id,
        "facility_id": facility_id,
        "occurred_at": as_utc(event.occurred_at),
        "canonical": canonical,
        "prev_hash": prev,
        "hash": chain_hash(prev, canonical),
    }
    return row, body


# --- signing key -------------------------------------------------------------------


KEY_SEALING_PURPOSE = "audit.checkpoint_key"


def _key_path() -> Any:
    return get_settings().data_dir / "audit-ed25519.pem"


def _pem(key: Ed25519PrivateKey, password: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def _load_key_file(path: Path, ring: Keyring) -> Ed25519PrivateKey:
    """The key in ``path``; a plain PEM (older versions) or one under a former KEK is
    rewritten encrypted with the current one."""
    data = path.read_bytes()
    passwords = ring.passwords(KEY_SEALING_PURPOSE)
    key: Any = None
    if b"ENCRYPTED" not in data.split(b"\n", 1)[0]:
        key, used = serialization.load_pem_private_key(data, password=None), None
    else:
        for used in passwords:
            with contextlib.suppress(ValueError):
                key = serialization.load_pem_private_key(data, password=used)
                break
        if key is None:
            raise KeyEncryptionError(
                f"the audit checkpoint key {path} does not open with the key-encryption key "
                f"{ring.key_id} (from {ring.source}) nor a former one: set "
                "CANALIZA_KEY_ENCRYPTION_KEY (or _FILE) to the key it was encrypted with"
            )
    if not isinstance(key, Ed25519PrivateKey):
        raise StorageError(f"{path} does not hold an Ed25519 private key")
    if used != passwords[0]:
        write_private_file(path, _pem(key, passwords[0]))
    return key


def signing_key() -> Ed25519PrivateKey:
    """The service's Ed25519 key, created on first use in the data directory.

    The file (``0600``) is a PKCS#8 PEM encrypted with a password derived from the
    key-encryption key (``services.at_rest``).
    """
    path = _key_path()
    ring = keyring()
    if not path.exists():
        fresh = Ed25519PrivateKey.generate()
        # Two processes creating it at once agree on one (the first written).
        write_private_file(path, _pem(fresh, ring.passwords(KEY_SEALING_PURPOSE)[0]), replace=False)
    return _load_key_file(path, ring)


def public_key_pem() -> str:
    """The public half of the checkpoint key, for anyone to check signatures."""
    return (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _message(position: int, hash_: str) -> bytes:
    return f"canaliza-audit:{position}:{hash_}".encode()


def make_checkpoint(session: Session) -> Checkpoint | None:
    """Sign the chain's current head; ``None`` when the trail is empty.

    The checkpoint is a row of this transaction and, once it commits, a line of the anchor
    log outside the database.
    """
    last = session.execute(
        select(col(AuditEntry.position), col(AuditEntry.hash))
        .order_by(col(AuditEntry.position).desc())
        .limit(1)
    ).first()
    if not last:
        return None
    key = signing_key()
    sig = key.sign(_message(last[0], last[1]))
    cp = Checkpoint(
        position=last[0],
        hash=last[1],
        signature=base64.b64encode(sig).decode(),
        created_at=utcnow(),
    )
    session.add(cp)
    session.flush()
    anchors.append_after_commit(
        session,
        anchors.anchor_path(session.get_bind().engine.url),
        anchors.sign(key, cp.position, cp.hash, _iso(cp.created_at)),
    )
    return cp


def checkpoint_head(session: Session) -> Checkpoint | None:
    """Sign the head unless the last checkpoint already covers it (periodic and at stop)."""
    lock_chain(session)
    head = session.execute(select(func.max(col(AuditEntry.position)))).scalar()
    if not head:
        return None
    signed = session.execute(select(func.max(col(Checkpoint.position)))).scalar()
    if signed is not None and signed >= head:
        return None
    return make_checkpoint(session)


# --- verification ------------------------------------------------------------------


def verify(session: Session) -> dict[str, Any]:
    """Walk the chain; report every edited, deleted, inserted or reordered entry.

    Then compare it with the signed checkpoints in the database and the anchored ones
    outside it: an anchored checkpoint the database lost (``checkpoint_missing``), a chain
    that ends before the last anchor (``truncated``), or more entries after the last anchor
    than ``CANALIZA_AUDIT_MAX_UNSIGNED_TAIL`` (``unsigned_tail_too_long``) fail too.
    """
    # Anchors, then checkpoints, then entries: a line is appended only after its checkpoint
    # committed, and a checkpoint commits with its entries, so whatever is read first is
    # covered by what is read next even while events keep arriving.
    public: Ed25519PublicKey = signing_key().public_key()
    anchored = anchors.read(anchors.anchor_path(session.get_bind().engine.url), public)
    cps = list(session.execute(select(Checkpoint).order_by(col(Checkpoint.position))).scalars())
    rows = list(session.execute(select(AuditEntry).order_by(col(AuditEntry.position))).scalars())
    problems: list[dict[str, Any]] = []
    expected = 1
    by_position: dict[int, str] = {}
    bodies: list[dict[str, Any]] = []
    # The hash of the entry that says it was written at each position: a swapped pair
    # is reported once, as reordered, not again as a broken link by its neighbours.
    by_claimed: dict[Any, str] = {0: GENESIS}
    for row in rows:
        try:
            body = json.loads(row.canonical)
        except ValueError:
            body = {}
        bodies.append(body)
        by_claimed.setdefault(body.get("position"), row.hash)
    for row, body in zip(rows, bodies, strict=True):
        prev_hash = by_claimed.get(row.position - 1)
        if row.position > expected:
            for p in range(expected, row.position):
                problems.append(
                    {"position": p, "kind": "deleted", "detail": f"Falta la entrada {p}."}
                )
            expected = row.position
            prev_hash = row.prev_hash  # the link into the gap is reported as deleted
        if body.get("position") != row.position:
            problems.append(
                {
                    "position": row.position,
                    "kind": "reordered",
                    "detail": f"La entrada fue escrita en la posición {body.get('position')}.",
                }
            )
        elif chain_hash(row.prev_hash, row.canonical) != row.hash or (
            body.get("event_id") != row.event_id
            or body.get("type") != row.type
            or body.get("actor") != row.actor
            or body.get("institution_id") != row.institution_id
            or body.get("facility_id") != row.facility_id
        ):
            problems.append(
                {
                    "position": row.position,
                    "kind": "edited",
                    "detail": "El contenido no coincide con su hash.",
                }
            )
        elif row.prev_hash != prev_hash:
            problems.append(
                {
                    "position": row.position,
                    "kind": "inserted",
                    "detail": "La entrada no encadena con la anterior.",
                }
            )
        by_position[row.position] = row.hash
        expected = row.position + 1
    checkpoints = _verify_checkpoints(public, cps, anchored, by_position, problems)
    return {
        "ok": not problems,
        "entries": len(rows),
        "problems": problems,
        "checkpoints": checkpoints,
    }


def _verify_checkpoints(
    public: Ed25519PublicKey,
    cps: list[Checkpoint],
    anchored_read: tuple[list[anchors.Anchor], list[dict[str, Any]]],
    by_position: dict[int, str],
    problems: list[dict[str, Any]],
) -> dict[str, Any]:
    head = max(by_position, default=0)
    mismatched: set[int] = set()

    def compare(position: int, hash_: str) -> bool:
        """Does the chain hold ``hash_`` at ``position``? Report it once if not."""
        if by_position.get(position) == hash_:
            return True
        if position not in mismatched:
            mismatched.add(position)
            problems.append(
                {
                    "position": position,
                    "kind": "deleted" if position not in by_position else "edited",
                    "detail": "La cadena no coincide con el punto de control firmado.",
                }
            )
        return False

    signed: set[tuple[int, str]] = set()
    valid = 0
    last_position = 0
    for cp in cps:
        try:
            public.verify(base64.b64decode(cp.signature), _message(cp.position, cp.hash))
        except Exception:
            problems.append(
                {
                    "position": cp.position,
                    "kind": "edited",
                    "detail": "La firma del punto de control no es válida.",
                }
            )
            continue
        signed.add((cp.position, cp.hash))
        if not compare(cp.position, cp.hash):
            continue
        valid += 1
        last_position = max(last_position, cp.position)

    # The anchors outside the database: what rewriting the database cannot change.
    anchored, anchor_problems = anchored_read
    problems.extend(anchor_problems)
    last_anchored = 0
    missing: set[int] = set()
    for anchor in anchored:
        if compare(anchor.position, anchor.hash):
            last_anchored = max(last_anchored, anchor.position)
        if (anchor.position, anchor.hash) not in signed and anchor.position not in missing:
            missing.add(anchor.position)
            problems.append(
                {
                    "position": anchor.position,
                    "kind": "checkpoint_missing",
                    "detail": (
                        f"Falta el punto de control firmado de la entrada {anchor.position}, "
                        "registrado en el anclaje externo."
                    ),
                }
            )
    top = max((a.position for a in anchored), default=0)
    if top > head + 1:  # the anchored position itself is reported above, as deleted
        problems.append(
            {
                "position": head + 1,
                "kind": "truncated",
                "detail": (
                    f"La bitácora termina en la entrada {head}, pero el anclaje externo llega "
                    f"a la {top}: faltan las entradas {head + 1} a {top}."
                ),
            }
        )
    bound = get_settings().audit_max_unsigned_tail
    tail = max(0, head - last_anchored)
    if tail > bound:
        problems.append(
            {
                "position": last_anchored + 1,
                "kind": "unsigned_tail_too_long",
                "detail": (
                    f"{tail} entradas siguen al último punto de control anclado (máximo "
                    f"{bound}): pudieron reescribirse sin dejar rastro."
                ),
            }
        )
    return {
        "count": len(cps),
        "valid": valid,
        "last_signed_position": last_position,
        "unsigned_tail": tail,
        "anchored": len(anchored),
        "last_anchored_position": last_anchored,
        "max_unsigned_tail": bound,
    }


def count_entries(session: Session) -> int:
    """How many entries the trail holds."""
    return int(session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def search_entries(
    session: Session,
    *,
    actor: str | None,
    institution_id: str | None,
    facility_id: str | None,
    type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int = 0,
    cursor: str | None = None,
    newest_first: bool = False,
) -> tuple[int, list[AuditEntry], str | None]:
    """The trail, filtered (``type`` is a prefix), in chain order (or newest first), from
    ``offset`` or after ``cursor`` (keyset on the position: ``services.pages``); the total
    and the next page's cursor (``None`` on the last)."""
    conds: list[Any] = []
    if actor:
        conds.append(AuditEntry.actor == actor)
    if institution_id:
        conds.append(AuditEntry.institution_id == institution_id)
    if facility_id:
        conds.append(AuditEntry.facility_id == facility_id)
    if type:
        conds.append(col(AuditEntry.type).startswith(type, autoescape=True))
    if since:
        conds.append(AuditEntry.occurred_at >= as_utc(since))
    if until:
        conds.append(AuditEntry.occurred_at < as_utc(until))
    total = session.execute(select(func.count()).select_from(AuditEntry).where(*conds)).scalar_one()
    position = col(AuditEntry.position)
    if cursor:
        key = page_key(cursor, int)
        assert key is not None
        conds.append(after([cast(Any, position)], key, descending=newest_first))
    rows = session.execute(
        select(AuditEntry)
        .where(*conds)
        .order_by(position.desc() if newest_first else position)
        .limit(limit + 1)
        .offset(offset)
    ).scalars()
    page, next_cursor = split_page(list(rows), limit, lambda e: (e.position,))
    return int(total), page, next_cursor


def record_export(session: Session, principal: Principal, *, name: str, fmt: str) -> None:
    """Write the trail entry (and the outbox event) for a report export."""
    payload = ExportMade(report=name, format=fmt)
    record_event(session, contracts.emit(outbox, session, payload, aggregate_id=name,
                                         principal=principal))  # fmt: skip
