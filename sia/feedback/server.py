"""The feedback endpoint: Slack's interactivity requests and email feedback links.

- POST /slack/interactivity: verified with the Slack signing secret; stale or forged
  requests get 401. The Useful / Not useful / Snooze 7 days buttons carry the alert id.
- GET /feedback/email?token=...: a confirmation page (link scanners in mail systems
  follow GETs, so nothing is recorded until the person presses the button);
  POST /feedback/email records it. Tokens are signed and expire.
- GET /health: 200.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sia.alerts.store import AlertStore
from sia.feedback.record import VERDICTS, UnknownAlert, record_feedback, rep_for
from sia.feedback.slack_signature import verify
from sia.notifiers.tokens import InvalidToken, read_token

ACTIONS = {"sia_useful": "useful", "sia_not_useful": "not_useful", "sia_snooze": "snooze_7d"}
MAX_BODY = 1 << 20


class FeedbackServer:
    """An HTTP server in a thread; `url` once started."""

    def __init__(self, store: AlertStore, *, feedback_secret: bytes,
                 slack_signing_secret: bytes | None, host: str = "127.0.0.1", port: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.feedback_secret = feedback_secret
        self.slack_signing_secret = slack_signing_secret
        self.clock = clock
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL the server listens on."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FeedbackServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread (the `sia serve-feedback` command)."""
        self.httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def now(self) -> datetime:
        """The server's clock as a datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # handlers
    def slack(self, headers: Any, body: bytes) -> tuple[int, str, str]:
        """A Slack block_actions request."""
        if self.slack_signing_secret is None:
            return 503, "text/plain", "Slack feedback is not configured"
        refused = verify(self.slack_signing_secret, headers.get("X-Slack-Request-Timestamp"),
                         body, headers.get("X-Slack-Signature"), self.clock())
        if refused:
            return 401, "text/plain", refused
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
            user = str(payload["user"]["id"])
            actions = payload["actions"]
        except (KeyError, IndexError, ValueError, TypeError):
            return 400, "text/plain", "not a Slack interactivity payload"
        recorded = 0
        for action in actions:
            verdict = ACTIONS.get(action.get("action_id", ""))
            try:
                value = json.loads(action.get("value") or "{}")
                alert_id = str(value["alert_id"])
            except (ValueError, KeyError, TypeError):
                continue
            if verdict is None:
                continue
            try:
                record_feedback(self.store, alert_id=alert_id, verdict=verdict,
                                rep_id=rep_for(self.store, alert_id, user), source="slack",
                                who=f"slack:{user}", now=self.now())
                recorded += 1
            except UnknownAlert:
                return 404, "text/plain", f"unknown alert {alert_id}"
        return 200, "application/json", json.dumps({"recorded": recorded})

    def email_page(self, token: str) -> tuple[int, str, str]:
        """The confirmation page of an email feedback link."""
        try:
            claim = read_token(self.feedback_secret, token, int(self.clock()))
        except InvalidToken as exc:
            return 400, "text/html", _page("This link cannot be used", html.escape(str(exc)))
        label = {"useful": "Useful", "not_useful": "Not useful",
                 "snooze_7d": "Snooze this customer for 7 days"}[claim.verdict]
        form = (f'<form method="post" action="/feedback/email"><input type="hidden" '
                f'name="token" value="{html.escape(token)}"><button type="submit">'
                f"Confirm: {html.escape(label)}</button></form>")
        return 200, "text/html", _page("Your feedback on this alert", form)

    def email_post(self, body: bytes) -> tuple[int, str, str]:
        """Record an email verdict."""
        token = parse_qs(body.decode(errors="replace")).get("token", [""])[0]
        try:
            claim = read_token(self.feedback_secret, token, int(self.clock()))
        except InvalidToken as exc:
            return 400, "text/html", _page("This link cannot be used", html.escape(str(exc)))
        if claim.verdict not in VERDICTS:
            return 400, "text/html", _page("Unknown verdict", "")
        try:
            record_feedback(self.store, alert_id=claim.alert_id, verdict=claim.verdict,
                            rep_id=claim.rep_id, source="email",
                            who=f"email:{claim.rep_id or 'unknown'}", now=self.now())
        except UnknownAlert:
            return 404, "text/html", _page("Unknown alert", "")
        return 200, "text/html", _page("Thank you", "Your feedback was recorded.")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet: no secrets in logs
                return

            def _answer(self, result: tuple[int, str, str]) -> None:
                status, content_type, text = result
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes | None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._answer((413, "text/plain", "request too large"))
                    return None
                return self.rfile.read(length)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/health":
                    self._answer((200, "text/plain", "ok"))
                elif parts.path == "/feedback/email":
                    token = parse_qs(parts.query).get("token", [""])[0]
                    self._answer(server.email_page(token))
                else:
                    self._answer((404, "text/plain", "not found"))

            def do_POST(self) -> None:
                body = self._body()
                if body is None:
                    return
                path = urlsplit(self.path).path
                if path == "/slack/interactivity":
                    self._answer(server.slack(self.headers, body))
                elif path == "/feedback/email":
                    self._answer(server.email_post(body))
                else:
                    self._answer((404, "text/plain", "not found"))

        return Handler


def _page(title: str, content: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1><p>{content}</p></body></html>")
