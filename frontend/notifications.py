"""Notifications: what happened to the referrals of her institution, and what is due soon.

GET /avisos   the latest steps of the referrals her institution sends or receives, and the
              deadlines about to run out (answers due, holds expiring)

The same steps arrive live on every open page (``static/notify.js``, the live feed's
``referrals`` filter); this page lists what a closed page missed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from frontend.dependencies import FrontendRoute, Page, require_role
from frontend.navigation import NOTIFIED
from frontend.prosecutor import ACTIONS

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

NotifiedPage = Annotated[Page, Depends(require_role(*NOTIFIED))]
RECENT = timedelta(days=14)
SOON = timedelta(minutes=30)
MAX_ITEMS = 50


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def referral_steps(
    referrals: list[dict[str, Any]], institution: str | None, now: datetime
) -> list[dict[str, Any]]:
    """The recent steps of these referrals, newest first; a receiver never sees a draft's."""
    steps = []
    for r in referrals:
        side = "sender" if r["sending_institution_id"] == institution else "receiver"
        for h in r.get("history") or []:
            if side == "receiver" and h["action"] == "create":
                continue
            if now - _at(h["at"]) > RECENT:
                continue
            steps.append({"referral": r, "side": side, "action": h["action"], "at": h["at"]})
    steps.sort(key=lambda s: s["at"], reverse=True)
    return steps[:MAX_ITEMS]


def due_soon(
    referrals: list[dict[str, Any]], holds: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Answers due and holds expiring within the next half hour."""
    warnings = []
    for r in referrals:
        due = r.get("response_due_at")
        if r["status"] == "sent" and due and now <= _at(due) <= now + SOON:
            warnings.append({"kind": "answer", "referral": r, "at": due})
    for h in holds:
        if now <= _at(h["expires_at"]) <= now + SOON:
            warnings.append({"kind": "hold", "hold": h, "at": h["expires_at"]})
    warnings.sort(key=lambda w: w["at"])
    return warnings


@router.get("/avisos")
async def notifications(page: NotifiedPage) -> Response:
    institution = page.browser.row.institution_id
    referrals = await page.api.get("referral", "/api/v1/referrals")
    holds = await page.api.get("capacity", "/api/v1/holds") if page.has("prosecutor") else []
    now = datetime.now(UTC)
    return page.render(
        "notifications.html",
        steps=referral_steps(referrals, institution, now),
        warnings=due_soon(referrals, holds, now),
        actions=ACTIONS,
    )
