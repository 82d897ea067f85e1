"""The rescue-operation screen's rows (issue 16): pasted rows become groups and needs."""

from __future__ import annotations

from typing import Any

import pytest

from frontend.operations import _by_facility, parse_rows


def test_rows_become_groups_with_their_needs_and_languages():
    rows = (
        "1; F; 32; víctima; Náhuatl/español; embarazo\n"
        "1\tM\t6\tniño\n"
        "2, S.I., , testigo, , silla/sensorial\n"
        "\n"
        "2; F; 19\n"
    )
    groups, problems = parse_rows(rows)
    assert problems == []
    assert groups == [
        {
            "people": [
                {"sex": "F", "age": 32, "role": "victim", "languages": ["Náhuatl", "español"]},
                {"sex": "M", "age": 6, "role": "accompanying_child"},
            ],
            "needs": {"pregnancy": True},
        },
        {
            "people": [
                {"sex": None, "age": None, "role": "witness"},
                {"sex": "F", "age": 19, "role": "victim"},
            ],
            "needs": {"disabilities": ["mobility", "sensory"]},
        },
    ]


def test_bad_rows_are_named_by_line_in_spanish():
    _groups, problems = parse_rows(
        "1; Q; 30\n; F; 30\n2; F; 200\n3; F; 30; jefa\n4; F; 1; ; ; magia"
    )
    assert problems == [
        "Línea 1: el sexo debe ser F, M, X o S.I.",
        "Línea 2: falta el número de grupo.",
        "Línea 3: la edad es un número de años entre 0 y 120.",
        "Línea 4: papel «jefa» desconocido.",
        "Línea 5: necesidad «magia» desconocida.",
    ]
    assert parse_rows("")[1] == ["Escriba o pegue al menos una persona."]
    assert len(parse_rows("1; F; 30\n" * 601)[1]) == 1


def test_the_plan_by_place_adds_up_each_facility():
    plan = [
        {"facility_id": "a", "facility_name": "A", "state": "09", "people": [0, 1], "group": 0},
        {"facility_id": "b", "facility_name": "B", "state": "15", "people": [0], "group": 1},
        {"facility_id": "a", "facility_name": "A", "state": "09", "people": [0], "group": 2},
    ]
    places = _by_facility(plan)
    assert [(p["name"], p["people"], [g["group"] for g in p["groups"]]) for p in places] == [
        ("A", 3, [0, 2]),
        ("B", 1, [1]),
    ]


def _plan() -> dict[str, Any]:
    def assignment(
        group: int, fac: str, pool: str, people: list[int], split: bool = False
    ) -> dict[str, Any]:
        return {"group": group, "facility_id": fac, "facility_name": fac, "split": split,
                "people": people, "state": "09",
                "allocations": [{"pool_id": pool, "pool_name": pool, "beds": len(people),
                                 "people": people}]}  # fmt: skip

    return {
        "assignments": [
            assignment(0, "uno", "p1", [0, 1]),
            assignment(1, "uno", "p1", [0], split=True),
            assignment(1, "dos", "p2", [1], split=True),
        ],
        "unplaced": [{"group": 2, "people": 1, "reason": {"code": "no_beds_now", "reason": "x"}}],
        "summary": {"people": 5, "placed_people": 4, "facilities": 2, "split_groups": 1},
    }


def test_moving_a_split_part_keeps_it_split_and_the_figures_follow():
    from frontend.operations import move, pinned, used_beds

    plan = _plan()
    assert used_beds(plan, skip=2) == {"p1": 3}  # the beds the rest of the plan uses
    candidate = {"facility_id": "tres", "facility_name": "Tres", "people": [1], "state": "15",
                 "allocations": [{"pool_id": "p3", "pool_name": "P3", "beds": 1, "people": [1]}]}  # fmt: skip
    moved = move(plan, "a2", candidate, size=2)
    part = next(a for a in moved["assignments"] if a["facility_id"] == "tres")
    assert part["group"] == 1 and part["split"] is True
    assert moved["summary"]["facilities"] == 2 and moved["summary"]["placed_people"] == 4
    # An unplaced group given a place is whole; a group left out loses every part.
    placed = move(moved, "u2", {**candidate, "people": [0]}, size=1)
    assert [u["group"] for u in placed["unplaced"]] == []
    left = move(placed, "a1", None, size=2)
    assert [a["group"] for a in left["assignments"]] == [0, 2]
    assert [(u["group"], u["reason"]["code"]) for u in left["unplaced"]] == [(1, "left_unplaced")]
    body = pinned(left)
    assert body["leave_unplaced"] == [1]
    assert body["assignments"][0] == {
        "group": 0, "facility_id": "uno", "split": False,
        "allocations": [{"pool_id": "p1", "beds": 2, "people": [0, 1]}],
    }  # fmt: skip


def test_a_row_that_is_not_in_the_plan_is_refused():
    import pytest

    from frontend.operations import move

    for key in ("a9", "u0", "x1"):
        with pytest.raises(ValueError):
            move(_plan(), key, None, size=1)


def test_a_child_with_her_mother_in_the_rows_stays_with_her():
    groups, problems = parse_rows("1; F; 30\n1; F; 24\n1; F; 0; bebé con 2\n1; M; 6; niño de 1")
    assert problems == []
    people = groups[0]["people"]
    assert people[2] == {"sex": "F", "age": 0, "role": "accompanying_child", "stays_with": 1}
    assert people[3]["stays_with"] == 0
    _groups, problems = parse_rows("1; F; 30; víctima con 1")
    assert problems == ["Línea 1: papel «víctima con 1» desconocido."]


@pytest.mark.slow
async def test_adjust_then_hold_through_the_pages(demo_app):
    """Through the ASGI app: plan, a row not in the plan, the places offered for one
    group, that group left out, then held as shown; changed rows are refused."""
    from tests.conftest import running
    from tests.frontend.conftest import csrf_of, sign_in, small_world

    async with running(demo_app) as client:
        await small_world(client)
        await sign_in(client, "fiscal")
        csrf = csrf_of((await client.get("/operativos/nuevo")).text)
        form = {"csrf_token": csrf, "name": "Op", "state": "09", "rows": "1; F; 30\n2; F; 40"}
        planned = await client.post("/operativos/planear", data=form)
        assert planned.status_code == 200 and "Refugio de prueba Coyoacán" in planned.text
        gone = await client.post("/operativos/ajustar", data={**form, "fila": "a9"})
        assert "Ese renglón ya no está en el plan" in gone.text
        offered = await client.post("/operativos/ajustar", data={**form, "fila": "a1"})
        assert "Otros lugares para el grupo 2" in offered.text
        assert "Ningún otro lugar puede recibirlos juntos ahora." in offered.text  # one refuge
        assert "cama(s) libre(s) en 09 la aceptan" in offered.text  # why not elsewhere
        left = await client.post(
            "/operativos/ajustar/elegir", data={**form, "fila": "a1", "eleccion": "sin-lugar"}
        )
        assert "El grupo 2 queda sin lugar en este operativo." in left.text
        changed = await client.post(
            "/operativos/ajustar", data={**form, "rows": "1; F; 31", "fila": "a0"}
        )
        assert changed.status_code == 422 and "vuelva a planear" in changed.text
        held = await client.post("/operativos", data=form)
        assert held.status_code == 303, held.text
        page = await client.get(held.headers["location"])
        assert "Sin lugar por decisión" in page.text
        assert page.text.count("Enviar la canalización") == 1  # one hold: group 1's
