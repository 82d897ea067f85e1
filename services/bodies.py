"""The one base of every request body: unknown fields refused, ``null`` for an optional
field read as the field left out (the public contract, "Vocabulary used in bodies").

A body that leaves an optional field out and one that sends it as ``null`` mean the same:
the field takes its default (for a ``PATCH``, it stays unchanged). A required field sent as
``null`` is kept, so it is accepted only where ``null`` is one of its values (a person's
``sex`` or ``nationality`` not recorded) and refused (422) elsewhere.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        optional = _optional_keys(cls)
        return {k: v for k, v in data.items() if v is not None or k not in optional}


_OPTIONAL: dict[type[BaseModel], frozenset[str]] = {}


def _optional_keys(model: type[BaseModel]) -> frozenset[str]:
    """The names (and aliases) of the fields a body may leave out."""
    keys = _OPTIONAL.get(model)
    if keys is None:
        names: set[str] = set()
        for name, info in model.model_fields.items():
            if not info.is_required():
                names.add(name)
                if info.alias:
                    names.add(info.alias)
        keys = _OPTIONAL[model] = frozenset(names)
    return keys
