"""Settings of the auth service only (``CANALIZA_AUTH_*``), read fresh on each use."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.vocabulary import UserRole

MFA_ROLES = frozenset(
    {
        UserRole.PROSECUTOR,
        UserRole.SHELTER_COORDINATOR,
        UserRole.DIF_OFFICER,
        UserRole.INM_OFFICER,
        UserRole.CEAV_OFFICER,
    }
)


class AuthSettings(BaseSettings):
    """Lockout, lifetimes and MFA policy of the auth service."""

    model_config = SettingsConfigDict(env_prefix="CANALIZA_AUTH_", extra="ignore")

    max_failed_logins: int = 5
    lockout_minutes: int = 15
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    authorization_code_ttl_seconds: int = 120
    # Per client address, on /auth/token and the sign-in form (0 turns it off).
    rate_limit_per_minute: int = 60
    rate_limit_burst: int = 30
    # Institutions' own OIDC providers (YAML or JSON; docs/security/federation.md).
    federation_file: str = ""
    # Signs the short-lived federation cookie; every auth replica needs the same value
    # (empty: one is generated per process, fine for a single process).
    session_secret: str = ""
    # Outside demo mode these roles must present a TOTP code at login.
    mfa_roles: list[str] = sorted(MFA_ROLES)


def auth_settings() -> AuthSettings:
    """The current auth settings (not cached: tests change the environment)."""
    return AuthSettings()
