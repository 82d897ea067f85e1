"""The generated roster: institutions, facilities and their bed pools (with occupancy)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from canaliza import demo
from canaliza.seed import figures as fig
from canaliza.seed.draws import (
    cumulative,
    fictitious_address,
    pick,
)
from canaliza.seed.scales import ADULT_MAX_AGE, SERVICES, Scale
from canaliza.seed.states import STATE_BY_CODE, STATES
from services.ids import stable_id

_NGO_PREFIXES = ("Casa", "Fundación", "Red", "Centro", "Colectivo", "Hogar", "Albergue")
_NGO_WORDS = (
    "Aurora", "Amanecer", "Horizonte", "Semilla", "Raíces", "Puente", "Faro", "Camino Nuevo",
    "Alas", "Abrazo", "Sendero", "Refugio Claro", "Mañana", "Brújula", "Cobijo", "Vereda",
    "Manantial", "Girasol", "Candela", "Aliento",
)  # fmt: skip
_NGO_SUFFIXES = ("A.C.", "I.A.P.", "A.B.P.", "A.C.")


# --------------------------------------------------------------------------- institutions


def _institution(key: str, name: str, type_: str, state: str) -> dict[str, Any]:
    return {"id": stable_id("institution", key), "name": name, "type": type_, "state": state}


def inm_office_id(state: str) -> str:
    """The INM office that attends ``state``: the national INM (the demo's, seated in Mexico
    City) for Mexico City, else its *Oficina de Representación* in the state."""
    return demo.INM.id if state == demo.INM.state else stable_id("institution", f"inm-{state}")


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


def draw_institutions(rng: random.Random, scale: Scale) -> tuple[list[dict[str, Any]], list[str]]:
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
        if s.code != demo.INM.state:  # the national INM attends its own seat's state
            office = _institution(
                f"inm-{s.code}", f"INM — Oficina de Representación en {s.long_name}", "inm", s.code
            )
            # a regional office of the INM: its migration obligations are routed here
            per_state.append({**office, "parent_id": demo.INM.id})
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
    cum = cumulative([s.population for s in STATES])
    for n in range(scale.ngo_count):
        state = pick(rng, STATES, cum)
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
    cum = cumulative([s.population for s in STATES])
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
            state = pick(rng, STATES, cum)
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
    ngo_cum = cumulative([1.0 / (1 + (i % 7)) for i in range(len(ngo_ids))])
    for n in range(scale.ngo_facilities):
        operator = pick(rng, ngo_ids, ngo_cum) if ngo_ids else demo.CASA_MERCEDES.id
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


def draw_facilities_and_pools(
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
