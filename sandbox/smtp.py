"""An SMTP sink (aiosmtpd) that keeps every message it receives, for tests and the demo."""

from __future__ import annotations

import email
import socket
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        # auth_required is enforced here rather than by aiosmtpd, whose own flag warns on
        # every connection when TLS is not required too.
        if self.sink.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=default)
        assert isinstance(message, EmailMessage)  # policy=default parses to EmailMessage
        self.sink.messages.append(message)
        if session.auth_data:
            self.sink.logins.append(session.auth_data.login)
        if self.sink.on_message is not None:
            self.sink.on_message(message)
        return "250 Message accepted for delivery"


def _accept_any(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    # AUTH PLAIN and LOGIN both arrive as LoginPassword; any user and password will do.
    return AuthResult(success=isinstance(auth_data, LoginPassword), auth_data=auth_data)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class SmtpSink:
    """``.messages`` holds parsed EmailMessages; ``.logins`` the user names that logged in."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, auth_required: bool = False,
                 on_message: Callable[[EmailMessage], None] | None = None) -> None:
        self.host, self.port = host, port or _free_port(host)
        self.auth_required = auth_required
        self.on_message = on_message
        self.messages: list[EmailMessage] = []
        self.logins: list[bytes] = []
        # server_hostname is fixed: aiosmtpd would otherwise call socket.getfqdn(), which can
        # stall on a machine with slow DNS.
        self._controller = Controller(
            _Handler(self), hostname=host, port=self.port, server_hostname="smtp-sink.local",
            authenticator=_accept_any, auth_require_tls=False,
        )
        self._running = False

    def start(self) -> SmtpSink:
        self._controller.start()
        self._running = True
        return self

    def clear(self) -> None:
        self.messages.clear()
        self.logins.clear()

    def stop(self) -> None:
        """Stop serving; safe to call twice."""
        if self._running:
            self._running = False
            self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_smtp_sink(host: str = "127.0.0.1", port: int = 0, auth_required: bool = False,
                    on_message: Callable[[EmailMessage], None] | None = None) -> SmtpSink:
    """Start a sink on ``port`` (a free one if 0) and return it once it accepts connections."""
    return SmtpSink(host, port, auth_required, on_message).start()
