"""The rescue-operation screen's rows (issue 16): pasted rows become groups and needs."""

from __future__ import annotations

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
