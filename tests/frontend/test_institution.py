"""The institution admin's pages through the ASGI app; every persona's pages refuse others."""

from __future__ import annotations

import re

import pytest

from canaliza.demo import CASA_MERCEDES, FGR
from tests.conftest import running
from tests.frontend.conftest import csrf_of, sign_in
from tests.frontend.ops_helpers import api_headers, form_fields

pytestmark = pytest.mark.slow

PASSWORD = "una-contraseña-larga-1"


async def test_institution_admin_manages_users_and_an_agreement(demo_app):
    async with running(demo_app) as client:
        admin = await api_headers(client, "admin")
        for party in (CASA_MERCEDES, FGR):  # only the two institutions this test needs
            made = await client.post(
                "/api/v1/institutions",
                json={"id": party.id, "name": party.name, "type": party.type,
                      "state": party.state},
                headers=admin,
            )  # fmt: skip
            assert made.status_code == 201, made.text
        made = await client.post(
            "/api/v1/auth/users",
            json={"username": "admin.mercedes", "display_name": "Dirección Mercedes",
                  "password": PASSWORD, "roles": ["institution_admin"],
                  "institution_id": CASA_MERCEDES.id},
            headers=admin,
        )  # fmt: skip
        assert made.status_code == 201, made.text
        await sign_in(client, "admin.mercedes", PASSWORD)
        assert (await client.get("/")).headers["location"] == "/institucion"
        details = await client.get("/institucion")
        assert details.status_code == 200, details.text
        assert "Casa de las Mercedes" in details.text
        # She also sees SEGOB registration of her facilities (none in this small world).
        registration = await client.get("/refugio/registro")
        assert registration.status_code == 200, registration.text
        assert "Registro de mis instalaciones ante la SEGOB" in registration.text
        users = await client.get("/institucion/usuarios")
        assert 'data-username="coordinadora"' in users.text
        assert 'data-username="fiscal"' not in users.text  # another institution's
        csrf = csrf_of(users.text)

        new_user = {"csrf_token": csrf, "display_name": "Trabajadora Social", "username": "ts.uno",
                    "role": "shelter_coordinator", "password": PASSWORD}  # fmt: skip
        mismatch = await client.post(
            "/institucion/usuarios/nuevo", data={**new_user, "password_again": "otra-cosa-larga"}
        )
        assert mismatch.status_code == 422 and "no coinciden" in mismatch.text
        oversight = await client.post(
            "/institucion/usuarios/nuevo",
            data={**new_user, "role": "segob_auditor", "password_again": PASSWORD},
        )
        assert oversight.status_code == 422
        # Issue 20: an NGO's form offers only the roles an NGO may have, and refuses others.
        form_page = await client.get("/institucion/usuarios/nuevo")
        assert 'value="shelter_coordinator"' in form_page.text
        assert 'value="prosecutor"' not in form_page.text
        assert 'value="inm_officer"' not in form_page.text
        minted = await client.post(
            "/institucion/usuarios/nuevo",
            data={**new_user, "role": "prosecutor", "password_again": PASSWORD},
        )
        assert minted.status_code == 422
        created = await client.post(
            "/institucion/usuarios/nuevo", data={**new_user, "password_again": PASSWORD}
        )
        assert created.status_code == 303, created.text
        users = await client.get(created.headers["location"])
        assert 'data-username="ts.uno"' in users.text
        assert "El usuario fue creado" in users.text

        # Issue 19: a temporary password for ts.uno (shown once), then her account
        # deactivated and reactivated; another institution's user is not hers to touch.
        row = users.text.split('data-username="ts.uno"', 1)[1].split("</tr>", 1)[0]
        found = re.search(r'href="/institucion/usuarios/([^/"]+)/contrasena"', row)
        assert found is not None
        target = f"/institucion/usuarios/{found[1]}"
        confirm = await client.get(f"{target}/contrasena")
        assert "¿Restablecer la contraseña de Trabajadora Social?" in confirm.text
        reset = await client.post(f"{target}/contrasena", data={"csrf_token": csrf})
        assert reset.status_code == 200, reset.text
        assert reset.headers["cache-control"] == "no-store"
        secret = re.search(r"data-temporary-password>([a-z2-9-]{19})<", reset.text)
        assert secret is not None
        token = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "ts.uno", "password": secret[1],
                  "client_id": "canaliza-cli"},
        )  # fmt: skip
        # temporary: it opens only the sign-in form's "choose a new password" step
        assert token.status_code == 400, token.text
        assert token.json()["error_description"] == "password_change_required"
        off = await client.post(f"{target}/desactivar", data={"csrf_token": csrf})
        assert off.status_code == 303 and off.headers["location"].endswith("user_deactivated")
        users = await client.get(off.headers["location"])
        assert "Desactivado" in users.text and "ya no puede iniciar sesión" in users.text
        on = await client.post(f"{target}/reactivar", data={"csrf_token": csrf})
        assert on.status_code == 303
        everyone = (await client.get("/api/v1/auth/users", headers=admin)).json()
        fiscal = next(u for u in everyone if u["username"] == "fiscal")
        other = await client.post(
            f"/institucion/usuarios/{fiscal['id']}/desactivar", data={"csrf_token": csrf}
        )
        assert other.status_code == 404

        # An agreement with FGR: draft, ready, signed by us, the PDF, then revoked.
        listing = await client.get("/institucion/convenios")
        assert listing.status_code == 200
        form = await client.get("/institucion/convenios/nuevo")
        assert f'value="{FGR.id}"' in form.text
        agreement = {"csrf_token": csrf, "number": "CONV-PRUEBA-1", "title": "Convenio de prueba",
                     "party": [FGR.id], "valid_from": "2026-01-01", "valid_to": "2026-12-31"}  # fmt: skip
        backwards = await client.post(
            "/institucion/convenios/nuevo", data={**agreement, "valid_to": "2025-01-01"}
        )
        assert backwards.status_code == 422 and "antes de empezar" in backwards.text
        made = await client.post("/institucion/convenios/nuevo", data=agreement)
        assert made.status_code == 303, made.text
        url = made.headers["location"].split("?")[0]
        page = await client.get(made.headers["location"])
        assert 'data-status="draft"' in page.text
        ready = await client.post(f"{url}/lista", data={"csrf_token": csrf})
        assert ready.status_code == 303
        confirm = await client.get(f"{url}/firmar")
        assert "¿Firmar este convenio?" in confirm.text
        signed = await client.post(f"{url}/firmar", data=form_fields(confirm.text, f"{url}/firmar"))
        assert signed.status_code == 303, signed.text
        page = await client.get(signed.headers["location"])
        assert "Firmó el convenio" in page.text
        found = re.search(rf'data-party="{CASA_MERCEDES.id}">(.*?)</tr>', page.text, re.S)
        assert found is not None
        ours = found[1]
        assert "firmado el" in ours

        not_pdf = await client.post(
            f"{url}/documento",
            data={"csrf_token": csrf},
            files={"document": ("convenio.pdf", b"hola", "application/pdf")},
        )
        assert not_pdf.status_code == 422 and "no es un PDF" in not_pdf.text
        pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
        uploaded = await client.post(
            f"{url}/documento",
            data={"csrf_token": csrf},
            files={"document": ("convenio.pdf", pdf, "application/pdf")},
        )
        assert uploaded.status_code == 303, uploaded.text
        page = await client.get(uploaded.headers["location"])
        assert "SHA-256" in page.text

        confirm = await client.get(f"{url}/revocar")
        assert "¿Revocar este convenio?" in confirm.text
        revoked = await client.post(f"{url}/revocar", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        page = await client.get(revoked.headers["location"])
        assert 'data-status="revoked"' in page.text


REFUSED = {
    "fiscal": ["/refugio", "/segob/padron", "/segob/bitacora", "/institucion/usuarios"],
    "coordinadora": ["/segob/padron", "/segob/estadisticas", "/institucion/convenios"],
    "auditor": ["/refugio", "/refugio/canalizaciones", "/institucion"],
}


async def test_each_persona_is_refused_the_others_screens(demo_app):
    async with running(demo_app) as client:
        for path in REFUSED["fiscal"]:
            signed_out = await client.get(path)
            assert signed_out.status_code == 303
            assert signed_out.headers["location"].startswith("/entrar"), path
        for username, refused in REFUSED.items():
            await sign_in(client, username)
            for path in refused:
                page = await client.get(path)
                assert page.status_code == 403, (username, path)
                assert "Su rol no permite" in page.text
            # A form post without the session's CSRF token changes nothing.
            forged = await client.post("/segob/padron/x/visitas", data={"mode": "planned"})
            assert forged.status_code == 403
            csrf = csrf_of(page.text)
            out = await client.post("/salir", data={"csrf_token": csrf})
            assert out.status_code == 303
