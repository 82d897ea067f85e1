"""Sessions, sign-in through the auth service (code + PKCE), CSRF, headers, language."""

from __future__ import annotations

import pytest

from tests.conftest import running
from tests.frontend.conftest import sign_in

pytestmark = pytest.mark.slow


async def test_fiscal_signs_in_with_pkce_and_lands_on_her_screen(demo_app):
    async with running(demo_app) as client:
        landing = await sign_in(client, "fiscal")
        assert landing == "/"
        home = await client.get("/")
        assert home.status_code == 303
        assert home.headers["location"] == "/canalizaciones/nueva"
