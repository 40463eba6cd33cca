"""The transport-free core: observe(event) and tick(now) return findings.

The engine deduplicates events by id, keeps reference data, dispatches each event to
the detectors that handle its type, and moves their clock. It knows nothing about
Kafka, files or HTTP: transports drive it.

It also refuses what it must not learn, one event at a time, and goes on (see `Engine`):
an event dated too far ahead of the clock or too long behind it (sia/engine/admission.py),
and an event that makes a detector raise, which leaves everything learned as it was
before that event.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sia.catalog import Catalog
from sia.detectors.base import Detector, built_again, claim
from sia.engine import snapshot
from sia.engine.admission import TimeLimits, event_time_problem
from sia.engine.seen import RETENTION, SeenEvents
from sia.events.canonical import short_digest
from sia.events.models import Customer, Event, Product, Rep
from sia.findings import Finding

log = logging.getLogger("sia.engine")

_REFERENCE = (Customer, Product, Rep)
_TICK = "tick"  # a run's item that is a time the clock reaches, not an event
_PARTIAL = "partial tick"  # ... that some detectors skip (their tick raised)
# events learned together when replaying a file (see `replay`): large enough that each
# detector's data stays hot, small enough that findings follow their events closely
FILE_CHUNK = 2048

RejectHook = Callable[[Event, str], None]
# Detector attributes that are configuration or wiring, not learned: a rollback keeps
# what they are now (thresholds published since the checkpoint stay applied)
_NOT_LEARNED = ("params", "_scoped", "_by_rep", "_overrides", "_reps",
                "population_outbox")


class EventRejected(Exception):
    """An event the engine refused, for a reject hook that stops the run (`raise_rejected`)."""

    def __init__(self, event: Event, reason: str) -> None:
        super().__init__(f"event {event.event_id}: {reason}")
        self.event = event
        self.reason = reason


def raise_rejected(event: Event, reason: str) -> None:
    """A reject hook that stops at the first refused event (a strict run)."""
    raise EventRejected(event, reason)


@dataclasses.dataclass(frozen=True, slots=True)
class _PartialTick:
    """A tick that the detectors named in `skip` do not take (theirs raised)."""

    now: datetime
    skip: frozenset[str]


class _DetectorFailed(Exception):
    """A detector raised on the item at `index` of what it was given."""

    def __init__(self, detector: str, index: int, error: Exception) -> None:
        super().__init__(detector, index)
        self.detector = detector
        self.index = index
        self.error = error


class Engine:
    """Online detection over one ordered stream of events.

    What it refuses, it refuses one event at a time, and the run goes on:

    - Time (sia/engine/admission.py, `time_limits`): an event dated more than
      `max_ahead` past the wall clock (when the engine is given one, `wall_clock`: the
      live service), else more than `max_gap` past the stream's clock (a replay: the
      newest event or tick time), or more than `max_late` behind the stream's clock
      (reference records excepted). Drivers that tick the clock before they hand events
      over filter them through `admitted` first, so that an event dated 2111 does not
      tick a century before it is refused.
    - Failure: an event that makes a detector raise (`observe` or `observe_many`, any
      detector). Everything it changed is rolled back, in every detector (the ones that
      learned it before the one that raised too), the dedup record and the catalog:
      the engine is as if it had never seen the event, and a rerun with it gives what a
      run without it gives. The traceback goes to the "sia.engine" log. A tick that
      makes a detector raise is rolled back for that detector only (it skips that tick;
      the others take it) and logged.

    Each refused event is passed to `on_reject(event, reason)` once, after the rollback;
    the reason is time_problem's text, or "detector <name> raised <Type>: <message>". The
    hook may raise (`raise_rejected`, a strict run) to stop: the exception propagates
    from the call that learned the event, with everything before the event in that
    call learned and nothing after it (the findings of that call are lost with it, and
    what a driver held for a later call, as `replay` with a chunk does, is not learned).
    Without a hook, refusals are logged (warning) and counted (`rejected`). Refused
    events are not recorded as seen: the same id may come again, corrected. Repeats are
    judged before times (`repeated`): an id learned before is a duplicate however late it
    comes again, and a conflict (refused) when its content differs.

    How a rollback is cheap on the hot path: nothing is copied per event. The engine
    keeps a checkpoint of everything learned (pickled in memory: 0.3 to 0.4 s and 12 MB
    for a year of online retail) and a journal of what it learned since (references to
    the events and times); a failure restores the checkpoint and learns the journal
    again. An engine of detectors just built needs no checkpoint at first: a rollback
    builds them again (pickling them would cost a fresh engine 4 to 5% for the rest of
    its run on Python 3.11, which then keeps their attributes in dictionaries). Later
    checkpoints are paced so that they take at most `CHECKPOINT_SHARE` of the time spent
    learning, counted since the engine started, unless the journal reaches
    `JOURNAL_LIMIT` items: that bounds the memory the journal holds (the events since
    the checkpoint: 200 MB of online retail's orders) and what a failure costs to learn
    again, and can cost more than the share when the state is large and events come
    fast (one checkpoint in a replay of the full online retail year: about 4%).
    `isolate=False` turns rollbacks off (a detector's exception then propagates, with
    the state part learned, as transports with checkpoints of their own want:
    sia/engine/partitions.py). Detectors must be deterministic and pickle faithfully,
    which the contract tests check for every registered detector (an engine whose state
    does not pickle turns rollbacks off, with a warning). Anything that changes
    detectors or reference data outside `observe`, `observe_many`, `tick` and
    `learn_at_tick` must call `mark_changed` after.
    """

    CHECKPOINT_SHARE = 0.02  # of the time spent learning, at most, taking checkpoints
    JOURNAL_LIMIT = 20_000  # events and ticks learned since the checkpoint, at most

    def __init__(self, detectors: Sequence[Detector[Any]], *,
                 dedup_retention: timedelta = RETENTION,
                 time_limits: TimeLimits | None = None,
                 wall_clock: Callable[[], datetime] | None = None,
                 on_reject: RejectHook | None = None, isolate: bool = True,
                 conflicts: bool = True) -> None:
        names = [d.name for d in detectors]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate detectors in {names}")
        self.detectors = list(detectors)
        self.catalog = Catalog()
        self.seen = SeenEvents(dedup_retention)
        self.clock: datetime | None = None  # newest event or tick time
        # newest event or tick time, reference records excepted: what times are judged
        # by (a record of the catalog may be dated whenever it was last changed)
        self.stream_clock: datetime | None = None
        self.duplicates = 0
        self.observed = 0
        self.rejected = 0  # events refused (time or a detector's failure)
        self.failures = 0  # of those, refused because a detector raised on them
        self.tick_failures = 0  # detector ticks rolled back and skipped
        self.time_limits = time_limits or TimeLimits()
        self.wall_clock = wall_clock
        self.on_reject = on_reject
        self.isolate = isolate
        self.conflicts = conflicts
        # called with each run learned and its findings as (item index, detector index,
        # findings), before they are put in order: where each finding came from (the
        # threshold preview merges the findings of engines running different detectors)
        self.tracer: Callable[[Sequence[Any], list[tuple[int, int, list[Finding]]]],
                              None] | None = None
        route: dict[str, list[Detector[Any]]] = {}
        for detector in self.detectors:
            for event_type in detector.handles:
                route.setdefault(event_type, []).append(detector)
        self._route: dict[str, tuple[Detector[Any], ...]] = {
            event_type: tuple(handlers) for event_type, handlers in route.items()}
        # rollback (see the class docstring): a checkpoint, what was learned since it
        # (events, ticks and _PartialTick, and ("learn_at_tick", time) pairs), and pacing
        self._checkpoint: bytes | None = None
        self._journal: list[Any] = []
        self._learning = 0.0  # seconds spent learning since the checkpoint
        self._learned = 0.0  # ... since the engine started
        self._checkpoint_cost = 0.0  # seconds the last checkpoint took
        self._checkpoints = 0.0  # ... all of them
        self._checkpointed = 0  # events observed when the last one was taken
        self._relearned = 0.0  # seconds the last rollback spent learning the journal again
        self._relearning = False
        # detectors just built (not restored) have learned nothing: rolling back to them
        # needs no checkpoint (see sia.detectors.base.claim)
        self._built = all([claim(d) for d in self.detectors])
        self._from_built = False

    # Context protocol, handed to detectors
    def scope_of(self, customer_id: str) -> tuple[str | None, str | None]:
        """(team, segment) of a customer."""
        return self.catalog.team_of(customer_id), self.catalog.segment_of(customer_id)

    # time
    def time_problem(self, event: Event, clock: datetime | None = None) -> str | None:
        """Why `event` cannot be learned now because of its time, or None. `clock`: the
        stream's clock to judge it by (a driver holding events it has not handed over
        yet passes the newest of them); the engine's `stream_clock` by default."""
        if clock is None or (self.stream_clock is not None and self.stream_clock > clock):
            clock = self.stream_clock
        wall = self.wall_clock() if self.wall_clock is not None else None
        return event_time_problem(event.occurred_at, clock=clock, wall=wall,
                                  limits=self.time_limits,
                                  reference=isinstance(event, _REFERENCE))

    def admitted(self, events: Iterable[Event]) -> Iterator[Event]:
        """`events` without those whose time the engine refuses (reported to the reject
        hook here), judged in order as the engine judges them when they are learned in
        that order. For drivers that tick before they hand events over (`replay`, the
        live driver, partitions): a refused event must not move the clock."""
        clock: datetime | None = None
        seen = self.seen
        for event in events:
            if event.event_id in seen:  # a repeat: `repeated` judges it when learned
                yield event
                continue
            problem = self.time_problem(event, clock)
            if problem is not None:
                self.refuse(event, problem)
                continue
            if not isinstance(event, _REFERENCE) and (clock is None or event.occurred_at > clock):
                clock = event.occurred_at
            yield event

    def refuse(self, event: Event, reason: str) -> None:
        """Count and report a refused event (the hook may raise)."""
        self.rejected += 1
        if self.on_reject is None:
            log.warning("event %s refused: %s", event.event_id, reason)
        else:
            self.on_reject(event, reason)

    def digest(self, event: Event) -> int | None:
        """A digest of the event's content, kept with its id to tell a repeat from a
        conflict (None when the engine does not look: `conflicts=False`, for a driver
        whose journal did it already)."""
        return short_digest(event) if self.conflicts else None

    def repeated(self, event: Event) -> bool:
        """True for an id learned before: counted as a duplicate, or, with other content,
        refused as a conflict (reported to the reject hook). Judged before times are: a
        repeat comes whenever the sender retries, however late."""
        if event.event_id not in self.seen:
            return False
        digest = self.digest(event)
        if digest is not None and self.seen.differs(event.event_id, digest):
            self.refuse(event, f"conflict: event {event.event_id} was learned before with "
                        "other content (an event id names one event; send a change as a "
                        "new event)")
        else:
            self.duplicates += 1
        return True

    # learning
    def observe(self, event: Event) -> list[Finding]:
        """Learn from one event; a repeated event_id is ignored, a refused one reported
        (see the class docstring)."""
        self._pace()
        started = time.perf_counter()
        try:
            if self.repeated(event):
                return []
            problem = self.time_problem(event)
            if problem is not None:
                self.refuse(event, problem)
                return []
            self.seen.check_and_add(event.event_id, event.occurred_at, self.digest(event))
            self.observed += 1
            at = event.occurred_at
            if self.clock is None or at > self.clock:
                self.clock = at
            if isinstance(event, _REFERENCE):
                self.catalog.update(event)
            elif self.stream_clock is None or at > self.stream_clock:
                self.stream_clock = at
            findings: list[Finding] = []
            for detector in self._route.get(event.type, ()):
                try:
                    found = detector.observe(event, self)
                except Exception as exc:
                    if not self.isolate:
                        raise
                    failure = _DetectorFailed(detector.name, 0, exc)
                    break
                if found:  # most events reveal nothing: skip the extend
                    findings += found
            else:
                if self.isolate:
                    self._journal.append(event)
                return findings
            return self._learn_run([event], failure)
        finally:
            self._learning += time.perf_counter() - started

    def observe_many(self, items: Sequence[Event | datetime]) -> list[Finding]:
        """Learn from events, and let the clock reach each time between them (a tick), in
        order: the same findings, in the same order, as `observe` on each event and
        `tick` at each time in turn. But each detector takes its events and ticks of a
        run one after another, keeping its own data hot instead of eight detectors
        alternating event by event. Exact because a detector sees only its own state
        and the reference data (`Context`), and a reference record ends a run.

        Refusals are as with `observe` on each event in turn: an event that makes a
        detector raise is rolled back and reported, and the others of the run are
        learned as if it had not been there."""
        self._pace()
        started = time.perf_counter()
        try:
            return self._learn(items, check=True)
        finally:
            self._learning += time.perf_counter() - started

    def tick(self, now: datetime) -> list[Finding]:
        """Let the clock reach `now` (event time in replays, wall time live); a detector
        whose tick raises skips it (see the class docstring)."""
        return self.observe_many((now,))

    def learn_at_tick(self, now: datetime) -> None:
        """What detectors learn when the clock reaches `now`, before they tick it."""
        self._pace()
        for detector in self.detectors:
            detector.learn_at_tick(now, self)
        if self.isolate:
            self._journal.append(("learn_at_tick", now))

    def mark_changed(self) -> None:
        """Detectors or reference data were changed outside the engine's calls: what
        a rollback restores is taken anew."""
        self._checkpoint = None
        self._built = self._from_built = False
        self._journal = []

    def _learn(self, items: Sequence[Event | datetime | _PartialTick], *,
               check: bool) -> list[Finding]:
        """`observe_many`, with the time checks (`check`) or without (learning the
        journal again after a rollback: it was checked)."""
        findings: list[Finding] = []
        run: list[Any] = []
        seen = self.seen
        limits = self.time_limits
        gap, late = limits.max_gap, limits.max_late
        judged = check and self.wall_clock is None  # the stream's clock alone: inline
        for item in items:
            if isinstance(item, datetime | _PartialTick):
                now = item if isinstance(item, datetime) else item.now
                if self.clock is None or now > self.clock:
                    self.clock = now
                if self.stream_clock is None or now > self.stream_clock:
                    self.stream_clock = now
                run.append(item)
                continue
            if item.event_id in seen and self.repeated(item):
                continue
            at = item.occurred_at
            stream = self.stream_clock
            if check and (not judged or (stream is not None and (
                    at - stream > gap or stream - at > late))):
                problem = self.time_problem(item)
                if problem is not None:
                    findings += self._learn_run(run)
                    run = []
                    self.refuse(item, problem)
                    continue
            if isinstance(item, _REFERENCE):
                findings += self._learn_run(run)
                run = []
                findings += self._learn_reference(item)
                continue
            if not seen.check_and_add(item.event_id, at, self.digest(item)):
                self.duplicates += 1  # twice in `items`: the first is not learned yet
                continue
            self.observed += 1
            if self.clock is None or at > self.clock:
                self.clock = at
            if stream is None or at > stream:
                self.stream_clock = at
            run.append(item)
        findings += self._learn_run(run)
        return findings

    def _learn_reference(self, event: Customer | Product | Rep) -> list[Finding]:
        """A reference record (a run of its own: it changes what detectors read)."""
        if not self.seen.check_and_add(event.event_id, event.occurred_at, self.digest(event)):
            self.duplicates += 1
            return []
        self.observed += 1
        if self.clock is None or event.occurred_at > self.clock:
            self.clock = event.occurred_at
        self.catalog.update(event)
        return self._learn_run([event])

    def _learn_run(self, run: list[Any], failure: _DetectorFailed | None = None
                   ) -> list[Finding]:
        """`_observe_run`, journalled, with a detector's failure rolled back (`failure`:
        the run failed already). After a failure on `run[i]`, the run is learned again
        in parts: the items before that one (detector after detector, the first to raise
        is not always the earliest in the stream: a later detector may raise on an
        earlier item, and that item may be what made this one raise), then that item
        alone, then the rest in pieces of 1, 2, 4, ... items (a detector that raises on
        many events of a run then costs each failure a piece, not the rest of the run
        again). An item that raises alone is the one to blame: an event is rejected, a
        tick is skipped by the detector that raised."""
        if not run:
            return []
        if not self.isolate:
            return self._observe_run(run)
        if failure is None:  # the hot path: no failure
            try:
                out = self._observe_run(run)
            except _DetectorFailed as exc:
                if self._relearning:  # the journal again: learned without failure before
                    raise
                failure = exc
            else:
                self._journal += run
                return out
        found: list[Finding] = []
        todo: deque[tuple[list[Any], bool]] = deque([(run, True)])  # (part, booked)
        piece = 0  # after a failure: the size of the next piece of the rest
        while todo:
            part, booked = todo.popleft()
            if failure is None:
                if piece and len(part) > piece:
                    todo.appendleft((part[piece:], booked))
                    part = part[:piece]
                if not booked:
                    self._book(part)
                try:
                    out = self._observe_run(part)
                except _DetectorFailed as exc:
                    if self._relearning:  # the journal again: learned without failure before
                        raise
                    failure = exc
                else:
                    self._journal += part
                    found += out
                    piece *= 2
                    continue
            self._rollback()  # what was booked for the parts to come is undone too
            todo = deque((p, False) for p, _ in todo)
            if self._relearned > self._checkpoint_cost:  # the next failure learns less again
                self._take_checkpoint()
            t, blamed, failure = failure.index, failure, None
            piece = 1
            if len(part) > 1:
                todo.extendleft(reversed([(p, False) for p in (part[:t], part[t:t + 1],
                                                               part[t + 1:]) if p]))
                continue
            found += self._blame(part[0], blamed, todo)
        return found

    def _blame(self, bad: Any, failure: _DetectorFailed,
               todo: deque[tuple[list[Any], bool]]) -> list[Finding]:
        """`bad` raised on its own (and is rolled back): reject the event, or have the
        detector skip the tick (learned next)."""
        error = failure.error
        if isinstance(bad, datetime | _PartialTick):
            now, skip = (bad, frozenset()) if isinstance(bad, datetime) else (bad.now, bad.skip)
            self.tick_failures += 1
            log.error("detector %s raised %s on the tick at %s: that tick is skipped by "
                      "it, its state as before", failure.detector, type(error).__name__,
                      now.isoformat(), exc_info=error)
            todo.appendleft(([_PartialTick(now, skip | {failure.detector})], False))
            return []
        reason = f"detector {failure.detector} raised {type(error).__name__}: {error}"
        log.error("event %s rejected: %s (everything it changed is rolled back)",
                  bad.event_id, reason, exc_info=error)
        self.failures += 1
        self.refuse(bad, reason)
        return []

    def _book(self, items: Sequence[Any]) -> None:
        """What `_learn` records of items before they are learned (the dedup record,
        counts, clocks, catalog), again for items learned again after a rollback."""
        for item in items:
            if isinstance(item, datetime | _PartialTick):
                now = item if isinstance(item, datetime) else item.now
                if self.clock is None or now > self.clock:
                    self.clock = now
                if self.stream_clock is None or now > self.stream_clock:
                    self.stream_clock = now
                continue
            at = item.occurred_at
            self.seen.check_and_add(item.event_id, at, self.digest(item))
            self.observed += 1
            if self.clock is None or at > self.clock:
                self.clock = at
            if isinstance(item, _REFERENCE):
                self.catalog.update(item)
            elif self.stream_clock is None or at > self.stream_clock:
                self.stream_clock = at

    def _observe_run(self, run: Sequence[Any]) -> list[Finding]:
        """Detector after detector over a run of new, non-reference events and tick
        times (or one reference record); findings put back in run order, then in the
        order of the detectors."""
        kinds = [_TICK if isinstance(item, datetime)
                 else _PARTIAL if isinstance(item, _PartialTick) else item.type
                 for item in run]
        found: list[tuple[int, int, list[Finding]]] = []
        isolate = self.isolate
        for rank, detector in enumerate(self.detectors):
            handles, observe, tick = detector.handles, detector.observe, detector.tick
            i = -1
            try:
                for i, kind in enumerate(kinds):
                    if kind is _TICK:
                        out = tick(run[i], self)
                    elif kind in handles:
                        out = observe(run[i], self)
                    elif kind is _PARTIAL and detector.name not in run[i].skip:
                        out = tick(run[i].now, self)
                    else:
                        continue
                    if out:
                        found.append((i, rank, out))
            except Exception as exc:
                if not isolate:
                    raise
                raise _DetectorFailed(detector.name, i, exc) from exc
        if self.tracer is not None:
            self.tracer(run, found)
        found.sort(key=lambda item: (item[0], item[1]))
        return [f for _, _, out in found for f in out]

    # rollback
    def _rollback(self) -> None:
        """Back to the checkpoint, then the journal learned again: the state after the
        last run learned without failure."""
        journal, duplicates, rejected = self._journal, self.duplicates, self.rejected
        if self._checkpoint is not None:
            detectors, catalog, seen, self.clock, self.stream_clock, self.observed = \
                pickle.loads(self._checkpoint)
        elif self._from_built:  # nothing learned at the start: build it again
            detectors = [built_again(d) for d in self.detectors]
            catalog, seen = Catalog(), SeenEvents(self.seen.retention)
            self.clock = self.stream_clock = None
            self.observed = 0
        else:
            raise RuntimeError("no checkpoint to roll back to")
        for live, restored in zip(self.detectors, detectors, strict=True):
            kept = {name: vars(live)[name] for name in _NOT_LEARNED if name in vars(live)}
            vars(live).clear()
            vars(live).update(vars(restored))
            vars(live).update(kept)
        _copy_into(self.catalog, catalog)
        _copy_into(self.seen, seen)
        self._journal = []
        again: list[Any] = []
        self._relearning = True
        started = time.perf_counter()
        try:
            for item in journal:
                if isinstance(item, tuple):  # ("learn_at_tick", now)
                    self._learn(again, check=False)
                    again = []
                    for detector in self.detectors:
                        detector.learn_at_tick(item[1], self)
                    self._journal.append(item)
                else:
                    again.append(item)
            self._learn(again, check=False)
        except Exception as exc:  # what was learned without failure fails: not deterministic
            self._checkpoint = None
            raise RuntimeError("learning the journal again after a rollback failed: a "
                               "detector is not deterministic or does not pickle "
                               "faithfully") from exc
        finally:
            self._relearning = False
        # when learning the journal again took longer than a checkpoint does, one is
        # taken (`_learn_run`): a run of failures (a detector that raises on every event
        # of some kind) then costs a checkpoint's time each, not the journal's again
        self._relearned = time.perf_counter() - started
        self.duplicates, self.rejected = duplicates, rejected

    def _pace(self) -> None:
        """Take a checkpoint when one is due (see the class docstring)."""
        if not self.isolate:
            return
        if self._checkpoint is None and not self._from_built and self._built and \
                self.observed == self.duplicates == 0 and self.clock is None and \
                not len(self.seen) and self.catalog == Catalog():
            # built, nothing learned yet: a rollback builds the detectors again, and the
            # first checkpoint waits for the journal's limit (see `claim`)
            self._from_built = True
        if self._from_built and len(self._journal) < self.JOURNAL_LIMIT:
            return
        if self._checkpoint is not None and len(self._journal) < self.JOURNAL_LIMIT:
            # what the next one will cost: the last one's, grown with what was learned
            # since (state grows more slowly than events: an overestimate)
            cost = self._checkpoint_cost * (self.observed + 1) / (self._checkpointed + 1)
            if self._checkpoints + cost > self.CHECKPOINT_SHARE * (self._learned
                                                                   + self._learning):
                return
        self._take_checkpoint()

    def _take_checkpoint(self) -> None:
        started = time.perf_counter()
        try:
            self._checkpoint = pickle.dumps(
                (self.detectors, self.catalog, self.seen, self.clock, self.stream_clock,
                 self.observed), protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            log.warning("rollbacks are off: the engine's state does not pickle (%s); a "
                        "detector's exception will propagate", exc)
            self.isolate, self._checkpoint = False, None
            return
        self._journal = []
        self._from_built = False
        self._learned += self._learning
        self._learning = 0.0
        self._checkpoint_cost = time.perf_counter() - started
        self._checkpoints += self._checkpoint_cost
        self._checkpointed = self.observed

    # snapshots
    def detector_params(self) -> dict[str, dict[str, Any]]:
        """Thresholds of every detector, as recorded in snapshots."""
        return {d.name: dataclasses.asdict(d.params) for d in self.detectors}

    def snapshot(self) -> bytes:
        """Everything learned so far, with the versions it was made with."""
        state = {
            "detectors": {d.name: d for d in self.detectors},
            "catalog": self.catalog,
            "seen": self.seen,
            "clock": self.clock,
            "stream_clock": self.stream_clock,
            "counts": (self.observed, self.duplicates),
        }
        return snapshot.dump(state, detectors=self.detector_params())

    @classmethod
    def restore(cls, blob: bytes, *, detectors: Sequence[Detector[Any]],
                dedup_retention: timedelta = RETENTION,
                **options: Any) -> Engine:
        """An engine that continues where the snapshot left off.

        `detectors` are the ones configured now: the snapshot must hold the same set,
        and their current thresholds replace the ones the snapshot was made with (what
        was learned is kept; what a manager tuned since takes effect). `options`: the
        constructor's (`time_limits`, `wall_clock`, `on_reject`, `isolate`).
        """
        state = snapshot.load(blob, detectors=[d.name for d in detectors])
        engine = cls.from_learned(state["detectors"], detectors,
                                  dedup_retention=dedup_retention, **options)
        engine.catalog = state["catalog"]
        engine.seen = state["seen"].resumed(dedup_retention)
        engine.clock = state["clock"]
        # snapshots from before stream_clock: the clock is the best known
        engine.stream_clock = state.get("stream_clock", engine.clock)
        engine.observed, engine.duplicates = state["counts"]
        return engine

    @classmethod
    def from_learned(cls, restored: dict[str, Detector[Any]],
                     detectors: Sequence[Detector[Any]], *,
                     dedup_retention: timedelta = RETENTION,
                     **options: Any) -> Engine:
        """An engine of restored detectors, with the thresholds configured now
        (`options`: the constructor's)."""
        for configured in detectors:
            learned = restored[configured.name]
            for key in sorted(configured.global_params):
                was, now = getattr(learned.params, key), getattr(configured.params, key)
                if was != now:
                    raise snapshot.SnapshotError(
                        f"{configured.name}.{key} changed from {was} to {now}; it shapes what "
                        "was learned across all customers, so replay the events to rebuild")
            learned.params = configured.params
            learned.set_overrides(configured.overrides)
        return cls([restored[d.name] for d in detectors], dedup_retention=dedup_retention,
                   **options)


def replay(engine: Engine, events: Iterable[Event], *,
           tick_every: timedelta = timedelta(days=1),
           final_tick: bool = True, chunk: int = 1) -> Iterator[Finding]:
    """Drive an engine with event time: tick at each boundary the stream crosses, and
    (unless `final_tick` is False, as in a stream that has no end) once after the last
    event.

    With `chunk` above 1, up to that many events, with the ticks between them, are
    learned together (`Engine.observe_many`): the same findings in the same order,
    faster, but a finding comes out only when its chunk is complete, so a live stream
    keeps 1. An event whose time the engine refuses is refused before it ticks
    anything (`Engine.admitted`).
    """
    next_tick: datetime | None = None
    pending: list[Event | datetime] = []
    count = 0
    for event in engine.admitted(events):
        at = event.occurred_at
        if next_tick is None:
            next_tick = _boundary_after(at, tick_every)
        if at >= next_tick and chunk == 1:
            yield from _learn(engine, pending)
        while at >= next_tick:
            if chunk == 1:
                yield from engine.tick(next_tick)
            else:
                pending.append(next_tick)
            next_tick += tick_every
        pending.append(event)
        count += 1
        if count >= chunk:
            yield from _learn(engine, pending)
            count = 0
    if next_tick is not None and final_tick:
        pending.append(next_tick)
    yield from _learn(engine, pending)


def _learn(engine: Engine, pending: list[Event | datetime]) -> list[Finding]:
    """What the pending events and ticks reveal; empties the list."""
    if not pending:
        return []
    first = pending[0]
    if len(pending) == 1:
        found = engine.tick(first) if isinstance(first, datetime) else engine.observe(first)
    else:
        found = engine.observe_many(pending)
    pending.clear()
    return found


def _boundary_after(at: datetime, step: timedelta) -> datetime:
    """The first step boundary (midnight-aligned in the event's zone) after `at`."""
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    boundary = midnight
    while boundary <= at:
        boundary += step
    return boundary


def _copy_into(live: object, restored: object) -> None:
    """Make `live` hold what `restored` holds (its identity kept: others refer to it)."""
    if hasattr(live, "__dict__"):
        vars(live).clear()
        vars(live).update(vars(restored))
    for cls in type(live).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(restored, name):
                setattr(live, name, getattr(restored, name))
