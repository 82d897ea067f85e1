"""The mixed load of ``bench/load_mixed.py``, small: 200 users, a few rounds each, zero errors.

No timing assertions (the figures go to ``var/resilience/load.json``; the bench prints
them for longer runs). Embedded default always; the topology with the machine's
PostgreSQL and NATS (its own database and stream, removed afterwards).
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.load_mixed import run_target, write_results
from tests.conftest import require_service

pytestmark = pytest.mark.resilience

USERS = 200
OPERATIONS = {
    "search",
    "hold",
    "release",
    "ledger",
    "referral_create",
    "referral_transition",
    "live_snapshot",
}


# Requests per round of each persona: search 1; hold + release 2; admit + discharge 2;
# referral: hold, create, send, decline 4. Of 10 users: 4 search, 2 hold, 2 ledger, 1 referral.
REQUESTS_PER_ROUND = (USERS // 10) * (4 * 1 + 2 * 2 + 2 * 2 + 1 * 4)


def _check(run: dict[str, Any], rounds: int) -> None:
    assert run["errors"] == 0, run["error_samples"]
    assert set(run["per_operation"]) == OPERATIONS, run["per_operation"]
    assert run["live_subscribers"] == USERS // 10
    # Every ledger entry and hold changes a pool the subscribers watch: the feed carried them.
    assert run["live_messages"] >= run["per_operation"]["ledger"]["count"]
    assert run["requests"] == REQUESTS_PER_ROUND * rounds


def test_two_hundred_users_mixed_load_on_the_embedded_default() -> None:
    run = run_target("embedded", users=USERS, iterations=2)
    write_results([run], mode="ci")
    _check(run, rounds=2)


@pytest.mark.postgres
@pytest.mark.nats
@pytest.mark.slow
def test_two_hundred_users_mixed_load_on_the_topology() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("NATS", "127.0.0.1", 4222)
    run = run_target("topology", users=USERS, iterations=1)
    write_results([run], mode="ci")
    _check(run, rounds=1)
