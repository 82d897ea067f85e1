"""The base of the typed event contracts: payload models, the Sensitive marker, one emit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic_core import to_jsonable_python
from sqlmodel import Session

from services.events import Event, Outbox
from services.tokens import Principal


class Sensitive:
    """Marks a field that names a person or locates a refuge: ``Annotated[str, SENSITIVE]``."""

    def __repr__(self) -> str:
        return "SENSITIVE"


SENSITIVE = Sensitive()


class EventPayload(BaseModel):
    """The payload of one event type; subclasses are registered with :func:`contract`."""

    model_config = ConfigDict(extra="ignore")
    TYPE: ClassVar[str] = ""
    AGGREGATE: ClassVar[str] = ""


CONTRACTS: dict[str, type[EventPayload]] = {}
P = TypeVar("P", bound=type[EventPayload])


def contract(type_: str, *, aggregate: str) -> Callable[[P], P]:
    """Register a payload model as the contract of event ``type_``."""

    def register(cls: P) -> P:
        if type_ in CONTRACTS and CONTRACTS[type_] is not cls:
            raise ValueError(f"event type {type_} has two contracts")
        cls.TYPE = type_
        cls.AGGREGATE = aggregate
        CONTRACTS[type_] = cls
        return cls

    return register


def is_sensitive(model: type[BaseModel], field: str) -> bool:
    return any(isinstance(m, Sensitive) for m in model.model_fields[field].metadata)


def _redact(value: Any) -> Any:
    if isinstance(value, BaseModel):
        # The fields its JSON carries (a model may leave some out), minus the sensitive.
        carried = value.model_dump(mode="json")
        return {
            name: _redact(getattr(value, name))
            for name in type(value).model_fields
            if name in carried and not is_sensitive(type(value), name)
        }
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    return value


def redacted(payload: EventPayload) -> dict[str, Any]:
    """The payload as JSON data without any field declared ``Sensitive``."""
    return to_jsonable_python(_redact(payload))  # type: ignore[no-any-return]


def redact_payload(event_type: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """A received payload, parsed by its contract and redacted; None for an unknown type
    (nothing of it is kept: what is not declared is not trusted)."""
    model = CONTRACTS.get(event_type)
    if model is None:
        return None
    return redacted(model.model_validate(payload))


def emit(
    outbox: Outbox,
    session: Session,
    payload: EventPayload,
    *,
    aggregate_id: str,
    principal: Principal | None,
    version: int = 0,
    system_actor: str | None = "system",
    institution_id: str | None = None,
) -> Event:
    """Record ``payload`` as its contract's event, in the session's transaction.

    The event's actor and institution are the principal's; without one, ``system_actor``
    (None: nobody, e.g. a lockout) and ``institution_id`` (the institution concerned).
    """
    if not payload.TYPE:
        raise TypeError(f"{type(payload).__name__} is not a registered event contract")
    return outbox.add(
        session,
        Event(
            type=payload.TYPE,
            aggregate_type=payload.AGGREGATE,
            aggregate_id=aggregate_id,
            aggregate_version=version,
            actor=principal.sub if principal else system_actor,
            institution_id=principal.institution_id if principal else institution_id,
            payload=payload.model_dump(mode="json"),
        ),
    )
