"""The institutions the auth service knows, so that a user's roles fit their institution.

The referral service owns institutions; auth keeps a copy of the three facts it needs (id,
type, state, plus the name for messages) in its own table, learned from the referral
service's ``referral.institution.created/updated`` events (the app subscribes at start-up
and replays what the stream holds, as the revocation deny-list does) and, in demo mode, from
the demo's reference identities (``canaliza.demo``), which exist before the demo loader
creates them in the referral service. A user naming an institution auth has not learned of
is refused (``institution_not_found``); platform-wide roles need no institution.

The bus is eventually consistent (an institution created a moment ago, or before an
upgrade that added this registry, may not have reached auth yet), so the API, on a miss,
asks the referral service once through its typed client and learns the answer
(:func:`learn_if_unknown`). The CLI, which has no running services, uses the registry alone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from auth.database import db
from auth.exceptions import InstitutionUnknown, RoleNotAllowedForInstitution
from auth.models import KnownInstitution
from canaliza.demo import DemoInstitution
from services.app import Runtime
from services.clients.referral import ReferralClient
from services.clock import utcnow
from services.events import Event
from services.vocabulary import (
    INSTITUTION_ROLES,
    PLATFORM_WIDE_ROLES,
    InstitutionType,
    UserRole,
)

log = logging.getLogger("canaliza.auth")

# The referral service's institution events, on the bus.
INSTITUTION_SUBJECT = "canaliza.referral.institution.>"


def learn(
    session: Session, *, id: str, name: str | None, type: str | None, state: str | None
) -> None:
    """Record (or bring up to date) what auth knows of an institution; idempotent."""
    known = session.get(KnownInstitution, id)
    if known is None:
        if type not in InstitutionType.values() or not state:
            return  # an update of an institution never created here: wait for its creation
        known = KnownInstitution(id=id, name=(name or id)[:300], type=type, state=state[:2])
    else:
        if name:
            known.name = name[:300]
        if type in InstitutionType.values():
            known.type = type
        if state:
            known.state = state[:2]
        known.updated_at = utcnow()
    session.add(known)
    session.flush()


def learn_demo(session: Session, institutions: Iterable[DemoInstitution]) -> None:
    for inst in institutions:
        learn(session, id=inst.id, name=inst.name, type=inst.type, state=inst.state)


def event_handler() -> Callable[[Event], Awaitable[None]]:
    """The bus handler that learns institutions from the referral service's events."""

    def _apply(payload: dict[str, object]) -> None:
        ident = payload.get("id")
        if not isinstance(ident, str) or not ident:
            return
        with db.unit_of_work() as session:
            learn(
                session,
                id=ident,
                name=_text(payload.get("name")),
                type=_text(payload.get("type")),
                state=_text(payload.get("state")),
            )

    async def handle(event: Event) -> None:
        if event.type not in ("referral.institution.created", "referral.institution.updated"):
            return
        try:
            await run_in_threadpool(_apply, dict(event.payload or {}))
        except Exception:  # one bad event must not stop the feed
            log.exception("could not learn institution from event %s", event.id)

    return handle


async def learn_if_unknown(runtime: Runtime, institution_id: str) -> None:
    """If auth has not learned of ``institution_id`` yet, ask the referral service."""

    def _known() -> bool:
        with db.unit_of_work(write=False) as session:
            return session.get(KnownInstitution, institution_id) is not None

    if await run_in_threadpool(_known):
        return
    found = await ReferralClient(runtime).institution(institution_id)
    if found is None:
        return  # create_user refuses it: institution_not_found

    def _learn() -> None:
        with db.unit_of_work() as session:
            learn(session, id=found.id, name=found.name, type=found.type, state=found.state)

    await run_in_threadpool(_learn)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def ensure_roles_fit(session: Session, *, roles: Iterable[str], institution_id: str | None) -> None:
    """Raise unless the institution exists and its type allows every role asked for."""
    institutional = sorted(set(roles) - PLATFORM_WIDE_ROLES)
    if institution_id is None:
        return
    known = session.get(KnownInstitution, institution_id)
    if known is None:
        raise InstitutionUnknown(
            f"No existe la institución {institution_id!r}; regístrela antes de crear sus usuarios.",
        )
    kind = InstitutionType(known.type)
    allowed = INSTITUTION_ROLES[kind]
    refused = [r for r in institutional if r not in allowed]
    if refused:
        names = ", ".join(f"«{UserRole(r).label}» ({r})" for r in refused)
        raise RoleNotAllowedForInstitution(
            f"El rol {names} no corresponde a una institución de tipo «{kind.label}» "
            f"({kind.value}): {known.name} solo puede tener "
            f"{', '.join(sorted(allowed))}.",
            extra={"institution_type": kind.value, "roles": refused},
        )
