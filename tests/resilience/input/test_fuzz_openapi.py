"""Property-based fuzzing of the one-process app from its own OpenAPI (schemathesis).

Every operation is called with generated valid (positive) and invalid (negative) requests,
each authenticated as one of the demo roles (tokens from the demo password grant). Half of
the path parameters are real ids of the demo data, so requests reach the handlers rather
than stopping at 404. For every answer: no 5xx, every 4xx in the contract's
``{"error", "detail"}`` shape, and the answer conforms to the OpenAPI (status code, content
type, body schema). Failures are collected per operation and reported together.

``CANALIZA_FUZZ_EXAMPLES`` sets the examples per operation and mode (CI: a small number;
``make resilience`` runs more). Figures go to ``var/resilience/fuzz.json``.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.resilience.conftest import DEMO_USERNAMES, password_grant_form, write_result

EXAMPLES = int(os.environ.get("CANALIZA_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Operations that are not JSON APIs of a domain service (HTML pages, redirects).
# Agreement documents are PDF uploads: a tiny valid PDF, or garbage bytes.
schemathesis.openapi.media_type(
    "application/pdf",
    st.sampled_from([b"%PDF-1.4\n%%EOF\n", b"not a pdf", b""]) | st.binary(max_size=64),
)
SKIP = {
    ("GET", "/auth/authorize"),
    ("POST", "/auth/authorize"),
    # the federation flow is a browser's round trip: redirects and HTML error pages
    ("GET", "/auth/federation/{institution_key}/login"),
    ("GET", "/auth/federation/{institution_key}/callback"),
}


def service_of(path: str) -> str:
    """The service an operation belongs to, by path prefix."""
    if path.startswith(("/auth", "/.well-known", "/api/v1/auth")):
        return "auth"
    if path.startswith(("/api/v1/audit", "/api/v1/reports/{name}")):
        return "audit"
    if path.startswith(
        ("/api/v1/referrals", "/api/v1/institutions", "/api/v1/agreements", "/api/v1/reports/")
    ):
        return "referral"
    if path.startswith("/api/v1/"):
        return "capacity"
    return "kernel"


def _known_ids(client: Any, headers: dict[str, str]) -> dict[str, list[str]]:
    """Real ids from the demo data, by path parameter name."""

    def ids(path: str) -> list[str]:
        resp = client.get(path, headers=headers)
        assert resp.status_code == 200, (path, resp.text)
        body = resp.json()
        items = body if isinstance(body, list) else body.get("items", [])
        return [item["id"] for item in items][:5]

    facilities = ids("/api/v1/facilities")
    pools = [p for f in facilities[:2] for p in ids(f"/api/v1/facilities/{f}/pools")]
    return {
        "facility_id": facilities,
        "pool_id": pools,
        "institution_id": ids("/api/v1/institutions"),
        "agreement_id": ids("/api/v1/agreements"),
        "referral_id": ids("/api/v1/referrals"),
    }


def _describe(failure: Failure) -> str:
    return f"{failure.title}: {' '.join(str(failure.message).split())[:300]}"


def _error_shape_problem(response: Any) -> str | None:
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} without a JSON body"
    if not (
        isinstance(body, dict)
        and isinstance(body.get("error"), str)
        and isinstance(body.get("detail"), str)
    ):
        return f"{response.status_code} not in the error shape: {str(body)[:200]}"
    return None


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    by_role: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    tokens: dict[str, dict[str, str]],
    known: dict[str, list[str]],
    tally: Tally,
) -> None:
    """Run one operation's examples in one generation mode; record what went wrong."""
    label = f"{operation.method.upper()} {operation.path}"
    service = service_of(operation.path)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(generation_mode=mode),
        username=st.sampled_from(DEMO_USERNAMES),
        real_ids=st.booleans(),
        pick=st.integers(min_value=0, max_value=4),
    )
    def run(case: Any, username: str, real_ids: bool, pick: int) -> None:
        if real_ids and case.path_parameters:
            for name in list(case.path_parameters):
                if known.get(name):
                    options = known[name]
                    case.path_parameters[name] = options[pick % len(options)]
        response = case.call(headers=tokens[username])
        tally.cases[service] += 1
        tally.by_role[username] += 1
        tally.statuses[str(response.status_code)] += 1
        problems = []
        shape = _error_shape_problem(response)
        if shape:
            problems.append(shape)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            problems.extend(_describe(f) for f in group.exceptions)
        except Failure as failure:
            problems.append(_describe(failure))
        for problem in problems:
            if len(tally.failures[label]) < 3:
                tally.failures[label].append(
                    f"[{mode.value} as {username}: {response.status_code} "
                    f"{case.formatted_path}] {problem}"
                )

    with contextlib.suppress(Unsatisfiable):  # nothing to negate (an operation without inputs)
        run()


def test_every_operation_as_every_role_keeps_the_contract(demo_app) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", demo_app)
    tally = Tally()
    try:
        with asgi.get_client(demo_app) as client:
            tokens = {}
            for username in DEMO_USERNAMES:
                resp = client.post("/auth/token", data=password_grant_form(username))
                assert resp.status_code == 200, resp.text
                tokens[username] = {"Authorization": f"Bearer {resp.json()['access_token']}"}
            known = _known_ids(client, tokens["admin"])
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # every operation of our own schema loads
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SKIP:
                continue
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, tokens, known, tally)
    finally:
        asgi.shutdown_lifespans()

    write_result(
        "fuzz",
        {
            "examples_per_operation_and_mode": EXAMPLES,
            "cases_per_service": dict(tally.cases),
            "cases_total": sum(tally.cases.values()),
            "cases_per_role": dict(tally.by_role),
            "statuses": dict(tally.statuses),
            "operations_failing": len(tally.failures),
            "failures": dict(tally.failures),
        },
    )
    assert set(tally.by_role) == set(DEMO_USERNAMES)
    assert not tally.failures, "\n".join(f"{op}: {msgs}" for op, msgs in tally.failures.items())
