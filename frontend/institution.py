"""The institution admin's screens: her institution, its users, its agreements.

GET  /institucion                               the institution's details and former names
GET  /institucion/usuarios                      users of her institution
GET|POST /institucion/usuarios/nuevo            create a user (roles she may grant)
GET  /institucion/convenios                     agreements her institution is party to
GET|POST /institucion/convenios/nuevo           register an agreement (draft)
GET  /institucion/convenios/{id}                parties, signatures, document
POST /institucion/convenios/{id}/lista          mark ready for signature
GET|POST /institucion/convenios/{id}/firmar     sign on behalf of her institution (confirmed)
POST /institucion/convenios/{id}/documento      upload the signed PDF
GET|POST /institucion/convenios/{id}/revocar    revoke (confirmed, reason)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from frontend import paths
from frontend.api import ApiError
from frontend.dependencies import FrontendRoute, Page, error_message, require_role
from frontend.i18n import N_
from services.vocabulary import INSTITUTION_ROLES, InstitutionType, UserRole

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

ADMIN_ROLES = (UserRole.INSTITUTION_ADMIN, UserRole.PLATFORM_ADMIN)
AdminPage = Annotated[Page, Depends(require_role(*ADMIN_ROLES))]

# Roles an institution admin may hand out (auth refuses platform-wide and oversight roles).
GRANTABLE: dict[str, str] = {
    UserRole.PROSECUTOR: N_("Prosecutor"),
    UserRole.SHELTER_COORDINATOR: N_("Shelter coordinator"),
    UserRole.DIF_OFFICER: N_("DIF officer"),
    UserRole.INM_OFFICER: N_("INM officer"),
    UserRole.CEAV_OFFICER: N_("CEAV officer"),
    UserRole.INSTITUTION_ADMIN: N_("Institution administrator"),
}
ROLE_LABELS: dict[str, str] = {
    **GRANTABLE,
    UserRole.PLATFORM_ADMIN: N_("Platform administrator"),
    UserRole.SEGOB_AUDITOR: N_("SEGOB auditor"),
    UserRole.OBSERVER: N_("Observer"),
    UserRole.SERVICE: N_("Service account"),
}
AGREEMENT_STATUSES = {
    "draft": N_("Draft"),
    "ready_for_signature": N_("Ready for signature"),
    "signed": N_("Signed"),
    "expired": N_("Expired"),
    "revoked": N_("Revoked"),
}
NOTICES = {
    "user_created": N_("The user was created. Give them their username and password in person."),
    "user_deactivated": N_("The account was deactivated: it can no longer sign in."),
    "user_reactivated": N_("The account was reactivated."),
    "agreement_created": N_("The agreement was registered as a draft."),
    "ready": N_("The agreement is ready for signature by every party."),
    "signed": N_("You signed the agreement on behalf of your institution."),
    "document": N_("The signed PDF was stored."),
    "revoked": N_("The agreement was revoked. No new referral can travel along it."),
}
MAX_PDF_BYTES = 10 * 1024 * 1024
USERNAME = re.compile(r"^[a-zA-Z0-9._-]{3,80}$")


def _notice(page: Page, aviso: str | None) -> str | None:
    return page.t.gettext(NOTICES[aviso]) if aviso in NOTICES else None


def _institution_id(page: Page) -> str:
    institution = page.browser.row.institution_id
    if not institution:
        raise ApiError(403, "forbidden", "")
    return institution


async def _names(page: Page) -> dict[str, str]:
    institutions = await page.api.get("referral", "/api/v1/institutions")
    return {i["id"]: i["name"] for i in institutions}


# --- the institution ----------------------------------------------------------------------


@router.get("/institucion")
async def details(page: AdminPage) -> Response:
    institution_id = _institution_id(page)
    institution = await page.api.get("referral", f"/api/v1/institutions/{institution_id}")
    parent = None
    if institution.get("parent_id"):
        try:
            parent = await page.api.get(
                "referral", f"/api/v1/institutions/{institution['parent_id']}"
            )
        except ApiError:
            parent = None
    return page.render("institution/details.html", institution=institution, parent=parent)


# --- users ----------------------------------------------------------------------------------


@router.get("/institucion/usuarios")
async def users(page: AdminPage, aviso: str | None = None) -> Response:
    institution_id = _institution_id(page)
    found = await page.api.get_every("auth", "/api/v1/auth/users", params={"limit": 500})
    # A platform admin sees every user; this screen is about one institution.
    mine = [u for u in found if u.get("institution_id") == institution_id]
    return page.render(
        "institution/users.html",
        users=mine,
        role_labels=ROLE_LABELS,
        notice=_notice(page, aviso),
        me=page.browser.row.user_sub,
    )


async def _grantable(page: Page) -> dict[str, str]:
    """The roles this admin may hand out: those of GRANTABLE the institution's type allows."""
    institution = await page.api.get("referral", f"/api/v1/institutions/{_institution_id(page)}")
    kind = institution.get("type")
    if kind not in InstitutionType.values():
        return {}
    allowed = INSTITUTION_ROLES[InstitutionType(kind)]
    return {code: label for code, label in GRANTABLE.items() if code in allowed}


async def _user_form(
    page: Page, *, problems: Sequence[str] = (), form: Any = None, status: int = 200
) -> Response:
    return page.render(
        "institution/user_new.html",
        status=status,
        problems=list(problems),
        form=form or {},
        grantable=await _grantable(page),
    )


@router.get("/institucion/usuarios/nuevo")
async def user_new(page: AdminPage) -> Response:
    return await _user_form(page)


@router.post("/institucion/usuarios/nuevo")
async def user_create(
    page: AdminPage,
    username: Annotated[str, Form(max_length=80)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    password_again: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    form = {"username": username, "display_name": display_name, "role": role}
    problems: list[str] = []
    if not USERNAME.match(username.strip()):
        problems.append(
            N_("The username has 3 to 80 letters, digits, dots, hyphens or underscores.")
        )
    if not display_name.strip():
        problems.append(N_("Write the person's name as colleagues know it."))
    if len(password) < 12:
        problems.append(N_("The password needs at least 12 characters."))
    elif password != password_again:
        problems.append(N_("The two passwords are not the same."))
    if role not in await _grantable(page):
        problems.append(N_("Choose the person's role."))
    if problems:
        return await _user_form(page, problems=problems, form=form, status=422)
    body = {
        "username": username.strip(),
        "display_name": display_name.strip(),
        "password": password,
        "roles": [role],
        "institution_id": _institution_id(page),
    }
    try:
        await page.api.post("auth", "/api/v1/auth/users", json=body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return await _user_form(
            page, problems=[error_message(page.t, exc)], form=form, status=exc.status
        )
    return page.redirect("/institucion/usuarios?aviso=user_created")


async def _user(page: Page, user_id: str) -> dict[str, Any]:
    """One user of the admin's institution (404 for anyone else's)."""
    found = await page.api.get_every("auth", "/api/v1/auth/users", params={"limit": 500})
    mine = _institution_id(page)
    for user in found:
        if user["id"] == user_id[:64] and user.get("institution_id") == mine:
            return dict(user)
    raise ApiError(404, "not_found", "")


def _confirm_for(page: Page, user: dict[str, Any], step: str, texts: tuple[str, ...]) -> Response:
    """The confirmation page of one step on one account (title, question, button)."""
    title, question, label = texts
    return page.render(
        "confirm.html",
        title=page.t.gettext(title, name=user["display_name"]),
        question=page.t.gettext(question),
        action=f"/institucion/usuarios/{user['id']}/{step}",
        confirm_label=page.t.gettext(label),
        cancel_url="/institucion/usuarios",
        reason=False,
    )


DEACTIVATE_TEXTS = (
    N_("Deactivate %(name)s?"),
    N_(
        "The account can no longer sign in; a session it has open ends within minutes. "
        "Its history stays. You can reactivate it later."
    ),
    N_("Yes, deactivate the account"),
)
RESET_TEXTS = (
    N_("Reset the password of %(name)s?"),
    N_(
        "Their current password stops working now. You will see a temporary password "
        "once: give it to them in person; they sign in with it."
    ),
    N_("Yes, reset the password"),
)


@router.get("/institucion/usuarios/{user_id}/desactivar")
async def user_deactivate_confirm(page: AdminPage, user_id: str) -> Response:
    return _confirm_for(page, await _user(page, user_id), "desactivar", DEACTIVATE_TEXTS)


@router.post("/institucion/usuarios/{user_id}/desactivar")
async def user_deactivate(page: AdminPage, user_id: str) -> Response:
    user = await _user(page, user_id)
    await page.api.post("auth", f"/api/v1/auth/users/{user['id']}/deactivate", json={})
    return page.redirect("/institucion/usuarios?aviso=user_deactivated")


@router.post("/institucion/usuarios/{user_id}/reactivar")
async def user_reactivate(page: AdminPage, user_id: str) -> Response:
    user = await _user(page, user_id)
    await page.api.post("auth", f"/api/v1/auth/users/{user['id']}/reactivate", json={})
    return page.redirect("/institucion/usuarios?aviso=user_reactivated")


@router.get("/institucion/usuarios/{user_id}/contrasena")
async def password_reset_confirm(page: AdminPage, user_id: str) -> Response:
    return _confirm_for(page, await _user(page, user_id), "contrasena", RESET_TEXTS)


@router.post("/institucion/usuarios/{user_id}/contrasena")
async def password_reset(page: AdminPage, user_id: str) -> Response:
    user = await _user(page, user_id)
    answer = await page.api.post("auth", f"/api/v1/auth/users/{user['id']}/password-reset", json={})
    response = page.render("institution/password_reset.html", person=user, answer=answer)
    response.headers["Cache-Control"] = "no-store"  # shown once, never kept by the browser
    return response


# --- agreements -------------------------------------------------------------------------------


@router.get("/institucion/convenios")
async def agreements(page: AdminPage, aviso: str | None = None) -> Response:
    institution_id = _institution_id(page)
    found = await page.api.get("referral", "/api/v1/agreements")
    mine = [
        a for a in found if institution_id in a["party_ids"] or page.has(UserRole.PLATFORM_ADMIN)
    ]
    mine.sort(key=lambda a: (a["status"] != "ready_for_signature", a["number"]))
    return page.render(
        "institution/agreements.html",
        agreements=mine,
        names=await _names(page),
        statuses=AGREEMENT_STATUSES,
        me=institution_id,
        notice=_notice(page, aviso),
        alerts=await paths.agreement_alerts(page),
    )


async def _agreement_form(
    page: Page, *, problems: Sequence[str] = (), form: Any = None, status: int = 200
) -> Response:
    names = await _names(page)
    me = _institution_id(page)
    others = sorted(((i, n) for i, n in names.items() if i != me), key=lambda pair: pair[1])
    return page.render(
        "institution/agreement_new.html",
        status=status,
        problems=list(problems),
        form=form or {},
        chosen=set(form.getlist("party")) if form is not None else set(),
        others=others,
        me_name=names.get(me, ""),
    )


@router.get("/institucion/convenios/nuevo")
async def agreement_new(page: AdminPage) -> Response:
    return await _agreement_form(page)


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


@router.post("/institucion/convenios/nuevo")
async def agreement_create(page: AdminPage, request: Request) -> Response:
    form = await request.form()
    me = _institution_id(page)
    number = str(form.get("number") or "").strip()[:80]
    title = str(form.get("title") or "").strip()[:300]
    parties = [str(p)[:36] for p in form.getlist("party") if str(p) != me][:19]
    valid_from = _date(str(form.get("valid_from") or ""))
    valid_to = _date(str(form.get("valid_to") or ""))
    problems: list[str] = []
    if not number or not title:
        problems.append(N_("Give the agreement's number and title."))
    if not parties:
        problems.append(N_("Choose at least one other institution that is party to it."))
    if valid_from is None or valid_to is None:
        problems.append(N_("Give the dates the agreement is valid from and to."))
    elif valid_to < valid_from:
        problems.append(N_("The agreement cannot end before it begins."))
    if problems:
        return await _agreement_form(page, problems=problems, form=form, status=422)
    body = {
        "number": number,
        "title": title,
        "party_ids": [me, *parties],
        "valid_from": str(valid_from),
        "valid_to": str(valid_to),
    }
    try:
        created = await page.api.post("referral", "/api/v1/agreements", json=body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        problem = error_message(page.t, exc)
        return await _agreement_form(page, problems=[problem], form=form, status=exc.status)
    return page.redirect(f"/institucion/convenios/{created['id']}?aviso=agreement_created")


async def _agreement_values(page: Page, agreement_id: str) -> dict[str, Any]:
    agreement = await page.api.get("referral", f"/api/v1/agreements/{agreement_id[:36]}")
    me = _institution_id(page)
    mine = next((p for p in agreement["parties"] if p["institution_id"] == me), None)
    return {
        "agreement": agreement,
        "names": await _names(page),
        "statuses": AGREEMENT_STATUSES,
        "me": me,
        "can_sign": bool(
            mine and not mine["signed"] and agreement["status"] in ("draft", "ready_for_signature")
        ),
        "is_party": mine is not None,
    }


@router.get("/institucion/convenios/{agreement_id}")
async def agreement_detail(
    page: AdminPage, agreement_id: str, aviso: str | None = None
) -> Response:
    values = await _agreement_values(page, agreement_id)
    return page.render("institution/agreement.html", notice=_notice(page, aviso), **values)


@router.post("/institucion/convenios/{agreement_id}/lista")
async def agreement_ready(page: AdminPage, agreement_id: str) -> Response:
    aid = agreement_id[:36]
    await page.api.post("referral", f"/api/v1/agreements/{aid}/ready")
    return page.redirect(f"/institucion/convenios/{aid}?aviso=ready")


@router.get("/institucion/convenios/{agreement_id}/firmar")
async def sign_confirm(page: AdminPage, agreement_id: str) -> Response:
    values = await _agreement_values(page, agreement_id)
    return page.render("institution/sign.html", **values)


@router.post("/institucion/convenios/{agreement_id}/firmar")
async def sign(page: AdminPage, agreement_id: str) -> Response:
    aid = agreement_id[:36]
    await page.api.post(
        "referral",
        f"/api/v1/agreements/{aid}/sign",
        json={"institution_id": _institution_id(page)},
    )
    return page.redirect(f"/institucion/convenios/{aid}?aviso=signed")


@router.post("/institucion/convenios/{agreement_id}/documento")
async def upload_document(page: AdminPage, agreement_id: str, request: Request) -> Response:
    aid = agreement_id[:36]
    form = await request.form()
    upload = form.get("document")
    content = b""
    if isinstance(upload, UploadFile):
        content = await upload.read(MAX_PDF_BYTES + 1)
    problem = None
    if not content:
        problem = page.t.gettext("Choose the signed PDF to upload.")
    elif len(content) > MAX_PDF_BYTES:
        problem = page.t.gettext("The file is larger than 10 MB.")
    elif not content.startswith(b"%PDF"):
        problem = page.t.gettext("The file is not a PDF.")
    if problem:
        values = await _agreement_values(page, aid)
        return page.render("institution/agreement.html", status=422, problem=problem, **values)
    await page.api.post(
        "referral",
        f"/api/v1/agreements/{aid}/document",
        content=content,
        headers={"Content-Type": "application/pdf"},
    )
    return page.redirect(f"/institucion/convenios/{aid}?aviso=document")


@router.get("/institucion/convenios/{agreement_id}/revocar")
async def revoke_confirm(page: AdminPage, agreement_id: str) -> Response:
    aid = agreement_id[:36]
    return page.render(
        "confirm.html",
        title=page.t.gettext("Revoke this agreement?"),
        question=page.t.gettext(
            "No new referral can travel along a revoked agreement, for any of its parties. "
            "This cannot be undone."
        ),
        action=f"/institucion/convenios/{aid}/revocar",
        confirm_label=page.t.gettext("Yes, revoke the agreement"),
        cancel_url=f"/institucion/convenios/{aid}",
        reason=False,
    )


@router.post("/institucion/convenios/{agreement_id}/revocar")
async def revoke(page: AdminPage, agreement_id: str) -> Response:
    aid = agreement_id[:36]
    await page.api.post("referral", f"/api/v1/agreements/{aid}/revoke", json={})
    return page.redirect(f"/institucion/convenios/{aid}?aviso=revoked")
