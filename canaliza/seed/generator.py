"""A pure, deterministic generator of a Mexico-shaped synthetic dataset.

Everything comes from one ``random.Random(seed)`` and a reference date passed in; nothing
reads the clock or the global random state, so the same ``(scale, seed, reference)`` gives
byte-identical data on every machine. Records are plain dicts shaped like the public
contract's request bodies (``docs/contract.md``), plus the few fields the loader
needs (intended status, initial occupancy, which parties sign). No person is real: every
person carries a generated pseudonym, and every address is ``Calle Ficticia …``.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from canaliza import demo
from canaliza.seed import figures as fig
from canaliza.seed.states import STATE_BY_CODE, STATE_CODES, STATES
from services.ids import stable_id

REFERENCE_DATE = date(2026, 1, 1)
"""Default reference date: the history ends here and agreements are valid around it."""

KINDS = ("refugio", "albergue", "casa_de_medio_camino")
# Wire names of the capacity service (002:397-415 lists legal, medical, mental health,
# social services, education; interpreters 001:181)
SERVICES = ("legal", "medical", "mental_health", "social_work", "education", "interpretation")
ADULT_MAX_AGE = 99


@dataclass(frozen=True, slots=True)
class Scale:
    """How big a dataset is."""

    name: str
    facilities: int | None  # None: whatever the documented core plus extras gives
    pools: int | None
    referrals: int
    ngo_count: int
    dif_facilities: int
    ngo_facilities: int


SCALES: dict[str, Scale] = {
    "demo": Scale("demo", None, None, referrals=600, ngo_count=4, dif_facilities=10,
                  ngo_facilities=6),
    "national": Scale("national", 2_000, 20_000, referrals=100_000, ngo_count=420,
                      dif_facilities=880, ngo_facilities=1_100),
}  # fmt: skip

SCENARIOS = ("adult_men_shelter",)
"""Optional additions: ``adult_men_shelter`` adds the facility for adult men that is
missing in reality (003:673), to show what changes when one exists."""


@dataclass
class Dataset:
    """A generated dataset: institutions, facilities, pools, agreements and history."""

    scale: str
    seed: int
    reference_date: str
    scenarios: tuple[str, ...]
    institutions: list[dict[str, Any]] = field(default_factory=list)
    facilities: list[dict[str, Any]] = field(default_factory=list)
    pools: list[dict[str, Any]] = field(default_factory=list)
    agreements: list[dict[str, Any]] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many of each record the dataset holds."""
        return {
            "institutions": len(self.institutions),
            "facilities": len(self.facilities),
            "pools": len(self.pools),
            "beds": sum(p["body"]["total"] for p in self.pools),
            "occupied": sum(p["occupied"] for p in self.pools),
            "agreements": len(self.agreements),
            "referrals": len(self.referrals),
            "people": sum(len(r["people"]) for r in self.referrals),
        }

    def parts(self) -> dict[str, Any]:
        """The dataset as JSON-ready parts (one file each when exported)."""
        return {
            "meta": {
                "scale": self.scale,
                "seed": self.seed,
                "reference_date": self.reference_date,
                "scenarios": list(self.scenarios),
                "counts": self.counts(),
            },
            "institutions": self.institutions,
            "facilities": self.facilities,
            "pools": self.pools,
            "agreements": self.agreements,
            "referrals": self.referrals,
        }

    def to_json(self) -> bytes:
        """Canonical bytes of the whole dataset (sorted keys): equal data, equal bytes."""
        return json.dumps(
            self.parts(), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")


# --------------------------------------------------------------------------- helpers


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


_NGO_PREFIXES = ("Casa", "Fundación", "Red", "Centro", "Colectivo", "Hogar", "Albergue")
_NGO_WORDS = (
    "Aurora", "Amanecer", "Horizonte", "Semilla", "Raíces", "Puente", "Faro", "Camino Nuevo",
    "Alas", "Abrazo", "Sendero", "Refugio Claro", "Mañana", "Brújula", "Cobijo", "Vereda",
    "Manantial", "Girasol", "Candela", "Aliento",
)  # fmt: skip
_NGO_SUFFIXES = ("A.C.", "I.A.P.", "A.B.P.", "A.C.")


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(rng: random.Random, items: Sequence[Any], cum: list[float]) -> Any:
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


def _iso(d: date) -> str:
    return d.isoformat()


def _ts(t: datetime) -> str:
    # naive UTC datetimes with whole seconds: isoformat is much faster than strftime
    return t.isoformat() + "Z"


# --------------------------------------------------------------------------- institutions


def _institution(key: str, name: str, type_: str, state: str) -> dict[str, Any]:
    return {"id": stable_id("institution", key), "name": name, "type": type_, "state": state}


def _demo_institution(inst: demo.DemoInstitution) -> dict[str, Any]:
    return {"id": inst.id, "name": inst.name, "type": inst.type, "state": inst.state}


NAMED_NGOS: tuple[tuple[str, str, str, str], ...] = (
    # key, name, state, municipality — the four PROTEJA shelters (002:205-208) and others
    ("ngo-casa-alianza", "Fundación Casa Alianza México, I.A.P.", "09", "Cuauhtémoc"),
    ("ngo-alternativas-pacificas", "Alternativas Pacíficas, A.C.", "19", "Monterrey"),
    ("ngo-ciam-cancun", "Centro Integral de Atención a las Mujeres (CIAM) Cancún, A.C.", "23",
     "Benito Juárez"),
    ("ngo-camino-a-casa", "Fundación Camino a Casa, A.C.", "09", "Tlalpan"),
)  # fmt: skip


def _institutions(rng: random.Random, scale: Scale) -> tuple[list[dict[str, Any]], list[str]]:
    """Federal, per-state and NGO institutions; returns them and the generated NGO ids."""
    out = [_demo_institution(i) for i in demo.DEMO_INSTITUTIONS]
    out.append(_institution("sre", "Secretaría de Relaciones Exteriores", "sre", "09"))
    per_state: list[dict[str, Any]] = []
    for s in STATES:
        fiscalia = (
            "Fiscalía General de Justicia de la Ciudad de México"
            if s.code == "09"
            else "Fiscalía General de Justicia del Estado de México"
            if s.code == "15"
            else f"Fiscalía General del Estado de {s.long_name}"
        )
        per_state.append(_institution(f"fge-{s.code}", fiscalia, "fiscalia_estatal", s.code))
        per_state.append(
            _institution(
                f"dif-{s.code}",
                f"Sistema para el Desarrollo Integral de la Familia de {s.long_name}",
                "dif_estatal",
                s.code,
            )
        )
        per_state.append(
            _institution(
                f"inm-{s.code}", f"INM — Oficina de Representación en {s.long_name}", "inm", s.code
            )
        )
        if s.code in fig.CEEAV_STATES:
            per_state.append(
                _institution(
                    f"ceeav-{s.code}",
                    f"Comisión Ejecutiva Estatal de Atención a Víctimas de {s.long_name}",
                    "ceeav",
                    s.code,
                )
            )
    demo_ids = {i["id"] for i in out}  # a demo institution (DIF CDMX) is listed once
    out.extend(i for i in per_state if i["id"] not in demo_ids)
    for key, name, state, _ in NAMED_NGOS:
        out.append(_institution(key, name, "ngo", state))
    generated: list[str] = []
    seen = {i["name"] for i in out}
    cum = _cumulative([s.population for s in STATES])
    for n in range(scale.ngo_count):
        state = _pick(rng, STATES, cum)
        name = (
            f"{rng.choice(_NGO_PREFIXES)} {rng.choice(_NGO_WORDS)} "
            f"de {rng.choice(state.municipalities)}, {rng.choice(_NGO_SUFFIXES)}"
        )
        if name in seen:  # keep names unique without redrawing (stable draw count)
            name = name.replace(", ", f" {n + 1}, ", 1)
        seen.add(name)
        inst = _institution(f"ngo-gen-{n:04d}", name, "ngo", state.code)
        out.append(inst)
        generated.append(inst["id"])
    return out, generated


# --------------------------------------------------------------------------- pools


def _pool(
    name: str,
    sexes: list[str],
    min_age: int,
    max_age: int,
    total: int,
    *,
    children: int | None = None,
    max_children: int = 0,
    wheelchair: bool = False,
    migrants: bool = False,
    lgbtttiq: bool = False,
    witnesses: bool = True,
) -> dict[str, Any]:
    return {
        "name": name,
        "sexes": sexes,
        "min_age": min_age,
        "max_age": max_age,
        "total": total,
        "accepts_children": children is not None,
        "max_child_age": children if children is not None else 0,
        "max_children": max_children if children is not None else 0,
        "wheelchair_accessible": wheelchair,
        "migrants": migrants,
        "lgbtttiq": lgbtttiq,
        "accepts_witnesses": witnesses,
        "accepts_indirect_victims": witnesses,
    }


def _prosecution_templates(rng: random.Random) -> list[dict[str, Any]]:
    # No adult men and children only until 13 in prosecution-run facilities (003:673).
    limit = fig.PROSECUTION_CHILD_AGE_LIMIT
    return [
        _pool("Mujeres con hijas e hijos (hasta 12 años)", ["F"], 18, ADULT_MAX_AGE,
              rng.randint(6, 16), children=12, max_children=3, wheelchair=rng.random() < 0.3),
        _pool("Mujeres", ["F"], 18, ADULT_MAX_AGE, rng.randint(4, 12), migrants=True),
        _pool(f"Niñas (hasta {limit} años)", ["F"], 6, limit, rng.randint(2, 6)),
        _pool(f"Niños (hasta {limit} años)", ["M"], 6, limit, rng.randint(2, 4)),
    ]  # fmt: skip


def _ngo_templates(rng: random.Random) -> list[dict[str, Any]]:
    child_age = rng.choice((12, 12, 14, 17))
    return [
        _pool(f"Mujeres con hijas e hijos (hasta {child_age} años)", ["F"], 18, ADULT_MAX_AGE,
              rng.randint(6, 20), children=child_age, max_children=rng.choice((3, 4)),
              wheelchair=rng.random() < 0.15),
        _pool("Mujeres", ["F"], 18, ADULT_MAX_AGE, rng.randint(4, 12)),
        _pool("Adolescentes mujeres", ["F"], 12, 17, rng.randint(3, 10)),
        _pool("Mujeres jóvenes con bebés", ["F"], 15, 25, rng.randint(3, 8), children=5,
              max_children=2),
        _pool("Mujeres migrantes con hijas e hijos", ["F"], 18, ADULT_MAX_AGE,
              rng.randint(4, 12), children=12, max_children=4, migrants=True),
        _pool("Mujeres trans y personas no binarias", ["F", "X"], 18, ADULT_MAX_AGE,
              rng.randint(2, 6), lgbtttiq=True),
        _pool("Habitaciones accesibles", ["F"], 18, ADULT_MAX_AGE, rng.randint(1, 4),
              children=12, max_children=2, wheelchair=True),
    ]  # fmt: skip


def _dif_templates(rng: random.Random) -> list[dict[str, Any]]:
    return [
        _pool("Primera infancia", ["F", "M"], 0, 5, rng.randint(4, 12)),
        _pool("Niñas", ["F"], 6, 11, rng.randint(4, 12)),
        _pool("Niños", ["M"], 6, 11, rng.randint(4, 12)),
        _pool("Adolescentes mujeres", ["F"], 12, 17, rng.randint(4, 14)),
        _pool("Adolescentes hombres", ["M"], 12, 17, rng.randint(4, 12)),
        _pool("Madres adolescentes con bebés", ["F"], 12, 17, rng.randint(2, 6), children=3,
              max_children=2),
        _pool("Adolescentes con discapacidad", ["F", "M"], 6, 17, rng.randint(1, 4),
              wheelchair=True),
    ]  # fmt: skip


def _adult_men_templates(rng: random.Random) -> list[dict[str, Any]]:
    return [_pool("Hombres", ["M"], 18, ADULT_MAX_AGE, rng.randint(6, 12), migrants=True)]


def _pools_for(rng: random.Random, operator_kind: str, count: int | None) -> list[dict[str, Any]]:
    """``count`` pools (or a natural number of them) from the operator's templates."""
    make = {
        "prosecution": _prosecution_templates,
        "ngo": _ngo_templates,
        "dif": _dif_templates,
        "men": _adult_men_templates,
    }[operator_kind]
    templates = make(rng)
    if count is None:
        count = len(templates) if operator_kind == "prosecution" else rng.randint(2, 4)
        if operator_kind == "men":
            count = 1
    if count <= len(templates):
        chosen = templates[:1] + rng.sample(templates[1:], count - 1) if count else []
        return chosen
    out = list(templates)
    wing = 2
    while len(out) < count:
        base = dict(rng.choice(templates))
        base["name"] = f"{base['name']} — ala {wing}"
        base["total"] = max(1, base["total"] + rng.randint(-2, 2))
        out.append(base)
        wing += 1
    return out


def _occupancy(rng: random.Random, total: int, status: str) -> tuple[int, int]:
    """Initial (occupied, out_of_service) for a pool: busy but not always full."""
    if status in ("closed", "registered"):  # admissions only in active facilities
        return 0, 0
    occupied = min(total, round(total * rng.uniform(0.35, 0.95)))
    if status == "suspended":
        occupied = 0
    out_of_service = 1 if total - occupied >= 2 and rng.random() < 0.08 else 0
    return occupied, out_of_service


# --------------------------------------------------------------------------- facilities

# The 20 prosecution-run facilities (003:293, 309): 10 refuges, 9 shelters, 1 half-way house.
# The allocation among the 12 offices is not in the source (assumed); the Campeche shelter is
# the one that "stopped operating in November 2017".
PROSECUTION_FACILITIES: tuple[tuple[str, str], ...] = (
    ("FGR", "refugio"), ("FGR", "casa_de_medio_camino"),
    ("09", "refugio"), ("09", "albergue"),
    ("15", "refugio"), ("15", "albergue"),
    ("07", "refugio"), ("07", "albergue"),
    ("21", "refugio"), ("21", "albergue"),
    ("19", "refugio"), ("19", "albergue"),
    ("11", "refugio"), ("11", "albergue"),
    ("29", "refugio"), ("29", "albergue"),
    ("01", "refugio"), ("26", "refugio"), ("18", "albergue"), ("04", "albergue"),
)  # fmt: skip
# Indigenous-language interpretation is an eligibility need (003:529); 35 of 364 sheltered
# victims were indigenous (003:295). Main languages by state (public INEGI geography).
INDIGENOUS_LANGUAGES: dict[str, tuple[str, ...]] = {
    "07": ("tsotsil", "tseltal", "ch'ol"),
    "20": ("zapoteco", "mixteco", "mazateco"),
    "12": ("náhuatl", "mixteco", "tlapaneco"),
    "31": ("maya",),
    "23": ("maya",),
    "04": ("maya",),
    "13": ("náhuatl", "otomí"),
    "21": ("náhuatl", "totonaco"),
    "30": ("náhuatl", "totonaco"),
    "15": ("mazahua", "otomí"),
    "24": ("náhuatl", "tének"),
    "09": ("náhuatl",),
}
_KIND_LABEL = {"refugio": "Refugio", "albergue": "Albergue", "casa_de_medio_camino": "Casa de medio camino"}  # fmt: skip


@dataclass
class _FacilityPlan:
    key: str
    name: str
    kind: str
    operator_id: str
    operator_kind: str  # prosecution | ngo | dif | men
    state: str
    municipality: str
    specialised: bool
    services: list[str]
    max_stay_days: int
    status: str = "active"
    status_reason: str = "Alta inicial verificada"
    closed_on: str | None = None
    pool_count: int | None = None


def _services(rng: random.Random, kind: str) -> list[str]:
    base = ["legal", "medical", "mental_health", "social_work"]
    extra = [s for s in ("education", "interpretation") if rng.random() < 0.6]
    if kind == "casa_de_medio_camino":
        extra.append("education")  # transition to independent living
    return [s for s in SERVICES if s in base + extra]


def _prosecution_plans(rng: random.Random) -> list[_FacilityPlan]:
    plans: list[_FacilityPlan] = []
    counters: dict[tuple[str, str], int] = {}
    for office, kind in PROSECUTION_FACILITIES:
        n = counters[(office, kind)] = counters.get((office, kind), 0) + 1
        if office == "FGR":
            operator, state, municipality = demo.FGR.id, "09", "Cuauhtémoc"
            name = (
                "Refugio Especializado en Atención Integral y Protección a Víctimas de Trata"
                if kind == "refugio"
                else "Casa de medio camino de FEVIMTRA"
            )
        else:
            s = STATE_BY_CODE[office]
            operator, state, municipality = (
                stable_id("institution", f"fge-{office}"),
                office,
                s.municipalities[0],
            )
            name = f"{_KIND_LABEL[kind]} de la Fiscalía de {s.name}" + (f" {n}" if n > 1 else "")
        plan = _FacilityPlan(
            key=f"fac-fiscalia-{office.lower()}-{kind}-{n}",
            name=name,
            kind=kind,
            operator_id=operator,
            operator_kind="prosecution",
            state=state,
            municipality=municipality,
            # not all are specialised in trafficking (003:293)
            specialised=kind == "refugio",
            services=_services(rng, kind),
            max_stay_days=fig.FEVIMTRA_MAX_STAY_DAYS if kind == "refugio" else 180,
        )
        if office == "04" and kind == "albergue":
            plan.status, plan.closed_on = "closed", fig.PROSECUTION_CLOSED_SHELTER_DATE
            plan.status_reason = "Dejó de operar en noviembre de 2017"
        plans.append(plan)
    return plans


def _named_ngo_plans(rng: random.Random) -> list[_FacilityPlan]:
    mercedes = demo.CASA_MERCEDES.id
    p = [
        # The contract's story: the coordinator's NGO runs an active refuge in CDMX with a
        # pool for women with children up to 12.
        _FacilityPlan("fac-casa-de-las-mercedes-refugio", "Refugio Casa de las Mercedes",
                      "refugio", mercedes, "ngo", "09", "Cuauhtémoc", True,
                      list(SERVICES[:5]), 180),
        _FacilityPlan("fac-casa-de-las-mercedes-medio-camino",
                      "Casa de medio camino Casa de las Mercedes", "casa_de_medio_camino",
                      mercedes, "ngo", "09", "Coyoacán", True, list(SERVICES[:5]), 365),
    ]  # fmt: skip
    for key, name, state, municipality in NAMED_NGOS:
        short = name.split(",")[0]
        kind = "albergue" if key == "ngo-casa-alianza" else "refugio"
        p.append(
            _FacilityPlan(f"fac-{key}", f"{_KIND_LABEL[kind]} {short}", kind,
                          # Casa Alianza serves children and adolescents: DIF-like pools
                          stable_id("institution", key),
                          "dif" if key == "ngo-casa-alianza" else "ngo", state, municipality,
                          key != "ngo-alternativas-pacificas", _services(rng, kind), 180)
        )  # fmt: skip
    return p


def _status(rng: random.Random) -> tuple[str, str, str | None]:
    r = rng.random()
    if r < 0.03:
        return "registered", "Registro pendiente de visita de verificación", None
    if r < 0.05:
        return "suspended", "Suspendido por obras de mantenimiento", None
    if r < 0.06:
        return "closed", "Cierre definitivo por falta de financiamiento", "2024-06-30"
    return "active", "Alta inicial verificada", None


def _generated_plans(
    rng: random.Random, scale: Scale, ngo_ids: list[str], ngo_states: dict[str, str]
) -> list[_FacilityPlan]:
    plans: list[_FacilityPlan] = []
    cum = _cumulative([s.population for s in STATES])
    sndif_share = 0.03
    taken: set[tuple[str, str]] = set()  # (operator, name): the roster's natural key

    def unique(operator: str, name: str, n: int) -> str:
        if (operator, name) in taken:  # numbered, not redrawn (stable draw count)
            name = f"{name} {n + 1}"
        taken.add((operator, name))
        return name

    for n in range(scale.dif_facilities):
        if rng.random() < sndif_share:
            operator, state = demo.SNDIF.id, STATE_BY_CODE["09"]
        else:
            state = _pick(rng, STATES, cum)
            operator = stable_id("institution", f"dif-{state.code}")
        kind = "albergue" if rng.random() < 0.85 else "casa_de_medio_camino"
        municipality = rng.choice(state.municipalities)
        status, reason, closed = _status(rng)
        plans.append(
            _FacilityPlan(
                key=f"fac-dif-{n:04d}",
                # DIF channels minors to its general Social Welfare Centres (003:539)
                name=unique(
                    operator,
                    f"Centro de Asistencia Social {rng.choice(_NGO_WORDS)} ({municipality})",
                    n,
                ),
                kind=kind, operator_id=operator, operator_kind="dif", state=state.code,
                municipality=municipality, specialised=rng.random() < 0.1,
                services=_services(rng, kind), max_stay_days=365, status=status,
                status_reason=reason, closed_on=closed,
            )
        )  # fmt: skip
    ngo_cum = _cumulative([1.0 / (1 + (i % 7)) for i in range(len(ngo_ids))])
    for n in range(scale.ngo_facilities):
        operator = _pick(rng, ngo_ids, ngo_cum) if ngo_ids else demo.CASA_MERCEDES.id
        state = STATE_BY_CODE[ngo_states[operator]]
        r = rng.random()
        kind = "refugio" if r < 0.45 else "albergue" if r < 0.85 else "casa_de_medio_camino"
        municipality = rng.choice(state.municipalities)
        status, reason, closed = _status(rng)
        plans.append(
            _FacilityPlan(
                key=f"fac-ngo-{n:04d}",
                name=unique(operator, f"{_KIND_LABEL[kind]} {rng.choice(_NGO_WORDS)} {n + 1}", n),
                kind=kind, operator_id=operator, operator_kind="ngo", state=state.code,
                municipality=municipality, specialised=rng.random() < 0.4,
                services=_services(rng, kind),
                max_stay_days=365 if kind == "casa_de_medio_camino" else rng.choice((90, 120, 180)),
                status=status, status_reason=reason, closed_on=closed,
            )
        )  # fmt: skip
    return plans


def _spread(rng: random.Random, total: int, n: int, low: int, high: int) -> list[int]:
    """``n`` integers in [low, high] summing exactly to ``total``."""
    counts = [rng.randint(low, high) for _ in range(n)]
    diff = total - sum(counts)
    step = 1 if diff > 0 else -1
    i = 0
    while diff:
        j = (i * 7919) % n
        if low <= counts[j] + step <= high:
            counts[j] += step
            diff -= step
        i += 1
    return counts


def _facilities_and_pools(
    rng: random.Random,
    scale: Scale,
    ngo_ids: list[str],
    ngo_states: dict[str, str],
    scenarios: tuple[str, ...],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    plans = _prosecution_plans(rng) + _named_ngo_plans(rng)
    if "adult_men_shelter" in scenarios:
        plans.append(
            _FacilityPlan("fac-escenario-hombres", "Casa para hombres adultos (escenario)",
                          "albergue", demo.CASA_MERCEDES.id, "men", "09", "Iztapalapa", True,
                          list(SERVICES[:4]), 90)
        )  # fmt: skip
    fixed = len(plans)
    plans += _generated_plans(rng, scale, ngo_ids, ngo_states)
    if scale.facilities is not None:
        plans = plans[: scale.facilities]
        assert len(plans) == scale.facilities, "scale lists fewer facilities than it promises"
    if scale.pools is not None:
        # documented facilities keep a fixed number of pools; the rest absorb the target
        fixed_counts = [1 if p.operator_kind == "men" else 4 for p in plans[:fixed]]
        spread = _spread(rng, scale.pools - sum(fixed_counts), len(plans) - fixed, 3, 18)
        for p, c in zip(plans, [*fixed_counts, *spread], strict=True):
            p.pool_count = c
    facilities: list[dict[str, Any]] = []
    pools: list[dict[str, Any]] = []
    for p in plans:
        facilities.append(
            {
                "key": p.key,
                "id": stable_id("facility", p.key),
                "body": {
                    "name": p.name,
                    "kind": p.kind,
                    "operator_institution_id": p.operator_id,
                    "state": p.state,
                    "municipality": p.municipality,
                    "address": fictitious_address(rng, p.municipality),
                    # not all are specialised in trafficking (003:293)
                    "specialization": "trafficking" if p.specialised else "mixed",
                    "services": p.services,
                    # refuges are confidential, high-security places (003:527)
                    "security_level": "high" if p.kind == "refugio" else "standard",
                    "max_stay_days": p.max_stay_days,
                },
                "operator_kind": p.operator_kind,
                "status": p.status,
                "status_reason": p.status_reason,
                "closed_on": p.closed_on,
            }
        )
        languages = INDIGENOUS_LANGUAGES.get(p.state, ())
        for i, body in enumerate(_pools_for(rng, p.operator_kind, p.pool_count)):
            occupied, out_of_service = _occupancy(rng, body["total"], p.status)
            body["interpreter_languages"] = (
                [rng.choice(languages)] if languages and rng.random() < 0.3 else []
            )
            key = f"{p.key}-pool-{i + 1:02d}"
            pools.append(
                {
                    "key": key,
                    "id": stable_id("pool", key),
                    "facility_key": p.key,
                    "body": body,
                    "occupied": occupied,
                    "out_of_service": out_of_service,
                }
            )
    _ensure_story(facilities, pools)
    return facilities, pools


def _ensure_story(facilities: list[dict[str, Any]], pools: list[dict[str, Any]]) -> None:
    """Keep the demo's CDMX stories true whatever the draw: 3 free beds for a mother
    and two children in Casa de las Mercedes' refuge (pool for children up to 12), and 2
    for a 16-year-old girl with her baby (pool for adolescent mothers)."""
    refuge = "fac-casa-de-las-mercedes-refugio"
    first = next(p for p in pools if p["facility_key"] == refuge)
    first["body"].update(
        name="Mujeres con hijas e hijos (hasta 12 años)",
        sexes=["F"],
        min_age=18,
        max_age=ADULT_MAX_AGE,
        accepts_children=True,
        max_child_age=12,
        max_children=3,
        total=max(first["body"]["total"], 12),
    )
    first["occupied"] = min(first["occupied"], first["body"]["total"] - 5)
    first["out_of_service"] = 0
    # The mission's story: a prosecutor rescues a 16-year-old girl and her baby at 2 a.m.
    # The refuge's second pool takes adolescent mothers with their babies (Casa de las
    # Mercedes works with girls and adolescent mothers); it is the one place in CDMX the
    # demo offers them, reachable from FEVIMTRA under the signed FEVIMTRA — Casa de las
    # Mercedes agreement. Replacing a pool (not adding one) keeps the scale's pool count.
    second = [p for p in pools if p["facility_key"] == refuge][1]
    second["body"].update(
        name=ADOLESCENT_MOTHERS_POOL,
        sexes=["F"],
        min_age=12,
        max_age=17,
        accepts_children=True,
        max_child_age=3,
        max_children=2,
        total=max(second["body"]["total"], 6),
        wheelchair_accessible=False,
        migrants=False,
        lgbtttiq=False,
    )
    second["occupied"] = min(second["occupied"], second["body"]["total"] - 4)
    second["out_of_service"] = 0
    fac = next(f for f in facilities if f["key"] == refuge)
    assert fac["status"] == "active"


ADOLESCENT_MOTHERS_POOL = "Adolescentes madres con sus bebés (hasta 3 años)"


# --------------------------------------------------------------------------- agreements


def _agreement(
    number: str,
    title: str,
    parties: list[str],
    valid_from: date,
    valid_to: date,
    signed_by: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "key": f"agr-{number}",
        "body": {
            "number": number,
            "title": title,
            "party_ids": parties,
            "valid_from": _iso(valid_from),
            "valid_to": _iso(valid_to),
        },
        "signed_by": parties if signed_by is None else signed_by,
    }


def _agreements(
    rng: random.Random,
    scale: Scale,
    reference: date,
    ngo_ids: list[str],
    ngo_states: dict[str, str],
    operators: list[str],
) -> list[dict[str, Any]]:
    start, end = reference - timedelta(days=3 * 365), reference + timedelta(days=3 * 365)
    fge09, fge07 = stable_id("institution", "fge-09"), stable_id("institution", "fge-07")
    mercedes, sndif = demo.CASA_MERCEDES.id, demo.SNDIF.id
    alianza = stable_id("institution", "ngo-casa-alianza")
    camino = stable_id("institution", "ngo-camino-a-casa")
    ciam = stable_id("institution", "ngo-ciam-cancun")
    alternativas = stable_id("institution", "ngo-alternativas-pacificas")
    year = reference.year
    # Only 3 prosecution offices have an agreement for channelling victims (003:675):
    # FGR (FEVIMTRA), Mexico City's and Chiapas's. Everything else is among DIF, INM, CEAV
    # and NGOs.
    out = [
        _agreement(f"FEVIMTRA-CM-{year - 3}-001",
                   "Convenio de colaboración FEVIMTRA — Casa de las Mercedes para la canalización "
                   "de mujeres víctimas de trata y sus hijas e hijos",
                   [demo.FGR.id, mercedes], start, end),
        _agreement(f"FEVIMTRA-SNDIF-{year - 3}-002",
                   "Convenio FEVIMTRA — SNDIF para la protección de niñas, niños y adolescentes",
                   [demo.FGR.id, sndif], start, end),
        _agreement(f"FGJCDMX-{year - 2}-003",
                   "Convenio de canalización FGJCDMX — Casa Alianza — Camino a Casa",
                   [fge09, alianza, camino], start + timedelta(days=365), end),
        _agreement(f"FGE-CHIS-{year - 2}-004",
                   "Convenio de canalización Fiscalía de Chiapas — DIF Chiapas",
                   [fge07, stable_id("institution", "dif-07")], start + timedelta(days=200), end),
        _agreement(f"INM-CIAM-{year - 2}-005",
                   "Convenio INM — CIAM Cancún para víctimas extranjeras",
                   [stable_id("institution", "inm-23"), ciam], start, end),
        _agreement(f"CEAV-AP-{year - 1}-006",
                   "Convenio CEAV — Alternativas Pacíficas",
                   [demo.CEAV.id, alternativas], start + timedelta(days=500), end),
        # signed by one party only: ready for signature, not in force
        _agreement(f"FEVIMTRA-CIAM-{year}-007",
                   "Convenio FEVIMTRA — CIAM Cancún (en firma)",
                   [demo.FGR.id, ciam], reference, end, signed_by=[demo.FGR.id]),
    ]  # fmt: skip
    if scale.name == "national":
        operator_set = dict.fromkeys(operators)
        with_facilities = [n for n in ngo_ids if n in operator_set]
        by_state: dict[str, list[str]] = {}
        for n in with_facilities:
            by_state.setdefault(ngo_states[n], []).append(n)
        seq = 8
        for code in STATE_CODES:
            local = by_state.get(code, [])
            if not local or rng.random() < 0.5:
                continue  # about half of the state DIF systems have one
            partner = rng.choice(local)
            expired = rng.random() < 0.15
            vf = start + timedelta(days=rng.randint(0, 400))
            vt = reference - timedelta(days=rng.randint(60, 300)) if expired else end
            out.append(
                _agreement(f"DIF-{code}-{vf.year}-{seq:03d}",
                           f"Convenio DIF {STATE_BY_CODE[code].name} — organización civil",
                           [stable_id("institution", f"dif-{code}"), partner], vf, vt)
            )  # fmt: skip
            seq += 1
        for code in ("07", "02", "26", "08", "28", "15", "09", "30", "20", "27"):
            local = by_state.get(code, [])
            if local:
                out.append(
                    _agreement(f"INM-{code}-{year - 1}-{seq:03d}",
                               f"Convenio INM — organización civil ({STATE_BY_CODE[code].name})",
                               [stable_id("institution", f"inm-{code}"), rng.choice(local)],
                               start + timedelta(days=rng.randint(0, 300)), end)
                )  # fmt: skip
                seq += 1
        for code in fig.CEEAV_STATES[:9]:
            local = by_state.get(code, [])
            if local and rng.random() < 0.6:
                out.append(
                    _agreement(f"CEEAV-{code}-{year - 1}-{seq:03d}",
                               f"Convenio CEEAV {STATE_BY_CODE[code].name} — organización civil",
                               [stable_id("institution", f"ceeav-{code}"), rng.choice(local)],
                               start + timedelta(days=rng.randint(0, 300)), end)
                )  # fmt: skip
                seq += 1
        out.append(
            _agreement(f"SNDIF-REDNGO-{year - 2}-{seq:03d}",
                       "Convenio marco SNDIF — red de organizaciones civiles",
                       [sndif, *rng.sample(with_facilities, 4)], start, end)
        )  # fmt: skip
    return out


# --------------------------------------------------------------------------- history


@dataclass(frozen=True, slots=True)
class _Edge:
    """A direction a referral may travel: sender → receiver under a signed agreement."""

    sender: str
    sender_type: str
    receiver: str
    number: str
    valid_from: date
    valid_to: date


_SENDER_GROUP = {
    "fiscalia_federal": "fiscalia",
    "fiscalia_estatal": "fiscalia",
    "dif_nacional": "dif",
    "dif_estatal": "dif",
    "inm": "inm",
    "ceav": "ceav",
    "ceeav": "ceav",
    "ngo": "ngo",
}

# Who refers, given the victim (assumed): foreigners are INM's remit (003:535), minors DIF's.
_SENDER_PREFERENCE = {
    "foreign": (("inm", 0.45), ("fiscalia", 0.40), ("ceav", 0.10), ("ngo", 0.05)),
    "minor": (("dif", 0.45), ("fiscalia", 0.45), ("ceav", 0.05), ("ngo", 0.05)),
    "adult": (("fiscalia", 0.70), ("ceav", 0.20), ("ngo", 0.10)),
}


def _sample_victim(
    rng: random.Random, nat_cum: list[float], nat_codes: list[str]
) -> dict[str, Any]:
    r = rng.random()
    sex = "F" if r < fig.FEMALE_SHARE else "X" if r < fig.FEMALE_SHARE + fig.SEX_X_SHARE else "M"
    minor_p = (
        fig.MINOR_SHARE_FEMALE
        if sex == "F"
        else fig.MINOR_SHARE_MALE
        if sex == "M"
        else fig.MINOR_SHARE
    )
    age: int | None
    if rng.random() < fig.AGE_UNKNOWN_SHARE:
        age = None
    elif rng.random() < minor_p:
        # mostly adolescents; younger children for adoption and begging cases
        age = rng.randint(12, 17) if rng.random() < 0.8 else rng.randint(3, 11)
    else:
        age = min(ADULT_MAX_AGE, 18 + int(rng.expovariate(1 / 9)))
    female_like = sex != "M"
    foreign_p = fig.FOREIGN_SHARE * (
        fig.FOREIGN_FEMALE_SHARE / fig.FEMALE_SHARE
        if female_like
        else (1 - fig.FOREIGN_FEMALE_SHARE) / (1 - fig.FEMALE_SHARE)
    )
    nationality = _pick(rng, nat_codes, nat_cum) if rng.random() < foreign_p else fig.MEXICAN
    sexual_p = (
        fig.SEXUAL_SHARE_AMONG_FEMALE_VICTIMS
        if female_like
        else (0.70 - fig.FEMALE_SHARE * fig.SEXUAL_SHARE_AMONG_FEMALE_VICTIMS)
        / (1 - fig.FEMALE_SHARE)
    )
    if rng.random() < sexual_p:
        offence = "art10-III"
    else:
        offence = _pick(rng, _NON_SEXUAL_CODES, _NON_SEXUAL_CUM)
        if offence in ("art10-VIII", "art10-VII") and (age is None or age >= 18):
            offence = "art10-IV"  # these fractions are about minors by definition
    groups = [g for g, p in fig.VULNERABLE_GROUPS if rng.random() < p]
    if nationality != fig.MEXICAN and "migrant_in_transit" not in groups and rng.random() < 0.5:
        groups.append("migrant_in_transit")
    return {
        "pseudonym": pseudonym(rng),
        "sex": sex,
        "age": age,
        "role": "victim",
        "nationality": nationality,
        "state_of_origin": None,
        "vulnerable_groups": groups,
        "offences": list(fig.OFFENCE_AS_RECORDED.get(offence, (offence,))),
    }


_NON_SEXUAL = [
    (c, w) for c, w in zip(fig.OFFENCE_CODES, fig.OFFENCE_WEIGHTS, strict=True) if c != "art10-III"
]
_NON_SEXUAL_CODES = [c for c, _ in _NON_SEXUAL]
_NON_SEXUAL_CUM = _cumulative([w for _, w in _NON_SEXUAL])


def _companions(rng: random.Random, victim: dict[str, Any]) -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = []
    base = {k: victim[k] for k in ("nationality", "state_of_origin")}
    adult_woman = victim["sex"] == "F" and (victim["age"] or 0) >= 18
    if adult_woman and rng.random() < fig.ACCOMPANIED_BY_CHILDREN_SHARE:
        mother_age = victim["age"] or 30
        for _ in range(rng.randint(1, fig.MAX_ACCOMPANYING_CHILDREN)):
            people.append(
                {"pseudonym": pseudonym(rng), "sex": rng.choice("FM"),
                 "age": rng.randint(0, min(12, max(0, mother_age - 15))),
                 "role": "accompanying_child", **base, "vulnerable_groups": [], "offences": []}
            )  # fmt: skip
    if rng.random() < fig.INDIRECT_VICTIM_SHARE:
        # 77 % of indirect victims are women, 83 % adults (003:201-205)
        people.append(
            {"pseudonym": pseudonym(rng), "sex": "F" if rng.random() < 0.77 else "M",
             "age": rng.randint(18, 70) if rng.random() < 0.83 else rng.randint(10, 17),
             "role": "indirect_victim", **base, "vulnerable_groups": [], "offences": []}
        )  # fmt: skip
    if rng.random() < fig.WITNESS_SHARE:
        people.append(
            {"pseudonym": pseudonym(rng), "sex": rng.choice("FM"), "age": rng.randint(18, 60),
             "role": "witness", **base, "vulnerable_groups": [], "offences": []}
        )  # fmt: skip
    return people


def pool_admits(pool: dict[str, Any], people: list[dict[str, Any]]) -> bool:
    """Whether one pool's eligibility admits a group: adults and unaccompanied people by
    sex and age; accompanying children by the pool's child rules (families stay together)."""
    children = [p for p in people if p["role"] == "accompanying_child"]
    others = [p for p in people if p["role"] != "accompanying_child"]
    for p in others:
        if p["sex"] not in pool["sexes"]:
            return False
        if p["age"] is not None and not pool["min_age"] <= p["age"] <= pool["max_age"]:
            return False
    if children:
        if not pool["accepts_children"] or len(children) > pool["max_children"]:
            return False
        if any((c["age"] or 0) > (pool["max_child_age"] or 0) for c in children):
            return False
    return True


def _history(
    rng: random.Random,
    scale: Scale,
    reference: date,
    institutions: list[dict[str, Any]],
    facilities: list[dict[str, Any]],
    pools: list[dict[str, Any]],
    agreements: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    inst_type = {i["id"]: i["type"] for i in institutions}
    inst_state = {i["id"]: i["state"] for i in institutions}
    pools_by_fac: dict[str, list[dict[str, Any]]] = {}
    for p in pools:
        pools_by_fac.setdefault(p["facility_key"], []).append(p["body"])
    fac_by_operator: dict[str, list[dict[str, Any]]] = {}
    for f in facilities:
        if f["status"] != "registered":
            fac_by_operator.setdefault(f["body"]["operator_institution_id"], []).append(f)
    edges: dict[str, list[_Edge]] = {}
    for a in agreements:
        body = a["body"]
        if sorted(a["signed_by"]) != sorted(body["party_ids"]):
            continue  # only signed agreements carry referrals
        for s in body["party_ids"]:
            group = _SENDER_GROUP[inst_type[s]]
            for r in body["party_ids"]:
                if r != s and r in fac_by_operator:
                    edges.setdefault(group, []).append(
                        _Edge(s, group, r, body["number"],
                              date.fromisoformat(body["valid_from"]),
                              date.fromisoformat(body["valid_to"]))
                    )  # fmt: skip
    history_start = reference - timedelta(days=730)
    nat_codes = [c for c, _ in fig.NATIONALITY_MIX]
    nat_cum = _cumulative([w for _, w in fig.NATIONALITY_MIX])
    state_cum = _cumulative([s.population for s in STATES])
    pref_cum = {
        k: (_cumulative([w for _, w in v]), [g for g, _ in v])
        for k, v in _SENDER_PREFERENCE.items()
    }
    outcome_names = [o for o, _ in fig.DISCHARGE_OUTCOMES]
    outcome_cum = _cumulative([w for _, w in fig.DISCHARGE_OUTCOMES])
    ref_dt = datetime(reference.year, reference.month, reference.day)
    referrals: list[dict[str, Any]] = []
    fitting_memo: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    # Eligibility depends on ages only through comparisons with the pools' bounds, so a
    # group is memoised by age *bands*: the same answer, computed far fewer times.
    bodies = [p["body"] for p in pools]
    age_bounds = sorted({b["min_age"] for b in bodies} | {b["max_age"] + 1 for b in bodies})
    child_bounds = sorted({(b["max_child_age"] or 0) + 1 for b in bodies})

    def _signature(people: list[dict[str, Any]]) -> tuple[Any, ...]:
        adults = sorted(
            (p["sex"], -1 if p["age"] is None else bisect.bisect_right(age_bounds, p["age"]))
            for p in people
            if p["role"] != "accompanying_child"
        )
        kids = [p["age"] or 0 for p in people if p["role"] == "accompanying_child"]
        oldest = bisect.bisect_right(child_bounds, max(kids)) if kids else -1
        return (tuple(adults), len(kids), oldest)

    def _fitting(
        receiver: str, signature: tuple[Any, ...], people: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The receiver's active facilities with a pool that admits the whole group."""
        key = (receiver, signature)
        found = fitting_memo.get(key)
        if found is None:
            found = fitting_memo[key] = [
                f
                for f in fac_by_operator[receiver]
                if f["status"] == "active"
                and any(pool_admits(pb, people) for pb in pools_by_fac.get(f["key"], ()))
            ]
        return found

    for _ in range(scale.referrals):
        victim = _sample_victim(rng, nat_cum, nat_codes)
        profile = (
            "foreign" if victim["nationality"] != fig.MEXICAN
            else "minor" if victim["age"] is not None and victim["age"] < 18
            else "adult"
        )  # fmt: skip
        companions = _companions(rng, victim)
        cum, groups = pref_cum[profile]
        group = _pick(rng, groups, cum)
        candidates = edges.get(group) or edges["fiscalia"]
        group_people = [victim, *companions]
        signature = _signature(group_people)
        edge = rng.choice(candidates)
        fitting = _fitting(edge.receiver, signature, group_people)
        for _ in range(3):  # the sender looks for a partner with an eligible bed
            if fitting:
                break
            edge = rng.choice(candidates)
            fitting = _fitting(edge.receiver, signature, group_people)
        lo = max(history_start, edge.valid_from)
        # a margin keeps every step of a referral (at most ~4 days) before the reference
        hi = min(reference - timedelta(days=5), edge.valid_to)
        created = datetime(lo.year, lo.month, lo.day) + timedelta(
            seconds=rng.randrange(max(1, int((hi - lo).total_seconds()) or 86_400))
        )
        if victim["nationality"] == fig.MEXICAN:
            victim["state_of_origin"] = (
                inst_state[edge.sender]
                if rng.random() < fig.SAME_STATE_OF_ORIGIN_SHARE
                else _pick(rng, STATES, state_cum).code
            )
        people = [victim, *companions]
        for p in companions:
            p["state_of_origin"] = victim["state_of_origin"]
        eligible = bool(fitting)
        facility = rng.choice(fitting) if fitting else rng.choice(fac_by_operator[edge.receiver])
        urgency = "urgent" if rng.random() < 0.4 else "normal"
        answer_after = timedelta(minutes=rng.randint(5, 240 if urgency == "urgent" else 2880))
        sent = created + timedelta(minutes=rng.randint(1, 30))
        record: dict[str, Any] = {
            # drawn from the seeded stream: deterministic, and far cheaper than UUID5
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "sending_institution_id": edge.sender,
            "receiving_institution_id": edge.receiver,
            "facility_id": facility["id"],
            "agreement_number": edge.number,
            "urgency": urgency,
            "people": people,
            "consent": {"given": True},
            "status": "",
            "outcome": None,
            "reason": None,
            "created_at": _ts(created),
            "sent_at": _ts(sent),
            "answered_at": None,
            "admitted_at": None,
            "discharged_at": None,
            "cancelled_at": None,
        }
        r = rng.random()
        if not eligible:
            record.update(status="declined", reason="sin_lugar_elegible",
                          answered_at=_ts(sent + answer_after))  # fmt: skip
        elif r < fig.NO_ANSWER_SHARE:
            record["status"] = "sent"
        elif r < fig.NO_ANSWER_SHARE + fig.CANCEL_SHARE:
            record.update(status="cancelled", reason="la_victima_desistio",
                          cancelled_at=_ts(sent + answer_after / 2))  # fmt: skip
        elif r < fig.NO_ANSWER_SHARE + fig.CANCEL_SHARE + fig.DECLINE_SHARE:
            record.update(status="declined", reason=rng.choice(("sin_cupo", "riesgo_de_seguridad", "perfil_no_atendido")),
                          answered_at=_ts(sent + answer_after))  # fmt: skip
        else:
            answered = sent + answer_after
            admitted = answered + timedelta(hours=rng.randint(1, 36))
            stay = facility["body"]["max_stay_days"]
            days = rng.randint(max(7, stay // 4), stay)
            if rng.random() < fig.STAY_EXTENSION_SHARE:
                days += rng.randint(15, 90)
            discharged = admitted + timedelta(days=days, hours=rng.randint(0, 23))
            record.update(status="admitted", answered_at=_ts(answered), admitted_at=_ts(admitted))
            if discharged < ref_dt:
                record.update(status="discharged", discharged_at=_ts(discharged),
                              outcome=_pick(rng, outcome_names, outcome_cum))  # fmt: skip
        referrals.append(record)
    return referrals


# --------------------------------------------------------------------------- entry point


def generate(
    scale: str = "demo",
    seed: int = 2026,
    *,
    reference_date: date = REFERENCE_DATE,
    scenarios: Sequence[str] = (),
    referrals: int | None = None,
) -> Dataset:
    """Generate the dataset of ``scale`` (``demo`` or ``national``) for ``seed``;
    ``referrals`` overrides how many historical referrals the scale has."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {sorted(SCALES)}")
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}; use one of {SCENARIOS}")
    spec = SCALES[scale]
    if referrals is not None:
        spec = dataclasses.replace(spec, referrals=referrals)
    rng = random.Random(f"canaliza-seed:{scale}:{seed}")
    institutions, ngo_ids = _institutions(rng, spec)
    ngo_states = {i["id"]: i["state"] for i in institutions if i["type"] == "ngo"}
    facilities, pools = _facilities_and_pools(rng, spec, ngo_ids, ngo_states, tuple(scenarios))
    operators = [f["body"]["operator_institution_id"] for f in facilities]
    agreements = _agreements(rng, spec, reference_date, ngo_ids, ngo_states, operators)
    history = _history(rng, spec, reference_date, institutions, facilities, pools, agreements)
    return Dataset(
        scale=scale,
        seed=seed,
        reference_date=reference_date.isoformat(),
        scenarios=tuple(scenarios),
        institutions=institutions,
        facilities=facilities,
        pools=pools,
        agreements=agreements,
        referrals=history,
    )
