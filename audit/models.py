"""Audit tables: the append-only hash-chained trail and signed checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from services.db import make_registry

reg = make_registry()
metadata = reg.metadata


class AuditBase(SQLModel, registry=reg):
    pass


class AuditEntry(AuditBase, table=True):
    """One received event. ``canonical`` is what the hash covers; columns are for filtering."""

    __tablename__ = "audit_entry"
    position: int = Field(primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    type: str = Field(max_length=200, index=True)
    actor: str | None = Field(default=None, max_length=200, index=True)
    institution_id: str | None = Field(default=None, max_length=64, index=True)
    facility_id: str | None = Field(default=None, max_length=64, index=True)
    occurred_at: datetime = Field(index=True)
    canonical: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Checkpoint(AuditBase, table=True):
    """A signed statement: the chain's hash at ``position`` was ``hash``."""

    __tablename__ = "audit_checkpoint"
    id: int | None = Field(default=None, primary_key=True)
    position: int
    hash: str = Field(max_length=64)
    signature: str = Field(max_length=200)
    created_at: datetime
