"""A preview reuses what does not change, and gives exactly what learning everything
again gives: a detector's threshold change re-runs that detector alone, its findings
put back among the others' in the engine's order; a policy change re-runs none."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sia.cli.demo import DATASETS, load
from sia.events.models import Event
from sia.journal.store import Journal
from sia.service import preview
from sia.service.thresholds import config_from_files
from sia.thresholds.changes import Change, Config, apply


@pytest.fixture(scope="module")
def journal_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    events = load(DATASETS[0])[0]
    url = f"sqlite:///{tmp_path_factory.mktemp('preview') / 'journal.db'}"
    journal = Journal(url)
    for i in range(0, len(events), 1000):
        journal.record(events[i:i + 1000], source="test")
    journal.close()
    return url


def _setting(url: str, days: float = 90.0) -> tuple[preview._Journal, int, int]:
    journal = preview._Journal(url)
    seq, at = journal.newest()
    assert at is not None
    start = (at - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    return journal, seq, journal.first_at_or_after(start)


def _alerts(prefix: preview._Prefix, window: preview._Window, config: Config
            ) -> list[tuple[str, str | None, str | None]]:
    return [(a.alert_id, rep, team)
            for a, rep, team in preview._admitted(prefix, window, config.as_dict())]


def _reused_and_relearned(url: str, change: Change
                          ) -> tuple[preview._Prefix, preview._Window, preview._Window,
                                     preview._Window, Config]:
    """The state before the window, the current thresholds' window, the proposed one
    with the unchanged detectors' findings reused, and the same learned by every detector
    again; and the proposed configuration."""
    current = config_from_files(None, None)
    proposed = apply(current, [change])
    journal, seq, split = _setting(url)
    preview.forget()
    try:
        read = preview._read(journal, url, split - 1, seq)
        prefix, _ = preview._prefix(journal, read, current.as_dict(), split)
        base, _ = preview._window(journal, prefix, read, current.as_dict(), seq)
        assert base.clean and base.findings
        reused, how = preview._window(journal, prefix, read, proposed.as_dict(), seq,
                                      base=base)
        assert how is not None and how.startswith(f"{change.detector} learned the ")
        prefix.windows.clear()  # the same, learned by every detector again
        everything, how = preview._window(journal, prefix, read, proposed.as_dict(), seq)
        assert how is None
    finally:
        journal.close()
        preview.forget()
    assert [f.to_dict() for f in reused.findings] == \
        [f.to_dict() for f in everything.findings]
    return prefix, base, reused, everything, proposed


@pytest.mark.parametrize("change", [
    Change("drift", {"lost_probability": 0.9}),
    Change("cross_sell", {"min_confidence": 0.45}),
    Change("drift", {"lost_probability": 0.9}, team="UK"),
    Change("drift", {"horizon_days": 60.0}),  # shapes what all customers share
])
def test_only_the_changed_detector_runs_again_and_the_result_is_exact(
        journal_url: str, change: Change) -> None:
    prefix, base, reused, everything, proposed = _reused_and_relearned(journal_url, change)
    assert reused.places == everything.places and reused.owners == everything.owners
    assert _alerts(prefix, reused, proposed) == _alerts(prefix, everything, proposed)
    moved = {f.detector for f in reused.findings} ^ {f.detector for f in base.findings}
    assert moved <= {change.detector}


def test_a_policy_change_runs_no_detector(journal_url: str) -> None:
    current = config_from_files(None, None)
    policy = current.as_dict()["policy"]
    proposed = Config(current.as_dict()["detectors"],
                      {**policy, "cooldown_days": {**policy["cooldown_days"], "drift": 90}})
    result = preview.run_preview(preview.PreviewRequest(
        journal_url, current.as_dict(), proposed.as_dict(), 90.0))
    assert "no detector ran" in result["method"]["proposed_run"]
    assert result["after"]["alerts"] <= result["before"]["alerts"]
    assert set(result["removed"]["by_detector"]) <= {"drift"}
    assert result["added"]["count"] == 0


def _raising_drift(tmp_path: Path, **more: float
                   ) -> tuple[list[Event], Journal, preview.PreviewRequest]:
    """The sample's events, an empty journal for them, and a preview over its last 60
    days of raising drift.lost_probability to 0.9 (`more`: PreviewRequest's options)."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    current = config_from_files(None, None)
    proposed = apply(current, [Change("drift", {"lost_probability": 0.9})])
    return load(DATASETS[0])[0], Journal(url), preview.PreviewRequest(
        url, current.as_dict(), proposed.as_dict(), 60.0, **more)


def test_a_grown_journal_is_read_on_and_judged_as_if_read_whole(tmp_path: Path) -> None:
    events, journal, request = _raising_drift(tmp_path, horizon_days=30.0, session_s=0.0)
    try:
        cut = len(events) - 500
        for i in range(0, cut, 1000):
            journal.record(events[i:min(i + 1000, cut)], source="test")
        preview.forget()
        preview.run_preview(request)  # reads the journal as it is
        journal.record(events[cut:], source="test")  # then it grows
        grown = preview.run_preview(request)
        preview.forget()
        whole = preview.run_preview(request)  # read from the start
    finally:
        journal.close()
    assert "earlier preview" not in grown["method"]["precision"]
    for side in ("before", "after", "added", "removed"):
        assert grown[side] == whole[side]
    assert grown["after"]["precision"]["judged"] > 0
    assert grown["window"]["journal_entries_since"] == 0


def test_previews_of_a_session_see_the_journal_as_its_first_did(tmp_path: Path) -> None:
    events, journal, request = _raising_drift(tmp_path)
    try:
        journal.record(events[:-300], source="test")
        preview.forget()
        first = preview.run_preview(request)
        journal.record(events[-300:], source="test")
        second = preview.run_preview(request)
    finally:
        journal.close()
    assert second["window"] == {**first["window"], "journal_entries_since": 300}
    for side in ("before", "after", "added", "removed"):
        assert second[side] == first[side]


def test_only_the_window_is_kept_parsed_and_the_rest_is_read_as_it_was(
        journal_url: str) -> None:
    """The preview worker keeps the window's events parsed, not the journal's (parsed,
    an event takes about 17 KB): what comes before is read from the journal when needed,
    in the same order, and a window that moves on drops what is now before it."""
    journal, seq, split = _setting(journal_url)
    preview.forget()
    try:
        everything = [e.event_id for _, e in journal.numbered(0, seq)]
        read = preview._read(journal, journal_url, split - 1, seq)
        assert len(read.events) == seq - split + 1 < len(everything)
        streamed = [e.event_id for e in preview._stream(journal, read, 0, seq)]
        assert streamed == everything
        assert [e.event_id for e in preview._stream(journal, read, 10, split + 5)] == \
            everything[10:split + 5]
        with pytest.raises(ValueError, match="asked of those after"):
            read.between(0, seq)
        moved = preview._read(journal, journal_url, split + 99, seq)
        assert moved is read and moved.after == split + 99
        assert [e.event_id for e in moved.events] == everything[split + 99:]
    finally:
        journal.close()
        preview.forget()


def test_outcomes_indexed_in_parts_equal_outcomes_indexed_at_once() -> None:
    from sia.evaluation.outcomes import Outcomes

    events = load(DATASETS[0])[0]
    late_first = events[len(events) // 2:] + events[:len(events) // 2]  # time goes back
    parts = Outcomes.from_events(late_first[:1000])
    parts.extend(late_first[1000:])
    whole = Outcomes.from_events(events)
    assert parts.order_days == whole.order_days
    assert parts.product_days == whole.product_days
    assert (parts.first_day, parts.last_day) == (whole.first_day, whole.last_day)
    assert sorted(map(sorted, parts.order_values.values())) == \
        sorted(map(sorted, whole.order_values.values()))


def test_an_event_the_time_rules_refuse_does_not_stop_the_reuse(tmp_path: Path) -> None:
    """A journal may hold an event the engine refuses as late (the engine's clock ran
    ahead of the front door's): it is refused whatever the thresholds, so reusing the
    other detectors' findings stays exact."""
    events = load(DATASETS[0])[0]
    late = events[-1].model_copy(update={
        "event_id": "late-one", "occurred_at": events[-1].occurred_at - timedelta(days=40)})
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal = Journal(url)
    cut = len(events) - 100
    for part in (events[:cut], [late], events[cut:]):  # recorded as is: no time rule
        journal.record(part, source="test")
    journal.close()
    _reused_and_relearned(url, Change("drift", {"lost_probability": 0.9}))
