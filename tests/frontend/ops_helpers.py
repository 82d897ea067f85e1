"""Shared steps of the coordinator, auditor and institution-admin page tests."""

from __future__ import annotations

import re
from typing import Any

import httpx

from canaliza.demo import CASA_MERCEDES, FGR
from tests.conftest import demo_login

api_headers = demo_login  # a bearer token for a demo user (password grant, demo mode)


async def send_referral_to_casa_mercedes(client: httpx.AsyncClient) -> dict[str, Any]:
    """The prosecutor (through the API) sends a mother and her son to Casa de las Mercedes."""
    fiscal = await api_headers(client, "fiscal")
    people = [
        {"sex": "F", "age": 29, "role": "victim"},
        {"sex": "M", "age": 4, "role": "accompanying_child"},
    ]
    found = await client.post(
        "/api/v1/availability/search",
        json={"people": people, "needs": {}, "state": "09"},
        headers=fiscal,
    )
    assert found.status_code == 200, found.text
    choice = next(
        r
        for r in found.json()["results"]
        if r["facility"]["operator_institution_id"] == CASA_MERCEDES.id
    )
    hold = await client.post(
        "/api/v1/holds",
        json={
            "allocations": [{"pool_id": p["pool_id"], "beds": p["beds"]} for p in choice["pools"]]
        },
        headers=fiscal,
    )
    assert hold.status_code == 201, hold.text
    created = await client.post(
        "/api/v1/referrals",
        json={
            "sending_institution_id": FGR.id,
            "receiving_institution_id": CASA_MERCEDES.id,
            "facility_id": choice["facility"]["id"],
            "hold_id": hold.json()["id"],
            "people": [{**p, "nationality": "MEX"} for p in people],
            "consent": {"given": True},
            "urgency": "urgent",
        },
        headers=fiscal,
    )
    assert created.status_code == 201, created.text
    sent = await client.post(
        f"/api/v1/referrals/{created.json()['id']}/send", json={}, headers=fiscal
    )
    assert sent.status_code == 200, sent.text
    return dict(sent.json())


def form_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to ``action``."""
    found = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    assert found, f"no form posting to {action}"
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', found.group(1)))
