"""Two requests at once cannot let in an event days behind the stream: the journal
judges lateness and takes seqs one record() at a time, so the engine, reading it in seq
order, never refuses what the front door answered "accepted"."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sia.engine.admission import TimeLimits
from sia.events.models import Event, parse_event
from sia.journal import Journal
from sia.service.ingest import lateness

START = datetime(2011, 3, 1, 9, tzinfo=UTC)


def _orders(prefix: str, day: int, n: int) -> list[Event]:
    return [parse_event({
        "type": "order", "event_id": f"{prefix}-{i}", "order_id": f"{prefix}-{i}",
        "customer_id": f"C{i}", "occurred_at": (START + timedelta(days=day, minutes=i))
        .isoformat(), "lines": [{"product_id": "P1", "quantity": 1, "unit_price": 2.0}]})
        for i in range(n)]


def test_a_batch_judged_before_a_newer_one_is_committed_is_not_let_in_behind_it(
        tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'journal.db'}")
    refuse = lateness(TimeLimits(max_late=timedelta(days=7)))
    old, new = _orders("old", 0, 20), _orders("new", 20, 20)  # 20 days apart
    inside = threading.Event()

    def slow_refuse(event: Event, clock: datetime | None) -> str | None:
        inside.set()  # the old batch is being judged: let the new one come now
        threading.Event().wait(0.02)
        return refuse(event, clock)

    answers: dict[str, list[str]] = {}

    def post(name: str, events: list[Event], judge: object) -> None:
        answers[name] = [a.status for a in journal.record(
            events, source=name, refuse=judge)]  # type: ignore[arg-type]

    first = threading.Thread(target=post, args=("old", old, slow_refuse))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=post, args=("new", new, refuse))
    second.start()
    first.join(30)
    second.join(30)
    try:
        assert answers["old"] == ["accepted"] * 20  # it came first, judged first
        assert answers["new"] == ["accepted"] * 20
        stored = [parse_event(body) for _, body in journal.read_after(0, limit=100)]
        assert [e.event_id for e in stored] == [e.event_id for e in old + new]
        newest = None
        for event in stored:  # in seq order, no accepted event is late for the engine
            assert refuse(event, newest) is None
            newest = max(newest or event.occurred_at, event.occurred_at)
    finally:
        journal.close()
