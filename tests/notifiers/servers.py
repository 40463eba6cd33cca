"""Real local servers for the notifier tests: an SMTP server (aiosmtpd) that captures mail,
and an HTTP webhook receiver that verifies SIA's signature. Both bind 127.0.0.1 only."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import ssl
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sia.notifiers.webhook import verify_signature

SMTP_USER = "sia-mailer"
SMTP_PASSWORD = "smtp-password-for-tests"
WEBHOOK_SECRET = b"webhook-secret-for-tests"
DATA = Path(__file__).parent / "data"
TEST_CA = DATA / "test-ca.pem"  # signs the server certificate: what a client must trust


def free_port() -> int:
    """A port that was free a moment ago (aiosmtpd's Controller cannot bind port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SMTPCapture:
    """aiosmtpd handler: stores accepted mail; can refuse recipients or answer DATA with a
    given reply ("451 ..." or "554 ...")."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.refuse: dict[str, str] = {}  # recipient -> SMTP reply, e.g. "550 5.1.1 unknown"
        self.data_replies: deque[str] = deque()  # replies to the next DATA commands

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_replies:
            return self.data_replies.popleft()
        raw = envelope.original_content or b""
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))
        return "250 2.0.0 Ok: queued"


class _ImplicitTLSController(Controller):
    """aiosmtpd warns that AUTH is allowed without STARTTLS; on an implicit-TLS port the
    whole connection is TLS, so the warning does not apply."""

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


def _authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
          and auth_data.password == SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


class SMTPServer:
    """A running aiosmtpd server on 127.0.0.1; `auth=True` requires SMTP_USER/SMTP_PASSWORD.

    `tls="implicit"`: TLS from the first byte (as on port 465); `tls="starttls"`: STARTTLS
    offered (as on 587). With TLS, AUTH is only accepted over it. The certificate is signed
    by TEST_CA (tests/notifiers/data).
    """

    def __init__(self, auth: bool = False,
                 tls: Literal["implicit", "starttls"] | None = None) -> None:
        self.handler = SMTPCapture()
        kwargs: dict[str, Any] = {}
        if auth:  # (aiosmtpd counts only STARTTLS as TLS: implicit TLS is TLS throughout)
            kwargs = {"authenticator": _authenticator, "auth_required": True,
                      "auth_require_tls": tls == "starttls"}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(DATA / "test-server.pem", DATA / "test-server.key")
            kwargs["ssl_context" if tls == "implicit" else "tls_context"] = context
            if tls == "starttls":
                kwargs["require_starttls"] = True
        self.cafile = str(TEST_CA)
        self.port = free_port()
        kind = _ImplicitTLSController if tls == "implicit" else Controller
        self.controller = kind(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages


@dataclass
class Received:
    """One request the webhook receiver got, with its signature check."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int  # what the receiver answered

    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body)


@dataclass
class Reply:
    """A canned answer of the receiver."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


class WebhookReceiver:
    """An HTTP receiver on 127.0.0.1 that verifies X-SIA-Signature (401 when it fails) and
    can be told to answer the next requests with a given status and headers."""

    def __init__(self, secret: bytes = WEBHOOK_SECRET) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _receiver_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/sia"

    def reply_next(self, status: int, headers: dict[str, str] | None = None, body: str = "",
                   n: int = 1) -> None:
        with self._lock:
            self.replies.extend([Reply(status, headers or {}, body)] * n)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)


def _receiver_handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = verify_signature(receiver.secret, headers.get("x-sia-timestamp", ""),
                                        body, headers.get("x-sia-signature", ""),
                                        now=time.time())
            with receiver._lock:
                reply = receiver.replies.popleft() if receiver.replies else None
                if reply is None:
                    reply = Reply(401, {}, "bad signature") if not verified else \
                        Reply(200, {"X-Request-Id": f"req-{len(receiver.received) + 1}"}, "ok")
                receiver.received.append(Received(self.path, headers, body, verified,
                                                  reply.status))
            data = reply.body.encode()
            self.send_response(reply.status)
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
