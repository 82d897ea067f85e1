"""The base of the typed event contracts: payload models, the Sensitive marker, one emit."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, ClassVar, TypeVar, get_args

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


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The payload model an annotation holds (``M``, ``list[M]``, ``M | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


@cache
def _kept(model: type[BaseModel]) -> tuple[tuple[str, type[BaseModel] | None], ...]:
    """The keys a consumer keeps of ``model``'s JSON (declared, not ``Sensitive``), each
    with the payload model it holds (read once per model, not once per received item)."""
    return tuple(
        (field.alias or name, _model_in(field.annotation))
        for name, field in model.model_fields.items()
        if not is_sensitive(model, name)
    )


def _declared(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, inner in _kept(model):
        if key not in data:
            continue
        value = data[key]
        if inner is not None and isinstance(value, dict):
            value = _declared(inner, value)
        elif inner is not None and isinstance(value, list):
            value = [_declared(inner, v) if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out


def redact_payload(event_type: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """What a consumer may keep of a received payload: the fields its contract declares and
    does not mark ``Sensitive`` (nested models alike), whatever else the payload carries;
    None for a type without a contract (nothing of it is kept: what is not declared is not
    trusted). Not validated: an event of an older producer that lacks a newer field is
    still kept, by the same declaration."""
    model = CONTRACTS.get(event_type)
    if model is None:
        return None
    return _declared(model, payload)


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
    return emit_data(
        outbox,
        session,
        type(payload),
        payload.model_dump(mode="json"),
        aggregate_id=aggregate_id,
        principal=principal,
        version=version,
        system_actor=system_actor,
        institution_id=institution_id,
    )


def emit_data(
    outbox: Outbox,
    session: Session,
    model: type[EventPayload],
    data: dict[str, Any],
    *,
    aggregate_id: str,
    principal: Principal | None,
    version: int = 0,
    system_actor: str | None = "system",
    institution_id: str | None = None,
) -> Event:
    """:func:`emit` for a payload already in its JSON form: ``data`` must be what
    ``model(...).model_dump(mode="json")`` gives (a bulk producer builds thousands of rows
    per event as data, from values validated on the way in; its tests compare both)."""
    if not model.TYPE:
        raise TypeError(f"{model.__name__} is not a registered event contract")
    return outbox.add(
        session,
        Event(
            type=model.TYPE,
            aggregate_type=model.AGGREGATE,
            aggregate_id=aggregate_id,
            aggregate_version=version,
            actor=principal.sub if principal else system_actor,
            institution_id=principal.institution_id if principal else institution_id,
            payload=data,
        ),
        json_payload=True,
    )
