"""Notices outside the platform: the log sink by default, e-mail through SMTP, one warning
before an answer deadline runs out; never a person's identity (issue 19)."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import timedelta
from typing import Any

from referral.flows import NOTIFIER_KEY, run_expiry
from referral.outbound import LogChannel, Notice, Notifier, SmtpChannel, notices_for
from services.clock import clock
from tests.referral.conftest import FGR, NGO


class Recording:
    """A channel that keeps what it was given."""

    def __init__(self) -> None:
        self.got: list[tuple[Notice, list[str]]] = []

    def send(self, notice: Notice, recipients: list[str]) -> None:
        self.got.append((notice, recipients))


def _payload(**over: Any) -> dict[str, Any]:
    return {
        "referral_id": "5f1c2a9e-0000-4000-8000-000000000001",
        "status": "sent",
        "sending_institution_id": FGR,
        "receiving_institution_id": NGO,
        "urgency": "urgent",
        "response_due_at": "2026-12-06T18:00:00Z",
        "people": [{"sex": "F", "age_band": "18-59", "nationality": "GTM", "role": "victim"}],
        **over,
    }


def test_each_step_tells_the_institution_that_must_act_and_nothing_personal():
    [sent] = notices_for("referral.referral.send", _payload())
    assert (sent.institution_id, sent.urgent) == (NGO, True)
    assert sent.subject == "URGENTE: Nueva canalización recibida (CAN-5F1C2A9E)"
    assert "Personas: 1" in sent.body and "12:00 (hora del centro)" in sent.body
    assert "GTM" not in sent.body and "Guatemala" not in sent.body
    [accepted] = notices_for("referral.referral.accept", _payload(status="accepted"))
    assert (accepted.institution_id, accepted.urgent) == (FGR, False)
    assert notices_for("referral.referral.created", _payload(status="draft")) == []
    assert notices_for("capacity.pool.changed", _payload()) == []


def test_smtp_sends_one_message_to_the_institutions_addresses(monkeypatch):
    sent: list[Any] = []

    class FakeSMTP:
        def __init__(self, host: str, port: int, timeout: float) -> None:
            sent.append(("connect", host, port))

        def __enter__(self) -> FakeSMTP:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def starttls(self) -> None:
            sent.append(("starttls",))

        def login(self, user: str, password: str) -> None:
            sent.append(("login", user))

        def send_message(self, message: Any) -> None:
            sent.append(("message", message["To"], message["Subject"], message["Importance"]))

    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    channel = SmtpChannel(
        host="smtp.example.mx", port=587, sender="avisos@example.mx", username="u", password="p"
    )
    notifier = Notifier(channel, {NGO: ["coordinacion@example.mx", "guardia@example.mx"]})
    notifier.deliver(notices_for("referral.referral.send", _payload()))
    assert sent == [
        ("connect", "smtp.example.mx", 587),
        ("starttls",),
        ("login", "u"),
        (
            "message",
            "coordinacion@example.mx, guardia@example.mx",
            "URGENTE: Nueva canalización recibida (CAN-5F1C2A9E)",
            "high",
        ),
    ]


def test_the_log_sink_is_the_default_and_a_failing_channel_never_raises(caplog):
    class Broken:
        def send(self, notice: Notice, recipients: list[str]) -> None:
            raise OSError("relay down")

    notices = notices_for("referral.referral.decline", _payload(status="declined"))
    Notifier(Broken(), {}).deliver(notices)  # logged, not raised
    with caplog.at_level("INFO", logger="canaliza.referral.notify"):
        Notifier(LogChannel(), {}).deliver(notices)
    assert "rechazó su canalización" in caplog.text
    notifier = Notifier(LogChannel(), {})
    assert notifier.first_time("event-1") and not notifier.first_time("event-1")


async def test_steps_reach_the_channel_and_deadlines_are_warned_once(ctx):
    clock.freeze()
    recording = Recording()
    notifier = ctx.runtime.state[NOTIFIER_KEY]
    notifier.channel = recording
    await ctx.agreement()
    urgent = await ctx.sent_referral(urgency="urgent")
    for _ in range(200):  # the bus delivers the send event to the notifier
        if recording.got:
            break
        await asyncio.sleep(0.01)
    assert [(n.institution_id, n.urgent) for n, _ in recording.got] == [(NGO, True)]
    recording.got.clear()
    clock.advance(timedelta(minutes=80))
    await run_expiry(ctx.runtime)
    assert recording.got == []  # 40 minutes left: not yet
    clock.advance(timedelta(minutes=15))
    await run_expiry(ctx.runtime)
    await run_expiry(ctx.runtime)  # a second round warns no one again
    warned = sorted(n.institution_id for n, _ in recording.got)
    assert warned == sorted([FGR, NGO])
    assert all(urgent["id"].replace("-", "")[:8].upper() in n.subject for n, _ in recording.got)
