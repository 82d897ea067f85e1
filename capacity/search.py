"""Availability search over an in-memory read model of active facilities and their pools.

The read model is refreshed incrementally: every write bumps the capacity revision and
stamps the pools it touched with it, so a search first reads one integer and reloads only
pools whose revision is newer than the model's. Matching then runs in Python over a few
small objects per facility, in ranking order, stopping once enough results are found.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from capacity.languages import SPANISH, fold, label_of, match_key
from capacity.ledger import current_revision
from capacity.models import Facility, Pool
from services.clock import as_utc
from services.vocabulary import STATE_NAMES, FacilityStatus, PersonRole, RegistrationStatus

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
    # Needs-aware matching (issue 16): disability support (mobility is also the
    # wheelchair flag), pregnancy and addiction care, and needs the pool is kept for.
    disabilities: frozenset[str] = frozenset()
    pregnancy_care: bool = False
    addiction_care: bool = False
    reserved_for: frozenset[str] = frozenset()


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
    exploitation_types: frozenset[str] = frozenset()
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
    # The languages the person speaks (catalogue match keys); none, or Spanish among them,
    # needs no interpreter.
    languages: frozenset[str] = frozenset()
    # A child the group binds to one of its adults (her mother, e.g. of a baby): a split
    # never separates them (the index of that adult in the group).
    stays_with: int | None = None

    @property
    def is_minor(self) -> bool:
        """Under 18 or of unknown age (ante la duda, se presume minoría de edad)."""
        return self.age is None or self.age < ADULT_AGE

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


DISABILITY_LABEL = {
    "mobility": "discapacidad motriz (accesible en silla de ruedas)",
    "sensory": "discapacidad sensorial",
    "intellectual_psychosocial": "discapacidad intelectual o psicosocial",
}
EXPLOITATION_LABEL = {
    "sexual": "explotación sexual",
    "labour": "explotación laboral",
    "other": "otras formas de explotación",
}
RESERVABLE = ("disability", "pregnancy", "addiction_care")
RESERVED_LABEL = {
    "disability": "personas con discapacidad",
    "pregnancy": "mujeres embarazadas",
    "addiction_care": "personas que requieren atención de adicciones",
}
# Stage of care -> facility kinds that fit it. A halfway house is only for people leaving
# a refuge, and never for a minor.
STAGE_KINDS = {
    "immediate": frozenset({"refugio", "albergue"}),
    "leaving_refuge": frozenset({"refugio", "albergue", "casa_de_medio_camino"}),
}
HALFWAY = "casa_de_medio_camino"


@dataclass(frozen=True, slots=True)
class NeedsQ:
    wheelchair: bool = False
    interpreter_language: str | None = None
    security: str | None = None
    migrant: bool = False
    lgbtttiq: bool = False
    specialised: bool = False
    # Issue 16: several languages (match keys, any of them will do), disability types,
    # pregnancy, addiction care, the type of exploitation, places to keep away from, stage.
    languages: frozenset[str] = frozenset()
    disabilities: frozenset[str] = frozenset()
    pregnancy: bool = False
    addiction_care: bool = False
    exploitation: str | None = None
    exclude_states: frozenset[str] = frozenset()
    exclude_municipalities: frozenset[str] = frozenset()
    stage: str = "immediate"
    has_minor: bool = False

    @property
    def all_disabilities(self) -> frozenset[str]:
        return self.disabilities | ({"mobility"} if self.wheelchair else frozenset())

    def facility_ok(self, fac: FacilityView) -> bool:
        return not self.facility_misses(fac)

    def facility_misses(self, fac: FacilityView) -> list[str]:
        """The needs (codes) this facility does not meet, whatever its pools."""
        out = []
        if self.specialised and fac.specialization != "trafficking":
            out.append("specialised")
        if (
            self.security
            and SECURITY_RANK.get(fac.security_level, 0) < SECURITY_RANK[self.security]
        ):
            out.append("security")
        if self.exploitation and self.exploitation not in fac.exploitation_types:
            out.append("exploitation")
        if fac.state in self.exclude_states:
            out.append("exclude_states")
        if (
            self.exclude_municipalities
            and fold_place(fac.municipality) in self.exclude_municipalities
        ):
            out.append("exclude_municipalities")
        if not stage_fits(fac.kind, self.stage, has_minor=self.has_minor):
            out.append("stage")
        return out

    def pool_ok(self, pool: PoolView) -> bool:
        # The hot path of every search and plan: early returns, no lists.
        if (self.wheelchair or self.disabilities) and not (
            self.all_disabilities <= pool.disabilities
        ):
            return False
        if self.migrant and not pool.migrants:
            return False
        if self.lgbtttiq and not pool.lgbtttiq:
            return False
        if self.pregnancy and not pool.pregnancy_care:
            return False
        if self.addiction_care and not pool.addiction_care:
            return False
        if self.languages or self.interpreter_language:
            return languages_ok(self.group_languages, pool.languages)
        return True

    def pool_misses(self, pool: PoolView) -> list[str]:
        """The group-wide needs (codes) this pool does not meet."""
        out = []
        if not self.all_disabilities <= pool.disabilities:
            out.append("disability")
        if self.migrant and not pool.migrants:
            out.append("migrant")
        if self.lgbtttiq and not pool.lgbtttiq:
            out.append("lgbtttiq")
        if self.pregnancy and not pool.pregnancy_care:
            out.append("pregnancy")
        if self.addiction_care and not pool.addiction_care:
            out.append("addiction_care")
        if not languages_ok(self.group_languages, pool.languages):
            out.append("languages")
        return out

    @property
    def group_languages(self) -> frozenset[str]:
        if self.interpreter_language:
            return self.languages | {self.interpreter_language}
        return self.languages

    def reserved_against(self, pool: PoolView) -> list[str]:
        """What ``pool`` is kept for that this group does not need (offered last)."""
        if not pool.reserved_for:
            return []
        has = {
            "disability": bool(self.all_disabilities),
            "pregnancy": self.pregnancy,
            "addiction_care": self.addiction_care,
        }
        return [need for need in sorted(pool.reserved_for) if not has.get(need, False)]

    def describe(self) -> str:
        return ", ".join(self.labels().values())

    def labels(self) -> dict[str, str]:
        """Each need asked for, by code, in Spanish."""
        parts: dict[str, str] = {}
        if self.all_disabilities:
            parts["disability"] = ", ".join(
                DISABILITY_LABEL[d] for d in sorted(self.all_disabilities)
            )
            if self.all_disabilities == {"mobility"}:
                parts["disability"] = "acceso para silla de ruedas"
        if self.group_languages:
            names = " o ".join(label_of(code) for code in sorted(self.group_languages))
            parts["languages"] = f"interpretación en {names}"
        if self.security:
            parts["security"] = f"seguridad {SECURITY_LABEL[self.security]} o mayor"
        if self.migrant:
            parts["migrant"] = "atención a personas migrantes"
        if self.lgbtttiq:
            parts["lgbtttiq"] = "atención a población LGBTTTIQ"
        if self.specialised:
            parts["specialised"] = "especialización en trata"
        if self.pregnancy:
            parts["pregnancy"] = "atención del embarazo"
        if self.addiction_care:
            parts["addiction_care"] = "atención de adicciones"
        if self.exploitation:
            parts["exploitation"] = (
                f"atención especializada en {EXPLOITATION_LABEL[self.exploitation]}"
            )
        if self.exclude_states:
            parts["exclude_states"] = "fuera de " + ", ".join(sorted(self.exclude_states))
        if self.exclude_municipalities:
            parts["exclude_municipalities"] = "fuera de los municipios excluidos"
        return parts

    @property
    def any(self) -> bool:
        return bool(self.describe())


def fold_place(name: str) -> str:
    return fold(name)


def languages_ok(spoken: frozenset[str], offered: frozenset[str]) -> bool:
    """Whether someone who speaks ``spoken`` is understood where ``offered`` is spoken:
    nothing asked, Spanish among them, or any one of them offered."""
    return not spoken or SPANISH in spoken or bool(spoken & offered)


def stage_fits(kind: str, stage: str, *, has_minor: bool) -> bool:
    """A facility kind fits a stage of care; a halfway house never takes a minor."""
    if kind == HALFWAY and has_minor:
        return False
    return kind in STAGE_KINDS.get(stage, STAGE_KINDS["immediate"])


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


def person_needs_ok(pool: PoolView, person: PersonQ) -> bool:
    """The person's own needs (the languages they speak) met by the pool."""
    return not person.languages or languages_ok(person.languages, pool.languages)


def children_fit(pool: PoolView, children: list[PersonQ]) -> bool:
    if not children:
        return True
    if not pool.accepts_children or len(children) > pool.max_children:
        return False
    return all(c.age is not None and c.age <= pool.max_child_age for c in children)


def eligible_beds(fac: FacilityView, adults: list[PersonQ], needs: NeedsQ) -> int:
    """Free beds of the pools that could take at least one adult of the group (what the
    prosecutor can use, unlike ``available``: every free bed of the facility)."""
    return sum(
        p.available
        for p in fac.pools.values()
        if p.available > 0 and needs.pool_ok(p) and any(person_fits(p, a) for a in adults)
    )


def place(
    fac: FacilityView,
    adults: list[PersonQ],
    children: list[PersonQ],
    needs: NeedsQ,
    free: dict[str, int] | None = None,
) -> list[tuple[PoolView, list[int]]] | None:
    """Seat the whole group in this facility now, or None. Children stay with an adult.

    ``free`` overrides the pools' free beds (a planner's residual capacity). Pools kept for
    a need the group does not have are tried last.
    """
    if not adults or not needs.facility_ok(fac):
        return None

    def avail(p: PoolView) -> int:
        return p.available if free is None else free.get(p.id, p.available)

    if free is None and fac.available < len(adults) + len(children):
        return None
    options: list[list[PoolView]] = []
    for person in adults:
        fits = [
            p
            for p in fac.pools.values()
            if avail(p) > 0
            and needs.pool_ok(p)
            and person_fits(p, person)
            and person_needs_ok(p, person)
        ]
        if not fits:
            return None
        fits.sort(key=lambda p: (bool(needs.reserved_against(p)), -avail(p)))
        options.append(fits)
    used: dict[str, int] = {}
    chosen: list[PoolView] = []
    budget = [NODE_BUDGET]

    def children_pool() -> PoolView | None:
        if not children:
            return chosen[0] if chosen else None
        for pool in {p.id: p for p in chosen}.values():  # PoolView is unhashable
            if children_fit(pool, children) and used[pool.id] + len(children) <= avail(pool):
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
            if used.get(pool.id, 0) + 1 > avail(pool):
                continue
            used[pool.id] = used.get(pool.id, 0) + 1
            chosen.append(pool)
            found = dfs(i + 1)
            if found is not None:
                return found
            chosen.pop()
            used[pool.id] -= 1
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


def reserved_note(needs: NeedsQ, placement: list[tuple[PoolView, list[int]]]) -> list[str]:
    """The needs the chosen pools are kept for that the group lacks (offered last)."""
    return sorted({need for pool, _ in placement for need in needs.reserved_against(pool)})


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


# One thread is enough: a catch-up holds the model's lock, so they run one at a time anyway.
_REFRESH_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="capacity-search-index")


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

    async def catch_up_off_loop(self, connect: Callable[[], Any]) -> None:
        """:meth:`catch_up` in the read model's own thread, not the request thread pool.

        Under write load that pool fills with writers queued for SQLite's write lock; a
        search waiting for the model to catch up must not queue behind them (the reload
        only reads, which WAL never blocks)."""
        await asyncio.get_running_loop().run_in_executor(_REFRESH_THREAD, self.catch_up, connect)

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
            p.disability_support,
            p.pregnancy_care,
            p.addiction_care,
            p.reserved_for,
            f.exploitation_types,
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
             langs, disab, pregnant, addiction, reserved, exploitation, avail, confirmed, fname, kind, op, state, muni, spec, svcs, sec, stay,
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
            fac.exploitation_types = frozenset(exploitation or ())
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
                frozenset(match_key(lang) for lang in (langs or ())),
                max(int(avail), 0),
                as_utc(confirmed) if confirmed is not None else None,
                frozenset(disab or ()) | ({"mobility"} if wheel else frozenset()),
                bool(pregnant),
                bool(addiction),
                frozenset(reserved or ()),
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
    # Places kept for a need the group does not have: offered only after every other.
    last: list[dict[str, Any]] = []
    fresh_until: datetime | None = None
    if adults and all(c.age is not None for c in children):
        first = snap.by_state.get(state, []) if state else []
        rest = (f for f in snap.ordered if f.state != state) if state else iter(snap.ordered)
        key = (tuple((p.sex, p.age, p.role, p.languages) for p in people), needs)
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
                result: dict[str, Any] = {
                    "facility": fac.public_fragment(),
                    "pools": pools,
                    "stale": stale,
                    "last_confirmed_at": confirmed,
                    "same_state": fac.state == state,
                    "available": fac.available,
                    "eligible": eligible_beds(fac, adults, needs),
                    "unregistered": fac.registration_status != RegistrationStatus.REGISTERED,
                }
                reserved = sorted(
                    {
                        need
                        for p in pools
                        if p["pool_id"] in fac.pools
                        for need in needs.reserved_against(fac.pools[p["pool_id"]])
                    }
                )
                if reserved:
                    result["reserved_for"] = reserved
                    result["note"] = (
                        "Lugar reservado para "
                        + " y ".join(RESERVED_LABEL[r] for r in reserved)
                        + ": se ofrece al final porque no hay otro."
                    )
                    if len(last) < limit:
                        last.append(result)
                    continue
                results.append(result)
                if len(results) >= limit:
                    break
            if len(results) >= limit:
                break
    results.extend(last[: limit - len(results)])
    unmet = None if results or not explain else explain_unmet(snap, people, needs, state)
    return SearchOutcome(results, unmet, warnings, people, fresh_until)


def explain_unmet(
    snap: Snapshot, people: list[PersonQ], needs: NeedsQ, state: str | None
) -> dict[str, Any]:
    """:func:`diagnose` for a search that found nothing, with its explanations per person
    and per need."""
    adults = [p for p in people if not p.is_child]
    children = [p for p in people if p.is_child]
    unmet = diagnose(snap, adults, children, needs, state)
    unmet["explanations"] = explain(snap, people, needs, state)
    return unmet


def _result(
    fac: FacilityView,
    placement: list[tuple[PoolView, list[int]]],
    *,
    state: str | None,
    now: datetime,
    stale_after: timedelta,
) -> dict[str, Any]:
    confirmed = fac.confirmed
    return {
        "facility": fac.public(),
        "pools": [
            {"pool_id": pool.id, "pool_name": pool.name, "beds": len(idx), "people": sorted(idx)}
            for pool, idx in placement
        ],
        "stale": confirmed is None or now - confirmed > stale_after,
        "last_confirmed_at": confirmed,
        "same_state": fac.state == state,
        "available": fac.available,
        "unregistered": fac.registration_status != RegistrationStatus.REGISTERED,
    }


def _where(state: str | None) -> str:
    if not state:
        return "en ningún estado"
    return f"en {STATE_NAMES.get(state, 'el estado ' + state)} ni en otro estado"


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
    if needs.any or any(p.languages for p in adults):
        for person in adults:
            wanted = needs.labels()
            if not languages_ok(person.languages, frozenset()):
                names = " o ".join(label_of(code) for code in sorted(person.languages))
                wanted["person_languages"] = f"interpretación en {names}"
            if not any(
                person_fits(pool, person)
                and person_needs_ok(pool, person)
                and needs.pool_ok(pool)
                and needs.facility_ok(fac)
                for fac, pool in pools
            ):
                return out(
                    "needs_not_met",
                    f"ninguna instalación activa que acepte {person.label()} ofrece "
                    f"{', '.join(wanted.values())} {where}",
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
            and person_needs_ok(pool, person)
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


def _states(counts: dict[str, int], skip: str | None) -> str:
    top = sorted(((n, st) for st, n in counts.items() if st != skip), key=lambda x: (-x[0], x[1]))
    return ", ".join(f"{n} en {st}" for n, st in top[:3])


def explain(
    model: Snapshot, people: list[PersonQ], needs: NeedsQ, state: str | None
) -> list[dict[str, Any]]:
    """Per person and per need: where beds that take them are free now, and which need
    rules the rest out ("ningún lugar en 09 recibe hombres adultos; 2 en 15 sí")."""
    out: list[dict[str, Any]] = []
    where = f"en {state}" if state else "en el país"
    labels = needs.labels()
    for person in people:
        if person.is_child:
            continue
        eligible: dict[str, int] = {}
        per_need: dict[str, dict[str, int]] = {code: {} for code in labels}
        for fac in model.ordered:
            fac_miss = needs.facility_misses(fac)
            for pool in fac.pools.values():
                if pool.available <= 0 or not person_fits(pool, person):
                    continue
                eligible[fac.state] = eligible.get(fac.state, 0) + pool.available
                misses = set(fac_miss) | set(needs.pool_misses(pool))
                if not person_needs_ok(pool, person):
                    misses.add("languages")
                for code in labels:
                    if code not in misses:
                        per_need[code][fac.state] = (
                            per_need[code].get(fac.state, 0) + pool.available
                        )
        n = person.index + 1
        here = eligible.get(state, 0) if state else sum(eligible.values())
        elsewhere = _states(eligible, state) if state else ""
        sentence = (
            f"Persona {n} ({person.label()}): {here} cama(s) libre(s) {where} la aceptan"
            if here
            else f"Persona {n} ({person.label()}): ninguna cama libre {where} acepta "
            f"{person.label()}"
        )
        if elsewhere:
            sentence += f"; {elsewhere}"
        out.append({"person": person.index, "need": "eligibility", "reason": sentence + "."})
        for code, label in labels.items():
            counts = per_need[code]
            here = counts.get(state, 0) if state else sum(counts.values())
            elsewhere = _states(counts, state) if state else ""
            if here:
                text = f"Persona {n}: {here} cama(s) {where} con {label}"
            else:
                text = f"Persona {n}: ninguna cama libre {where} que la acepte ofrece {label}"
            if elsewhere:
                text += f"; {elsewhere} sí"
            out.append({"person": person.index, "need": code, "reason": text + "."})
    return out


read_model = ReadModel()
