"""Routes of a referral's people after placement (ADR 0022): each foreign person's migration
route, the stay against the facility's maximum, extensions, follow-ups, services provided.

Thin, like ``referral.router``; every path has two segments or more after the referral, so
that the lifecycle's ``POST /referrals/{id}/{action}`` never takes them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from referral import flows, migration, stays
from referral.database import db
from referral.dependencies import ReadSessionDep
from referral.schemas import (
    ExtensionIn,
    ExtensionPublic,
    FollowUpPlan,
    FollowUpPublic,
    FollowUpResultIn,
    MigrationRouteIn,
    MigrationRoutePublic,
    ServiceProvidedIn,
    ServiceProvidedPublic,
    StayPublic,
)
from services.app import get_runtime
from services.security import PrincipalDep

router = APIRouter(prefix="/api/v1/referrals", tags=["referral"])


@router.get("/{referral_id}/migration-routes", response_model=list[MigrationRoutePublic])
def list_migration_routes(
    referral_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> list[MigrationRoutePublic]:
    """Every foreign person of the referral with her route: by position, never a name."""
    return migration.list_routes(session, principal=principal, referral_id=referral_id)


@router.put(
    "/{referral_id}/people/{person_id}/migration-route", response_model=MigrationRoutePublic
)
def record_migration_route(
    referral_id: str, person_id: str, body: MigrationRouteIn, principal: PrincipalDep
) -> MigrationRoutePublic:
    with db.unit_of_work() as session:
        return migration.record_route(
            session, principal=principal, referral_id=referral_id, person_id=person_id, body=body
        )


@router.get("/{referral_id}/stay", response_model=StayPublic)
async def get_stay(referral_id: str, request: Request, principal: PrincipalDep) -> StayPublic:
    return await flows.stay(get_runtime(request.app), principal=principal, referral_id=referral_id)


@router.post("/{referral_id}/stay/extensions", status_code=201, response_model=ExtensionPublic)
def extend_stay(referral_id: str, body: ExtensionIn, principal: PrincipalDep) -> ExtensionPublic:
    with db.unit_of_work() as session:
        return stays.add_extension(session, principal=principal, referral_id=referral_id, body=body)


@router.post("/{referral_id}/stay/follow-ups", status_code=201, response_model=FollowUpPublic)
def plan_follow_up(referral_id: str, body: FollowUpPlan, principal: PrincipalDep) -> FollowUpPublic:
    with db.unit_of_work() as session:
        return stays.plan_follow_up(
            session, principal=principal, referral_id=referral_id, body=body
        )


@router.post(
    "/{referral_id}/stay/follow-ups/schedule",
    status_code=201,
    response_model=list[FollowUpPublic],
)
def plan_follow_up_schedule(referral_id: str, principal: PrincipalDep) -> list[FollowUpPublic]:
    """The standard contacts (one, three and six months after discharge) in one step."""
    with db.unit_of_work() as session:
        return stays.plan_schedule(session, principal=principal, referral_id=referral_id)


@router.post("/{referral_id}/stay/follow-ups/{follow_up_id}/result", response_model=FollowUpPublic)
def record_follow_up(
    referral_id: str,
    follow_up_id: Annotated[str, Path(max_length=36)],
    body: FollowUpResultIn,
    principal: PrincipalDep,
) -> FollowUpPublic:
    with db.unit_of_work() as session:
        return stays.record_follow_up(
            session,
            principal=principal,
            referral_id=referral_id,
            follow_up_id=follow_up_id,
            body=body,
        )


@router.post("/{referral_id}/stay/services", status_code=201, response_model=ServiceProvidedPublic)
def record_service(
    referral_id: str, body: ServiceProvidedIn, principal: PrincipalDep
) -> ServiceProvidedPublic:
    with db.unit_of_work() as session:
        return stays.record_service(
            session, principal=principal, referral_id=referral_id, body=body
        )
