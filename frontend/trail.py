"""The audit trail (bitácora) as SEGOB reads it: sentences, names, filters, one entry whole.

GET  /segob/bitacora               the trail, newest first, filtered, with its verification
GET  /segob/bitacora/{position}    one entry in full

The audit service keeps events as codes and ids (that is what its hash covers); this
screen names them: who acted (a person and her institution, from auth), institutions
(referral), facilities (the roster), and the event as a Spanish sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from frontend.api import ApiError
from frontend.dependencies import FrontendRoute, Page, require_role
from frontend.i18n import N_, TIMEZONE, Translator
from frontend.oversight import EXPORTS
from frontend.prosecutor import ROLES, SEXES, STATUSES
from frontend.shelter import OUTCOMES
from services.pages import encode_cursor
from services.vocabulary import UserRole

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)
AuditorPage = Annotated[
    Page, Depends(require_role(UserRole.SEGOB_AUDITOR, UserRole.PLATFORM_ADMIN))
]

TRAIL_PAGE = 50

# Each event type: what happened, as a sentence whose subject is who acted.
SENTENCES: dict[str, str] = {
    "referral.referral.created": N_("%(who)s drafted a referral to %(facility)s"),
    "referral.referral.send": N_("%(who)s sent a referral to %(facility)s"),
    "referral.referral.accept": N_("%(who)s accepted the referral from %(sender)s"),
    "referral.referral.decline": N_(
        "%(who)s declined the referral from %(sender)s — reason: %(reason)s"
    ),
    "referral.referral.in_transit": N_(
        "%(who)s recorded the transfer of the referral from %(sender)s to %(facility)s"
    ),
    "referral.referral.admit": N_(
        "%(who)s recorded the admission of the referral from %(sender)s at %(facility)s"
    ),
    "referral.referral.discharge": N_(
        "%(who)s recorded the discharge of the referral from %(sender)s — outcome: %(outcome)s"
    ),
    "referral.referral.cancel": N_("%(who)s cancelled the referral to %(facility)s"),
    "referral.referral.expired": N_(
        "The referral from %(sender)s to %(facility)s expired without an answer"
    ),
    "referral.agreement.created": N_("%(who)s registered the agreement %(number)s"),
    "referral.agreement.party_signed": N_("%(institution)s signed an agreement"),
    "referral.agreement.signed": N_("An agreement was signed by every party and is in force"),
    "referral.agreement.revoked": N_("%(who)s revoked an agreement"),
    "referral.agreement.refused": N_(
        "A referral from %(sender)s to %(receiver)s was refused: there is no agreement"
    ),
    "referral.obligation.fulfilled": N_("%(who)s fulfilled an obligation on a referral"),
    "referral.disclosure.address": N_("%(who)s was shown the address of %(facility)s"),
    "referral.disclosure.identity": N_(
        "%(who)s was shown the identity of the people of a referral to %(facility)s"
    ),
    "referral.institution.created": N_("%(who)s registered the institution %(name)s"),
    "referral.institution.updated": N_("%(who)s updated the institution %(name)s"),
    "referral.history.imported": N_("%(who)s imported the history of earlier referrals"),
    "capacity.pool.changed": N_(
        "Occupancy of %(facility)s changed: %(occupied)s of %(total)s beds occupied"
    ),
    "capacity.facility.created": N_("%(who)s registered the facility %(facility)s"),
    "capacity.facility.updated": N_("%(who)s updated the facility %(facility)s"),
    "capacity.facility.registration_submitted": N_(
        "%(who)s asked SEGOB to register %(facility)s on the roster"
    ),
    "capacity.facility.registration_reviewed": N_(
        "%(who)s reviewed the registration of %(facility)s"
    ),
    "capacity.hold.created": N_("%(who)s held beds at %(facility)s"),
    "capacity.hold.released": N_("%(who)s released beds held at %(facility)s"),
    "capacity.hold.expired": N_("Beds held at %(facility)s were freed: the hold ran out"),
    "capacity.hold.consumed": N_("Beds held at %(facility)s were used by a referral"),
    "capacity.hold.concentration_alert": N_("Alert: %(institution)s holds many beds at once"),
    "capacity.search.unmet": N_("A search found no place for a group of people"),
    "capacity.roster.imported": N_("%(who)s imported the roster of facilities"),
    "auth.user.created": N_("%(who)s created a user account"),
    "auth.user.password_reset": N_("%(who)s reset a password"),
    "auth.user.deactivated": N_("%(who)s deactivated a user account"),
    "auth.user.locked": N_("An account was locked after failed sign-ins"),
    "auth.login.failed": N_("A sign-in failed"),
    "auth.login.succeeded": N_("%(who)s signed in"),
    "auth.mfa.enrolled": N_("%(who)s enrolled a second factor"),
    "auth.token.revoked": N_("A session was closed"),
    "audit.visit.planned": N_("%(who)s planned a visit to %(facility)s"),
    "audit.visit.done": N_("%(who)s recorded a visit to %(facility)s"),
    "audit.visit.cancelled": N_("%(who)s cancelled a visit to %(facility)s"),
    "audit.action.added": N_("%(who)s added a follow-up action for %(facility)s"),
    "audit.action.completed": N_("%(who)s completed a follow-up action of %(facility)s"),
    "audit.export.made": N_("%(who)s downloaded a report (%(format)s)"),
}
# The kinds offered by the filter: a family of events (a prefix the audit API takes).
KINDS: dict[str, str] = {
    "referral.referral.": N_("Referrals"),
    "referral.agreement.": N_("Agreements"),
    "referral.disclosure.": N_("Confidential data shown"),
    "referral.": N_("Institutions and other referral events"),
    "capacity.hold.": N_("Bed holds"),
    "capacity.pool.": N_("Occupancy"),
    "capacity.facility.": N_("Facilities and registration"),
    "capacity.search.": N_("Searches without a place"),
    "auth.": N_("Accounts and sign-ins"),
    "audit.visit.": N_("Visits"),
    "audit.action.": N_("Follow-up actions"),
    "audit.export.": N_("Downloads"),
}
# Fields of an entry's payload, as the full view names them.
FIELDS: dict[str, str] = {
    "status": N_("Status"),
    "urgency": N_("Urgency"),
    "state": N_("State"),
    "services": N_("Services"),
    "sent_at": N_("Sent"),
    "response_due_at": N_("Answer due"),
    "outcome": N_("Outcome"),
    "number": N_("Number"),
    "kind": N_("Kind"),
    "format": N_("Format"),
    "name": N_("Name"),
    "roles": N_("Roles"),
    "reason": N_("Reason"),
    "total": N_("Beds"),
    "occupied": N_("Occupied"),
    "beds": N_("Beds"),
    "missing": N_("What was missing"),
    "registration_status": N_("Registration"),
    "until": N_("Until"),
}
# Every placeholder of SENTENCES, blank: how the filter names one kind of event.
BLANKS = dict.fromkeys(
    ("who", "facility", "sender", "receiver", "institution", "outcome", "number", "name",
     "occupied", "total", "format", "reason"),
    "…",
)  # fmt: skip
URGENCIES = {"urgent": N_("Urgent"), "normal": N_("Normal")}
SYSTEM = N_("The platform")
UNKNOWN_INSTITUTION = N_("an institution not on record")
UNKNOWN_FACILITY = N_("a facility not on record")


@dataclass(frozen=True)
class Directory:
    """Names of everyone and everything the trail mentions by id."""

    actors: Mapping[str, dict[str, Any]]
    institutions: Mapping[str, str]
    facilities: Mapping[str, str]

    def institution(self, t: Translator, iid: Any) -> str:
        return self.institutions.get(str(iid or ""), t.gettext(UNKNOWN_INSTITUTION))

    def facility(self, t: Translator, fid: Any) -> str:
        return self.facilities.get(str(fid or ""), t.gettext(UNKNOWN_FACILITY))

    def actor(self, t: Translator, entry: dict[str, Any]) -> dict[str, str]:
        """Who acted: her name and institution (or the platform itself)."""
        person = self.actors.get(entry.get("actor") or "")
        # A person's own institution first: an account event's names the account's.
        institution_id = (person or {}).get("institution_id") or entry.get("institution_id")
        institution = self.institutions.get(str(institution_id or ""), "")
        if person is None:
            return {"name": t.gettext(SYSTEM), "institution": institution}
        return {"name": str(person["display_name"]), "institution": institution}


async def directory(page: Page) -> Directory:
    actors, institutions, roster = await page.api.gather(
        page.api.get("auth", "/api/v1/auth/actors"),
        page.api.get("referral", "/api/v1/institutions"),
        page.api.get("audit", "/api/v1/roster"),
    )
    return Directory(
        actors={a["id"]: a for a in actors},
        institutions={i["id"]: i["name"] for i in institutions},
        facilities={f["facility_id"]: f["name"] for f in roster["items"]},
    )


def sentence(t: Translator, names: Directory, entry: dict[str, Any]) -> str:
    """What an entry says happened, in the reader's language."""
    payload: dict[str, Any] = (entry.get("entry") or {}).get("payload") or {}
    template = SENTENCES.get(entry["type"])
    actor = names.actor(t, entry)
    if template is None:
        return t.gettext("%(who)s: another event of the platform", who=actor["name"])
    values = {
        "who": actor["institution"] or actor["name"],
        "facility": names.facility(t, entry.get("facility_id") or payload.get("facility_id")),
        "sender": names.institution(t, payload.get("sending_institution_id")),
        "receiver": names.institution(t, payload.get("receiving_institution_id")),
        "institution": names.institution(
            t, payload.get("institution_id") or entry.get("institution_id")
        ),
        "outcome": _named(t, OUTCOMES, payload.get("outcome")),
        "number": str(payload.get("number") or ""),
        "name": str(payload.get("name") or ""),
        "occupied": t.number(payload.get("occupied")) or "?",
        "total": t.number(payload.get("total")) or "?",
        "format": str(payload.get("format") or "").upper(),
        "reason": str(payload.get("reason") or t.gettext("not recorded")),
    }
    return t.gettext(template, **values)


# --- the filters ---------------------------------------------------------------------------


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip()[:10])
    except ValueError:
        return None


def _local_bound(day: date, end: bool) -> str:
    """The instant a local day starts (or the next one starts), as the API takes it."""
    moment = datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=TIMEZONE)
    return moment.isoformat()


@dataclass(frozen=True)
class Filters:
    since: date | None
    until: date | None
    actor: str
    institution: str
    facility: str
    kind: str

    @classmethod
    def parse(cls, names: Directory, query: Mapping[str, str]) -> Filters:
        def known(key: str, table: Mapping[str, Any]) -> str:
            value = (query.get(key) or "")[:64]
            return value if value in table else ""

        kind = (query.get("tipo") or "")[:200]
        return cls(
            since=_day(query.get("desde")),
            until=_day(query.get("hasta")),
            actor=known("persona", names.actors),
            institution=known("institucion", names.institutions),
            facility=known("instalacion", names.facilities),
            kind=kind if kind in KINDS or kind in SENTENCES else "",
        )

    def api_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.since:
            params["since"] = _local_bound(self.since, end=False)
        if self.until:
            params["until"] = _local_bound(self.until, end=True)
        if self.actor:
            params["actor"] = self.actor
        if self.institution:
            params["institution_id"] = self.institution
        if self.facility:
            params["facility_id"] = self.facility
        if self.kind:
            params["type"] = self.kind
        return params

    def query(self) -> dict[str, str]:
        """The same filters as the page's own query string (for the pages' links)."""
        values = {
            "desde": self.since.isoformat() if self.since else "",
            "hasta": self.until.isoformat() if self.until else "",
            "persona": self.actor,
            "institucion": self.institution,
            "instalacion": self.facility,
            "tipo": self.kind,
        }
        return {k: v for k, v in values.items() if v}


# --- pages -----------------------------------------------------------------------------------


def _by_name(table: Mapping[str, str]) -> list[tuple[str, str]]:
    return sorted(table.items(), key=lambda item: item[1].casefold())


@router.get("/segob/bitacora")
async def trail(
    page: AuditorPage,
    pagina: str = "1",
    desde: str | None = None,
    hasta: str | None = None,
) -> Response:
    """The trail newest first, ``TRAIL_PAGE`` entries a page by keyset (the audit API's
    cursor): ``desde`` opens the older page after an entry, ``hasta`` the newer one before
    it; ``pagina`` numbers the page (alone, as in links made before cursors, it is an
    offset)."""
    t = page.t
    names = await directory(page)
    chosen = Filters.parse(names, page.request.query_params)
    base = chosen.api_params()
    wanted = int(pagina) if pagina.isdigit() and len(pagina) < 7 else 1
    newer = hasta is not None and desde is None
    cursor = (hasta if newer else desde) or None
    params: dict[str, Any] = {**base, "limit": TRAIL_PAGE, "order": "asc" if newer else "desc"}
    if cursor is not None:
        params["cursor"] = cursor[:600]
    elif wanted > 1:
        params["offset"] = (wanted - 1) * TRAIL_PAGE
    results: tuple[Any, Any] = await asyncio.gather(
        page.api.get("audit", "/api/v1/audit/verify"),
        page.api.get("audit", "/api/v1/audit/events", params=params),
        return_exceptions=True,
    )
    verification, answer = results
    if isinstance(answer, ApiError) and answer.status == 422:
        # A cursor or page this list did not make (edited by hand): the newest entries.
        wanted, newer, cursor = 1, False, None
        answer = await page.api.get(
            "audit", "/api/v1/audit/events", params={**base, "limit": TRAIL_PAGE, "order": "desc"}
        )
    for result in (verification, answer):
        if isinstance(result, BaseException):
            raise result
    total = int(answer["total"])
    pages = max(1, -(-total // TRAIL_PAGE))
    number = min(max(1, wanted), pages)
    items = list(reversed(answer["items"])) if newer else answer["items"]
    entries = [{**e, "sentence": sentence(t, names, e), "who": names.actor(t, e)} for e in items]
    more = answer["next_cursor"] is not None
    query = chosen.query()
    older_link = newer_link = None
    if entries and (newer or more):
        older_link = {**query, "desde": encode_cursor((entries[-1]["position"],)),
                      "pagina": number + 1}  # fmt: skip
    if entries and number > 1 and (more or not newer):
        newer_link = (
            query
            if number == 2
            else {**query, "hasta": encode_cursor((entries[0]["position"],)), "pagina": number - 1}
        )
    actors = {a: str(v["display_name"]) for a, v in names.actors.items()}
    return page.render(
        "oversight/trail.html",
        verification=verification,
        entries=entries,
        total=total,
        number=number,
        pages=pages,
        older_link=older_link,
        newer_link=newer_link,
        chosen=chosen,
        query=query,
        filtered=bool(base),
        actors=_by_name(actors),
        institutions=_by_name(names.institutions),
        facilities=_by_name(names.facilities),
        kinds=KINDS,
        event_types=[(code, t.gettext(text, **BLANKS)) for code, text in SENTENCES.items()],
    )


@router.get("/segob/bitacora/{position}")
async def trail_entry(page: AuditorPage, position: str) -> Response:
    t = page.t
    if not position.isdigit() or not 0 < int(position) < 10**9:
        raise ApiError(404, "not_found", "")
    # Positions are the chain's order, 1, 2, 3...: entry n is at offset n - 1.
    answer = await page.api.get(
        "audit", "/api/v1/audit/events", params={"limit": 1, "offset": int(position) - 1}
    )
    if not answer["items"]:
        raise ApiError(404, "not_found", "")
    entry = answer["items"][0]
    names = await directory(page)
    payload: dict[str, Any] = (entry.get("entry") or {}).get("payload") or {}
    details = [
        (t.gettext(label), shown(t, key, payload[key]))
        for key, label in FIELDS.items()
        if payload.get(key) not in (None, "", [])
    ]
    people = [
        {
            "role": _named(t, ROLES, person.get("role")),
            "sex": _named(t, SEXES, person.get("sex")),
            "age": t.age_group(person.get("age_band") or person.get("age_group")),
            "nationality": t.country(person.get("nationality")),
        }
        for person in payload.get("people") or []
        if isinstance(person, dict)
    ]
    return page.render(
        "oversight/trail_entry.html",
        entry=entry,
        sentence=sentence(t, names, entry),
        who=names.actor(t, entry),
        facility=names.facilities.get(entry.get("facility_id") or "", ""),
        details=details,
        people=people,
        kind=_kind_of(entry["type"]),
    )


def _kind_of(event_type: str) -> str:
    return next((label for prefix, label in KINDS.items() if event_type.startswith(prefix)), "")


def _named(t: Translator, table: Mapping[str, str], code: Any) -> str:
    label = table.get(str(code or ""))
    return t.gettext(label) if label else t.gettext("No information")


def shown(t: Translator, key: str, value: Any) -> str:
    """A payload value as a person reads it (dates local, codes named)."""
    if key in ("sent_at", "response_due_at", "until") and isinstance(value, str):
        try:
            return t.datetime(value)
        except ValueError:
            return value
    if key == "urgency" and value in URGENCIES:
        return t.gettext(URGENCIES[value])
    if key == "name" and value in EXPORTS:
        return t.gettext(EXPORTS[value])
    if key == "state":
        return t.state(str(value))
    if key == "status":
        return _named(t, STATUSES, value) if value in STATUSES else str(value)
    if key == "outcome":
        return _named(t, OUTCOMES, value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
