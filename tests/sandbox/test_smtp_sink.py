"""The SMTP sink keeps what smtplib sends, with and without AUTH."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from sandbox.smtp import start_smtp_sink


def mail(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "jobs@example.com", "ops@example.com", subject
    msg.set_content("Batch done: 3 profiles fetched.\n")
    return msg


def test_messages_arrive_parsed_and_clear_empties_them():
    seen: list[str] = []
    with start_smtp_sink(on_message=lambda m: seen.append(m["Subject"])) as sink:
        assert sink.host == "127.0.0.1" and sink.port > 0
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.send_message(mail("Run finished"))
            client.send_message(mail("Second run"))
        first = sink.messages[0]
        assert isinstance(first, EmailMessage) and first["Subject"] == "Run finished"
        assert first["To"] == "ops@example.com" and "3 profiles" in first.get_content()
        assert seen == ["Run finished", "Second run"] and sink.logins == []
        sink.clear()
        assert sink.messages == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_login_with_any_credentials(mechanism):
    with start_smtp_sink(auth_required=True) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.ehlo()
            with pytest.raises(smtplib.SMTPSenderRefused):  # no AUTH yet
                client.send_message(mail("refused"))
            client.user, client.password = "mailer", "any-password"
            client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
            client.send_message(mail("After login"))
        assert [m["Subject"] for m in sink.messages] == ["After login"]
        assert sink.logins == [b"mailer"]


def test_login_also_works_when_not_required():
    with start_smtp_sink() as sink, smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
        client.login("someone", "secret")
        client.send_message(mail("Hello"))
        assert sink.messages[0]["Subject"] == "Hello"


def test_sinks_start_and_stop_repeatedly():
    for _ in range(3):
        sink = start_smtp_sink()
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.send_message(mail("ping"))
        sink.stop()
        sink.stop()
        assert len(sink.messages) == 1
