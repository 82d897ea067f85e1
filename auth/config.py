"""Settings of the auth service only (``CANALIZA_AUTH_*``), read fresh on each use."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

MFA_ROLES = frozenset(
    {"prosecutor", "shelter_coordinator", "dif_officer", "inm_officer", "ceav_officer"}
)


class AuthSettings(BaseSettings):
    """Lockout, lifetimes and MFA policy of the auth service."""

    model_config = SettingsConfigDict(env_prefix="CANALIZA_AUTH_", extra="ignore")

    max_failed_logins: int = 5
    lockout_minutes: int = 15
    # Failed credential checks one client address may make per window (then 429).
    max_failures_per_address: int = 30
    failure_window_seconds: int = 300
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    authorization_code_ttl_seconds: int = 120
    # Outside demo mode these roles must present a TOTP code at login.
    mfa_roles: list[str] = sorted(MFA_ROLES)


def auth_settings() -> AuthSettings:
    """The current auth settings (not cached: tests change the environment)."""
    return AuthSettings()
