"""Logic of the auth service: users, logins and lockout, clients, refresh tokens, codes.

Plain functions with keyword-only arguments and no HTTP. Every state change that matters
for oversight writes an event through the outbox in the same transaction. Passwords,
secrets and tokens never appear in events or logs.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlmodel import Session, col, select

from auth import institutions
from auth.config import auth_settings
from auth.database import outbox
from auth.exceptions import ClientExists, InvalidTotp, UsernameTaken, UserNotFound
from auth.keys import ensure_signing_key, expires_at, seal_signing_keys
from auth.models import AuthorizationCode, OAuthClient, RefreshToken, RevokedAccessToken, User
from auth.ratelimit import LOCKOUTS
from canaliza.demo import DEMO_CLI_CLIENT_ID, DEMO_INSTITUTIONS, DEMO_USERS
from services import contracts
from services.clock import as_utc, utcnow
from services.contracts import EventPayload
from services.contracts import auth as auth_events
from services.errors import CanalizaError
from services.ids import new_id, stable_id
from services.security import ROLES
from services.settings import Settings, get_settings
from services.vocabulary import UserRole

log = logging.getLogger("canaliza.auth")

_hasher = PasswordHasher()
SERVICE_CLIENT_DEFAULT_ID = "canaliza-services"
# A hash to compare against when the username is unknown, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class LoginFailed(CanalizaError):
    """Sign-in refused; ``reason`` is a machine reason (never the password)."""

    status_code = 400
    code = "invalid_grant"

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail, code="invalid_grant")
        self.reason = reason


# --- hashing -------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (constant work when unknown)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(value: str) -> str:
    """SHA-256 of a high-entropy token (refresh tokens, codes): fast lookups, no secret kept."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# --- events --------------------------------------------------------------------------


def record(
    session: Session,
    payload: EventPayload,
    *,
    aggregate_id: str,
    actor: str | None,
    institution_id: str | None = None,
) -> None:
    """Record an auth event in the outbox (same transaction).

    ``actor`` is who caused it (None: nobody, e.g. a lockout) and ``institution_id`` the
    institution of the account concerned, which need not be the actor's.
    """
    contracts.emit(
        outbox,
        session,
        payload,
        aggregate_id=aggregate_id,
        principal=None,
        system_actor=actor,
        institution_id=institution_id,
    )


def login_failed(username: str, reason: str) -> auth_events.LoginFailed:
    """The one builder of a failed sign-in's event (password or federated)."""
    return auth_events.LoginFailed(username=username[:80], reason=reason)


def login_succeeded(
    *, mfa: bool, federated: str | None = None, roles: list[str] | None = None
) -> auth_events.LoginSucceeded:
    """The one builder of a sign-in's event (a federated one names provider and roles)."""
    return auth_events.LoginSucceeded(mfa=mfa, federated=federated, roles=roles)


# --- users ---------------------------------------------------------------------------


def _check_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise CanalizaError(
            f"Roles desconocidos o vacíos: {', '.join(unknown) or '(ninguno)'}.",
            code="invalid_roles",
        )
    return sorted(set(roles))


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    roles: list[str],
    institution_id: str | None,
    actor: str | None,
    user_id: str | None = None,
    password_hash: str | None = None,
    check_institution: bool = True,
) -> User:
    """Create a user; the username must be free, the institution known (when named) and
    every role one its type allows (``check_institution=False``: federation, whose roles
    and institution come from the operator's configuration)."""
    username = username.strip().lower()
    roles = _check_roles(roles)
    if check_institution:
        institutions.ensure_roles_fit(session, roles=roles, institution_id=institution_id)
    if session.exec(select(User).where(User.username == username)).first():
        raise UsernameTaken(f"El usuario {username!r} ya existe.")
    user = User(
        id=user_id or new_id(),
        username=username,
        display_name=display_name,
        password_hash=password_hash or hash_password(password),
        institution_id=institution_id,
        roles=" ".join(roles),
    )
    session.add(user)
    session.flush()
    record(
        session,
        auth_events.UserCreated(roles=user.role_list),
        aggregate_id=user.id,
        actor=actor,
        institution_id=institution_id,
    )
    return user


def get_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound("No existe ese usuario.")
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username.strip().lower())).first()


def set_password(
    session: Session, *, user: User, password: str, actor: str | None, temporary: bool = False
) -> None:
    """Replace a user's password and lift any lockout; a ``temporary`` one (an
    administrator's reset) must be replaced at the next sign-in."""
    user.password_hash = hash_password(password)
    user.password_change_required = temporary
    user.failed_logins = 0
    user.locked_until = None
    user.updated_at = utcnow()
    session.add(user)
    record(
        session,
        auth_events.PasswordReset(),
        aggregate_id=user.id,
        actor=actor,
        institution_id=user.institution_id,
    )


def set_active(session: Session, *, user: User, active: bool, actor: str | None) -> None:
    """Deactivate an account (it can no longer sign in nor refresh a session) or
    reactivate it; nothing happens, and nothing is recorded, when it is already so."""
    if user.active == active:
        return
    user.active = active
    user.updated_at = utcnow()
    session.add(user)
    event = auth_events.UserReactivated() if active else auth_events.UserDeactivated()
    record(session, event, aggregate_id=user.id, actor=actor, institution_id=user.institution_id)


MIN_PASSWORD_LENGTH = 12
CHANGE_REQUIRED = (
    "Su contraseña es temporal: elija una contraseña nueva para continuar (al menos 12 caracteres)."
)


def new_password_problem(new: str, again: str, *, current: str) -> str | None:
    """Why the password chosen to replace a temporary one is refused (Spanish), or None."""
    if not new:
        return CHANGE_REQUIRED
    if len(new) < MIN_PASSWORD_LENGTH or len(new) > 200:
        return "La contraseña nueva debe tener entre 12 y 200 caracteres."
    if new != again:
        return "Las dos contraseñas nuevas no coinciden; escríbalas de nuevo."
    if new == current:
        return "La contraseña nueva debe ser distinta de la temporal."
    return None


def temporary_password() -> str:
    """A password an administrator reads out once: four groups of four, no look-alikes."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def mfa_required(user: User, *, demo: bool) -> bool:
    """Whether this user must present a TOTP code (never in demo mode)."""
    return not demo and bool(set(user.role_list) & set(auth_settings().mfa_roles))


GENERIC_FAILURE = "Usuario o contraseña incorrectos."


def _fail(
    session: Session, user: User | None, username: str, reason: str, *, address: str
) -> LoginFailed:
    """Count and audit a failed sign-in. The caller learns nothing more than "wrong
    credentials" for an unknown user, a wrong password, an inactive or a locked account:
    the reason (and the lock) is in the audit trail only."""
    cfg = auth_settings()
    locked_now = False
    if reason != "locked":
        locked_now = LOCKOUTS.failed(
            username,
            address,
            limit=cfg.max_failed_logins,
            lock_seconds=cfg.lockout_minutes * 60,
        )
    record(
        session,
        login_failed(username, reason),
        aggregate_id=user.id if user else stable_id("username", username),
        actor=user.id if user else None,
        institution_id=user.institution_id if user else None,
    )
    if locked_now and user is not None:
        until = (utcnow() + timedelta(minutes=cfg.lockout_minutes)).isoformat()
        record(
            session,
            auth_events.UserLocked(until=until),
            aggregate_id=user.id,
            actor=None,
            institution_id=user.institution_id,
        )
    if reason == "mfa_required":
        return LoginFailed("Se requiere el código de verificación (TOTP).", reason=reason)
    if reason == "mfa_not_enrolled":
        return LoginFailed(
            "Su rol requiere segundo factor y no tiene uno registrado; pida a su administrador "
            "que lo registre.",
            reason=reason,
        )
    if reason == "invalid_totp":
        return LoginFailed("El código de verificación no es válido.", reason=reason)
    return LoginFailed(GENERIC_FAILURE, reason=reason)


def authenticate_password(
    session: Session,
    *,
    username: str,
    password: str,
    totp_code: str | None = None,
    demo: bool,
    address: str = "unknown",
) -> User:
    """The user whose credentials these are; records success, failure and lockout.

    Lockout is per (username, client ``address``) (see :class:`auth.ratelimit.LoginLockouts`);
    while locked, even the right password from that address gets the generic refusal.
    Raises :class:`LoginFailed`. The caller must still commit (the audit events are part
    of the answer), so return an error answer instead of re-raising.
    """
    username = username.strip().lower()[:80]
    user = find_user(session, username)
    if LOCKOUTS.is_locked(username, address):
        raise _fail(session, user, username, "locked", address=address)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise _fail(
            session, user, username, "bad_password" if user else "unknown_user", address=address
        )
    if not user.active:
        raise _fail(session, user, username, "inactive", address=address)
    if mfa_required(user, demo=demo):
        if not user.totp_secret:
            raise _fail(session, user, username, "mfa_not_enrolled", address=address)
        if not totp_code:
            # Not a failed attempt: the form asks for the code next.
            raise LoginFailed(
                "Se requiere el código de verificación (TOTP).", reason="mfa_required"
            )
        if not pyotp.TOTP(user.totp_secret).verify(
            totp_code.strip(), for_time=utcnow(), valid_window=1
        ):
            raise _fail(session, user, username, "invalid_totp", address=address)
    LOCKOUTS.succeeded(username, address)
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    record(
        session,
        login_succeeded(mfa=mfa_required(user, demo=demo)),
        aggregate_id=user.id,
        actor=user.id,
        institution_id=user.institution_id,
    )
    return user


# --- TOTP enrolment ----------------------------------------------------------------


def start_totp_enrolment(session: Session, *, user: User) -> str:
    """Create a pending TOTP secret; returns its ``otpauth://`` URI."""
    secret = pyotp.random_base32()
    user.totp_pending_secret = secret
    session.add(user)
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name="Canaliza")


def confirm_totp_enrolment(session: Session, *, user: User, code: str) -> None:
    """Activate the pending secret once the user proves they can generate codes."""
    secret = user.totp_pending_secret
    if not secret or not pyotp.TOTP(secret).verify(code.strip(), for_time=utcnow(), valid_window=1):
        raise InvalidTotp("El código no coincide con el secreto en registro.")
    user.totp_secret = secret
    user.totp_pending_secret = None
    user.updated_at = utcnow()
    session.add(user)
    record(
        session,
        auth_events.MfaEnrolled(),
        aggregate_id=user.id,
        actor=user.id,
        institution_id=user.institution_id,
    )


# --- clients -------------------------------------------------------------------------


@dataclass
class NewClient:
    client: OAuthClient
    secret: str | None


def create_client(
    session: Session,
    *,
    client_id: str,
    name: str,
    grant_types: list[str],
    redirect_uris: list[str] | None = None,
    public: bool = False,
    roles: list[str] | None = None,
    institution_id: str | None = None,
    secret: str | None = None,
) -> NewClient:
    """Register a client; a confidential one gets a secret (returned once, stored hashed)."""
    if session.get(OAuthClient, client_id) is not None:
        raise ClientExists(f"El cliente {client_id!r} ya existe.")
    if not public:
        secret = secret or secrets.token_urlsafe(32)
    client = OAuthClient(
        client_id=client_id,
        name=name,
        is_public=public,
        secret_hash=None if public else hash_password(secret or ""),
        grant_types=" ".join(grant_types),
        redirect_uris=" ".join(redirect_uris or []),
        roles=" ".join(sorted(set(roles or []))),
        institution_id=institution_id,
    )
    session.add(client)
    session.flush()
    return NewClient(client, None if public else secret)


def check_client_secret(client: OAuthClient, secret: str) -> bool:
    return not client.is_public and verify_password(client.secret_hash, secret)


# --- refresh tokens ----------------------------------------------------------------


def issue_refresh_token(
    session: Session, *, client_id: str, user_id: str | None, scope: str, family_id: str | None
) -> str:
    """Store a new refresh token (hash only) in ``family_id`` (a new family if None)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        RefreshToken(
            token_hash=token_hash(raw),
            family_id=family_id or new_id(),
            client_id=client_id,
            user_id=user_id,
            scope=scope,
            issued_at=now,
            expires_at=now + timedelta(seconds=auth_settings().refresh_token_ttl_seconds),
        )
    )
    session.flush()
    return raw


def find_refresh_token(session: Session, raw: str) -> RefreshToken | None:
    return session.exec(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash(raw))
    ).first()


def revoke_family(session: Session, *, family_id: str, actor: str | None, reason: str) -> None:
    """Revoke every refresh token of a family."""
    session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    # Access tokens of the family carry it as ``sid``; none issued before now outlives this.
    until = utcnow() + timedelta(seconds=get_settings().access_token_ttl_seconds)
    revoked = auth_events.FamilyRevoked(reason=reason, sid=family_id, until=int(until.timestamp()))
    record(session, revoked, aggregate_id=family_id, actor=actor)


def use_refresh_token(session: Session, *, raw: str, client_id: str) -> RefreshToken | None:
    """Consume a refresh token for rotation; None if it cannot be used.

    Presenting a token that was already rotated means it leaked (or the client is
    confused): the whole family is revoked. Consumption is compare-and-set, so two
    concurrent uses of one token cannot both succeed.
    """
    token = find_refresh_token(session, raw)
    if token is None or token.client_id != client_id:
        return None
    if token.revoked_at is not None or as_utc(token.expires_at) <= utcnow():
        return None
    result = session.execute(
        update(RefreshToken)
        .where(
            col(RefreshToken.id) == token.id,
            col(RefreshToken.rotated_at).is_(None),
            col(RefreshToken.revoked_at).is_(None),
        )
        .values(rotated_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        revoke_family(session, family_id=token.family_id, actor=token.user_id, reason="reuse")
        return None
    return token


def revoke_access_token(session: Session, *, claims: dict[str, Any], actor: str | None) -> None:
    """Add an access token's ``jti`` to the revocation list (introspection reports it)."""
    jti = str(claims["jti"])
    if session.get(RevokedAccessToken, jti) is None:
        session.add(RevokedAccessToken(jti=jti, expires_at=expires_at(claims)))
    # Services keep the jti in their deny-list until then (services/tokens.py).
    revoked = auth_events.AccessTokenRevoked(exp=int(claims["exp"]))
    record(
        session, revoked, aggregate_id=jti, actor=actor, institution_id=claims.get("institution_id")
    )


def is_access_token_revoked(session: Session, jti: str) -> bool:
    return session.get(RevokedAccessToken, jti) is not None


# --- authorization codes -------------------------------------------------------------


def save_authorization_code(
    session: Session,
    *,
    code: str,
    client_id: str,
    user_id: str,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    code_challenge_method: str,
    nonce: str | None,
) -> None:
    session.add(
        AuthorizationCode(
            code_hash=token_hash(code),
            client_id=client_id,
            user_id=user_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            nonce=nonce,
            expires_at=utcnow() + timedelta(seconds=auth_settings().authorization_code_ttl_seconds),
        )
    )
    session.flush()


def find_authorization_code(
    session: Session, *, code: str, client_id: str
) -> AuthorizationCode | None:
    row = session.get(AuthorizationCode, token_hash(code))
    if row is None or row.client_id != client_id or as_utc(row.expires_at) <= utcnow():
        return None
    return row


# --- start-up ------------------------------------------------------------------------


def bootstrap(session: Session, *, settings: Settings) -> None:
    """Idempotent start-up: the signing keys encrypted, a current one, the internal service
    client, the demo data.

    When no service secret is configured one is generated for this process and set on
    ``settings`` (the kernel's client-credentials helper reads it from there); only its
    hash is stored, so each process that generates one replaces the previous hash.
    """
    seal_signing_keys(session)  # KeyEncryptionError: a wrong key-encryption key, no start
    ensure_signing_key(session)
    if not settings.service_client_id:
        settings.service_client_id = SERVICE_CLIENT_DEFAULT_ID
    if not settings.service_client_secret:
        settings.service_client_secret = secrets.token_urlsafe(32)
    client = session.get(OAuthClient, settings.service_client_id)
    if client is None:
        create_client(
            session,
            client_id=settings.service_client_id,
            name="Servicios internos de Canaliza",
            grant_types=["client_credentials"],
            roles=[UserRole.SERVICE],
            secret=settings.service_client_secret,
        )
    elif not check_client_secret(client, settings.service_client_secret):
        client.secret_hash = hash_password(settings.service_client_secret)
        session.add(client)
    ensure_web_client(session, settings=settings)
    if settings.demo:
        seed_demo(session, password=settings.demo_password)


def ensure_web_client(session: Session, *, settings: Settings) -> None:
    """The web frontend's confidential client (authorization code + PKCE, refresh tokens).

    Like the service client, a missing secret is generated for this process and set on
    ``settings``; when auth and frontend run apart both get ``CANALIZA_FRONTEND_CLIENT_SECRET``.
    """
    if not settings.frontend_client_secret:
        settings.frontend_client_secret = secrets.token_urlsafe(32)
    redirect_uris = [
        settings.frontend_callback_url(),
        "http://127.0.0.1/callback",  # any loopback port (RFC 8252 §7.3): local runs and tests
        "http://localhost/callback",
    ]
    client = session.get(OAuthClient, settings.frontend_client_id)
    if client is None:
        create_client(
            session,
            client_id=settings.frontend_client_id,
            name="Canaliza web",
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=redirect_uris,
            secret=settings.frontend_client_secret,
        )
        return
    if not check_client_secret(client, settings.frontend_client_secret):
        client.secret_hash = hash_password(settings.frontend_client_secret)
    client.redirect_uris = " ".join(dict.fromkeys(redirect_uris))
    session.add(client)


def seed_demo(session: Session, *, password: str) -> None:
    """The demo users of the public contract and the public ``canaliza-cli`` client."""
    shared_hash: str | None = None
    # The demo users' institutions exist before the demo loader creates them in the
    # referral service (whose events then only confirm them).
    institutions.learn_demo(session, DEMO_INSTITUTIONS)
    for username, (role, institution) in DEMO_USERS.items():
        if find_user(session, username) is not None:
            continue
        # One hash for the one shared demo password keeps start-up fast.
        shared_hash = shared_hash or hash_password(password)
        create_user(
            session,
            username=username,
            display_name=f"{username.capitalize()} (demostración)",
            password=password,
            password_hash=shared_hash,
            roles=[role],
            institution_id=institution.id,
            actor=None,
            user_id=stable_id("user", username),
        )
    if session.get(OAuthClient, DEMO_CLI_CLIENT_ID) is None:
        create_client(
            session,
            client_id=DEMO_CLI_CLIENT_ID,
            name="Canaliza CLI (demostración)",
            grant_types=["password", "refresh_token", "authorization_code"],
            redirect_uris=["http://127.0.0.1/callback", "http://localhost/callback"],
            public=True,
        )
