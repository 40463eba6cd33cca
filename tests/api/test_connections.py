"""The server under a careless or hostile client (what the hand-written feedback server
failed at): stalled connections, a body larger than it may be, a Content-Length that
lies, a flood beyond the connection cap."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from .conftest import Server, server_settings, serving


def raw(server: Server, request: bytes, *, timeout: float = 10) -> bytes:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        return sock.recv(4096)


def test_stalled_clients_do_not_hold_up_the_others(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    stalled = []
    for _ in range(300):  # each sends half a request line and waits
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"POST /slack/interactivity HTTP/1.1\r\nHost: x\r\n")
        stalled.append(sock)
    try:
        started = time.perf_counter()
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert time.perf_counter() - started < 5
    finally:
        for sock in stalled:
            sock.close()


def test_a_body_over_the_limit_or_a_lying_length_is_refused(server: Server) -> None:
    big = b"payload=" + b"x" * (2 * 1024 * 1024)
    answer = httpx.post(f"{server.url}/slack/interactivity", content=big, timeout=30)
    assert answer.status_code == 413
    negative = raw(server, b"POST /slack/interactivity HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: -1\r\n\r\n")
    assert negative.startswith(b"HTTP/1.1 400")
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # and it goes on


def test_past_the_connection_cap_the_server_says_so_at_once(tmp_path: Path) -> None:
    with serving(tmp_path / "data", server_settings(serve_max_connections=20)) as server:
        host, port = server.url.removeprefix("http://").split(":")
        held = []
        for _ in range(25):  # requests that never finish their body
            sock = socket.create_connection((host, int(port)))
            sock.sendall(b"POST /slack/interactivity HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 100\r\n\r\nx")
            held.append(sock)
        try:
            answers = []
            for sock in held:  # those past the cap are answered (503) and closed at once
                sock.settimeout(0.5)
                try:
                    answers.append(sock.recv(100))
                except TimeoutError:
                    answers.append(b"")  # still waiting for its body: a held slot
            refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
            assert len(refused) >= 5 and answers.count(b"") <= 20
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.5)
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
