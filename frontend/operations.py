"""The prosecutor's rescue-operation screens (issue 16): build an operation from pasted or
typed rows, see the plan as a table and by facility, hold it, release it, send referrals.

GET  /operativos/nuevo                        the rows, the state, the name
POST /operativos/planear                      the plan (writes nothing)
POST /operativos/ajustar                      other places for one row of the plan, and why
POST /operativos/ajustar/elegir               move the row there, or leave its group out
POST /operativos                              hold the plan as adjusted (one hold per group
                                              or part; pinned: held as shown if still free)
GET  /operativos/{id}                         the operation: its holds, by facility
POST /operativos/{id}/liberar                 release what no referral took
POST /operativos/{id}/canalizar/{hold}        send the referral of one hold (the usual form)

One row per person: ``group; sex; age; role; languages; needs`` (``;``, tab or ``,``
separated). Sex F, M, X or S.I.; age in years or empty; role víctima, indirecta, testigo,
niña/niño (accompanying child; «niña con 1» never leaves the group's first person, e.g. a
baby her mother); languages separated by ``/``; needs of the group separated
by ``/`` (silla, sensorial, intelectual, embarazo, adicciones, migrante, lgbtttiq).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from frontend.api import ApiError
from frontend.dependencies import FrontendRoute, Page, require_role
from frontend.i18n import STATES
from frontend.prosecutor import clean_id
from services.vocabulary import UserRole

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

OperationsPage = Annotated[
    Page, Depends(require_role(UserRole.PROSECUTOR, UserRole.PLATFORM_ADMIN))
]

MAX_ROWS = 600
ROLE_WORDS = {
    "victima": "victim",
    "víctima": "victim",
    "indirecta": "indirect_victim",
    "victima indirecta": "indirect_victim",
    "víctima indirecta": "indirect_victim",
    "testigo": "witness",
    "nina": "accompanying_child",
    "niña": "accompanying_child",
    "nino": "accompanying_child",
    "niño": "accompanying_child",
    "hija": "accompanying_child",
    "hijo": "accompanying_child",
    "bebé": "accompanying_child",
    "bebe": "accompanying_child",
}
NEED_WORDS: dict[str, tuple[str, Any]] = {
    "silla": ("disabilities", "mobility"),
    "motriz": ("disabilities", "mobility"),
    "sensorial": ("disabilities", "sensory"),
    "intelectual": ("disabilities", "intellectual_psychosocial"),
    "psicosocial": ("disabilities", "intellectual_psychosocial"),
    "embarazo": ("pregnancy", True),
    "adicciones": ("addiction_care", True),
    "migrante": ("migrant", True),
    "lgbtttiq": ("lgbtttiq", True),
}
EXAMPLE = "1; F; 32; víctima; náhuatl\n1; F; 6; niña\n2; M; 41; víctima; ; \n2; M; 19; víctima\n"


def _cells(line: str) -> list[str]:
    dialect = "excel-tab" if "\t" in line else "excel"
    delimiter = "\t" if "\t" in line else (";" if ";" in line else ",")
    row = next(csv.reader(io.StringIO(line), dialect=dialect, delimiter=delimiter), [])
    return [c.strip() for c in row]


def _bond(role: str) -> tuple[str, int | None]:
    """«niña con 1», «hijo de 2»: an accompanying child who stays with that person of her
    group (counted from 1 within the group); the role word and the bond (from 0)."""
    words = role.lower().split()
    if len(words) == 3 and words[1] in ("con", "de") and words[2].isdigit():
        return words[0], max(int(words[2]) - 1, 0)
    return role.lower(), None


def parse_rows(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The operation's groups from the rows, and the problems found (Spanish, by line)."""
    groups: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    lines = [x for x in text.splitlines() if x.strip()]
    if len(lines) > MAX_ROWS:
        problems.append(f"Un operativo admite hasta {MAX_ROWS} personas; hay {len(lines)}.")
        lines = lines[:MAX_ROWS]
    for n, line in enumerate(lines, start=1):
        cells = _cells(line) + [""] * 6
        key, sex_raw, age_raw, role_raw, langs, needs = cells[:6]
        if not key:
            problems.append(f"Línea {n}: falta el número de grupo.")
            continue
        sex = sex_raw.upper()
        if sex in ("SI", "S.I.", "S/I", ""):
            sex_value: str | None = None
        elif sex in ("F", "M", "X"):
            sex_value = sex
        else:
            problems.append(f"Línea {n}: el sexo debe ser F, M, X o S.I.")
            continue
        age: int | None = None
        if age_raw:
            if not age_raw.isdigit() or int(age_raw) > 120:
                problems.append(f"Línea {n}: la edad es un número de años entre 0 y 120.")
                continue
            age = int(age_raw)
        role_word, bond = _bond(role_raw)
        role = ROLE_WORDS.get(role_word, "victim" if not role_raw else "")
        if not role or (bond is not None and role != "accompanying_child"):
            problems.append(f"Línea {n}: papel «{role_raw}» desconocido.")
            continue
        person: dict[str, Any] = {"sex": sex_value, "age": age, "role": role}
        if bond is not None:
            person["stays_with"] = bond  # the group's own numbering is checked by the API
        spoken = [x.strip() for x in langs.split("/") if x.strip()]
        if spoken:
            person["languages"] = spoken[:5]
        group = groups.setdefault(key, {"people": [], "needs": {}})
        group["people"].append(person)
        for word in (x.strip().lower() for x in needs.split("/") if x.strip()):
            if word not in NEED_WORDS:
                problems.append(f"Línea {n}: necesidad «{word}» desconocida.")
                continue
            field, value = NEED_WORDS[word]
            if field == "disabilities":
                group["needs"].setdefault(field, [])
                if value not in group["needs"][field]:
                    group["needs"][field].append(value)
            else:
                group["needs"][field] = value
    if not groups and not problems:
        problems.append("Escriba o pegue al menos una persona.")
    return list(groups.values()), problems


def _by_facility(assignments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plan as a list by facility (no map): who goes where."""
    out: dict[str, dict[str, Any]] = {}
    for a in assignments:
        fac = out.setdefault(
            a["facility_id"],
            {"name": a["facility_name"], "state": a["state"], "people": 0, "groups": []},
        )
        fac["people"] += len(a["people"])
        fac["groups"].append(a)
    return sorted(out.values(), key=lambda f: (-f["people"], f["name"]))


def _form(page: Page, **values: Any) -> Response:
    defaults = {
        "rows": EXAMPLE,
        "state": "16",
        "name": "",
        "plan": None,
        "by_facility": [],
        "problems": [],
        "choosing": None,
        "notice": None,
        "states": sorted(STATES, key=lambda code: page.t.state(code)),
    }
    return page.render("operations/new.html", **{**defaults, **values})


@router.get("/operativos/nuevo")
async def new_operation(page: OperationsPage) -> Response:
    return _form(page)


async def _read(page: Page, request: Request) -> tuple[dict[str, Any], list[str], str]:
    form = await request.form()
    rows = str(form.get("rows") or "")[:60_000]
    state = str(form.get("state") or "")
    name = str(form.get("name") or "").strip()[:200]
    groups, problems = parse_rows(rows)
    if state not in STATES:
        problems.append("Elija el estado del operativo.")
    return {"state": state, "groups": groups, "name": name}, problems, rows


@router.post("/operativos/planear")
async def plan_operation(page: OperationsPage, request: Request) -> Response:
    body, problems, rows = await _read(page, request)
    plan = None
    if not problems:
        try:
            plan = await page.api.post(
                "capacity",
                "/api/v1/operations/plan",
                json={"state": body["state"], "groups": body["groups"]},
            )
        except ApiError as exc:
            if exc.status >= 500:
                raise
            problems.append(exc.detail)
    if plan is not None:
        # The plan as shown is kept, to be adjusted row by row and held as it is.
        adjust = {"rows": rows, "state": body["state"], "groups": body["groups"], "plan": plan}
        await page.save_draft({**(page.draft() or {}), "adjust": adjust})
    return _plan_page(page, body, rows, plan, problems=problems)


def _plan_page(
    page: Page,
    body: dict[str, Any],
    rows: str,
    plan: dict[str, Any] | None,
    *,
    problems: list[str] | None = None,
    **values: Any,
) -> Response:
    problems = problems or []
    return _form(
        page,
        rows=rows,
        state=body["state"],
        name=body["name"],
        plan=plan,
        adjustable=plan is not None,
        by_facility=_by_facility(plan["assignments"]) if plan else [],
        problems=problems,
        status=422 if problems else 200,
        **values,
    )


def _adjusting(page: Page, body: dict[str, Any], rows: str) -> dict[str, Any] | None:
    """The plan kept when it was shown, if the rows and the state are still those."""
    adjust = (page.draft() or {}).get("adjust")
    if not adjust or adjust.get("rows") != rows or adjust.get("state") != body["state"]:
        return None
    return dict(adjust)


def _row(plan: dict[str, Any], key: str) -> tuple[int, list[int] | None, int | None]:
    """A row of the plan's table: its group, the people of that part (None: the whole
    group) and the assignment's position (None: an unplaced group). ValueError if none."""
    kind, number = key[:1], int(key[1:])
    if kind == "a" and 0 <= number < len(plan["assignments"]):
        a = plan["assignments"][number]
        return a["group"], (a["people"] if a.get("split") else None), number
    if kind == "u" and any(u["group"] == number for u in plan["unplaced"]):
        return number, None, None
    raise ValueError(key)


def used_beds(plan: dict[str, Any], *, skip: int | None = None) -> dict[str, int]:
    """Beds per pool the plan's assignments take (but the one at ``skip``)."""
    used: dict[str, int] = {}
    for k, a in enumerate(plan["assignments"]):
        if k != skip:
            for x in a["allocations"]:
                used[x["pool_id"]] = used.get(x["pool_id"], 0) + x["beds"]
    return used


def summarise(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan's figures again, after a change on screen."""
    a = plan["assignments"]
    return {
        **plan["summary"],
        "placed_people": sum(len(x["people"]) for x in a),
        "placed_groups": len({x["group"] for x in a}),
        "split_groups": len({x["group"] for x in a if x.get("split")}),
        "unplaced_groups": len(plan["unplaced"]),
        "facilities": len({x["facility_id"] for x in a}),
    }


def move(
    plan: dict[str, Any], key: str, candidate: dict[str, Any] | None, size: int
) -> dict[str, Any]:
    """The plan with one row moved to ``candidate`` (an answer of /operations/candidates),
    or its whole group left unplaced (``candidate`` None)."""
    group, _people, at = _row(plan, key)
    assignments = list(plan["assignments"])
    unplaced = [u for u in plan["unplaced"] if u["group"] != group]
    if candidate is None:
        assignments = [x for x in assignments if x["group"] != group]
        reason = {"code": "left_unplaced", "reason": LEFT_OUT}
        unplaced.append({"group": group, "people": size, "reason": reason})
    else:
        split = bool(at is not None and assignments[at].get("split"))
        moved = {**candidate, "group": group, "split": split}
        if at is None:
            assignments.append(moved)
        else:
            assignments[at] = moved
    assignments.sort(key=lambda x: (x["group"], x["facility_id"]))
    unplaced.sort(key=lambda u: u["group"])
    out = {**plan, "assignments": assignments, "unplaced": unplaced}
    out["summary"] = summarise(out)
    return out


LEFT_OUT = "Sin lugar: se decidió al ajustar el plan (no se apartan camas para este grupo)."


@router.post("/operativos/ajustar")
async def offer_places(page: OperationsPage, request: Request) -> Response:
    """Other places for one row of the plan (the group, or one part of it), with the free
    beds that take them, and why other places cannot."""
    body, problems, rows = await _read(page, request)
    adjust = _adjusting(page, body, rows)
    if adjust is None or problems:
        return _plan_page(page, body, rows, None, problems=problems or [STALE])
    plan = adjust["plan"]
    key = str((await request.form()).get("fila") or "")
    try:
        group, people, at = _row(plan, key)
    except ValueError:
        return _plan_page(page, body, rows, plan, problems=[NO_ROW])
    try:
        answer = await page.api.post(
            "capacity",
            "/api/v1/operations/candidates",
            json={
                "state": body["state"],
                "group": adjust["groups"][group],
                "people": people,
                "taken": used_beds(plan, skip=at),
            },
        )
    except ApiError as exc:
        if exc.status >= 500:
            raise
        return _plan_page(page, body, rows, plan, problems=[exc.detail])
    current = plan["assignments"][at]["facility_id"] if at is not None else None
    answer["candidates"] = [c for c in answer["candidates"] if c["facility_id"] != current]
    await page.save_draft(
        {**(page.draft() or {}), "adjust": {**adjust, "offer": {"row": key, **answer}}}
    )
    choosing = {"row": key, "group": group, "people": people, **answer}
    return _plan_page(page, body, rows, plan, choosing=choosing)


STALE = "Las personas o el estado cambiaron desde el plan: vuelva a planear."
NO_ROW = "Ese renglón ya no está en el plan: elija otro."


@router.post("/operativos/ajustar/elegir")
async def choose_place(page: OperationsPage, request: Request) -> Response:
    """Move the row to the place chosen, or leave its group out of the operation."""
    body, problems, rows = await _read(page, request)
    adjust = _adjusting(page, body, rows)
    if adjust is None or problems:
        return _plan_page(page, body, rows, None, problems=problems or [STALE])
    form = await request.form()
    plan, offer = adjust["plan"], adjust.get("offer") or {}
    key, choice = str(form.get("fila") or ""), str(form.get("eleccion") or "")
    if form.get("cancelar") or offer.get("row") != key:
        return _plan_page(page, body, rows, plan)
    try:
        group, _people, _at = _row(plan, key)
    except ValueError:
        return _plan_page(page, body, rows, plan, problems=[NO_ROW])
    size = len(adjust["groups"][group]["people"])
    if choice == "sin-lugar":
        plan = move(plan, key, None, size)
        notice = f"El grupo {group + 1} queda sin lugar en este operativo."
    elif choice.isdigit() and int(choice) < len(offer.get("candidates", [])):
        candidate = offer["candidates"][int(choice)]
        plan = move(plan, key, candidate, size)
        notice = f"El grupo {group + 1} irá a {candidate['facility_name']}."
    else:
        choosing = {"row": key, "group": group, **offer}
        return _plan_page(page, body, rows, plan, problems=[CHOOSE], choosing=choosing)
    adjust = {k: v for k, v in adjust.items() if k != "offer"}
    await page.save_draft({**(page.draft() or {}), "adjust": {**adjust, "plan": plan}})
    return _plan_page(page, body, rows, plan, notice=notice)


CHOOSE = "Elija un lugar de la lista o dejar al grupo sin lugar."


def pinned(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan as shown, for ``POST /operations``: every assignment pinned (people named,
    so split parts hold as shown) and the groups left out on purpose."""
    return {
        "assignments": [
            {
                "group": a["group"],
                "facility_id": a["facility_id"],
                "split": bool(a.get("split")),
                "allocations": [
                    {"pool_id": x["pool_id"], "beds": x["beds"], "people": x["people"]}
                    for x in a["allocations"]
                ],
            }
            for a in plan["assignments"]
        ],
        "leave_unplaced": [
            u["group"] for u in plan["unplaced"] if u["reason"].get("code") == "left_unplaced"
        ],
    }


@router.post("/operativos")
async def hold_operation(page: OperationsPage, request: Request) -> Response:
    body, problems, rows = await _read(page, request)
    if not body["name"]:
        problems.append("Dé un nombre al operativo para apartar sus camas.")
    adjust = _adjusting(page, body, rows)
    if problems:
        plan = adjust["plan"] if adjust else None
        return _plan_page(page, body, rows, plan, problems=problems)
    if adjust is not None:
        body = {**body, **pinned(adjust["plan"])}  # hold what the screen shows
    try:
        operation = await page.api.post("capacity", "/api/v1/operations", json=body)
    except ApiError as exc:
        if exc.status >= 500:
            raise
        plan = adjust["plan"] if adjust else None
        return _plan_page(page, body, rows, plan, problems=[exc.detail])
    draft = {k: v for k, v in (page.draft() or {}).items() if k != "adjust"}
    groups = body["groups"]
    await page.save_draft({**draft, "operation": {"id": operation["id"], "groups": groups}})
    return page.redirect(f"/operativos/{operation['id']}")


@router.get("/operativos/{operation_id}")
async def operation_page(page: OperationsPage, operation_id: str) -> Response:
    operation = await page.api.get("capacity", f"/api/v1/operations/{clean_id(operation_id)}")
    referrals = await page.api.get(
        "referral", "/api/v1/referrals", params={"operation_id": operation["id"]}
    )
    sent = {r["hold_id"]: r["id"] for r in referrals if r.get("hold_id")}
    return page.render(
        "operations/detail.html",
        operation=operation,
        by_facility=_by_facility(operation["assignments"]),
        sent=sent,
    )


@router.post("/operativos/{operation_id}/liberar")
async def release_operation(page: OperationsPage, operation_id: str) -> Response:
    oid = clean_id(operation_id)
    await page.api.delete("capacity", f"/api/v1/operations/{oid}")
    return page.redirect(f"/operativos/{oid}")


@router.post("/operativos/{operation_id}/canalizar/{hold_id}")
async def refer_one(page: OperationsPage, operation_id: str, hold_id: str) -> Response:
    """The usual send form for one hold of the operation, with the people of its group."""
    oid, hid = clean_id(operation_id), clean_id(hold_id)
    operation = await page.api.get("capacity", f"/api/v1/operations/{oid}")
    assignment = next((a for a in operation["assignments"] if a.get("hold_id") == hid), None)
    kept = (page.draft() or {}).get("operation") or {}
    if assignment is None or kept.get("id") != oid:
        return page.redirect(f"/operativos/{oid}?aviso=otra-sesion")
    group = kept["groups"][assignment["group"]]["people"]
    people = [
        {k: v for k, v in group[i].items() if k in ("sex", "age", "role")}
        for i in assignment["people"]
        if i < len(group)
    ]
    await page.save_draft(
        {
            "operation": kept,
            "search": {"people": people, "needs": {}, "state": operation["state"]},
            "hold": {
                "id": hid,
                "facility_id": assignment["facility_id"],
                "facility_name": assignment["facility_name"],
                "operator_institution_id": assignment["operator_institution_id"],
                "state": assignment["state"],
            },
        }
    )
    return page.redirect(f"/canalizaciones/apartados/{hid}")
