"""Notices outside the platform: the referral steps and the deadlines about to run out,
told to the institutions concerned through a pluggable channel.

The embedded default is the log sink (one line per notice and recipient institution, on
the ``canaliza.referral.notify`` logger); with ``CANALIZA_SMTP_HOST`` set the notices go
out as e-mail to the addresses ``CANALIZA_NOTIFY_RECIPIENTS`` lists per institution. An
SMS or WhatsApp provider is one more :class:`Channel` (see ``docs/notifications.md``).
A notice never names a person or locates a refuge: the step, the urgency, the deadline,
how many people, and the referral's folio, as the live feed's notices.
"""

from __future__ import annotations

import json
import logging
import smtplib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from referral.catalogue import folio
from services.clock import parse_utc
from services.settings import Settings

log = logging.getLogger("canaliza.referral.notify")
LOCAL = ZoneInfo("America/Mexico_City")
REFERRAL_EVENTS = "canaliza.referral.referral.>"
EVENT_PREFIX = "referral.referral."

# (step, side) → the sentence each side reads; a step not listed tells nobody.
SENTENCES: dict[tuple[str, str], str] = {
    ("send", "receiver"): "Nueva canalización recibida",
    ("accept", "sender"): "El refugio aceptó su canalización",
    ("decline", "sender"): "El refugio rechazó su canalización; busque otro lugar",
    ("expired", "sender"): "Su canalización venció sin respuesta; busque otro lugar",
    ("cancel", "receiver"): "La institución remitente canceló una canalización",
    ("in_transit", "receiver"): "Las personas van en camino",
    ("admit", "sender"): "Las personas ingresaron al refugio",
}


@dataclass(frozen=True)
class Notice:
    institution_id: str
    subject: str
    body: str
    urgent: bool
    referral_id: str


class Channel(Protocol):
    """Where notices go: ``send`` is called in a worker thread, once per notice."""

    def send(self, notice: Notice, recipients: list[str]) -> None: ...


class LogChannel:
    """The embedded default: the notice as one log line (no address needed)."""

    def send(self, notice: Notice, recipients: list[str]) -> None:
        log.info(
            "aviso para la institución %s (%d destinatarios): %s",
            notice.institution_id,
            len(recipients),
            notice.subject,
        )


class SmtpChannel:
    """E-mail through an SMTP relay (STARTTLS when asked), one message per notice."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls

    def send(self, notice: Notice, recipients: list[str]) -> None:
        if not recipients:
            LogChannel().send(notice, recipients)
            return
        message = EmailMessage()
        message["Subject"] = notice.subject
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        if notice.urgent:
            message["Importance"] = "high"
        message.set_content(notice.body)
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


def channel_from(settings: Settings) -> Channel:
    if settings.smtp_host:
        return SmtpChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
        )
    return LogChannel()


def recipients_from(settings: Settings) -> dict[str, list[str]]:
    """``{institution id: [address, …]}`` from ``CANALIZA_NOTIFY_RECIPIENTS`` (JSON)."""
    if not settings.notify_recipients:
        return {}
    try:
        raw = json.loads(settings.notify_recipients)
    except ValueError:
        log.error("CANALIZA_NOTIFY_RECIPIENTS no es JSON; los avisos van solo a la bitácora")
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): [str(a) for a in v] for k, v in raw.items() if isinstance(v, list)}


def _local(value: Any) -> str | None:
    at = parse_utc(value)
    return at.astimezone(LOCAL).strftime("%d/%m/%Y %H:%M") if at else None


def _body(sentence: str, payload: dict[str, Any], *, folio: str) -> str:
    people = len(payload.get("people") or [])
    lines = [
        f"{sentence}.",
        "",
        f"Canalización: {folio}",
        f"Urgencia: {'urgente' if payload.get('urgency') == 'urgent' else 'normal'}",
        f"Personas: {people}",
    ]
    due = _local(payload.get("response_due_at"))
    if due and payload.get("status") == "sent":
        lines.append(f"Plazo para responder: {due} (hora del centro)")
    lines += ["", "Consulte el detalle en Canaliza. Este aviso no contiene datos personales."]
    return "\n".join(lines)


def notices_for(event_type: str, payload: dict[str, Any]) -> list[Notice]:
    """The notices one referral event makes, one per institution concerned."""
    if not event_type.startswith(EVENT_PREFIX):
        return []
    step = event_type.removeprefix(EVENT_PREFIX)
    sides = {
        "sender": payload.get("sending_institution_id"),
        "receiver": payload.get("receiving_institution_id"),
    }
    referral_id = str(payload.get("referral_id") or "")
    urgent = payload.get("urgency") == "urgent" and step == "send"
    notices = []
    for side, institution in sides.items():
        sentence = SENTENCES.get((step, side))
        if not sentence or not institution:
            continue
        subject = f"{'URGENTE: ' if urgent else ''}{sentence} ({folio(referral_id)})"
        notices.append(
            Notice(
                institution_id=str(institution),
                subject=subject,
                body=_body(sentence, payload, folio=folio(referral_id)),
                urgent=urgent,
                referral_id=referral_id,
            )
        )
    return notices


def deadline_warnings(rows: Iterable[tuple[str, str, str, datetime]]) -> list[Notice]:
    """Warnings for answers about to be due: ``rows`` of (referral id, sending institution,
    receiving institution, due at); both institutions are told."""
    notices = []
    for referral_id, sender, receiver, due in rows:
        when = _local(due.isoformat()) or ""
        for institution, sentence in (
            (receiver, "Una canalización debe responderse pronto"),
            (sender, "Su canalización aún no tiene respuesta y su plazo está por vencer"),
        ):
            notices.append(
                Notice(
                    institution_id=institution,
                    subject=f"{sentence} ({folio(referral_id)})",
                    body=(
                        f"{sentence}: el plazo vence el {when} (hora del centro).\n\n"
                        f"Canalización: {folio(referral_id)}\n"
                        "Consulte el detalle en Canaliza. Este aviso no contiene datos personales."
                    ),
                    urgent=True,
                    referral_id=referral_id,
                )
            )
    return notices


class Notifier:
    """Sends notices through the channel to each institution's recipients; an event seen
    twice (a redelivery) is told once per process."""

    def __init__(
        self, channel: Channel, recipients: dict[str, list[str]], *, remember: int = 10_000
    ) -> None:
        self.channel = channel
        self.recipients = recipients
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self.sent: list[Notice] = []  # what was handed to the channel (kept short)

    def first_time(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        return True

    def deliver(self, notices: Iterable[Notice]) -> None:
        """Hand each notice to the channel (call in a worker thread); a failing channel
        is logged, never raised into the bus."""
        for notice in notices:
            try:
                self.channel.send(notice, self.recipients.get(notice.institution_id, []))
            except Exception:
                log.exception("aviso no enviado a la institución %s", notice.institution_id)
                continue
            self.sent = [*self.sent[-99:], notice]
