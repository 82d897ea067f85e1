"""The availability search's route: FastAPI's contract, a shorter path for a good request.

``POST /api/v1/availability/search`` is declared like every other route (its OpenAPI
entry, its body model, its dependencies), and FastAPI's own handler still answers every
request the short path does not take. The short path (issue 18) is for a well-formed
body: it authenticates and authorises exactly as the route's dependencies would
(``services.security.authenticate``, with the revocation deny-list, then the capacity
and search role checks), validates the body with the route's own body field, remembers
the validated body by its bytes (a bounded LRU: family shapes come back again and again),
and answers the pre-encoded bytes of ``flows.search_answer``. It skips FastAPI's
per-request work around that: telemetry, endpoint context, dependency solving.

Anything unusual goes the standard way, so every error answer is FastAPI's own: a body
that is not JSON, not ``application/json``, or does not validate (422 in the contract's
shape), dependency overrides (tests), or a route included with dependencies other than
authentication. Errors keep their order: a well-formed body can only fail authentication
(401) or a role check (403), which the short path raises from the same functions.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from capacity import flows, permissions
from capacity.dependencies import capacity_principal
from capacity.schemas import SearchRequest
from services.security import authenticate

BODY_MEMO = 4_096  # validated bodies remembered
BODY_MEMO_MAX_BYTES = 4_096  # larger bodies are validated every time (memory bound)
JSON_CONTENT_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})

_bodies: OrderedDict[bytes, flows.SearchQuery] = OrderedDict()

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _dependency_calls(dependant: Dependant) -> set[Any]:
    calls: set[Any] = set()
    for sub in dependant.dependencies:
        calls.add(sub.call)
        calls |= _dependency_calls(sub)
    return calls


# What the short path does itself; a route with any other dependency goes the standard way.
SHORT_PATH_DEPENDENCIES = frozenset({authenticate, capacity_principal})


def _content_type(request: Request) -> bytes:
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            return bytes(value).lower()
    return b""


class SearchRoute(APIRoute):
    """The search route: FastAPI's handler, preceded by the short path for good bodies."""

    def get_route_handler(self) -> Handler:
        standard = super().get_route_handler()
        body_field = self.body_field
        # The dependant of this inclusion (with the including router's dependencies): the
        # one FastAPI's handler just solved, and that the short path must stand for.
        dependant = standard_dependant(self)
        if body_field is None or not _dependency_calls(dependant) <= SHORT_PATH_DEPENDENCIES:
            return standard

        def validated(raw: bytes) -> flows.SearchQuery | None:
            """The body as FastAPI would have validated it, prepared for the matcher; or
            None (FastAPI would refuse it)."""
            known = _bodies.get(raw)
            if known is not None:
                _bodies.move_to_end(raw)
                return known
            try:
                data = json.loads(raw)  # what Starlette's Request.json() does
            except Exception:  # not JSON, or nested too deep (RecursionError)
                return None
            value, errors = body_field.validate(data, {}, loc=("body",))
            if errors or not isinstance(value, SearchRequest):
                return None
            query = flows.search_query(value)
            if len(raw) <= BODY_MEMO_MAX_BYTES:
                _bodies[raw] = query
                while len(_bodies) > BODY_MEMO:
                    _bodies.popitem(last=False)
            return query

        async def handle(request: Request) -> Response:
            if request.app.dependency_overrides or _content_type(request) not in JSON_CONTENT_TYPES:
                return await standard(request)
            query = validated(await request.body())  # Starlette keeps it for ``standard``
            if query is None:
                return await standard(request)
            principal = await authenticate(request)
            await capacity_principal(principal)
            permissions.ensure_search(principal)
            answer = await flows.search_answer(principal, query)
            return Response(answer, media_type="application/json")

        return handle


def standard_dependant(route: APIRoute) -> Dependant:
    """The dependant FastAPI solves for ``route`` in the inclusion being built."""
    from fastapi import routing

    context = routing._effective_route_context_var.get()
    if context is not None and context.original_route is route:
        assert context.dependant is not None
        return context.dependant  # type: ignore[no-any-return]
    return route.dependant
