"""Issue 18: the users list is read page by page with a cursor, by username then id."""

from __future__ import annotations

from tests.conftest import demo_login, running
from tests.pages import walk


async def test_users_walk_every_user_once_by_username(make_app):
    async with running(make_app()) as client:
        admin = await demo_login(client, "admin")
        whole = await client.get("/api/v1/auth/users", params={"limit": 500}, headers=admin)
        assert whole.status_code == 200, whole.text
        users = whole.json()
        assert len(users) > 6 and "x-next-cursor" not in whole.headers
        assert [u["username"] for u in users] == sorted(u["username"] for u in users)
        got, pages = await walk(client, "/api/v1/auth/users", admin, limit=3)
        assert got == users and pages == -(-len(users) // 3)
        for bad in ("nope", "WzEsMl0", "WyJhIl0"):
            r = await client.get("/api/v1/auth/users", params={"cursor": bad}, headers=admin)
            assert r.status_code == 422 and r.json()["error"] == "invalid_cursor", r.text
        r = await client.get("/api/v1/auth/users", params={"limit": 501}, headers=admin)
        assert r.status_code == 422
