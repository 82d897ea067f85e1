"""Typed client of the referral service (its institution registry), by its wire contract."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from services.clients import ServiceClient


class Institution(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    name: str
    type: str
    state: str


class ReferralClient(ServiceClient):
    """The referral service as the auth service needs it: who an institution is."""

    service = "referral"

    async def institution(self, institution_id: str) -> Institution | None:
        """The institution, or None when the referral service has no such institution (or
        is neither mounted in this process nor configured)."""
        try:
            resp = await self.request(
                "GET", f"/api/v1/institutions/{quote(institution_id, safe='')}"
            )
        except RuntimeError:
            return None
        if resp.status_code == 404:
            return None
        self.raise_for_error(resp)
        return Institution.model_validate(resp.json())
