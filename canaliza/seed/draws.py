"""Seeded draws and formats the generator's parts share: fictitious names and addresses,
weighted picks, ISO dates."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any


def fictitious_address(rng: random.Random, municipality: str) -> str:
    """A street address that cannot be a real one."""
    return (
        f"Calle Ficticia {rng.randint(1, 999)}, Col. Ejemplo {rng.choice(_COLONIAS)}, "
        f"{municipality}"
    )


_COLONIAS = ("Norte", "Sur", "Centro", "Oriente", "Poniente", "Primera Sección", "Las Flores")

_PSEUDONYM_WORDS = (
    "Jacaranda", "Ceiba", "Colibrí", "Quetzal", "Ahuehuete", "Cempasúchil", "Nopal", "Maguey",
    "Ocelote", "Tecolote", "Huizache", "Mezquite", "Dalia", "Nardo", "Azucena", "Gardenia",
    "Tulipán", "Orquídea", "Alondra", "Gaviota", "Golondrina", "Paloma", "Garza", "Tórtola",
    "Ámbar", "Jade", "Obsidiana", "Turquesa", "Cuarzo", "Ópalo", "Lluvia", "Brisa",
)  # fmt: skip


def pseudonym(rng: random.Random) -> str:
    """A generated pseudonym such as ``Jacaranda 417`` — never a person's name."""
    return f"{rng.choice(_PSEUDONYM_WORDS)} {rng.randint(100, 999)}"


def cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def pick(rng: random.Random, items: Sequence[Any], cum: list[float]) -> Any:
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


def iso_date(d: date) -> str:
    return d.isoformat()


def iso_timestamp(t: datetime) -> str:
    # naive UTC datetimes with whole seconds: isoformat is much faster than strftime
    return t.isoformat() + "Z"
