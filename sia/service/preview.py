"""What a threshold change would do, before anyone makes it: the journal's last days
replayed twice in a sandbox, once as the thresholds are and once as proposed.

The question a preview answers is the one a manager asks: "had this change been made
`days` ago, which alerts would my team have got?". So both runs share what was learned
before the window (the journal up to its start, learned with today's thresholds, kept in
memory for the next preview over the same window); the proposed thresholds take effect
at the window's start, as they would in the live engine the moment they are applied. A
threshold that shapes what is learned across all customers cannot be applied to learned
state: the proposed run then learns the whole journal with it.

What makes it interactive, each exact (tests/service/test_preview_reuse.py):
- a window run learns on a forked copy of the process holding the state before the
  window (copy-on-write; restoring a snapshot cost about a second on the sample), and
  sends back its findings before the policy, with where each came from;
- detectors read only their own state and the reference data, so a change of one
  detector's thresholds runs that detector alone over the window; the findings of the
  others are the current run's, and all are put back in the engine's order (the stream
  item, then the detector's place) before the policy filters them;
- a change of the policy alone (a minimum score, a cooldown, an inhibition) runs no
  detector: the current run's findings are filtered again;
- every window run is kept (by the detectors' thresholds and the journal's newest seq),
  so trying values back and forth costs what is new.

Precision is judged as `sia evaluate` judges it, by the same evaluators
(`sia.evaluation.judges`) against what the journal holds after each alert: an alert whose
outcome window (`horizon_days`) runs past the journal's newest event is counted as not yet
judgeable, never guessed. The evaluators see the whole journal once and, when it grows,
only what is new; each detector's figures are kept for the alerts they judged, and the
evaluators are asked for precision alone (no matched baseline: `Judging.precision_only`).

The worker keeps parsed only the window's events (what comes before is read again from
the journal when needed), and a server keeps it warm (`PreviewPool.keep_warm`): at start,
when a backfill is over and every ten minutes while the journal grows, it learns what the
next preview needs.

A preview is a sandbox (as Grafana's backtest is): it opens the journal read-only, and
neither stores an alert nor sends anything.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import os
import pickle
import threading
import time
import traceback
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from sia.detectors.base import Detector
from sia.engine.driver import Driver
from sia.engine.engine import FILE_CHUNK, Engine
from sia.engine.snapshot import SnapshotError
from sia.evaluation.judges import EVALUATORS, Evaluator, Judging, evaluator_for
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Event, parse_event
from sia.findings import Finding
from sia.journal.store import JournalEntry
from sia.policy import Alert, Policy
from sia.thresholds.changes import Config

log = logging.getLogger("sia.preview")

SAMPLE = 20  # alerts shown of those a change adds or removes
SESSION_S = 600.0  # see PreviewRequest.session_s
WARM_POLL_S = 10.0  # how often a server's warm-up thread looks at the journal


@dataclass(frozen=True)
class PreviewRequest:
    """A preview to compute (picklable: it runs in a process of its own)."""

    journal_url: str
    current: dict[str, Any]  # the thresholds as they are (Config.as_dict)
    proposed: dict[str, Any]
    days: float
    horizon_days: float = 90.0  # outcome window of the judges, as `sia evaluate --horizon`
    # previews within this many seconds of the first over the same journal and days see
    # the journal as that one did (a tuning session compares like with like; 0: never)
    session_s: float = SESSION_S
    # only this rep's alerts are counted, judged and shown (a rep key's preview: other
    # reps' alerts are theirs)
    rep: str | None = None


@dataclass
class _Window:
    """A window learned with one configuration: every finding it gave, before the
    policy, in order, with the rep and team each finding's subject belongs to and where
    it came from: (the stream item it was found on, the detector's place in the
    configuration), which is the engine's order of findings."""

    findings: list[Finding]
    owners: list[tuple[str | None, str | None]]
    places: list[tuple[int, int]]
    tuning: dict[str, str]  # detector -> its thresholds, as run (see `_tuning`)
    # no event refused and no tick skipped for a detector's failure (which rolls back
    # every detector, so the others' findings may not be reused); an event refused by
    # the time rules is refused whatever the thresholds
    clean: bool
    how: str


@dataclass
class _Prefix:
    """What the engine and the policy learned before the window, and where it ends.

    `engine` is never learned further: each window run learns on a copy of it (a forked
    process, or a restored snapshot where there is no fork). `windows`: the windows run
    from it, by the detectors' part of the configuration and the journal's newest seq.
    """

    key: str
    split: int  # the first journal seq of the window
    engine: Engine
    next_tick: datetime | None
    policy: Policy
    events: int
    seconds: float
    windows: dict[str, _Window]
    items: int = 0  # stream items (events and ticks) learned before the window


_CACHE: dict[str, _Prefix] = {}  # the newest prefix of this process (one is enough)


@dataclass
class _Judges:
    """The evaluators of `sia evaluate`, having seen the journal through seq `through`,
    and what they said."""

    through: int
    outcomes: Outcomes
    seen: dict[str, Evaluator]  # detector -> evaluator that saw every event, no alert
    said: dict[tuple[str, float, tuple[str, ...]], dict[str, Any]]
    seconds: float


_JUDGES: dict[str, _Judges] = {}  # by journal: the newest journal of this process


@dataclass
class _Read:
    """The window's events, parsed, in seq order: those after seq `after` through seq
    `through`, kept for the next preview (parsing is most of what reading costs) and read
    on from where they ended when the journal grows. What comes before the window is
    read from the journal when it is needed (`_stream`), never kept: parsed, an event
    takes about 17 KB (an order's lines are objects each), and keeping every event of a
    500,000-event journal took 9 GB."""

    after: int
    through: int
    seqs: list[int]
    events: list[Event]

    def between(self, after: int, through: int) -> list[Event]:
        """The events after seq `after` (at least `self.after`) through seq `through`."""
        if after < self.after:
            raise ValueError(f"events after seq {after} asked of those after {self.after}")
        return self.events[bisect_right(self.seqs, after):bisect_right(self.seqs, through)]


_READ: dict[str, _Read] = {}  # by journal: the newest journal of this process
# (journal, days) -> the journal's newest seq and event time a session's previews see,
# and when the session began (time.monotonic)
_SESSIONS: dict[tuple[str, float], tuple[int, datetime, float]] = {}


def _session(journal: _Journal, request: PreviewRequest) -> tuple[int, datetime | None, int]:
    """The newest seq and event time this preview sees, and how many journal entries
    came after them (a session that began less than `session_s` ago sees the journal
    as its first preview did)."""
    newest_seq, newest_at = journal.newest()
    key = (request.journal_url, request.days)
    pinned = _SESSIONS.get(key)
    now = time.monotonic()
    if (pinned is not None and now - pinned[2] < request.session_s
            and pinned[0] <= newest_seq):
        return pinned[0], pinned[1], newest_seq - pinned[0]
    if newest_at is not None:
        if len(_SESSIONS) > 64:
            _SESSIONS.clear()
        _SESSIONS[key] = (newest_seq, newest_at, now)
    return newest_seq, newest_at, 0


def _read(journal: _Journal, url: str, after: int, through: int) -> _Read:
    """The journal's events after seq `after` through seq `through`, parsed once: what
    an earlier preview read is kept, what is now before the window dropped."""
    known = _READ.get(url)
    if known is None or known.after > after or known.through > through:
        known = _Read(after, after, [], [])
    elif known.after < after:  # the window moved on
        cut = bisect_right(known.seqs, after)
        del known.seqs[:cut], known.events[:cut]
        known.after = after
    for seq, event in journal.numbered(max(known.through, after), through):
        known.seqs.append(seq)
        known.events.append(event)
    known.through = through
    _READ.clear()
    _READ[url] = known
    return known


def _stream(journal: _Journal, read: _Read, after: int, through: int) -> Iterator[Event]:
    """The events after seq `after` through `through`, in seq order: parsed from the
    journal up to where `read` begins, then `read`'s."""
    if after < read.after:
        for _, event in journal.numbered(after, min(read.after, through)):
            yield event
        after = read.after
    if after < through:
        yield from read.between(after, through)


def forget() -> None:
    """Drop what earlier previews kept in this process (a fresh start, as after a
    restart of the server's preview worker)."""
    _CACHE.clear()
    _JUDGES.clear()
    _READ.clear()
    _SESSIONS.clear()


class PreviewPool:
    """One warm worker process for previews (the server stays responsive while one
    runs, and what a preview learned before its window is kept there for the next).

    `keep_warm` has the worker learn what the next preview needs before anyone asks:
    the state before the window, the current thresholds' window and the judges. The
    first preview of a session then costs what a later one does, not a cold start."""

    def __init__(self) -> None:
        self._pool: Any = None
        self._stop = threading.Event()
        self._warmer: threading.Thread | None = None
        self.warmed: dict[str, Any] = {}  # the last warm-up: when, through which seq, s

    def submit(self, request: PreviewRequest) -> Any:
        """A concurrent.futures Future of `run_preview(request)`."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool.submit(run_preview, request)

    def keep_warm(self, request_now: Callable[[], tuple[int, PreviewRequest] | None],
                  every_s: float) -> None:
        """Warm the worker in a background thread: at once, and then whenever the
        journal has grown since the last warm-up and either stopped growing (a backfill
        is over: no new entry for `WARM_POLL_S`) or the last warm-up is `every_s` old.
        `request_now()` gives the journal's newest seq and the preview to warm for (the
        current thresholds against themselves), or None when there is nothing to learn
        from yet. A preview asked for during a warm-up waits for it, then finds what it
        learned."""
        if self._warmer is not None or every_s <= 0:
            return
        self._stop.clear()
        self._warmer = threading.Thread(target=self._warm, args=(request_now, every_s),
                                        name="sia-preview-warm", daemon=True)
        self._warmer.start()

    def _warm(self, request_now: Callable[[], tuple[int, PreviewRequest] | None],
              every_s: float) -> None:
        poll = min(every_s, WARM_POLL_S)
        warmed_through, warmed_at = -1, time.monotonic()
        looked: int | None = None  # the newest seq at the last look (None: not yet)
        while not self._stop.is_set():
            try:
                asked = request_now()
                seq = asked[0] if asked is not None else 0
                settled = looked is None or seq == looked
                looked = seq
                if (asked is not None and seq != warmed_through
                        and (settled or time.monotonic() - warmed_at >= every_s)):
                    started = time.perf_counter()
                    answer = self.submit(asked[1]).result()
                    warmed_through, warmed_at = seq, time.monotonic()
                    self.warmed = {
                        "at": datetime.now(UTC).isoformat(timespec="seconds"),
                        "through_seq": answer.get("window", {}).get("through_seq"),
                        "seconds": round(time.perf_counter() - started, 3),
                        **({"error": answer["error"]} if "error" in answer else {})}
                    log.info("preview worker warmed through journal seq %s in %.1f s",
                             self.warmed["through_seq"], self.warmed["seconds"])
            except Exception as exc:  # a warm-up is a courtesy: never fatal
                if self._stop.is_set():
                    return
                warmed_through, warmed_at = looked or 0, time.monotonic()  # no retry loop
                self.warmed = {"at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "error": f"{type(exc).__name__}: {exc}"}
                log.warning("preview warm-up failed: %s", self.warmed["error"])
            self._stop.wait(poll)

    def close(self) -> None:
        """Stop the warm-ups and the worker."""
        self._stop.set()
        if self._pool is not None:
            # a preview or warm-up under way is not waited for: its worker is stopped
            # (the pool would otherwise hold the server's exit until it ends)
            workers = list(getattr(self._pool, "_processes", {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for worker in workers:
                worker.terminate()
            self._pool = None
        self._warmer = None


def _config(data: dict[str, Any]) -> Config:
    return Config(data.get("detectors", {}), data.get("policy", {}))


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class _Journal:
    """The journal, read-only."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):  # open it so that nothing can be written
            url = f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
        self.engine = create_engine(url)

    def newest(self) -> tuple[int, datetime | None]:
        with Session(self.engine) as session:
            seq, at = session.execute(select(func.max(JournalEntry.seq),
                                             func.max(JournalEntry.occurred_at))).one()
        return int(seq or 0), at

    def first_at_or_after(self, at: datetime) -> int:
        with Session(self.engine) as session:
            seq = session.scalar(select(func.min(JournalEntry.seq)).where(
                JournalEntry.occurred_at >= at))
        return int(seq) if seq is not None else 1 << 62

    def numbered(self, after: int, through: int) -> Iterator[tuple[int, Event]]:
        """(seq, event) after seq `after` through `through`, in order."""
        while after < through:
            with Session(self.engine) as session:
                rows = session.execute(
                    select(JournalEntry.seq, JournalEntry.body)
                    .where(JournalEntry.seq > after, JournalEntry.seq <= through)
                    .order_by(JournalEntry.seq).limit(5000)).all()
            if not rows:
                return
            for seq, body in rows:
                yield seq, parse_event(body)
            after = rows[-1][0]

    def close(self) -> None:
        self.engine.dispose()


def _pipeline(config: dict[str, Any]) -> tuple[list[Any], Policy]:
    from sia.service.thresholds import validate

    built = validate(_config(config), source="thresholds")
    return built.detectors, Policy(built.policy)


class _Feed(Driver):
    """A driver that hands every batch, even of one item, to `observe_many` (the same
    findings as `observe`, and the engine's tracer sees them all)."""

    def _learn(self, pending: list[Event | datetime]) -> list[Finding]:
        return self.engine.observe_many(pending) if pending else []


class _Places:
    """An engine's tracer: where each finding came from (see `_Window.places`)."""

    def __init__(self, engine: Engine, order: dict[str, int]) -> None:
        self.ranks = [order[d.name] for d in engine.detectors]
        self.items = 0
        self.at: dict[int, tuple[int, int]] = {}

    def __call__(self, run: Sequence[Any], found: list[tuple[int, int, list[Finding]]]
                 ) -> None:
        for index, rank, out in found:
            for finding in out:
                self.at[id(finding)] = (self.items + index, self.ranks[rank])
        self.items += len(run)


def _tuning(detector: Detector[Any]) -> str:
    """A detector's thresholds, defaults and scopes, as one comparable text."""
    scopes = sorted((f"{kind}:{name}", values)
                    for (kind, name), values in detector.overrides.items())
    return json.dumps([dataclasses.asdict(detector.params), scopes], sort_keys=True,
                      default=str)


def _learn(driver: Driver, events: Iterable[Event]) -> list[Finding]:
    """Every finding the events give, before any policy."""
    findings: list[Finding] = []
    chunk: list[Event] = []
    for event in events:
        chunk.append(event)
        if len(chunk) >= FILE_CHUNK:
            findings += driver.feed(chunk)
            chunk = []
    return findings + driver.feed(chunk)


def _prefix(journal: _Journal, read: _Read, current: dict[str, Any], split: int
            ) -> tuple[_Prefix, bool]:
    """The state before the window (and whether an earlier preview had learned it)."""
    key = f"{_digest(current)}:{split}"
    cached = _CACHE.get(key)
    if cached is not None:
        return cached, True
    started = time.perf_counter()
    detectors, policy = _pipeline(current)
    driver = _Feed(Engine(detectors))
    counted = _Places(driver.engine, {d.name: i for i, d in enumerate(detectors)})
    driver.engine.tracer = counted
    for finding in _learn(driver, _stream(journal, read, 0, split - 1)):
        policy.admit(finding)  # the cooldowns and inhibitions running at the window's start
    driver.engine.tracer = None
    found = _Prefix(key, split, driver.engine, driver.next_tick, policy,
                    driver.engine.observed, time.perf_counter() - started, {},
                    counted.items)
    _CACHE.clear()
    _CACHE[key] = found
    return found, False


def _window(journal: _Journal, prefix: _Prefix, read: _Read, config: dict[str, Any],
            through: int, base: _Window | None = None) -> tuple[_Window, str | None]:
    """The window's findings under `config`'s detector thresholds, and how they were
    had when not by learning the window with every detector. `base`: the window of the
    current thresholds. The detectors only read their own state and the reference data,
    so a detector whose thresholds did not change finds what it found in `base`: only
    the changed ones learn the window again, and their findings take their places among
    the others'. A change of the policy alone runs no detector: the findings of `base`
    are filtered again (`_admitted`)."""
    detectors, _ = _pipeline(config)
    tuning = {d.name: _tuning(d) for d in detectors}
    key = f"{_digest(tuning)}:{through}"
    known = prefix.windows.get(key)
    if known is not None:
        return known, "kept from an earlier preview"
    order = {d.name: i for i, d in enumerate(detectors)}
    changed = detectors
    if base is not None and base.clean and list(base.tuning) == list(tuning):
        changed = [d for d in detectors if base.tuning[d.name] != tuning[d.name]]
        if not changed:
            return base, None
    how: str | None = None
    try:
        found = _in_copy(prefix, read.between(prefix.split - 1, through), changed, order)
        if len(changed) < len(detectors):
            assert base is not None
            found = _merged(base, found, tuning)
            names = ", ".join(d.name for d in changed)
            how = (f"{names} learned the window again with the proposed thresholds; the "
                   "findings of the detectors whose thresholds did not change reused")
    except SnapshotError:  # a threshold that shapes what is learned across customers
        found = _relearned(prefix, _stream(journal, read, 0, through), changed, order)
        how = None
        if len(changed) < len(detectors):
            assert base is not None
            found = _merged(base, found, tuning)
            how = (f"{', '.join(d.name for d in changed)} learned the whole journal again "
                   "with the proposed thresholds (one that shapes what is learned across "
                   "customers changed); the findings of the other detectors reused")
    if len(prefix.windows) >= 16:
        prefix.windows.clear()
    prefix.windows[key] = found
    return found, how


def _relearned(prefix: _Prefix, events: Iterable[Event], detectors: list[Detector[Any]],
               order: dict[str, int]) -> _Window:
    """The window's findings of `detectors` learning the whole journal from nothing."""
    engine = Engine(detectors)
    places = _Places(engine, order)
    engine.tracer = places
    found = [(f, places.at[id(f)]) for f in _learn(_Feed(engine), events)]
    kept = [(f, (at - prefix.items, rank)) for f, (at, rank) in found
            if at >= prefix.items]  # the window's: found after what came before it
    findings = [f for f, _ in kept]
    return _Window(findings, _owners(findings, engine), [p for _, p in kept],
                   {d.name: _tuning(d) for d in detectors},
                   engine.failures == 0 and engine.tick_failures == 0,
                   "the whole journal learned with the proposed thresholds (a threshold "
                   "that shapes what is learned across customers changed)")


def _merged(base: _Window, rerun: _Window, tuning: dict[str, str]) -> _Window:
    """The findings of `base`'s unchanged detectors and of those `rerun` learned again,
    in the engine's order."""
    again = set(rerun.tuning)
    kept = [i for i, f in enumerate(base.findings) if f.detector not in again]
    rows = sorted([(base.places[i], base.findings[i], base.owners[i]) for i in kept]
                  + list(zip(rerun.places, rerun.findings, rerun.owners, strict=True)),
                  key=lambda row: row[0])
    return _Window([f for _, f, _ in rows], [o for _, _, o in rows],
                   [p for p, _, _ in rows], tuning, base.clean and rerun.clean, rerun.how)


def _in_copy(prefix: _Prefix, events: list[Event], detectors: list[Detector[Any]],
             order: dict[str, int]) -> _Window:
    """The window learned by `detectors` from the prefix's state, on a copy of it: a
    forked copy of this process (copy-on-write: nothing is encoded or copied up front)
    or, where there is no fork, a deep copy."""
    if hasattr(os, "fork"):
        return _forked(lambda: _continue(prefix.engine, prefix, events, detectors, order))
    import copy  # pragma: no cover - POSIX everywhere SIA runs

    return _continue(copy.deepcopy(prefix.engine), prefix, events, detectors,
                     order)  # pragma: no cover


def _continue(learned: Engine, prefix: _Prefix, events: list[Event],
              detectors: list[Detector[Any]], order: dict[str, int]) -> _Window:
    """The window learned from `learned` (the prefix's state, which this changes) by
    `detectors` with their thresholds; raises SnapshotError for a threshold that shapes
    what was learned across customers, or a detector the prefix did not run."""
    restored = {d.name: d for d in learned.detectors}
    missing = [d.name for d in detectors if d.name not in restored]
    if missing:
        raise SnapshotError(f"{', '.join(missing)} did not learn what came before the "
                            "window")
    engine = Engine.from_learned(restored, detectors)
    engine.catalog, engine.seen = learned.catalog, learned.seen
    engine.clock, engine.stream_clock = learned.clock, learned.stream_clock
    engine.observed, engine.duplicates = learned.observed, learned.duplicates
    places = _Places(engine, order)
    engine.tracer = places
    driver = _Feed(engine, next_tick=prefix.next_tick)
    findings = _learn(driver, events)
    return _Window(findings, _owners(findings, engine),
                   [places.at[id(f)] for f in findings],
                   {d.name: _tuning(d) for d in detectors},
                   engine.failures == 0 and engine.tick_failures == 0,
                   "the proposed thresholds applied to what was learned, from the "
                   "window's start")


def _admitted(prefix: _Prefix, window: _Window, config: dict[str, Any],
              rep: str | None = None) -> list[tuple[Alert, str | None, str | None]]:
    """The window's alerts under `config`'s policy, from the cooldowns and inhibitions
    running at its start, with their rep and team (`rep`: that rep's only; the policy
    still sees every finding, as it would live)."""
    import copy

    _, policy = _pipeline(config)
    carried = copy.deepcopy(prefix.policy)
    carried.reconfigure(policy.config, ())
    return [(alert, owner, team) for finding, (owner, team) in zip(window.findings,
                                                                    window.owners,
                                                                    strict=True)
            if (alert := carried.admit(finding)) is not None
            and (rep is None or owner == rep)]


def _forked(work: Callable[[], _Window]) -> _Window:
    """`work()` run in a forked copy of this process, its result sent back pickled. The
    copy shares the prefix's state copy-on-write: nothing is encoded or copied up front,
    where restoring a snapshot costs about a second on the sample's state."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: work, send, exit; nothing else
        code = 1
        try:
            os.close(read_end)
            gc.freeze()  # a collection would touch, so copy, every object of the parent
            try:
                answer: tuple[str, Any] = ("ok", work())
            except SnapshotError as exc:
                answer = ("snapshot", str(exc))
            except BaseException as exc:
                answer = ("error", f"{type(exc).__name__}: {exc}\n"
                          + traceback.format_exc())
            data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"the preview's window run (pid {pid}) ended with status "
                           f"{os.waitstatus_to_exitcode(status)} and no answer")
    kind, value = pickle.loads(data)  # from our own fork, never from outside
    if kind == "snapshot":
        raise SnapshotError(value)
    if kind == "error":
        raise RuntimeError(f"the preview's window run failed: {value}")
    result: _Window = value
    return result


def run_preview(request: PreviewRequest) -> dict[str, Any]:
    """Both runs and what differs (runs in a preview worker process)."""
    started = time.perf_counter()
    journal = _Journal(request.journal_url)
    try:
        newest_seq, newest_at, newer = _session(journal, request)
        if newest_at is None:
            return {"error": "the journal is empty: there is nothing to preview on"}
        start = (newest_at - timedelta(days=request.days)).replace(
            hour=0, minute=0, second=0, microsecond=0)
        split = min(journal.first_at_or_after(start), newest_seq + 1)
        read_started = time.perf_counter()
        read = _read(journal, request.journal_url, split - 1, newest_seq)
        read_s = time.perf_counter() - read_started
        prefix, reused = _prefix(journal, read, request.current, split)
        window_before, before_how = _window(journal, prefix, read, request.current,
                                            newest_seq)
        window_after, after_how = _window(journal, prefix, read, request.proposed,
                                          newest_seq, base=window_before)
        before = _admitted(prefix, window_before, request.current, request.rep)
        after = _admitted(prefix, window_after, request.proposed, request.rep)
        judging_started = time.perf_counter()
        judges, judges_reused = _judges(journal, read, request.journal_url, newest_seq)
        precision_before = _precision(judges, [a for a, _, _ in before], request.current,
                                      request.horizon_days)
        precision_after = _precision(judges, [a for a, _, _ in after], request.proposed,
                                     request.horizon_days)
        judging_s = time.perf_counter() - judging_started
    finally:
        journal.close()
    weeks = max((newest_at - start).total_seconds() / (7 * 86_400), 1 / 7)
    ids_before = {a.alert_id for a, _, _ in before}
    ids_after = {a.alert_id for a, _, _ in after}
    if window_after is window_before:
        how = ("the findings of the current thresholds filtered again by the proposed "
               "policy (no detector threshold changed: no detector ran)")
    else:
        how = after_how or window_after.how
    return {
        "days": request.days,
        **({"rep": request.rep} if request.rep else {}),
        "window": {"from": start.isoformat(), "to": newest_at.isoformat(),
                   "events": newest_seq - split + 1, "weeks": round(weeks, 2),
                   "through_seq": newest_seq, "journal_entries_since": newer},
        "before": {**_summary(before, weeks), "precision": precision_before},
        "after": {**_summary(after, weeks), "precision": precision_after},
        "added": _changed([o for o in after if o[0].alert_id not in ids_before]),
        "removed": _changed([o for o in before if o[0].alert_id not in ids_after]),
        "method": {"journal_read_s": round(read_s, 3),
                   "before_the_window": f"{prefix.events:,} events learned with the "
                   "current thresholds" + (", kept from an earlier preview" if reused
                                           else f" in {prefix.seconds:.1f} s"),
                   "current_run": before_how or "the current thresholds, from the "
                   "window's start",
                   "proposed_run": how,
                   "precision": "the judges of `sia evaluate` over a "
                   f"{request.horizon_days:g}-day outcome window, against the journal's "
                   "events after each alert (" + (
                       "the journal as seen by an earlier preview" if judges_reused else
                       f"{judges.seconds:.1f} s to see it") + f"; {judging_s:.2f} s judging)"},
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def _judges(journal: _Journal, read: _Read, url: str, newest_seq: int
            ) -> tuple[_Judges, bool]:
    """Every evaluator, having seen every event of the journal (and whether an earlier
    preview had them see it). A journal that grew since is read from where they left
    off: the evaluators see events one at a time, in the journal's order, anyway."""
    cached = _JUDGES.get(url)
    if cached is not None and cached.through == newest_seq:
        return cached, True
    started = time.perf_counter()
    if cached is None or cached.through > newest_seq:
        evaluator_for("")  # imports every judge module, each registering its evaluator
        evaluators = {name: judge for name in sorted(EVALUATORS)
                      if (judge := evaluator_for(name)) is not None}
        cached = _Judges(0, Outcomes.from_events(()), evaluators, {}, 0.0)
    judges = list(cached.seen.values())

    def seen() -> Iterator[Event]:
        for event in _stream(journal, read, cached.through, newest_seq):
            for judge in judges:
                judge.see_event(event)
            yield event

    cached.outcomes.extend(seen())
    cached.through = newest_seq
    cached.said.clear()  # the outcomes moved on
    cached.seconds = time.perf_counter() - started
    _JUDGES.clear()
    _JUDGES[url] = cached
    return cached, False


def _precision(judges: _Judges, alerts: list[Alert], config: dict[str, Any],
               horizon: float) -> dict[str, Any]:
    """Per detector: its alerts, how many could be judged already and the share judged
    right, by the evaluator `sia evaluate` uses (its own figures: `alerts`, `unjudged`,
    `precision`)."""
    outcomes = judges.outcomes
    judging = Judging(outcomes, horizon,
                      outcomes.weeks() * max(len(outcomes.customers), 1) / 1000.0,
                      precision_only=True)
    by_detector: dict[str, list[Alert]] = {name: [] for name in _enabled(config)}
    for alert in alerts:
        by_detector.setdefault(alert.finding.detector, []).append(alert)
    figures: dict[str, Any] = {}
    not_evaluated = []
    judged = right = 0
    for name, mine in sorted(by_detector.items()):
        seen = judges.seen.get(name)
        if seen is None:
            not_evaluated.append(name)
            continue
        memo = (name, horizon, tuple(a.alert_id for a in mine))
        report = judges.said.get(memo)
        if report is None:
            if len(judges.said) > 256:
                judges.said.clear()
            # `see_alert` feeds an evaluator's baselines only, which a preview does not
            # ask for (precision_only): the detector's own figures come from the events
            report = judges.said[memo] = seen.report(mine, judging)
        n, precision = int(report["alerts"]), report["precision"]
        correct = round(precision * n) if precision is not None else 0
        judged += n
        right += correct
        figures[name] = {"alerts": len(mine), "judged": n,
                         "not_yet_judgeable": int(report["unjudged"]),
                         "correct": correct, "precision": precision,
                         **({"judged_kind": report["judged_kind"]}
                            if "judged_kind" in report else {})}
    return {"horizon_days": horizon, "judged": judged, "correct": right,
            "precision": round(right / judged, 4) if judged else None,
            "by_detector": figures, "not_evaluated": not_evaluated}


def _enabled(config: dict[str, Any]) -> list[str]:
    """The detectors a configuration enables (each gets figures, alerts or not)."""
    detectors, _ = _pipeline(config)
    return [d.name for d in detectors]


def _owners(findings: list[Finding], engine: Engine) -> list[tuple[str | None, str | None]]:
    return [engine.catalog.owner_of(f) for f in findings]


def _summary(owned: list[tuple[Alert, str | None, str | None]], weeks: float
             ) -> dict[str, Any]:
    by_detector = Counter(a.finding.detector for a, _, _ in owned)
    by_team = Counter(team or "(no team)" for _, _, team in owned)
    by_rep = Counter(rep for _, rep, _ in owned if rep)
    busiest = by_rep.most_common(1)
    return {
        "alerts": len(owned), "alerts_per_week": round(len(owned) / weeks, 2),
        "by_detector": {k: {"alerts": v, "alerts_per_week": round(v / weeks, 2)}
                        for k, v in sorted(by_detector.items())},
        "by_team": {k: {"alerts": v, "alerts_per_week": round(v / weeks, 2)}
                    for k, v in sorted(by_team.items())},
        "busiest_rep": {"rep_id": busiest[0][0],
                        "alerts_per_week": round(busiest[0][1] / weeks, 2)}
        if busiest else None,
    }


def _changed(owned: list[tuple[Alert, str | None, str | None]]) -> dict[str, Any]:
    owned = sorted(owned, key=lambda o: (-o[0].finding.value, o[0].alert_id))
    by_detector = Counter(a.finding.detector for a, _, _ in owned)
    return {"count": len(owned), "by_detector": dict(sorted(by_detector.items())),
            "sample": [{"alert_id": a.alert_id, "detector": a.finding.detector,
                        "kind": a.finding.kind, "subject_id": a.finding.subject_id,
                        "occurred_at": a.finding.occurred_at.isoformat(),
                        "severity": a.finding.severity.value, "title": a.finding.title,
                        "explanation": a.finding.explanation, "action": a.finding.action,
                        "value": a.finding.value, "rep_id": rep, "team": team}
                       for a, rep, team in owned[:SAMPLE]]}
