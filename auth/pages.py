"""The minimal sign-in page of the authorization-code flow (Spanish; styled by the frontend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse

OAUTH_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
)


# The sign-in pages take the web UI's stylesheet (same origin), nothing else. Every one of
# them — the form, a wrong password (401), an invalid request — needs it, or the kernel's
# API policy (``default-src 'none'``) leaves the page unstyled.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


def html_page(content: str, status: int = 200) -> HTMLResponse:
    """A sign-in page with its headers: styled, never cached, never framed."""
    return HTMLResponse(
        content,
        status,
        headers={
            "Content-Security-Policy": PAGE_CSP,
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
        },
    )


def login_page(
    *,
    params: Mapping[str, str],
    csrf: str,
    error: str | None = None,
    ask_totp: bool = False,
    ask_new_password: bool = False,
    providers: Sequence[tuple[str, str]] = (),
) -> str:
    """The sign-in form; OAuth parameters travel as hidden fields.

    ``providers`` are (key, name) of institutions' own identity providers, offered as
    links that carry the same authorization request.
    """
    query = urlencode({k: params[k] for k in OAUTH_PARAMS if params.get(k)})
    federated = "".join(
        f'<li><a class="federated" href="/auth/federation/{escape(key)}/login?{escape(query)}">'
        f"Entrar con {escape(name)}</a></li>"
        for key, name in providers
    )
    if federated:
        federated = f"<h2>Acceso con la cuenta de su institución</h2><ul>{federated}</ul>"
    hidden = "\n".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(params[k])}">'
        for k in OAUTH_PARAMS
        if params.get(k)
    )
    alert = f'<p class="alert error" role="alert">{escape(error)}</p>' if error else ""
    username = escape(params.get("username", ""))
    totp = (
        '<div class="field"><label>Código de verificación (TOTP) <input name="totp" '
        'inputmode="numeric" '
        'autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus>'
        "</label></div>"
        if ask_totp
        else ""
    )
    renew = (
        '<div class="field"><label>Contraseña nueva <span class="hint">(al menos 12 '
        'caracteres)</span> <input name="new_password" type="password" '
        'autocomplete="new-password" minlength="12" maxlength="200" required></label></div>'
        '<div class="field"><label>Contraseña nueva, otra vez <input name="new_password_again" '
        'type="password" autocomplete="new-password" minlength="12" maxlength="200" required>'
        "</label></div>"
        if ask_new_password
        else ""
    )
    current = "Contraseña temporal" if ask_new_password else "Contraseña"
    return _document(
        "Iniciar sesión",
        f"""<h1>Iniciar sesión en Canaliza</h1>
{alert}
<form method="post" action="/auth/authorize">
<input type="hidden" name="csrf_token" value="{escape(csrf)}">
{hidden}
<div class="field"><label>Usuario <input name="username" autocomplete="username" maxlength="80" required
 value="{username}"></label></div>
<div class="field"><label>{current} <input name="password" type="password"
 autocomplete="current-password" maxlength="200" required></label></div>
{totp}
{renew}
<button type="submit" class="primary">Entrar</button>
</form>
{federated}""",
    )


def error_page(detail: str) -> str:
    """A page for authorization requests that cannot be sent back to the client."""
    return _document(
        "Solicitud inválida",
        f"""<h1>No se puede iniciar sesión</h1>
<p class="alert error" role="alert">{escape(detail)}</p>
<p><a href="/">Volver al inicio</a></p>""",
    )


def _document(title: str, main: str) -> str:
    """A sign-in page: the web UI's stylesheet and header around ``main``."""
    return f"""<!doctype html>
<html lang="es-MX"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} — Canaliza</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body>
<header class="site-header"><div class="brand">Canaliza</div></header>
<main class="narrow">
{main}
</main></body></html>"""
