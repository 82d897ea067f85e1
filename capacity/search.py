"""Availability search over an in-memory read model of active facilities and their pools.

The read model is refreshed incrementally: every write bumps the capacity revision and
stamps the pools it touched with it, so a search first reads one integer and reloads only
pools whose revision is newer than the model's. Matching then runs in Python over a few
small objects per facility, in ranking order, stopping once enough results are found.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from capacity.ledger import current_revision
from capacity.models import Facility, Pool
from services.clock import as_utc
from services.vocabulary import FacilityStatus, PersonRole, RegistrationStatus

SECURITY_RANK = {"standard": 0, "high": 1, "maximum": 2}
ADULT_AGE = 18
NODE_BUDGET = 5_000
PLACEMENT_MEMO = 512  # queries remembered per facility version

SEX_ADULT = {"F": "mujeres adultas", "M": "hombres adultos", "X": "personas adultas de sexo X"}
SEX_MINOR = {"F": "niñas o adolescentes", "M": "niños o adolescentes", "X": "menores de sexo X"}
SEX_UNKNOWN = {
    "F": "mujeres de edad desconocida",
    "M": "hombres de edad desconocida",
    "X": "personas de sexo X y edad desconocida",
}
# A person whose sex is not recorded (S.I.), by age (None: unknown).
NO_SEX_ADULT = "personas adultas sin sexo registrado"
NO_SEX_MINOR = "menores sin sexo registrado"
NO_SEX_UNKNOWN = "personas sin sexo ni edad registrados"
EVERY_SEX = frozenset({"F", "M", "X"})
ROLE_LABEL: dict[str, str] = {
    PersonRole.WITNESS: " testigos",
    PersonRole.INDIRECT_VICTIM: " víctimas indirectas",
    PersonRole.VICTIM: "",
}
SECURITY_LABEL = {"standard": "estándar", "high": "alta", "maximum": "máxima"}


@dataclass(slots=True, eq=False)
class PoolView:
    id: str
    facility_id: str
    name: str
    sexes: frozenset[str]
    min_age: int
    max_age: int
    accepts_children: bool
    max_child_age: int
    max_children: int
    accepts_witnesses: bool
    accepts_indirect_victims: bool
    wheelchair_accessible: bool
    migrants: bool
    lgbtttiq: bool
    languages: frozenset[str]
    available: int
    confirmed: datetime | None


@dataclass(slots=True, eq=False)
class FacilityView:
    id: str
    name: str
    kind: str
    operator_institution_id: str
    state: str
    municipality: str
    specialization: str
    services: list[str]
    security_level: str
    max_stay_days: int | None
    status: str
    registration_status: str = "not_submitted"
    pools: dict[str, PoolView] = field(default_factory=dict)
    available: int = 0
    confirmed: datetime | None = None
    public_json: orjson.Fragment | None = None  # public(), encoded once per version
    # query -> the answer's "pools" part (None: the group does not fit), for this version
    placements: dict[Any, list[dict[str, Any]] | None] | None = None

    def recompute(self) -> None:
        self.available = sum(p.available for p in self.pools.values())
        stamps = [p.confirmed for p in self.pools.values()]
        # A facility is only as fresh as its least recently confirmed pool.
        self.confirmed = None if not stamps or None in stamps else min(stamps)  # type: ignore[type-var]

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "operator_institution_id": self.operator_institution_id,
            "state": self.state,
            "municipality": self.municipality,
            "specialization": self.specialization,
            "services": list(self.services),
            "security_level": self.security_level,
            "max_stay_days": self.max_stay_days,
            "registration_status": self.registration_status,
        }

    def placement(
        self, key: Any, adults: list[PersonQ], children: list[PersonQ], needs: NeedsQ
    ) -> list[dict[str, Any]] | None:
        """The pools that seat the group here (the answer's ``pools``), or None.

        Remembered per query ``key`` (the people and needs, whatever predicates those
        carry) for this version of the facility: a refresh replaces a changed facility's
        view, and with it what was remembered."""
        memo = self.placements
        if memo is None:
            memo = self.placements = {}
        elif key in memo:
            return memo[key]
        found = place(self, adults, children, needs)
        answer = (
            None
            if found is None
            else [
                {
                    "pool_id": pool.id,
                    "pool_name": pool.name,
                    "beds": len(idx),
                    "people": sorted(idx),
                }
                for pool, idx in found
            ]
        )
        if len(memo) >= PLACEMENT_MEMO:
            memo.clear()
        memo[key] = answer
        return answer

    def public_fragment(self) -> orjson.Fragment:
        """:meth:`public` as JSON, encoded on first use and kept until the facility changes
        (a refresh replaces a changed facility's view, so no search sees a stale one)."""
        encoded = self.public_json
        if encoded is None:
            encoded = self.public_json = orjson.Fragment(orjson.dumps(self.public()))
        return encoded


@dataclass(frozen=True, slots=True)
class PersonQ:
    index: int
    sex: str | None
    age: int | None
    role: str

    @property
    def is_child(self) -> bool:
        return self.role == PersonRole.ACCOMPANYING_CHILD

    def label(self) -> str:
        if self.age is None:
            base = NO_SEX_UNKNOWN if self.sex is None else SEX_UNKNOWN[self.sex]
        elif self.age >= ADULT_AGE:
            base = NO_SEX_ADULT if self.sex is None else SEX_ADULT[self.sex]
        else:
            base = f"{NO_SEX_MINOR if self.sex is None else SEX_MINOR[self.sex]} de {self.age} años"
        return base + ROLE_LABEL.get(self.role, "")

    def age_group(self) -> str:
        if self.age is None:
            return "unknown"
        return "adult" if self.age >= ADULT_AGE else "minor"


@dataclass(frozen=True, slots=True)
class NeedsQ:
    wheelchair: bool = False
    interpreter_language: str | None = None
    security: str | None = None
    migrant: bool = False
    lgbtttiq: bool = False
    specialised: bool = False

    def facility_ok(self, fac: FacilityView) -> bool:
        if self.specialised and fac.specialization != "trafficking":
            return False
        return not (
            self.security
            and SECURITY_RANK.get(fac.security_level, 0) < SECURITY_RANK[self.security]
        )

    def pool_ok(self, pool: PoolView) -> bool:
        if self.wheelchair and not pool.wheelchair_accessible:
            return False
        if self.migrant and not pool.migrants:
            return False
        if self.lgbtttiq and not pool.lgbtttiq:
            return False
        return not (self.interpreter_language and self.interpreter_language not in pool.languages)

    def describe(self) -> str:
        parts = []
        if self.wheelchair:
            parts.append("acceso para silla de ruedas")
        if self.interpreter_language:
            parts.append(f"interpretación en {self.interpreter_language}")
        if self.security:
            parts.append(f"seguridad {SECURITY_LABEL[self.security]} o mayor")
        if self.migrant:
            parts.append("atención a personas migrantes")
        if self.lgbtttiq:
            parts.append("atención a población LGBTTTIQ")
        if self.specialised:
            parts.append("especialización en trata")
        return ", ".join(parts)

    @property
    def any(self) -> bool:
        return bool(self.describe())


def person_fits(pool: PoolView, person: PersonQ) -> bool:
    """Whether a (non-child) person is eligible for a pool, capacity aside.

    Not recorded is never a guess: a person without a recorded sex fits only a pool open to
    every sex (F, M and X); of unknown age, only a pool taking both minors and adults.
    """
    if person.sex is None:
        if not pool.sexes >= EVERY_SEX:
            return False
    elif person.sex not in pool.sexes:
        return False
    if person.age is None:
        # Unknown age must never land in an adults-only or children-only pool.
        if not (pool.min_age < ADULT_AGE <= pool.max_age):
            return False
    elif not (pool.min_age <= person.age <= pool.max_age):
        return False
    if person.role == PersonRole.WITNESS and not pool.accepts_witnesses:
        return False
    return not (person.role == PersonRole.INDIRECT_VICTIM and not pool.accepts_indirect_victims)


def children_fit(pool: PoolView, children: list[PersonQ]) -> bool:
    if not children:
        return True
    if not pool.accepts_children or len(children) > pool.max_children:
        return False
    return all(c.age is not None and c.age <= pool.max_child_age for c in children)


def place(
    fac: FacilityView, adults: list[PersonQ], children: list[PersonQ], needs: NeedsQ
) -> list[tuple[PoolView, list[int]]] | None:
    """Seat the whole group in this facility now, or None. Children stay with an adult."""
    if fac.available < len(adults) + len(children) or not needs.facility_ok(fac):
        return None
    options: list[list[PoolView]] = []
    for person in adults:
        fits = [
            p
            for p in fac.pools.values()
            if p.available > 0 and needs.pool_ok(p) and person_fits(p, person)
        ]
        if not fits:
            return None
        fits.sort(key=lambda p: -p.available)
        options.append(fits)
    used: dict[str, int] = {}
    chosen: list[PoolView] = []
    budget = [NODE_BUDGET]

    def children_pool() -> PoolView | None:
        if not children:
            return chosen[0] if chosen else None
        for pool in {p.id: p for p in chosen}.values():  # PoolView is unhashable
            if children_fit(pool, children) and used[pool.id] + len(children) <= pool.available:
                return pool
        return None

    def dfs(i: int) -> PoolView | None:
        budget[0] -= 1
        if budget[0] < 0:
            return None
        if i == len(adults):
            return children_pool()
        # Pools already chosen first: keep the group in as few pools as possible.
        seen = {p.id for p in chosen}
        ordered = [p for p in options[i] if p.id in seen] + [
            p for p in options[i] if p.id not in seen
        ]
        for pool in ordered:
            if used.get(pool.id, 0) + 1 > pool.available:
                continue
            used[pool.id] = used.get(pool.id, 0) + 1
            chosen.append(pool)
            found = dfs(i + 1)
            if found is not None:
                return found
            chosen.pop()
            used[pool.id] -= 1
        return None

    if not adults:
        return None
    kid_pool = dfs(0)
    if kid_pool is None:
        return None
    by_pool: dict[str, tuple[PoolView, list[int]]] = {}
    for person, pool in zip(adults, chosen, strict=True):
        by_pool.setdefault(pool.id, (pool, []))[1].append(person.index)
    for child in children:
        by_pool[kid_pool.id][1].append(child.index)
    return list(by_pool.values())


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent state of the read model: searches read it without any lock."""

    revision: int
    facilities: dict[str, FacilityView]
    ordered: list[FacilityView]
    by_state: dict[str, list[FacilityView]]
    # encoded answers of this snapshot: query -> (computed at, valid until, JSON), least
    # recently used first (a burst of one-off queries does not evict the frequent ones)
    answers: OrderedDict[Any, tuple[datetime, datetime, bytes]] = field(default_factory=OrderedDict)


EMPTY = Snapshot(-1, {}, [], {})
ANSWER_MEMO = 4_096  # encoded answers remembered per snapshot


class ReadModel:
    """Active facilities and their pools, kept in step with the database's revision.

    Copy on write: a refresh builds a new :class:`Snapshot` (new objects for the facilities
    it touched, the others shared) and swaps it in with one assignment, so a search takes
    ``model.snapshot`` once and reads it without a lock or a database round trip. Writers
    say that something changed with :meth:`mark_changed` (capacity's after-commit hook, the
    capacity events from other replicas); only then does :meth:`current` read the database.
    """

    def __init__(self) -> None:
        self.snapshot = EMPTY
        self.lock = threading.RLock()
        self._changes = itertools.count(1)
        self._changed = 0  # the last value taken from ``_changes``
        self._refreshed = 0  # the value of ``_changed`` the snapshot reflects

    # The current snapshot's parts (read-only views for callers and tests).
    @property
    def revision(self) -> int:
        return self.snapshot.revision

    @property
    def facilities(self) -> dict[str, FacilityView]:
        return self.snapshot.facilities

    @property
    def ordered(self) -> list[FacilityView]:
        return self.snapshot.ordered

    @property
    def by_state(self) -> dict[str, list[FacilityView]]:
        return self.snapshot.by_state

    def reset(self) -> None:
        with self.lock:
            self.snapshot = EMPTY
            self._changed = self._refreshed = next(self._changes)

    def mark_changed(self) -> None:
        """Something search can see may have changed: the next :meth:`current` reloads it.

        Safe from any thread; costs one counter step (``next`` on a counter is atomic)."""
        value = next(self._changes)
        if value > self._changed:  # two writers racing: keep the later announcement
            self._changed = value

    @property
    def changes_announced(self) -> int:
        return self._changed

    @property
    def changes_reflected(self) -> int:
        """The last announcement the snapshot reflects (announcements only grow)."""
        return self._refreshed

    @property
    def stale(self) -> bool:
        return self.snapshot.revision < 0 or self._changed != self._refreshed

    def current(self, connect: Callable[[], Any]) -> Snapshot:
        """The snapshot to search; reads the database only when a change was announced.

        ``connect`` opens a connection (``engine.connect``), used only then."""
        if self.stale:
            self.catch_up(connect)
        return self.snapshot

    def catch_up(self, connect: Callable[[], Any]) -> None:
        """Load what changed since the last refresh (the background refresher calls this)."""
        with self.lock:
            # Taken before reading: a change announced while this runs leaves it stale.
            seen = self._changed
            with connect() as conn:
                self.refresh(conn)
            self._refreshed = seen

    def refresh(self, conn: Connection) -> None:
        """Load what changed since the snapshot's revision and swap in the new snapshot."""
        with self.lock:
            self._refresh(conn)

    def _refresh(self, conn: Connection) -> None:
        rev = current_revision(conn)
        base = self.snapshot
        if rev == base.revision:
            return
        if rev < base.revision:  # another database than the one this model was built from
            base = EMPTY
        facilities = dict(base.facilities)
        copied: set[str] = set()
        p, f = Pool.__table__.c, Facility.__table__.c  # type: ignore[attr-defined]
        stmt = select(
            p.id,
            p.facility_id,
            p.name,
            p.sexes,
            p.min_age,
            p.max_age,
            p.accepts_children,
            p.max_child_age,
            p.max_children,
            p.accepts_witnesses,
            p.accepts_indirect_victims,
            p.wheelchair_accessible,
            p.migrants,
            p.lgbtttiq,
            p.interpreter_languages,
            p.total - p.occupied - p.held - p.out_of_service,
            p.last_confirmed_at,
            f.name,
            f.kind,
            f.operator_institution_id,
            f.state,
            f.municipality,
            f.specialization,
            f.services,
            f.security_level,
            f.max_stay_days,
            f.status,
            f.registration_status,
        ).join_from(Pool.__table__, Facility.__table__, f.id == p.facility_id)  # type: ignore[attr-defined]
        if base.revision >= 0:
            stmt = stmt.where(p.revision > base.revision)
        touched: set[str] = set()
        for row in conn.execute(stmt):
            (pid, fid, pname, sexes, lo, hi, kids, kid_age, kid_max, wit, ind, wheel, mig, lgb,
             langs, avail, confirmed, fname, kind, op, state, muni, spec, svcs, sec, stay,
             status, registration) = tuple(row)  # fmt: skip
            fac = facilities.get(fid)
            if status != FacilityStatus.ACTIVE:
                if fac is not None:
                    del facilities[fid]
                    touched.add(fid)
                continue
            if fac is None:
                fac = FacilityView(fid, fname, kind, op, state, muni, spec, svcs, sec, stay, status)
                facilities[fid] = fac
                copied.add(fid)
            else:
                if fid not in copied:  # never change an object a search may be reading
                    fac = replace(fac, pools=dict(fac.pools), placements=None)
                    facilities[fid] = fac
                    copied.add(fid)
                fac.name, fac.kind, fac.operator_institution_id = fname, kind, op
                fac.state, fac.municipality, fac.specialization = state, muni, spec
                fac.services, fac.security_level, fac.max_stay_days = svcs, sec, stay
            fac.registration_status = registration
            fac.public_json = None
            fac.pools[pid] = PoolView(
                pid,
                fid,
                pname,
                frozenset(sexes or ()),
                lo,
                hi,
                bool(kids),
                kid_age,
                kid_max,
                bool(wit),
                bool(ind),
                bool(wheel),
                bool(mig),
                bool(lgb),
                frozenset(lang.lower() for lang in (langs or ())),
                max(int(avail), 0),
                as_utc(confirmed) if confirmed is not None else None,
            )
            touched.add(fid)
        for fid in touched:
            fac = facilities.get(fid)
            if fac is not None:
                fac.recompute()
        if touched or base.revision < 0:
            self.snapshot = _snapshot(rev, facilities)
        else:
            self.snapshot = Snapshot(rev, base.facilities, base.ordered, base.by_state)


def _snapshot(revision: int, facilities: dict[str, FacilityView]) -> Snapshot:
    def key(fac: FacilityView) -> tuple[float, int, str]:
        stamp = fac.confirmed.timestamp() if fac.confirmed else float("-inf")
        return (-stamp, -fac.available, fac.id)

    ordered = sorted(facilities.values(), key=key)
    by_state: dict[str, list[FacilityView]] = {}
    for fac in ordered:
        by_state.setdefault(fac.state, []).append(fac)
    return Snapshot(revision, facilities, ordered, by_state)


@dataclass
class SearchOutcome:
    results: list[dict[str, Any]]
    unmet: dict[str, Any] | None
    warnings: list[str]
    people: list[PersonQ]
    # the first moment a result now fresh turns stale (None: no fresh result)
    fresh_until: datetime | None = None


def _warnings(people: list[PersonQ]) -> list[str]:
    out = []
    for p in people:
        n = p.index + 1
        if p.sex is None:
            out.append(
                f"El sexo de la persona {n} no está registrado (S.I.): sólo se ofrecen lugares "
                "que reciben a personas de todo sexo (F, M y X)."
            )
        if p.age is None and p.is_child:
            out.append(
                f"Falta la edad de la persona {n} (niña o niño acompañante): se necesita al "
                "menos una estimación para saber si puede quedarse con su madre o padre."
            )
        elif p.age is None:
            out.append(
                f"La edad de la persona {n} es desconocida: sólo se ofrecen lugares que reciben "
                "tanto a menores como a adultos. Registre su edad o una estimación; ante la duda "
                "se presume minoría de edad y debe avisarse a la Procuraduría de Protección (DIF)."
            )
    return out


def run_search(
    model: Snapshot | ReadModel,
    *,
    people: list[PersonQ],
    needs: NeedsQ,
    state: str | None,
    limit: int,
    now: datetime,
    stale_after: timedelta,
    registered_only: bool = False,
    explain: bool = True,
) -> SearchOutcome:
    """Facilities that can take the whole group now, best first; or why none can.

    Facilities not registered on SEGOB's roster are offered flagged (``unregistered``), or
    not at all with ``registered_only``. With ``explain=False`` an empty answer comes
    without its diagnosis (:func:`explain_unmet` gives it, e.g. in a worker thread).
    """
    snap = model.snapshot if isinstance(model, ReadModel) else model  # one state throughout
    adults = [p for p in people if not p.is_child]
    children = [p for p in people if p.is_child]
    warnings = _warnings(people)
    results: list[dict[str, Any]] = []
    fresh_until: datetime | None = None
    if adults and all(c.age is not None for c in children):
        first = snap.by_state.get(state, []) if state else []
        rest = (f for f in snap.ordered if f.state != state) if state else iter(snap.ordered)
        key = (tuple((p.sex, p.age, p.role) for p in people), needs)
        for group in (first, rest):
            for fac in group:
                if registered_only and fac.registration_status != RegistrationStatus.REGISTERED:
                    continue
                pools = fac.placement(key, adults, children, needs)
                if pools is None:
                    continue
                confirmed = fac.confirmed
                stale = confirmed is None or now - confirmed > stale_after
                if not stale:
                    assert confirmed is not None
                    flips = confirmed + stale_after
                    fresh_until = flips if fresh_until is None else min(fresh_until, flips)
                results.append(
                    {
                        "facility": fac.public_fragment(),
                        "pools": pools,
                        "stale": stale,
                        "last_confirmed_at": confirmed,
                        "same_state": fac.state == state,
                        "available": fac.available,
                        "unregistered": fac.registration_status != RegistrationStatus.REGISTERED,
                    }
                )
                if len(results) >= limit:
                    break
            if len(results) >= limit:
                break
    unmet = None if results or not explain else diagnose(snap, adults, children, needs, state)
    return SearchOutcome(results, unmet, warnings, people, fresh_until)


def explain_unmet(
    snap: Snapshot, people: list[PersonQ], needs: NeedsQ, state: str | None
) -> dict[str, Any]:
    """:func:`diagnose` for a search that found nothing."""
    adults = [p for p in people if not p.is_child]
    children = [p for p in people if p.is_child]
    return diagnose(snap, adults, children, needs, state)


def _where(state: str | None) -> str:
    return f"en el estado {state} ni en otro estado" if state else "en ningún estado"


def diagnose(
    model: Snapshot,
    adults: list[PersonQ],
    children: list[PersonQ],
    needs: NeedsQ,
    state: str | None,
) -> dict[str, Any]:
    """Why nothing fits, as one sentence a prosecutor can act on."""
    where = _where(state)

    def out(code: str, sentence: str, focus: PersonQ | None) -> dict[str, Any]:
        person = focus or (adults or children)[0]
        return {
            "code": code,
            "reason": f"No hay lugar: {sentence}.",
            "person": person.index,
            "sex": person.sex,
            "age_group": person.age_group(),
            "state": state,
        }

    unknown_child = next((c for c in children if c.age is None), None)
    if unknown_child is not None:
        return out(
            "child_age_unknown",
            f"falta la edad de la persona {unknown_child.index + 1} (niña o niño acompañante); "
            "sin ella no puede saberse si puede quedarse con su madre o padre",
            unknown_child,
        )
    if not adults:
        return out(
            "children_without_adult",
            "las niñas y niños acompañantes necesitan a su madre, padre o una persona adulta "
            "en el mismo grupo; si viajan solos, indíquelos como víctimas (role victim)",
            children[0],
        )
    pools = [(fac, pool) for fac in model.ordered for pool in fac.pools.values()]
    for person in adults:
        if not any(person_fits(pool, person) for _, pool in pools):
            extra = ""
            if person.sex is None:
                extra += (
                    " (sexo no registrado: sólo se ofrecen lugares que reciben a personas de "
                    "todo sexo, F, M y X; registre su sexo si la persona lo manifiesta)"
                )
            if person.age is None:
                extra += (
                    " (con edad desconocida sólo se ofrecen lugares que reciben tanto a menores "
                    "como a adultos; registre su edad o una estimación)"
                )
            return out(
                "no_eligible_pool",
                f"ninguna instalación activa acepta {person.label()} {where}{extra}",
                person,
            )
    if needs.any:
        for person in adults:
            if not any(
                person_fits(pool, person) and needs.pool_ok(pool) and needs.facility_ok(fac)
                for fac, pool in pools
            ):
                return out(
                    "needs_not_met",
                    f"ninguna instalación activa que acepte {person.label()} ofrece "
                    f"{needs.describe()} {where}",
                    person,
                )
    if children:
        oldest = max(c.age or 0 for c in children)
        if not any(
            children_fit(pool, children) and any(person_fits(pool, a) for a in adults)
            for _, pool in pools
        ):
            return out(
                "children_not_accepted",
                f"ninguna instalación activa recibe a {adults[0].label()} junto con "
                f"{len(children)} niña(s) o niño(s) de hasta {oldest} años {where}; la familia "
                "no se separa",
                adults[0],
            )
    for person in adults:
        if not any(
            pool.available > 0
            and person_fits(pool, person)
            and needs.pool_ok(pool)
            and needs.facility_ok(fac)
            for fac, pool in pools
        ):
            return out(
                "no_beds_now",
                f"no hay camas disponibles ahora para {person.label()} {where}: las "
                "instalaciones que las aceptan están llenas",
                person,
            )
    size = len(adults) + len(children)
    return out(
        "group_not_together",
        f"ninguna instalación activa tiene lugar ahora para el grupo completo de {size} "
        f"personas en un mismo lugar {where}; la familia no se separa",
        adults[0],
    )


read_model = ReadModel()
