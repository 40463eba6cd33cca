"""A local stand-in for the Slack Web API methods SIA calls, on 127.0.0.1.

It implements `auth.test`, `conversations.open`, `chat.postMessage` and
`conversations.history` with the response shapes documented at
https://docs.slack.dev/reference/methods/ : HTTP 200 with ``{"ok": true, ...}`` or
``{"ok": false, "error": "<code>"}``; 429 with ``Retry-After`` when rate limited. It checks
the bearer token (``not_authed`` / ``invalid_auth``), validates Block Kit against Slack's
documented limits (``invalid_blocks``) and message metadata (``invalid_metadata_format``),
keeps every posted message per channel, records every request, and can be told to answer
the next calls with a rate limit, a 500, an ``ok: false`` error, a dropped connection or a
stall (for client timeouts); with ``after=True`` the call is carried out first (the post is
made) and only the answer is lost or replaced, as when a timeout hits after Slack posted.

`conversations.history` answers as documented: ``messages`` newest first (``type``,
``user`` or ``bot_id``, ``text``, ``ts``; ``metadata`` only with ``include_all_metadata``),
``has_more``, ``pin_count`` and ``response_metadata.next_cursor``; ``oldest``, ``latest``,
``inclusive``, ``limit`` and ``cursor`` apply. GET and POST are both accepted (slack-sdk
calls it with GET). Scopes can be withheld (``missing_scope``) with `history_scope`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "xoxb-test-0000-sia"
USER = "U0SIAREP1"
CHANNEL = "C0SIASALES"


@dataclass
class Call:
    """One request the fake Slack received."""

    method: str
    headers: dict[str, str]
    params: dict[str, Any]


@dataclass
class Failure:
    """How to answer one upcoming request instead of the normal answer."""

    status: int = 200
    body: dict[str, Any] | str = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without an answer
    stall: bool = False  # hold the request until the server stops (client times out)
    after: bool = False  # carry the call out first, then answer like this


class SlackAPI:
    """Fake Slack Web API server; use as a context manager or call start()/stop()."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.users = {USER, "W0SIAGRID"}
        self.channels = {CHANNEL, "#sales", "sales"}
        self.calls: list[Call] = []
        self.history: dict[str, list[dict[str, Any]]] = {}  # channel -> messages, oldest first
        self.history_scope = True  # False: conversations.history answers missing_scope
        self._failures: deque[Failure] = deque()
        self._ts = int(time.time() * 1_000_000)  # message ts: now, in microseconds, rising
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    # --- control -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """What to pass as WebClient's base_url."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def start(self) -> SlackAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)

    def __enter__(self) -> SlackAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, failure: Failure, n: int = 1) -> None:
        """Answer the next `n` requests with `failure`."""
        with self._lock:
            self._failures.extend([failure] * n)

    def ratelimit_next(self, retry_after: int = 30, n: int = 1) -> None:
        """HTTP 429 with Retry-After, as Slack answers when a method's tier limit is hit."""
        self.fail_next(Failure(429, {"ok": False, "error": "ratelimited"},
                               {"Retry-After": str(retry_after)}), n)

    def server_error_next(self, status: int = 500, n: int = 1) -> None:
        """An HTTP 5xx with a non-JSON body, like an outage page."""
        self.fail_next(Failure(status, "<html><body>Internal Server Error</body></html>"), n)

    def error_next(self, code: str, n: int = 1) -> None:
        """HTTP 200 with {"ok": false, "error": code}."""
        self.fail_next(Failure(200, {"ok": False, "error": code}), n)

    def drop_next(self, n: int = 1) -> None:
        """Close the connection without answering (the client sees a disconnect)."""
        self.fail_next(Failure(drop=True), n)

    def stall_next(self, n: int = 1) -> None:
        """Never answer (until stop): the client's timeout fires."""
        self.fail_next(Failure(stall=True), n)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one API method."""
        return [c for c in self.calls if c.method == method]

    def posted(self) -> list[dict[str, Any]]:
        """The params of every chat.postMessage received."""
        return [c.params for c in self.calls_to("chat.postMessage")]

    # --- behaviour -----------------------------------------------------------------------
    def _take_failure(self) -> Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def answer(self, call: Call) -> dict[str, Any]:
        """The documented answer to a well-formed, authenticated call."""
        auth = call.headers.get("authorization", "")
        if not auth:
            return {"ok": False, "error": "not_authed"}
        if auth != f"Bearer {self.token}":
            return {"ok": False, "error": "invalid_auth"}
        handler = {"auth.test": self._auth_test, "conversations.open": self._conversations_open,
                   "chat.postMessage": self._chat_post_message,
                   "conversations.history": self._conversations_history}.get(call.method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        return handler(call.params)

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://sia-test.slack.com/", "team": "SIA Test",
                "user": "sia", "team_id": "T0SIA", "user_id": "U0SIABOT", "bot_id": "B0SIA"}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(params.get("users", "")).split(",") if u]
        if not users and not params.get("channel"):
            return {"ok": False, "error": "users_list_not_supplied"}
        unknown = [u for u in users if u not in self.users]
        if unknown:
            return {"ok": False, "error": "user_not_found"}
        dm = "D" + users[0][1:]
        already = dm in self.channels
        self.channels.add(dm)
        answer: dict[str, Any] = {"ok": True, "channel": {"id": dm}}
        if already:
            answer.update(no_op=True, already_open=True)
        return answer

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel or channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if text and len(text) > 40_000:
            return {"ok": False, "error": "msg_too_long"}
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        problems = block_kit_problems(blocks or [])
        if problems:
            return {"ok": False, "error": "invalid_blocks", "errors": problems,
                    "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]}}
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        if metadata is not None and not (
                isinstance(metadata, dict) and isinstance(metadata.get("event_type"), str)
                and isinstance(metadata.get("event_payload"), dict)):
            return {"ok": False, "error": "invalid_metadata_format"}
        with self._lock:
            self._ts += 1
            ts = f"{self._ts // 1_000_000}.{self._ts % 1_000_000:06d}"
            message = {"type": "message", "subtype": "bot_message", "text": text,
                       "ts": ts, "bot_id": "B0SIA", "blocks": blocks or []}
            if metadata is not None:
                message["metadata"] = metadata
            self.history.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "invalid_arguments"}
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if not self.history_scope:
            return {"ok": False, "error": "missing_scope", "needed": "channels:history",
                    "provided": "chat:write,im:write"}
        try:
            limit = max(1, min(int(params.get("limit") or 100), 999))
            oldest = float(params.get("oldest") or 0)
            latest = float(params.get("latest") or "inf")
            start = int(params.get("cursor") or 0)
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        inclusive = _flag(params.get("inclusive"))
        with_metadata = _flag(params.get("include_all_metadata"))

        def within(ts: str) -> bool:
            return oldest <= float(ts) <= latest if inclusive else oldest < float(ts) < latest

        with self._lock:
            kept = [m for m in reversed(self.history.get(channel, [])) if within(m["ts"])]
        page = kept[start:start + limit]
        more = start + limit < len(kept)
        shown = [{k: v for k, v in m.items() if with_metadata or k != "metadata"}
                 for m in page]
        return {"ok": True, "messages": shown, "has_more": more, "pin_count": 0,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


def _flag(value: Any) -> bool:
    """A boolean API argument as Slack reads it: true, 1 (slack-sdk sends "1")."""
    return value is True or str(value).lower() in ("1", "true")


def block_kit_problems(blocks: list[dict[str, Any]]) -> list[str]:
    """Violations of Block Kit's documented limits (empty when the blocks are valid)."""
    problems: list[str] = []
    if len(blocks) > 50:
        problems.append(f"must provide an array of no more than 50 items, got {len(blocks)}")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        kind = block.get("type")
        where = f"blocks[{i}]"
        if "block_id" in block:
            if block["block_id"] in block_ids or len(block["block_id"]) > 255:
                problems.append(f"{where}.block_id: duplicate or too long")
            block_ids.add(block["block_id"])
        if kind == "header":
            text = block.get("text", {})
            if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= 150:
                problems.append(f"{where}.text: header needs plain_text of 1..150 characters")
        elif kind == "section":
            if not 0 < len(block.get("text", {}).get("text", "")) <= 3000:
                problems.append(f"{where}.text: must be 1..3000 characters")
        elif kind == "context":
            elements = block.get("elements", [])
            if not 0 < len(elements) <= 10:
                problems.append(f"{where}.elements: 1..10 items")
            problems += [f"{where}.elements[{j}].text: too long" for j, e in enumerate(elements)
                         if len(e.get("text", "")) > 3000]
        elif kind == "actions":
            problems += _actions_problems(where, block.get("elements", []))
        elif kind != "divider":
            problems.append(f"{where}.type: unsupported block type {kind!r}")
    return problems


def _actions_problems(where: str, elements: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    if not 0 < len(elements) <= 25:
        problems.append(f"{where}.elements: 1..25 items")
    action_ids: set[str] = set()
    for j, button in enumerate(elements):
        at = f"{where}.elements[{j}]"
        if button.get("type") != "button":
            problems.append(f"{at}.type: expected button")
        text = button.get("text", {})
        if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= 75:
            problems.append(f"{at}.text: plain_text of 1..75 characters")
        action_id = button.get("action_id", "")
        if action_id in action_ids or len(action_id) > 255:
            problems.append(f"{at}.action_id: duplicate in block or too long")
        action_ids.add(action_id)
        if len(button.get("value", "")) > 2000:
            problems.append(f"{at}.value: more than 2000 characters")
        if button.get("style") not in (None, "primary", "danger"):
            problems.append(f"{at}.style: primary or danger")
    return problems


def _handler_for(api: SlackAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # read methods: slack-sdk sends their arguments in the URL
            self.do_POST()

        def do_POST(self) -> None:  # Slack accepts POST for every method
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8")
            url = urlsplit(self.path)
            params: dict[str, Any] = dict(parse_qsl(url.query))
            if self.headers.get_content_type() == "application/json":
                params.update(json.loads(raw or "{}"))
            else:
                params.update(parse_qsl(raw))
            call = Call(method=url.path.removeprefix("/api/"),
                        headers={k.lower(): v for k, v in self.headers.items()}, params=params)
            with api._lock:
                api.calls.append(call)
            failure = api._take_failure()
            if failure is not None and failure.after:
                api.answer(call)  # done: only the answer goes wrong
            if failure is not None and failure.drop:
                self.close_connection = True
                self.connection.close()
                return
            if failure is not None and failure.stall:
                api._release.wait(timeout=10)
                self.close_connection = True
                return
            if failure is not None:
                self._reply(failure.status, failure.body, failure.headers)
            else:
                self._reply(200, api.answer(call), {})

        def _reply(self, status: int, body: dict[str, Any] | str,
                   headers: dict[str, str]) -> None:
            data = (json.dumps(body) if isinstance(body, dict) else body).encode("utf-8")
            self.send_response(status)
            kind = "application/json; charset=utf-8" if isinstance(body, dict) else "text/html"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@contextmanager
def running(token: str = TOKEN) -> Iterator[SlackAPI]:
    """A started fake Slack, stopped on exit."""
    api = SlackAPI(token)
    with api:
        yield api
