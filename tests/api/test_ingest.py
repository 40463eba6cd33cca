"""POST /v1/events on a real server: an answer for every record, nothing lost, nothing
accepted twice, bad input of every kind refused with the reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .conftest import Server, server_settings, serving

NOW = datetime.now(UTC).replace(microsecond=0)


def order(event_id: str, *, customer: str = "C1", days_ago: float = 1.0,
          price: float = 2.0, **extra: Any) -> dict[str, Any]:
    return {"type": "order", "event_id": event_id, "customer_id": customer,
            "occurred_at": (NOW - timedelta(days=days_ago)).isoformat(), "order_id": event_id,
            "lines": [{"product_id": "P1", "quantity": 3, "unit_price": price}], **extra}


def post(server: Server, body: Any, *, who: str = "crm", **kwargs: Any) -> Any:
    with server.client(who) as client:
        if isinstance(body, bytes | str):
            return client.post("/v1/events", content=body, **kwargs)
        return client.post("/v1/events", json=body, **kwargs)


def statuses(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["status"] for r in response.json()["results"]]


def test_one_event_a_batch_and_ndjson_are_all_answered_record_by_record(server: Server) -> None:
    assert statuses(post(server, order("o1"))) == ["accepted"]
    batch = post(server, {"events": [order("o2"), order("o3"), order("o1")]})
    assert statuses(batch) == ["accepted", "accepted", "duplicate"]
    assert batch.json()["results"][2] == {"index": 2, "event_id": "o1", "status": "duplicate",
                                          "reason": None}
    lines = "\n".join(json.dumps(e) for e in (order("o4"), order("o2"))) + "\n"
    ndjson = post(server, lines, headers={"Content-Type": "application/x-ndjson"})
    assert statuses(ndjson) == ["accepted", "duplicate"]
    assert statuses(post(server, [order("o5")])) == ["accepted"]  # a bare array too
    assert server.runtime.journal.count() == 5


def test_one_bad_record_never_fails_the_others(server: Server) -> None:
    bad_quantity = order("b2")
    bad_quantity["lines"][0]["quantity"] = -1
    response = post(server, {"events": [order("g1"), {"type": "order", "event_id": "b1"},
                                        bad_quantity, "not an event", order("g2")]})
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected",
                                              "accepted"]
    assert results[1]["event_id"] == "b1" and "customer_id: Field required" in results[1]["reason"]
    assert "lines.0.quantity: Input should be greater than 0" in results[2]["reason"]
    assert results[3]["event_id"] is None and results[3]["reason"]
    assert response.json()["accepted"] == 2 and response.json()["rejected"] == 3


def test_ndjson_lines_that_are_not_json_are_rejected_alone(server: Server) -> None:
    body = json.dumps(order("n1")) + "\n{not json\n" + json.dumps(order("n2")) + "\n"
    response = post(server, body, headers={"Content-Type": "application/x-ndjson"})
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    assert results[1]["reason"].startswith("not valid JSON")


def test_the_same_id_with_other_content_is_a_conflict_kept_with_the_rejects(
        server: Server) -> None:
    assert statuses(post(server, order("c1", price=2.0))) == ["accepted"]
    response = post(server, {"events": [order("c1", price=9.0)]})
    result = response.json()["results"][0]
    assert result["status"] == "rejected" and result["reason"].startswith("conflict")
    # the same event with other spacing and key order is the same event
    same = json.dumps(order("c1", price=2.0), indent=3, sort_keys=True)
    assert statuses(post(server, same, headers={"Content-Type": "application/json"})) == [
        "duplicate"]
    with server.client("crm") as client:
        rejects = client.get("/v1/rejects").json()["items"]
    assert rejects[0]["event_id"] == "c1" and rejects[0]["reason"].startswith("conflict")
    assert json.loads(rejects[0]["raw"])["lines"][0]["unit_price"] == 9.0


def test_rejects_are_kept_whole_and_listed_newest_first(server: Server) -> None:
    post(server, {"events": [{"type": "order", "event_id": "r1", "x": 1}, order("ok")]})
    post(server, {"events": [{"type": "nonsense"}]})
    with server.client("crm") as crm, server.client("admin") as admin:
        page = crm.get("/v1/rejects", params={"limit": 1}).json()
        assert page["items"][0]["reason"].startswith("record: Input tag 'nonsense'")
        older = crm.get("/v1/rejects", params={"cursor": page["next_cursor"]}).json()
        assert [r["event_id"] for r in older["items"]] == ["r1"]
        assert json.loads(older["items"][0]["raw"]) == {"type": "order", "event_id": "r1",
                                                        "x": 1}
        assert older["items"][0]["position"] == 0 and older["next_cursor"] is None
        assert len(admin.get("/v1/rejects").json()["items"]) == 2
        # a crm key sees what it sent, not what another crm key sent
        other = admin.post("/v1/keys", json={"role": "crm", "name": "other crm"}).json()["key"]
        mine = crm.get("/v1/rejects", headers={"Authorization": f"Bearer {other}"}).json()
        assert mine["items"] == []


def test_events_dated_far_ahead_of_the_wall_clock_or_late_are_refused(server: Server) -> None:
    response = post(server, {"events": [order("f1", days_ago=-3), order("t1", days_ago=1),
                                        order("l1", days_ago=30), order("l2", days_ago=5)]})
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "accepted", "rejected", "accepted"]
    assert "more than 1 day ahead of the wall clock" in results[0]["reason"]
    assert "more than 7 days behind the stream's clock" in results[2]["reason"]
    # reference data is not late: the newest record of a customer wins whenever it comes
    customer = {"type": "customer", "event_id": "cu1", "customer_id": "C1",
                "occurred_at": (NOW - timedelta(days=400)).isoformat(), "name": "Acme"}
    assert statuses(post(server, customer)) == ["accepted"]


def test_oversized_or_wrongly_typed_or_unreadable_bodies(server: Server) -> None:
    too_many = post(server, {"events": [order(f"m{i}") for i in range(1001)]})
    assert too_many.status_code == 413 and "at most 1,000" in too_many.json()["detail"]
    huge = b'{"events": [' + b" " * (5 * 1024 * 1024) + b"]}"
    response = post(server, huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "5 MB" in response.json()["detail"]
    plain = post(server, json.dumps(order("p1")), headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415
    broken = post(server, b'{"type": "order",', headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["detail"]
    assert server.runtime.journal.count() == 0


def test_a_body_larger_than_it_says_is_cut_at_the_limit(server: Server) -> None:
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    key = server.keys["crm"]
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer "
                     + key.encode() + b"\r\n\r\n")
        chunk = b" " * (1024 * 1024)
        for _ in range(6):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def test_a_backlog_over_its_bound_answers_429_with_retry_after(tmp_path: Path) -> None:
    with serving(tmp_path / "data", server_settings(serve_max_backlog=5)) as s:
        with s.engine_paused():  # the engine cannot learn meanwhile: the backlog grows
            assert statuses(post(s, {"events": [order(f"q{i}") for i in range(8)]})) == [
                "accepted"] * 8
            refused = post(s, order("q9"))
            assert refused.status_code == 429, refused.text
            assert 1 <= int(refused.headers["retry-after"]) <= 60
            with s.client() as client:
                ready = client.get("/readyz")
                assert ready.status_code == 503 and "bound 5" in ready.json()["checks"][
                    "engine_lag"]
        s.wait_learned()
        assert statuses(post(s, order("q9"))) == ["accepted"]


def test_a_repeat_long_after_a_restart_is_still_a_duplicate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    batch = {"events": [order("d1"), order("d2", customer="C2")]}
    with serving(data) as s:
        assert statuses(post(s, batch)) == ["accepted", "accepted"]
        s.wait_learned()
    with serving(data) as s:
        assert statuses(post(s, batch)) == ["duplicate", "duplicate"]
        s.wait_learned()
        assert s.status()["learned"] == 2
