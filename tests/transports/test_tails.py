"""TailWatch: a partition read past its state, with neither moving between two looks."""

from sia.transports.kafka.tails import TailWatch


def test_a_tail_read_but_not_learned_is_read_again_after_two_still_looks() -> None:
    watch = TailWatch()
    assert watch.look("p0", covered=29, read=44) is None  # maybe in flight: wait
    assert watch.look("p0", covered=29, read=44) == 30  # unmoved: never coming
    assert watch.look("p0", covered=29, read=44) is None  # looks again before seeking again


def test_a_partition_that_moves_or_has_learned_everything_is_left_alone() -> None:
    watch = TailWatch()
    assert watch.look("p0", covered=29, read=44) is None
    assert watch.look("p0", covered=35, read=44) is None  # learning: only slow
    assert watch.look("p0", covered=35, read=50) is None  # reading
    assert watch.look("p0", covered=50, read=50) is None  # caught up
    assert watch.look("p0", covered=50, read=50) is None
    assert watch.look("p1", covered=-1, read=None) is None  # nothing consumed yet


def test_a_partition_forgotten_at_a_rebalance_starts_its_looks_again() -> None:
    watch = TailWatch()
    assert watch.look("p0", covered=-1, read=7) is None
    watch.forget({"p0"})
    assert watch.look("p0", covered=-1, read=7) is None
    assert watch.look("p0", covered=-1, read=7) == 0
