"""The offset gap check (sia/transports/kafka/gaps.py), message by message."""

from __future__ import annotations

from types import SimpleNamespace

from sia.transports.kafka.gaps import SEEK_ATTEMPTS, OffsetGaps


def _message(offset: int) -> SimpleNamespace:
    return SimpleNamespace(tp=("population", 0), topic="population", partition=0,
                           offset=offset)


def test_a_message_fetched_again_before_the_seek_does_not_make_offsets_gone() -> None:
    # a kill -9 test: a new owner was handed offset 8 of a partition it had nothing of,
    # and 8 arrived again after the seek back to 0 (Faust had fetched it twice); taking
    # 0 to 7 for gone lost their population updates
    counts: dict[str, int] = {}
    gaps = OffsetGaps(counts)
    assert not gaps.follows(_message(8), -1)
    assert gaps.take_seeks() == {("population", 0): 0}
    assert not gaps.follows(_message(9), -1)  # fetched before the seek: dropped
    assert not gaps.follows(_message(8), -1)  # the same message again: seek again
    assert gaps.take_seeks() == {("population", 0): 0}
    assert gaps.follows(_message(0), -1)
    assert counts == {"rewinds": 1, "unreadable_offsets": 0}


def test_offsets_still_missing_after_every_seek_are_taken_for_gone() -> None:
    counts: dict[str, int] = {}
    gaps = OffsetGaps(counts)
    assert not gaps.follows(_message(8), 2)
    for _ in range(SEEK_ATTEMPTS - 1):
        assert gaps.take_seeks() == {("population", 0): 3}
        assert not gaps.follows(_message(8), 2)
    assert gaps.take_seeks() == {("population", 0): 3}
    assert gaps.follows(_message(8), 2)  # 3 to 7 are gone (retention): carry on
    assert gaps.take_seeks() == {}
    assert counts == {"rewinds": 1, "unreadable_offsets": 5}
