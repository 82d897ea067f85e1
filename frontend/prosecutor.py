"""The prosecutor's screens: new referral (search, hold, send), her referrals, a timeline.

GET  /canalizaciones/nueva                 describe the people, see eligible capacity
POST /canalizaciones/nueva/buscar          the search (htmx fragment or whole page)
GET  /canalizaciones/nueva/persona         one more person row (htmx)
POST /canalizaciones/apartar               hold the beds of one facility
GET  /canalizaciones/apartados/{hold}      choose the agreement, nationality, consent
POST /canalizaciones/apartados/{hold}/enviar    create and send the referral
GET|POST /canalizaciones/apartados/{hold}/liberar  release the hold (confirmed)
GET  /canalizaciones                       her referrals by status
GET  /canalizaciones/{id}                  timeline, deadline, pending obligations
GET|POST /canalizaciones/{id}/cancelar     cancel (confirmed, with a reason)
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from frontend import paths
from frontend.api import ApiError
from frontend.dependencies import FrontendRoute, Page, require_role
from frontend.i18n import COUNTRIES, N_, STATES, TIMEZONE, Translator
from frontend.lists import api_page, day_of, day_range, query_of
from services.countries import STATELESS
from services.vocabulary import (
    OFFENCES,
    STAND_ALONE_OFFENCES,
    TRAFFICKING_FOR_A_PURPOSE,
    FacilityKind,
    PersonRole,
    ReferralStatus,
    Sex,
    UserRole,
)

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

ProsecutorPage = Annotated[
    Page, Depends(require_role(UserRole.PROSECUTOR, UserRole.PLATFORM_ADMIN))
]

MAX_PEOPLE = 20
MAX_OFFENCES = 12  # as many as the referral API records per person
SEARCH_LIMIT = 50
SEXES: dict[str, str] = {Sex.F: N_("Female"), Sex.M: N_("Male"), Sex.X: N_("Non-binary / other")}
# The form's value for "No information" (S.I.): sent to the API as null, never guessed.
NO_INFORMATION = "SI"
ROLES: dict[str, str] = {
    PersonRole.VICTIM: N_("Victim"),
    PersonRole.INDIRECT_VICTIM: N_("Indirect victim"),
    PersonRole.WITNESS: N_("Witness"),
    PersonRole.ACCOMPANYING_CHILD: N_("Accompanying child"),
}
# The CNDH age bands a receiver sees before acceptance (``services.vocabulary``).
AGE_BANDS = {
    "0-12": N_("0 to 12 years"),
    "13-17": N_("13 to 17 years"),
    "18-59": N_("18 to 59 years"),
    "60+": N_("60 years or more"),
}
VULNERABLE_GROUPS = {
    "indigenous": N_("Indigenous person"),
    "lgbtttiq": N_("LGBTTTIQ person"),
    "disability": N_("Person with a disability"),
    "migrant_in_transit": N_("Migrant in transit"),
}
NEEDS = {
    "wheelchair": N_("Wheelchair access"),
    "migrant": N_("Migrant population"),
    "lgbtttiq": N_("LGBTTTIQ-friendly"),
    "specialised": N_("Specialised in trafficking"),
}
SECURITY = {"standard": N_("Standard"), "high": N_("High"), "maximum": N_("Maximum")}
KINDS: dict[str, str] = {
    FacilityKind.REFUGIO: N_("Refuge"),
    FacilityKind.ALBERGUE: N_("Shelter"),
    FacilityKind.CASA_DE_MEDIO_CAMINO: N_("Half-way house"),
}
STATUSES: dict[str, str] = {
    ReferralStatus.SENT: N_("Sent"),
    ReferralStatus.ACCEPTED: N_("Accepted"),
    ReferralStatus.IN_TRANSIT: N_("In transit"),
    ReferralStatus.ADMITTED: N_("Admitted"),
    ReferralStatus.DECLINED: N_("Declined"),
    ReferralStatus.EXPIRED: N_("Expired without answer"),
    ReferralStatus.DISCHARGED: N_("Discharged"),
    ReferralStatus.CANCELLED: N_("Cancelled"),
    ReferralStatus.DRAFT: N_("Draft"),
}
ACTIONS = {
    "create": N_("Created"),
    "send": N_("Sent to the shelter"),
    "accept": N_("Accepted by the shelter"),
    "decline": N_("Declined by the shelter"),
    "expire": N_("Deadline passed without answer"),
    "transfer": N_("Transfer started"),
    "in_transit": N_("Transfer started"),
    "admit": N_("Admitted"),
    "discharge": N_("Discharged"),
    "cancel": N_("Cancelled"),
}
OBLIGATIONS = {
    "dif_child_protection": N_("Child protection (DIF)"),
    "inm_migration_status": N_("Migration status and humanitarian visa (INM)"),
    "ceav_registration": N_("Registration in the National Victims Registry (CEAV)"),
    "witness_protection": N_("Witness protection: identity withheld"),
    "nationality_unconfirmed": N_("Nationality to be confirmed (no information: INM not notified)"),
    "inm_child_protection": N_("INM child protection officers (foreign minor)"),
}
OBLIGATION_STATUSES = {"pending": N_("Pending"), "fulfilled": N_("Fulfilled")}
NOTICES = {
    ReferralStatus.SENT: N_("The referral was sent. The shelter has until the deadline to answer."),
    "released": N_("The beds were released."),
    ReferralStatus.CANCELLED: N_("The referral was cancelled."),
    "in_transit": N_("The transfer started; the shelter sees when the people should arrive."),
    "again": N_("The same group, ready to search again: choose another place."),
}
OPEN_STATUSES = ("sent", "accepted", "in_transit")
ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def clean_id(value: str) -> str:
    """An id taken from the URL, safe to put in an API path (otherwise: not found)."""
    if not ID.match(value):
        raise ApiError(404, "not_found", "")
    return value


def choices(page: Page) -> dict[str, Any]:
    t = page.t
    return {
        "sexes": SEXES,
        "roles": ROLES,
        "needs_labels": NEEDS,
        "security_levels": SECURITY,
        "states": sorted(STATES, key=lambda code: t.state(code)),
        "countries": t.countries(),
        "stateless": STATELESS,
        "no_information": NO_INFORMATION,
        "kinds": KINDS,
        "detection_sources": paths.DETECTION_SOURCES,
        "age_bands": AGE_BANDS,
        "vulnerable_groups": VULNERABLE_GROUPS,
        "trafficking_offences": TRAFFICKING_FOR_A_PURPOSE,
        "stand_alone_offences": STAND_ALONE_OFFENCES,
    }


# --- new referral: the people and the search -------------------------------------------


def _blank_person() -> dict[str, Any]:
    return {"sex": "F", "age": None, "role": "victim"}


def parse_search(form: Any) -> tuple[dict[str, Any], list[str]]:
    """The search body from the form, and the problems found (as message ids)."""
    sexes, ages, roles = form.getlist("sex"), form.getlist("age"), form.getlist("role")
    problems: list[str] = []
    people: list[dict[str, Any]] = []
    for i in range(min(len(sexes), len(roles), MAX_PEOPLE)):
        raw_age = (ages[i] if i < len(ages) else "").strip()
        age: int | None = None
        if raw_age:
            if not raw_age.isdigit() or int(raw_age) > 120:
                problems.append(N_("Ages are whole years between 0 and 120, or left empty."))
                continue
            age = int(raw_age)
        if sexes[i] in SEXES:
            sex: str | None = sexes[i]
        elif sexes[i] == NO_INFORMATION:
            sex = None
        else:
            problems.append(N_("Choose the sex of each person, or No information."))
            continue
        role = roles[i] if roles[i] in ROLES else "victim"
        people.append({"sex": sex, "age": age, "role": role})
    if not people:
        problems.append(N_("Describe at least one person."))
        people = [_blank_person()]
    needs: dict[str, Any] = {key: form.get(key) == "on" for key in NEEDS}
    language = (form.get("interpreter_language") or "").strip()[:40]
    if language:
        needs["interpreter_language"] = language
    security = form.get("security") or ""
    if security in SECURITY:
        needs["security"] = security
    state = form.get("state") or None
    if state not in STATES:
        state = None
    return {"people": people, "needs": needs, "state": state}, problems


@router.get("/canalizaciones/nueva")
async def new_referral(page: ProsecutorPage, aviso: str | None = None) -> Response:
    draft = page.draft() or {}
    search = draft.get("search") or {"people": [_blank_person()], "needs": {}, "state": None}
    answer: dict[str, Any] | None = None
    if aviso == "again" and draft.get("search"):
        # "Search another place": the group is back, and so are the places for it (a new
        # case: another search intent than the declined one's).
        case = secrets.token_hex(8)
        answer = await search_places(page, search, intent_key=search_intent(case, search))
        await page.save_draft({"search": search, "case": case, "again": draft.get("again")})
    return page.render(
        "prosecutor/new.html",
        search=search,
        answer=answer,
        problems=[],
        notice=page.t.gettext(NOTICES[aviso]) if aviso in NOTICES else None,
        **choices(page),
    )


def same_group(draft: dict[str, Any], people: list[dict[str, Any]]) -> list[Any] | None:
    """The people of an earlier referral this search is for again (see
    ``frontend.transfer.recorded_people``), while the search still describes that group:
    the same number of people, with the same sex, age and role, in the same order."""
    again = draft.get("again")
    before = (draft.get("search") or {}).get("people") or []
    if not again or len(again) != len(people) or len(before) != len(people):
        return None
    fields = ("sex", "age", "role")
    if any(
        [b.get(f) for f in fields] != [p.get(f) for f in fields]
        for b, p in zip(before, people, strict=True)
    ):
        return None
    return list(again)


@router.get("/canalizaciones/nueva/persona")
async def person_row(page: ProsecutorPage) -> Response:
    return page.render("prosecutor/_person.html", person=_blank_person(), **choices(page))


def search_intent(case: str, search: dict[str, Any]) -> str:
    """One search intent: this case (the draft's own random id) and what it looks for. The
    page re-runs the same search on every capacity change; those runs share the key, so
    capacity counts an unmet need once (ADR 0019)."""
    digest = hashlib.sha256(f"{case}:{json.dumps(search, sort_keys=True)}".encode())
    return digest.hexdigest()[:32]


@router.post("/canalizaciones/nueva/buscar")
async def search_capacity(page: ProsecutorPage, request: Request) -> Response:
    form = await request.form()
    search, problems = parse_search(form)
    answer: dict[str, Any] | None = None
    if not problems:
        draft = page.draft() or {}
        case = draft.get("case") or secrets.token_hex(8)
        answer = await search_places(page, search, intent_key=search_intent(case, search))
        await page.save_draft(
            {"search": search, "case": case, "again": same_group(draft, search["people"])}
        )
    values = dict(search=search, answer=answer, problems=problems, **choices(page))
    if page.is_htmx:
        return page.render("prosecutor/_results.html", **values)
    return page.render("prosecutor/new.html", **values)


async def search_places(
    page: Page, search: dict[str, Any], *, intent_key: str | None = None
) -> dict[str, Any]:
    """The places for the group, those she can send to first. As many as the search gives
    (50), so that places without an agreement cannot push the reachable ones off the list."""
    body = {k: v for k, v in search.items() if k != "state" or v}
    body["limit"] = SEARCH_LIMIT
    if intent_key:
        body["intent_key"] = intent_key
    answer: dict[str, Any] = await page.api.post(
        "capacity", "/api/v1/availability/search", json=body
    )
    mark_reachable(answer, await paths.agreements_in_force(page), search.get("people") or [])
    # Places without an agreement take only an urgent placement with a written
    # justification (ADR 0021), where the deployment allows it.
    answer["urgent_without_agreement"] = page.settings.urgent_without_agreement
    return answer


def mark_reachable(
    answer: dict[str, Any], agreements: list[dict[str, Any]], people: list[dict[str, Any]]
) -> None:
    """Mark each place she can send to (an agreement with its operator that covers this
    group there) and list those first; the others stay visible, marked (saying when an
    agreement exists but does not cover the group), and cannot be held as if reachable."""
    for r in answer.get("results") or []:
        facility = r["facility"]
        theirs = [a for a in agreements if facility["operator_institution_id"] in a["party_ids"]]
        r["reachable"] = any(paths.covers(a, people, facility.get("state")) for a in theirs)
        r["agreement_not_covering"] = bool(theirs) and not r["reachable"]
    answer["results"] = sorted(answer.get("results") or [], key=lambda r: not r["reachable"])
    answer["reachable"] = sum(1 for r in answer["results"] if r["reachable"])


# --- hold -------------------------------------------------------------------------------


@router.post("/canalizaciones/apartar")
async def hold_beds(page: ProsecutorPage, request: Request) -> Response:
    form = await request.form()
    draft = page.draft() or {}
    allocations = []
    for value in form.getlist("allocation"):
        pool_id, _, beds = str(value).partition(":")
        if pool_id and beds.isdigit():
            allocations.append({"pool_id": pool_id[:36], "beds": int(beds)})
    if not allocations or not draft.get("search"):
        return page.redirect("/canalizaciones/nueva")
    people = [
        {"sex": p.get("sex"), "age": p.get("age"), "role": p.get("role") or "victim"}
        for p in draft["search"].get("people") or []
    ][:MAX_PEOPLE]
    body: dict[str, Any] = {"allocations": allocations}
    if people:
        body["people"] = people  # kept with the hold: resumable from any session
    hold = await page.api.post("capacity", "/api/v1/holds", json=body)
    draft["hold"] = {
        "id": hold["id"],
        "facility_id": hold["facility_id"],
        "facility_name": str(form.get("facility_name") or "")[:200],
        "operator_institution_id": str(form.get("operator_institution_id") or "")[:36],
        "state": str(form.get("facility_state") or "")[:2],
    }
    await page.save_draft(draft)
    return page.redirect(f"/canalizaciones/apartados/{hold['id']}")


async def _hold_context(page: Page, hold_id: str) -> dict[str, Any]:
    draft = page.draft() or {}
    held = draft.get("hold") or {}
    hold = await page.api.get("capacity", f"/api/v1/holds/{hold_id}")
    same_session = held.get("id") == hold_id
    if not same_session:
        # Made in another session (or this one's draft moved on): the hold itself knows
        # its facility and its group.
        held = await held_from_capacity(page, hold)
    receiver = held.get("operator_institution_id") or None
    people = hold.get("people") or (draft.get("search") or {}).get("people") or []
    # Only agreements that bind this referral: in force, with the shelter's institution,
    # covering this group in the facility's state.
    usable = [
        a
        for a in await paths.agreements_in_force(page)
        if (receiver is None or receiver in a["party_ids"])
        and paths.covers(a, people, held.get("state") or None)
    ]
    needs = (draft.get("search") or {}).get("needs") or {}
    again = draft.get("again") if same_session else None
    return {
        # The same people as an earlier referral's ("buscar otro lugar"): their keys and
        # what was recorded of them.
        "again": again if again and len(again) == len(people) else None,
        # The language asked an interpreter for: what the people speak, to confirm.
        "interpreter_language": needs.get("interpreter_language") if same_session else None,
        "hold": hold,
        "held": held,
        "agreements": usable,
        "people": people,
        "expired": hold["status"] != "active",
    }


async def held_from_capacity(page: Page, hold: dict[str, Any]) -> dict[str, Any]:
    """What the hold page shows of a hold's facility, read from capacity."""
    try:
        facility = await page.api.get("capacity", f"/api/v1/facilities/{hold['facility_id']}")
    except ApiError:
        return {"id": hold["id"], "facility_id": hold["facility_id"]}
    return {
        "id": hold["id"],
        "facility_id": facility["id"],
        "facility_name": facility["name"],
        "operator_institution_id": facility["operator_institution_id"],
        "state": facility["state"],
    }


@router.get("/canalizaciones/apartados/{hold_id}")
async def hold_page(page: ProsecutorPage, hold_id: str) -> Response:
    values = await _hold_context(page, clean_id(hold_id))
    typed = typed_from_recorded(values["again"]) if values["again"] else {}
    return page.render("prosecutor/hold.html", problems=[], typed=typed, **values, **choices(page))


@router.post("/canalizaciones/apartados/{hold_id}/enviar")
async def send_referral(page: ProsecutorPage, hold_id: str, request: Request) -> Response:
    hold_id = clean_id(hold_id)
    form = await request.form()
    values = await _hold_context(page, hold_id)
    problems: list[str] = []
    if form.get("consent") != "on":
        problems.append(N_("Record the informed consent of the people before sending."))
    placement, placement_problems = paths.placement_fields(form, values["agreements"])
    problems.extend(placement_problems)
    urgency = form.get("urgency") if form.get("urgency") in ("urgent", "normal") else "urgent"
    nationalities = form.getlist("nationality")
    spoken = form.getlist("languages")
    people = []
    for i, person in enumerate(values["people"]):
        chosen = str(nationalities[i] if i < len(nationalities) else "")
        # Never a default country: a nationality is chosen, stateless, or "No information".
        if chosen == NO_INFORMATION:
            nationality: str | None = None
        elif chosen in COUNTRIES or chosen == STATELESS:
            nationality = chosen
        else:
            problems.append(N_("Choose the nationality of each person, or No information."))
            break
        raw = str(spoken[i] if i < len(spoken) else "")
        languages = [w.strip()[:40] for w in raw.split(",") if w.strip()][:10]
        variables, variable_problems = minimum_variables(form, i + 1, nationality)
        problems.extend(p for p in variable_problems if p not in problems)
        # The held group's sex, age and role; planning bonds (stays_with) stay with the hold.
        held = {k: person.get(k) for k in ("sex", "age", "role")}
        people.append({**held, "nationality": nationality, "languages": languages, **variables})
        key = (values["again"] or [{}] * (i + 1))[i].get("person_key")
        if key:
            people[-1]["person_key"] = key  # the same person, referred again
    if not people:
        problems.append(N_("The people of this referral were lost; start a new search."))
    held = values["held"]
    if not held.get("operator_institution_id"):
        problems.append(N_("The place of this hold is unknown; start a new search."))
    if problems:
        return page.render(
            "prosecutor/hold.html",
            status=422,
            problems=problems,
            typed=typed_people(form),
            **values,
            **choices(page),
        )
    body: dict[str, Any] = {
        "sending_institution_id": page.browser.row.institution_id,
        "receiving_institution_id": held["operator_institution_id"],
        "facility_id": values["hold"]["facility_id"],
        "hold_id": hold_id,
        "people": people,
        "consent": {"given": True},
        "urgency": urgency,
        **placement,
    }
    if held.get("state") in STATES:
        body["state"] = held["state"]
    reference = str(form.get("case_reference") or "").strip()[:100]
    if reference:
        body["case_reference"] = reference
    created = await page.api.post(
        "referral", "/api/v1/referrals", json=body, headers={"Idempotency-Key": f"hold-{hold_id}"}
    )
    if created["status"] == "draft":
        await page.api.post("referral", f"/api/v1/referrals/{created['id']}/send", json={})
    await page.save_draft(None)
    return page.redirect(f"/canalizaciones/{created['id']}?aviso=sent")


NO_VULNERABLE_GROUP = "none"
PERSON_FIELDS = ("nationality", "languages")
"""The send form's fields with one value per person (in the people's order)."""
PERSON_CHOICES = ("state_of_origin", "vulnerable", "offence")
"""The send form's per-person fields named ``<field>-<n>`` (n from 1): several values each."""


def minimum_variables(
    form: Any, n: int, nationality: str | None
) -> tuple[dict[str, Any], list[str]]:
    """The CNDH minimum variables the send form records for its ``n``-th person (from 1):
    state of origin, vulnerable groups and offences, each "Sin información" unless given.

    Nothing ticked among the vulnerable groups is *not asked* (``null``); "none" is asked,
    none applies (``[]``). A state of origin is a Mexican national's (or one whose
    nationality is not recorded): a foreigner's is not applicable.
    """
    problems: list[str] = []
    origin = str(form.get(f"state_of_origin-{n}") or NO_INFORMATION)
    state_of_origin: str | None = None
    if origin != NO_INFORMATION:
        if origin not in STATES:
            problems.append(N_("Choose a state of origin from the list, or No information."))
        elif nationality not in (None, "MEX"):
            problems.append(
                N_("The state of origin is recorded only for people of Mexican nationality.")
            )
        else:
            state_of_origin = origin
    ticked = [str(v) for v in form.getlist(f"vulnerable-{n}")]
    vulnerable: list[str] | None = None
    if NO_VULNERABLE_GROUP in ticked and len(ticked) > 1:
        problems.append(N_("A person belongs to no vulnerable group or to some of them, not both."))
    elif ticked == [NO_VULNERABLE_GROUP]:
        vulnerable = []
    elif ticked:
        if set(ticked) - set(VULNERABLE_GROUPS):
            problems.append(N_("Choose the vulnerable groups from the list."))
        else:
            vulnerable = sorted(set(ticked))
    offences = sorted({str(v) for v in form.getlist(f"offence-{n}")})
    if set(offences) - set(OFFENCES) or len(offences) > MAX_OFFENCES:
        problems.append(N_("Choose the offences from the list."))
        offences = []
    return {
        "state_of_origin": state_of_origin,
        "vulnerable_groups": vulnerable,
        "offences": offences,
    }, problems


def typed_from_recorded(recorded: list[dict[str, Any]]) -> dict[str, Any]:
    """The send form filled in with what an earlier referral recorded of the same people."""
    typed: dict[str, Any] = {
        "nationality": [p.get("nationality") or NO_INFORMATION for p in recorded],
        "languages": [", ".join(p.get("languages") or []) for p in recorded],
    }
    for n, p in enumerate(recorded, start=1):
        if p.get("state_of_origin"):
            typed[f"state_of_origin-{n}"] = [p["state_of_origin"]]
        groups = p.get("vulnerable_groups")
        if groups is not None:
            typed[f"vulnerable-{n}"] = list(groups) or [NO_VULNERABLE_GROUP]
        typed[f"offence-{n}"] = list(p.get("offences") or [])
    return typed


def typed_people(form: Any) -> dict[str, Any]:
    """What the send form held, to show it again after a problem (nothing typed is lost)."""
    typed: dict[str, Any] = {f: [str(v) for v in form.getlist(f)] for f in PERSON_FIELDS}
    for field in PERSON_CHOICES:
        for key in form:
            if key.startswith(f"{field}-"):
                typed[key] = [str(v) for v in form.getlist(key)]
    for key in ("urgency", "case_reference", "agreement"):
        typed[key] = str(form.get(key) or "")
    return typed


@router.get("/canalizaciones/apartados/{hold_id}/liberar")
async def release_confirm(page: ProsecutorPage, hold_id: str) -> Response:
    return page.render(
        "confirm.html",
        title=page.t.gettext("Release the held beds?"),
        question=page.t.gettext(
            "The beds go back to the pool at once and someone else may take them."
        ),
        action=f"/canalizaciones/apartados/{clean_id(hold_id)}/liberar",
        confirm_label=page.t.gettext("Yes, release the beds"),
        cancel_url=f"/canalizaciones/apartados/{clean_id(hold_id)}",
        reason=False,
    )


@router.post("/canalizaciones/apartados/{hold_id}/liberar")
async def release_hold(page: ProsecutorPage, hold_id: str) -> Response:
    await page.api.delete("capacity", f"/api/v1/holds/{clean_id(hold_id)}")
    draft = page.draft() or {}
    draft.pop("hold", None)
    await page.save_draft(draft)
    return page.redirect("/canalizaciones/nueva?aviso=released")


# --- her referrals ------------------------------------------------------------------------


def status_label(t: Translator, code: str) -> str:
    """A referral's status in the reader's language ("" for an unknown code)."""
    label = STATUSES.get(code)
    return t.gettext(label) if label else ""


@router.get("/canalizaciones")
async def referral_list(
    page: ProsecutorPage,
    estado: str | None = None,
    aviso: str | None = None,
    q: str = "",
    desde: str = "",
    hasta: str = "",
    siguiente: str | None = None,
) -> Response:
    """Her referrals, newest first, searched and paged by the referral service: one that is
    years old is found as well as today's."""
    status = estado if estado in STATUSES else None
    query = query_of(q)
    first, last = day_of(desde), day_of(hasta)
    days = {"desde": first.isoformat() if first else "", "hasta": last.isoformat() if last else ""}
    params = {"status": status or "", "q": query, **day_range(first, last)}
    listing = await api_page(
        page.api,
        "referral",
        "/api/v1/referrals",
        params={k: v for k, v in params.items() if v},
        cursor=siguiente,
        screen="/canalizaciones",
        filters={"estado": status or "", "q": query, **days},
    )
    names = await paths.institution_names(page)
    counts: dict[str, int] = {}
    if status is None and not listing.later and not (query or first or last):
        # the chart of the newest referrals (the list's default page), as before paging
        for r in await page.api.get("referral", "/api/v1/referrals"):
            counts[r["status"]] = counts.get(r["status"], 0) + 1
    chart = None
    if counts:
        shown = [code for code in STATUSES if counts.get(code)]
        chart = {
            "labels": [page.t.gettext(STATUSES[code]) for code in shown],
            "datasets": [
                {
                    "label": page.t.gettext("Referrals"),
                    "data": [counts[code] for code in shown],
                }
            ],
        }
    return page.render(
        "prosecutor/list.html",
        chart=chart,
        referrals=listing.items,
        cursor_page=listing,
        query=query,
        days=days,
        current_status=status,
        statuses=STATUSES,
        counts=counts,
        names=names,
        notice=page.t.gettext(NOTICES[aviso]) if aviso in NOTICES else None,
    )


@router.get("/canalizaciones/{referral_id}")
async def referral_detail(
    page: ProsecutorPage, referral_id: str, aviso: str | None = None
) -> Response:
    values = await detail_values(page, referral_id)
    notice = page.t.gettext(NOTICES[aviso]) if aviso in NOTICES else None
    return page.render("prosecutor/detail.html", notice=notice, **values)


async def detail_values(page: Page, referral_id: str) -> dict[str, Any]:
    """What her referral's page shows (the after-acceptance block adds to it)."""
    referral = await page.api.get("referral", f"/api/v1/referrals/{clean_id(referral_id)}")
    names = await paths.institution_names(page)
    try:
        facility = await page.api.get("capacity", f"/api/v1/facilities/{referral['facility_id']}")
    except ApiError:
        facility = None
    due = referral.get("response_due_at")
    overdue = bool(
        due
        and referral["status"] == "sent"
        and datetime.fromisoformat(due.replace("Z", "+00:00")) < datetime.now(UTC)
    )
    return dict(
        referral=referral,
        facility=facility,
        names=names,
        statuses=STATUSES,
        actions=ACTIONS,
        obligations=OBLIGATIONS,
        obligation_statuses=OBLIGATION_STATUSES,
        overdue=overdue,
        path=await paths.path_of(page, referral["id"]),
        can_cancel=referral["status"] in ("draft", *OPEN_STATUSES),
        address=None,
        default_arrival=default_arrival(),
        **choices(page),
    )


def default_arrival(now: datetime | None = None) -> str:
    """Two hours from now, on the quarter hour, as a ``datetime-local`` value (local time)."""
    at = (now or datetime.now(UTC)).astimezone(TIMEZONE) + timedelta(hours=2)
    return at.replace(minute=at.minute - at.minute % 15).strftime("%Y-%m-%dT%H:%M")


@router.get("/canalizaciones/{referral_id}/cancelar")
async def cancel_confirm(page: ProsecutorPage, referral_id: str) -> Response:
    rid = clean_id(referral_id)
    return page.render(
        "confirm.html",
        title=page.t.gettext("Cancel this referral?"),
        question=page.t.gettext(
            "The shelter is told at once and the held beds are released. This cannot be undone."
        ),
        action=f"/canalizaciones/{rid}/cancelar",
        confirm_label=page.t.gettext("Yes, cancel the referral"),
        cancel_url=f"/canalizaciones/{rid}",
        reason=True,
    )


@router.post("/canalizaciones/{referral_id}/cancelar")
async def cancel_referral(
    page: ProsecutorPage,
    referral_id: str,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    rid = clean_id(referral_id)
    body = {"reason": reason.strip()} if reason.strip() else {}
    await page.api.post("referral", f"/api/v1/referrals/{rid}/cancel", json=body)
    return page.redirect(f"/canalizaciones/{rid}?aviso=cancelled")
