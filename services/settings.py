"""Settings, read from the environment with the ``CANALIZA_`` prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent

SERVICE_NAMES = ("auth", "capacity", "referral", "audit")


class Settings(BaseSettings):
    """Process-wide configuration.

    Each service's database URL is ``CANALIZA_<SERVICE>_DATABASE_URL`` if set, otherwise
    derived from ``CANALIZA_DATABASE_URL``: a SQLite URL names a directory-less default
    (``var/<service>.db``); a PostgreSQL URL is shared and each service gets its own schema.
    """

    model_config = SettingsConfigDict(env_prefix="CANALIZA_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = False
    demo_password: str = "canaliza-demo"  # noqa: S105 - documented demo credential
    data_dir: Path = ROOT / "var"
    # The key-encryption key of the secrets kept at rest (auth's signing keys, audit's
    # checkpoint key): 32 random bytes in base64, or a file holding them. With neither, one
    # is generated in <data_dir>/secrets/kek (demo, one machine); production supplies it from
    # its secret store. Former keys (comma-separated) still decrypt, for a rotation.
    key_encryption_key: SecretStr | None = None
    key_encryption_key_file: str = ""
    key_encryption_key_previous: SecretStr | None = None

    database_url: str | None = None
    auth_database_url: str | None = None
    capacity_database_url: str | None = None
    referral_database_url: str | None = None
    audit_database_url: str | None = None
    frontend_database_url: str | None = None
    auto_migrate: bool = True

    bus: Literal["inprocess", "nats"] = "inprocess"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream: str = "CANALIZA"
    # Subjects are ``<prefix>.<service>.…``; a deployment sharing a NATS server with another
    # (or a test run) takes its own prefix, since streams may not overlap in subjects.
    nats_subject_prefix: str = "canaliza"

    # The paper every printable PDF is laid out for (the roster, reports, the oficio):
    # Letter ("carta", the Mexican administration's default) or A4.
    paper_size: Literal["Letter", "A4"] = "Letter"

    public_url: str = ""
    # Whether ``X-Forwarded-Host`` / ``X-Forwarded-Proto`` name the browser's origin (only
    # behind a proxy that overwrites them, such as Canaliza's gateway); off, the live feed's
    # Origin check trusts the public URL and the request's own Host only.
    trust_forwarded_host: bool = False
    issuer: str = ""
    audience: str = "canaliza"
    jwks_url: str | None = None
    token_algorithms: list[str] = Field(default_factory=lambda: ["ES256"])
    access_token_ttl_seconds: int = 900

    # Service URLs when the services run apart (empty: in the same process).
    auth_url: str = ""
    capacity_url: str = ""
    referral_url: str = ""
    audit_url: str = ""
    frontend_url: str = ""
    service_client_id: str = ""
    service_client_secret: str = ""
    # The web frontend's OAuth client (confidential; the secret is shared by auth and frontend
    # when they run apart, generated per process when they run together).
    frontend_client_id: str = "canaliza-web"
    frontend_client_secret: str = ""
    # Session cookie lifetime (idle), and whether it is marked Secure (default: public URL is https).
    session_idle_minutes: int = 8 * 60
    cookie_secure: bool | None = None

    hold_ttl_minutes: int = Field(default=120, ge=1)
    # Resource capture (issue 20): no hold may last longer than this, nor may one institution
    # hold more than ``hold_quota_beds`` beds at once (a rescue operation may need more: raise
    # it); SEGOB is alerted when one institution holds more than ``hold_alert_share`` of a
    # state's free and held beds.
    hold_max_ttl_minutes: int = Field(default=240, ge=1)
    hold_quota_beds: int = Field(default=20, ge=1)
    hold_alert_share: float = Field(default=0.5, gt=0, le=1)
    # Rescue operations (issue 16, ADR 0020): an operation's holds count against their own
    # quota (beds one institution may hold in operations at once), not ``hold_quota_beds``;
    # they last at most ``hold_max_ttl_minutes`` like any hold. The planner's solver stops
    # after ``operation_plan_seconds`` with the best plan found by then.
    operation_quota_beds: int = Field(default=600, ge=1)
    operation_plan_seconds: float = Field(default=1.5, gt=0, le=30)
    stale_after_hours: int = 24
    # Notices outside the platform (referral.outbound, docs/notifications.md): e-mail
    # through SMTP when a host is set, else one log line per notice; recipients per
    # institution as JSON {"<institution id>": ["address", …]}.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_sender: str = "canaliza@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    notify_recipients: str | None = None
    # How long before an answer deadline both institutions are warned.
    deadline_warning_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # SEGOB roster: may a facility not (yet) registered receive referrals? If so, flagged.
    unregistered_may_receive_referrals: bool = True
    # Urgent placement without an agreement (003:1003: urgent care without prerequisites):
    # a prosecutor (or a shelter sending a person onward) may send an urgent referral along
    # no agreement with a written justification; off, every referral needs one (ADR 0021).
    urgent_without_agreement: bool = True
    # A facility not visited for this many days is flagged "visit overdue".
    visit_interval_days: int = 365
    # Audit trail: every signed checkpoint is also appended to this log outside the audit
    # database (default ``<data_dir>/anchors/audit-<id>.jsonl``, one per database: host,
    # port and name, not credentials); production sets it, on storage the database's writer
    # cannot rewrite. Verification fails when more entries than ``audit_max_unsigned_tail``
    # follow the last anchored checkpoint (one is made every 100 entries, when the audit
    # service stops, and every ``audit_checkpoint_seconds`` if the chain moved; 0: never).
    audit_anchor_path: Path | None = None
    audit_max_unsigned_tail: int = Field(default=200, ge=0)
    audit_checkpoint_seconds: float = Field(default=300.0, ge=0)
    max_body_bytes: int = 1_048_576
    max_query_bytes: int = 8_192
    # Room for a 64 KiB X-CMS-Signature (signed agreement documents) plus ordinary headers.
    max_header_bytes: int = 81_920
    # One WebSocket message (the live feed's messages are small JSON objects).
    max_ws_message_bytes: int = 65_536

    def base_url(self) -> str:
        """The public URL of this deployment."""
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    def frontend_callback_url(self) -> str:
        """Where the auth service sends the browser back to the frontend with a code."""
        return f"{self.base_url()}/callback"

    def token_issuer(self) -> str:
        """The ``iss`` every access token must carry."""
        return self.issuer or self.base_url()

    def database_url_for(self, service: str) -> str:
        """The SQLAlchemy URL of one service's database."""
        own = getattr(self, f"{service}_database_url", None)
        if own:
            return str(own)
        if self.database_url and not self.database_url.startswith("sqlite"):
            return self.database_url
        return f"sqlite:///{self.data_dir / f'{service}.db'}"


@lru_cache
def get_settings() -> Settings:
    """The settings of this process (cached; tests call ``get_settings.cache_clear()``)."""
    return Settings()
