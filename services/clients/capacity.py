"""Typed client of the capacity service (holds, ledger, facilities), by its wire contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.clients import ServiceClient
from services.errors import ServiceUnavailable


class Allocation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    pool_id: str
    beds: int


class Hold(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    facility_id: str | None = None
    status: Literal["active", "released", "expired", "consumed"]
    allocations: list[Allocation] = Field(default_factory=list)
    expires_at: datetime | None = None
    # Who made the hold: only its own institution's referrals may name or release it.
    institution_id: str | None = None
    # The rescue operation that made it (its referrals name the operation).
    operation_id: str | None = None


class Facility(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    name: str | None = None
    operator_institution_id: str | None = None
    state: str | None = None
    kind: str | None = None
    status: str | None = None
    registration_status: str | None = None
    max_stay_days: int | None = None
    address: str | None = None
    contact: str | None = None
    arrival_instructions: str | None = None


class LedgerEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kind: str
    beds: int
    reason: str | None = None


class SearchFacility(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    name: str
    kind: str | None = None
    operator_institution_id: str
    state: str | None = None
    municipality: str | None = None


class SearchResult(BaseModel):
    model_config = ConfigDict(extra="ignore")
    facility: SearchFacility
    available: int = 0


class SearchAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    results: list[SearchResult] = Field(default_factory=list)
    unmet: dict[str, Any] | None = None


class CapacityClient(ServiceClient):
    """The capacity service as the referral service needs it."""

    service = "capacity"

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await self.request(method, path, **kw)
        except RuntimeError as exc:  # the service is neither mounted here nor configured
            raise ServiceUnavailable(
                "El servicio de capacidad no está disponible.", code="dependency_unavailable"
            ) from exc
        self.raise_for_error(resp)
        return resp.json() if resp.content else None

    async def get_hold(self, hold_id: str) -> Hold:
        """The hold and its status."""
        return Hold.model_validate(await self._call("GET", f"/api/v1/holds/{hold_id}"))

    async def release_hold(self, hold_id: str) -> None:
        """Release a hold (idempotent)."""
        await self._call("DELETE", f"/api/v1/holds/{hold_id}")

    async def consume_hold(self, hold_id: str, *, reference: str | None = None) -> Hold:
        """Admission: the held beds become occupied."""
        body = await self._call(
            "POST",
            f"/api/v1/holds/{hold_id}/consume",
            headers={"Idempotency-Key": f"consume-{hold_id}"},
        )
        return (
            Hold.model_validate(body)
            if isinstance(body, dict) and "status" in body
            else (await self.get_hold(hold_id))
        )

    async def discharge(self, pool_id: str, *, beds: int, reason: str, key: str) -> None:
        """Write a ``discharge`` ledger entry on a pool, once for ``key`` however often sent."""
        await self._call(
            "POST",
            f"/api/v1/pools/{pool_id}/ledger",
            json=LedgerEntry(kind="discharge", beds=beds, reason=reason).model_dump(),
            headers={"Idempotency-Key": key},
            idempotent=True,
        )

    async def get_facility(self, facility_id: str) -> Facility:
        """The facility (with its address when the caller, a service, may see it)."""
        return Facility.model_validate(await self._call("GET", f"/api/v1/facilities/{facility_id}"))

    async def search(self, *, people: list[dict[str, Any]], state: str | None) -> SearchAnswer:
        """Facilities that can take these people now (a read; safe to retry)."""
        body: dict[str, Any] = {"people": people}
        if state:
            body["state"] = state
        return SearchAnswer.model_validate(
            await self._call("POST", "/api/v1/availability/search", json=body, idempotent=True)
        )
