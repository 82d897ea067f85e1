"""A small in-memory stand-in for Canaliza's public contract (docs/contract.md), so the loader
can be tested before the real services are merged. It is strict where the contract is:
bearer token on every /api/v1 path, unknown fields refused with 422 on facilities, counts
that may never exceed a pool's total (409), and a password grant only for ``admin``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, Header, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict

from services.pages import announce_next

TOKEN = "fake-token"
PASSWORD = "canaliza-demo"


class InstitutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    name: str
    type: str
    state: str


class FacilityIn(BaseModel):
    # only the contract's minimal fields: extras are refused, as the contract allows
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["refugio", "albergue", "casa_de_medio_camino"]
    operator_institution_id: str
    state: str
    municipality: str
    address: str


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["registered", "active", "suspended", "closed"]
    reason: str


class PoolIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # this fake welcomes the extra eligibility
    name: str
    sexes: list[Literal["F", "M", "X"]]
    min_age: int
    max_age: int
    total: int
    accepts_children: bool
    max_child_age: int | None
    max_children: int
    wheelchair_accessible: bool


class LedgerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["admit", "discharge", "adjust", "out_of_service", "back_in_service"]
    beds: int
    reason: str


class AgreementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str
    title: str
    party_ids: list[str]
    valid_from: str
    valid_to: str


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution_id: str


def create_fake(*, stable_ids: bool = True) -> FastAPI:
    """A fresh fake; ``stable_ids=False`` makes it ignore the ids the loader proposes."""
    app = FastAPI()
    state: dict[str, dict[str, dict[str, Any]]] = {
        "institutions": {},
        "facilities": {},
        "pools": {},
        "agreements": {},
    }
    app.state.data = state
    app.state.calls = []  # (method, path) of the creating calls

    def auth(authorization: Annotated[str | None, Header()] = None) -> None:
        if authorization != f"Bearer {TOKEN}":
            raise HTTPException(401, "token")

    api = Depends(auth)

    @app.post("/auth/token")
    def token(
        grant_type: Annotated[str, Form()],
        username: Annotated[str | None, Form()] = None,
        password: Annotated[str | None, Form()] = None,
        client_id: Annotated[str | None, Form()] = None,
    ) -> dict[str, Any]:
        if grant_type != "password" or username != "admin" or password != PASSWORD:
            raise HTTPException(400, "invalid_grant")
        return {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 900}

    def page(items: list[dict[str, Any]], limit: int, offset: int) -> list[dict[str, Any]]:
        return items[offset : offset + min(limit, 100)]  # the fake pages at most 100

    @app.get("/api/v1/institutions", dependencies=[api])
    def list_institutions(
        request: Request, response: Response, limit: int = 100, cursor: str | None = None
    ) -> list[dict[str, Any]]:
        """As the referral service: pages by cursor (ADR 0026), an offset is not honoured."""
        start = int(cursor) if cursor else 0
        items = page(list(state["institutions"].values()), limit, start)
        more = start + len(items) < len(state["institutions"])
        announce_next(request, response, str(start + len(items)) if more else None)
        return items

    @app.post("/api/v1/institutions", dependencies=[api], status_code=201)
    def create_institution(body: InstitutionIn) -> dict[str, Any]:
        app.state.calls.append(("POST", "/api/v1/institutions"))
        iid = body.id if stable_ids and body.id else str(uuid.uuid4())
        if iid in state["institutions"]:
            raise HTTPException(409, "exists")
        row = {**body.model_dump(), "id": iid}
        state["institutions"][iid] = row
        return row

    @app.get("/api/v1/facilities", dependencies=[api])
    def list_facilities(limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return page(list(state["facilities"].values()), limit, offset)

    @app.post("/api/v1/facilities", dependencies=[api], status_code=201)
    def create_facility(body: FacilityIn) -> dict[str, Any]:
        if body.operator_institution_id not in state["institutions"]:
            raise HTTPException(422, "operator")
        row = {**body.model_dump(), "id": str(uuid.uuid4()), "status": "registered"}
        state["facilities"][row["id"]] = row
        return row

    @app.patch("/api/v1/facilities/{fid}", dependencies=[api])
    def patch_facility(fid: str, body: StatusIn) -> dict[str, Any]:
        row = state["facilities"][fid]
        row["status"] = body.status
        return row

    @app.get("/api/v1/facilities/{fid}/pools", dependencies=[api])
    def list_pools(fid: str) -> list[dict[str, Any]]:
        return [p for p in state["pools"].values() if p["facility_id"] == fid]

    @app.post("/api/v1/facilities/{fid}/pools", dependencies=[api], status_code=201)
    def create_pool(fid: str, body: PoolIn) -> dict[str, Any]:
        if fid not in state["facilities"]:
            raise HTTPException(404, "facility")
        row = {
            **body.model_dump(),
            "id": str(uuid.uuid4()),
            "facility_id": fid,
            "occupied": 0,
            "out_of_service": 0,
            "held": 0,
        }
        state["pools"][row["id"]] = row
        return row

    @app.post("/api/v1/pools/{pid}/ledger", dependencies=[api], status_code=201)
    def ledger(pid: str, body: LedgerIn) -> dict[str, Any]:
        row = state["pools"][pid]
        if body.kind == "admit" and state["facilities"][row["facility_id"]]["status"] != "active":
            raise HTTPException(409, "facility_not_active")
        field = {"admit": "occupied", "out_of_service": "out_of_service"}.get(body.kind)
        if field is None or body.beds < 1:
            raise HTTPException(422, "kind")
        if row["occupied"] + row["out_of_service"] + body.beds > row["total"]:
            raise HTTPException(409, "no_capacity")
        row[field] += body.beds
        return row

    @app.get("/api/v1/agreements", dependencies=[api])
    def list_agreements(limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return page(list(state["agreements"].values()), limit, offset)

    @app.post("/api/v1/agreements", dependencies=[api], status_code=201)
    def create_agreement(body: AgreementIn) -> dict[str, Any]:
        if len(set(body.party_ids)) < 2 or not set(body.party_ids) <= set(state["institutions"]):
            raise HTTPException(422, "parties")
        row = {**body.model_dump(), "id": str(uuid.uuid4()), "signatures": [], "status": "draft"}
        state["agreements"][row["id"]] = row
        return row

    @app.post("/api/v1/agreements/{aid}/sign", dependencies=[api])
    def sign(aid: str, body: SignIn) -> dict[str, Any]:
        row = state["agreements"][aid]
        if body.institution_id not in row["party_ids"]:
            raise HTTPException(403, "not a party")
        if body.institution_id not in row["signatures"]:
            row["signatures"].append(body.institution_id)
        row["status"] = (
            "signed" if sorted(row["signatures"]) == sorted(row["party_ids"]) else "ready"
        )
        return row

    return app
