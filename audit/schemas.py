"""Response models of the audit service."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.clock import UtcDateTime


class EntryOut(BaseModel):
    """One trail entry as auditors see it (identities and addresses never stored)."""

    model_config = ConfigDict(extra="forbid")
    position: int
    event_id: str = Field(max_length=64)
    type: str = Field(max_length=200)
    actor: str | None = Field(default=None, max_length=200)
    institution_id: str | None = Field(default=None, max_length=64)
    facility_id: str | None = Field(default=None, max_length=64)
    occurred_at: UtcDateTime
    entry: dict[str, Any]
    hash: str = Field(max_length=64)


class EntryPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[EntryOut]
    total: int
    limit: int
    offset: int


class PublicKeyOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    algorithm: str = Field(max_length=20)
    public_key_pem: str = Field(max_length=2000)
