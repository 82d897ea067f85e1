"""A tiny service built from the kernel, to test the kernel without a domain package."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import CheckConstraint, update
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel, col

from services.app import ServiceSpec
from services.db import ServiceDatabase, make_registry
from services.errors import Conflict
from services.events import Event, Outbox, outbox_table
from services.security import PrincipalDep, require_roles

reg = make_registry()


class SampleBase(SQLModel, registry=reg):
    pass


class Counter(SampleBase, table=True):
    __tablename__ = "counter"
    __table_args__ = (CheckConstraint("value >= 0", name="value_non_negative"),)
    id: int | None = SQLField(default=None, primary_key=True)
    value: int = 0


outbox = Outbox(outbox_table(reg.metadata))
db = ServiceDatabase("sample", reg.metadata)


class Decrement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: int = Field(ge=1, le=100)


router = APIRouter(prefix="/api/v1/sample")


@router.get("/whoami")
async def whoami(principal: PrincipalDep) -> dict:
    return {"sub": principal.sub, "roles": sorted(principal.roles)}


@router.post(
    "/counters/{counter_id}/decrement", dependencies=[Depends(require_roles("prosecutor"))]
)
def decrement(counter_id: int, body: Decrement) -> dict:
    with db.unit_of_work() as session:
        result = session.execute(
            update(Counter)
            .where(col(Counter.id) == counter_id, col(Counter.value) >= body.by)
            .values(value=Counter.value - body.by)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("No queda suficiente.", code="exhausted")
        outbox.add(
            session,
            Event(
                type="sample.counter.decremented",
                aggregate_type="counter",
                aggregate_id=str(counter_id),
                payload={"by": body.by},
            ),
        )
    return {"ok": True}


def service() -> ServiceSpec:
    return ServiceSpec(name="sample", routers=[router], database=db, outbox=outbox)


def create_tables() -> None:
    reg.metadata.create_all(db.engine)
