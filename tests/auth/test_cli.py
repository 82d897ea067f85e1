"""``canaliza auth ...``: users, password reset, clients, key rotation."""

from __future__ import annotations

import re

from sqlmodel import Session
from typer.testing import CliRunner

from auth import institutions, service
from auth.cli import app
from auth.database import db
from auth.keys import current_key
from auth.models import OAuthClient
from canaliza.demo import CASA_MERCEDES, FGR
from tests.auth.conftest import event_types


def test_operator_commands(tmp_path):
    db.configure(f"sqlite:///{tmp_path}/auth.db")
    runner = CliRunner()
    try:
        # Issue 20: an institution auth has not learned of is refused, and so is a role its
        # type does not allow (an NGO's prosecutor).
        unknown = runner.invoke(
            app, ["create-user", "mp.garcia", "--role", "prosecutor", "--institution-id", FGR.id]
        )
        assert unknown.exit_code == 1 and "institution_not_found" in unknown.output
        with db.unit_of_work() as session:
            institutions.learn_demo(session, [FGR, CASA_MERCEDES])
        misfit = runner.invoke(
            app,
            ["create-user", "falso", "--role", "prosecutor", "--institution-id", CASA_MERCEDES.id],
        )
        assert misfit.exit_code == 1 and "role_not_allowed_for_institution" in misfit.output
        result = runner.invoke(
            app, ["create-user", "mp.garcia", "--role", "prosecutor", "--institution-id", FGR.id]
        )
        assert result.exit_code == 0, result.output
        initial = re.search(r"contraseña inicial: (\S+)", result.output)
        assert initial
        again = runner.invoke(app, ["create-user", "mp.garcia", "--role", "prosecutor"])
        assert again.exit_code == 1 and "username_taken" in again.output
        bad = runner.invoke(app, ["create-user", "x.y", "--role", "emperor"])
        assert bad.exit_code == 1 and "invalid_roles" in bad.output

        result = runner.invoke(app, ["reset-password", "mp.garcia", "--password", "otra-clave-12"])
        assert result.exit_code == 0, result.output
        assert runner.invoke(app, ["reset-password", "nadie"]).exit_code == 1

        result = runner.invoke(
            app, ["create-client", "fgr-sistema", "--role", "service", "--institution-id", FGR.id]
        )
        assert result.exit_code == 0, result.output
        secret = re.search(r"secreto: (\S+)", result.output)
        assert secret

        with Session(db.engine) as session:
            user = service.find_user(session, "mp.garcia")
            assert user is not None and user.role_list == ["prosecutor"]
            assert user.institution_id == FGR.id
            assert service.verify_password(user.password_hash, "otra-clave-12")
            assert not service.verify_password(user.password_hash, initial[1])
            client = session.get(OAuthClient, "fgr-sistema")
            assert client is not None and service.check_client_secret(client, secret[1])
            before = current_key(session)
        result = runner.invoke(app, ["rotate-key"])
        assert result.exit_code == 0, result.output
        with Session(db.engine) as session:
            after = current_key(session)
        assert after is not None and (before is None or after.kid != before.kid)
        assert after.kid in result.output
        assert event_types()[:2] == ["auth.user.created", "auth.user.password_reset"]
    finally:
        db.dispose()
