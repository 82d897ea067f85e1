"""The prosecutor's screens: new referral (search, hold, send), her referrals, a timeline."""

from __future__ import annotations

from fastapi import APIRouter

from frontend.dependencies import FrontendRoute

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)
