"""Sales performance dips per rep and per team, addressed to the rep and their manager.

Per rep, the detector adds up each calendar period (a week by default) as it happens:
won revenue, won deals, and activities (interactions and opportunity stage changes).
Reps whose opportunities are not in the stream are measured on their orders instead.
When the clock closes a period (`tick`, event time), every rep's totals feed an online
forecast per metric (see `performance_series`: a rep level times a seasonal factor
pooled over all reps, with a prediction interval), and team totals feed the same kind of
forecast per team.

It fires when a dip is sustained, significant and the rep's own:

- over the last `periods_in_dip` periods the rep made at most `1 - min_drop` of what
  their level before those periods forecast, below the lower bound of the `interval`
  prediction interval of that total, and was below forecast in all of those periods but
  one at most (one bad week, or day, never fires on its own);
- the rep did worse than their peers over the same periods: their share of plan is at
  most `peer_ratio` times the median share of the other reps of their team (of all reps
  when the team has fewer than `min_peers` others warmed up). A dip the whole team shares
  is a team dip, reported once for the team and its managers, not once per rep.

One finding per rep and dip: kind `revenue_dip`, `deals_dip` or `activities_dip` by the
first metric that dips in that order, the others named in the text; the rep is told
again only after recovering half way (`min_drop / 2`) and dipping anew. Findings carry
`facts["manager_id"]` and `facts["notify"]` (rep and manager) so routing can address
both; team findings notify the team's managers. Per-team thresholds apply to reps by
their team (segments do not apply to reps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from statistics import NormalDist
from typing import Any

from sia.catalog import Catalog
from sia.detectors.base import Context, Detector, Params, register, threshold
from sia.detectors.money import money
from sia.detectors.performance_series import (
    METRICS,
    PERIODS,
    RING,
    SEASONS,
    Dispersion,
    RepBook,
    Season,
    Series,
    median,
    period_end,
    period_of,
    period_start,
    season_position,
    season_size,
)
from sia.events.models import Customer, Event, Interaction, Opportunity, Order, Product, Rep
from sia.findings import Finding, Severity

MAX_CATCH_UP = 520  # periods closed at most in one go after a long gap in the stream
MIN_PEER_TEAMS = 2  # other warm teams needed to compare a team with its peers
WON, LOST, OPPORTUNITY, ORDER, INTERACTION = range(5)  # event codes of `learn`
DEAL_ALPHA = 0.05  # weight of the newest deal in a rep's deal-size statistics


def _primitives(event: Event) -> tuple[int, float, str]:
    """(code, amount, event id) of an event the detector counts."""
    if isinstance(event, Opportunity):
        code = {"won": WON, "lost": LOST}.get(event.stage, OPPORTUNITY)
        return code, (event.amount or 0.0) if code == WON else 0.0, event.event_id
    if isinstance(event, Order):  # Order.amount: computed once for every detector
        return ORDER, event.amount, event.event_id
    return INTERACTION, 0.0, event.event_id


@dataclasses.dataclass(frozen=True)
class PerformanceParams(Params):
    """Thresholds of the performance detector."""

    period: str = threshold(
        "week", "A rep's numbers are added up per calendar week (from Monday, UTC) or month.",
        choices=PERIODS, learning=True)
    season: str = threshold(
        "quarter", "Seasonal pattern allowed for, learned over all reps: per month of the "
        "quarter, of the year, or none.",
        choices=SEASONS, learning=True)
    level_alpha: float = threshold(
        0.05, "Weight of the newest period in a rep's usual level and in the usual spread. "
        "Higher: the forecast follows recent periods faster.",
        low=0, high=1, low_open=True, unit="share 0..1", learning=True)
    season_alpha: float = threshold(
        0.3, "Weight of the newest period in the learned seasonal pattern.",
        low=0, high=1, low_open=True, unit="share 0..1", learning=True)
    periods_in_dip: int = threshold(
        6, "A dip is judged over this many periods, below forecast in all of them but one.",
        low=1, high=RING, unit="periods", fewer_alerts="higher")
    interval: float = threshold(
        0.9, "... with their total below the lower end of a forecast range this sure (0.9: "
        "90%). Higher: fewer alerts, only for clearer dips.",
        low=0.5, high=1, high_open=True, unit="probability 0..1", fewer_alerts="higher")
    min_drop: float = threshold(
        0.5, "... and the total at most (1 - min_drop) of the forecast (0.5: half of plan or "
        "less). Higher: fewer alerts, only for deeper dips.",
        low=0, high=1, high_open=True, unit="share 0..1", fewer_alerts="higher")
    peer_ratio: float = threshold(
        0.8, "... and at most this times the usual share of plan reached by the team (or all "
        "reps) over the same periods, so a bad month for everyone does not single out one "
        "rep.",
        low=0, high=1, low_open=True, unit="times", fewer_alerts="lower")
    min_peers: int = threshold(
        3, "Team mates with enough history needed to compare a rep with their team; with "
        "fewer, the rep is compared with all reps.",
        low=1, unit="reps", learning=True)
    min_active_periods: int = threshold(
        8, "Periods with activity before a rep (or team) is judged.",
        low=2, unit="periods", fewer_alerts="higher")
    metrics: str = threshold(
        "revenue,deals,activities", "Which numbers may raise an alert: revenue, deals, "
        "activities (comma-separated; one alert per dip names them all).",
        choices=METRICS, many=True, learning=True)
    min_team_reps: int = threshold(
        2, "Teams with fewer reps get no team alert (a team of one is its rep).",
        low=2, unit="reps", fewer_alerts="higher")

    def check(self) -> None:
        """The list of metrics (each threshold's own range is declared with it)."""
        names = [m.strip() for m in self.metrics.split(",")]
        self.require(bool(names) and all(m in METRICS for m in names),
                     f"metrics must be a comma-separated list of {', '.join(METRICS)}, "
                     f"got {self.metrics!r}")

    def metric_indexes(self) -> list[int]:
        """Indexes (into METRICS) of the metrics that may fire."""
        chosen = {m.strip() for m in self.metrics.split(",")}
        return [i for i, m in enumerate(METRICS) if m in chosen]


@dataclasses.dataclass(frozen=True, slots=True)
class Dip:
    """One metric's sustained dip, with the numbers the text quotes."""

    metric: int
    periods: int
    start: int  # period index of the window's first period
    below: int  # periods of the window below forecast
    actual: float
    expected: float
    low: float
    high: float
    peer_share: float | None  # median share of plan of the peers over the same periods
    peers: int
    in_team: bool  # the peers are the rep's team mates (else all other reps)

    @property
    def share(self) -> float:
        """Share of plan achieved over the window."""
        return self.actual / self.expected if self.expected > 0 else 0.0


@register
class PerformanceDetector(Detector[PerformanceParams]):
    """Reps and teams whose revenue, wins or activity dip below their own seasonal baseline.

    Learns a forecast per rep and team for each period (a level times a seasonal factor
    pooled over reps, with a prediction interval), and compares each rep with peers."""

    name = "performance"
    params_type = PerformanceParams
    handles = frozenset({"opportunity", "interaction", "order"})
    warm_up_hint = "speaks about a rep after min_active_periods periods with activity"
    global_params = frozenset({"period", "season", "level_alpha", "season_alpha"})
    keyed_by = "rep"  # a rep's activity spans customers: scale-out repartitions by rep

    def __init__(self, **thresholds: object) -> None:
        super().__init__(**thresholds)
        p = self.params
        self.reps: dict[str, RepBook] = {}
        self.teams: dict[str, tuple[Series, ...]] = {}
        self.links: dict[str, str] = {}  # customer -> rep credited with their activity
        self.season = Season(season_size(p.period, p.season))
        self.dispersion = Dispersion()
        self.current: int | None = None  # the open period
        self.currency: str | None = None
        self._by_team: dict[str, PerformanceParams] = {}

    @classmethod
    def unit_test_params(cls) -> dict[str, object]:
        """Short warm-up for the contract tests."""
        return {"min_active_periods": 6, "periods_in_dip": 3, "interval": 0.8,
                "min_drop": 0.4}

    def customer_state(self, customer_id: str) -> object | None:
        """The rep a customer's activity is credited to ("" while none is known): learned
        state is per rep (`rep_state`), not per customer."""
        return self.links.get(customer_id)

    def rep_state(self, rep_id: str) -> RepBook | None:
        """A rep's open period and learned series."""
        return self.reps.get(rep_id)

    def params_for_team(self, team: str | None) -> PerformanceParams:
        """Thresholds of a team: defaults, then that team's overrides."""
        key = team or ""
        cached = self._by_team.get(key)
        if cached is None:
            merged = self.overrides.get(("team", key), {})
            cached = dataclasses.replace(self.params, **merged) if merged else self.params
            self._by_team[key] = cached
        return cached

    def set_overrides(self, overrides: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
        """Install per-team thresholds (segments do not apply to reps)."""
        super().set_overrides(overrides)
        self._by_team = {}

    # -- learning ----------------------------------------------------------------------

    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        """Add the event to its rep's open period (closing periods the clock missed)."""
        period = period_of(event.occurred_at.timestamp(), self.params.period)
        findings = self._advance(period, ctx) if self.current is not None else []
        if self.current is None:
            self.current = period
        rep = self._credit(event, ctx.catalog)
        if rep is not None:
            if isinstance(event, Order) and event.currency:
                self.currency = event.currency
            self.learn(rep, *_primitives(event))
        return findings

    def _credit(self, event: Event, catalog: Catalog) -> str | None:
        """The rep an event counts for: its own rep, else the customer's owner, else the
        rep last credited with that customer."""
        customer = getattr(event, "customer_id", None)
        rep: str | None = getattr(event, "rep_id", None)
        if customer is None:
            return rep
        owner = None
        if rep is None:
            record = catalog.customers.get(customer)
            owner = record.owner_rep_id if record is not None else None
        return self.credit(customer, rep, owner)

    def credit(self, customer: str, rep: str | None, owner: str | None) -> str | None:
        """`_credit` with the event's rep and the customer's owner (when the event names
        no rep) given: learns which rep the customer's activity counts for."""
        if rep is None:
            rep = owner or self.links.get(customer) or None
        if rep and self.links.get(customer) != rep:
            self.links[customer] = rep
        elif not rep and customer not in self.links:
            self.links[customer] = ""  # seen, no rep known yet
        return rep

    def learn(self, rep: str, code: int, amount: float, event_id: str) -> None:
        """Count one event in the rep's open period (`code`: see `_primitives`)."""
        book = self.reps.get(rep)
        if book is None:
            book = self.reps[rep] = RepBook()
        if code <= OPPORTUNITY:
            book.pipeline = True
            book.activities += 1
            if code == WON:
                book.won_amount += amount
                book.won_deals += 1
                book.lost_streak = 0
                if amount > 0:
                    book.add_deal(amount, DEAL_ALPHA)
            elif code == LOST:
                book.lost_streak += 1
        elif code == ORDER:
            book.order_amount += amount
            book.orders += 1
            if not book.pipeline and amount > 0:
                book.add_deal(amount, DEAL_ALPHA)
        else:
            book.activities += 1
        book.last_event = event_id

    def tick(self, now: datetime, ctx: Context) -> list[Finding]:
        """Close the periods that ended by `now`; report the dips they complete."""
        period = period_of(now.timestamp(), self.params.period)
        if self.current is None:
            self.current = period
            return []
        return self._advance(period, ctx)

    def _advance(self, period: int, ctx: Context) -> list[Finding]:
        findings: list[Finding] = []
        assert self.current is not None
        if period - self.current > MAX_CATCH_UP:
            self.current = period - MAX_CATCH_UP
        while self.current < period:
            teams = self.learn_period(self.current, ctx.catalog)
            findings.extend(self._detect(self.current, teams, ctx.catalog))
            self.current += 1
        return findings

    def learn_period(self, index: int, catalog: Catalog) -> dict[str, list[str]]:
        """Close period `index` for every rep and team; returns the reps of each team."""
        p = self.params
        position = season_position(index, p.period, p.season)
        members: dict[str, list[str]] = {}
        for rep in self.reps:
            record = catalog.reps.get(rep)
            if record is not None and record.team:
                members.setdefault(record.team, []).append(rep)
        totals = {rep: book.totals() for rep, book in self.reps.items()}
        for m in range(len(METRICS)):
            factor = self.season.factor(m, position)
            phi = self.dispersion.phi[m]
            actual = level = 0.0
            ratios = []
            forecasts: dict[str, tuple[float, float]] = {}  # (forecast, unit), for teams
            for rep, book in self.reps.items():
                series = book.series[m]
                x, unit = totals[rep][m], book.unit(m)
                if series.periods:
                    actual += x
                    level += series.level
                    forecast = series.forecast(factor)
                    forecasts[rep] = forecast, unit
                    expected = unit * forecast  # 0 when amounts are tiny enough to underflow
                    if series.active >= 2 and expected > 0:
                        ratios.append((x - forecast) ** 2 / expected)
                series.close(x, factor, index, p.level_alpha, phi * unit)
            if p.season != "none":
                self.season.learn(m, position, actual, level, p.season_alpha)
            self.dispersion.learn(m, ratios, p.level_alpha)
            for team, reps in members.items():
                team_series = self.teams.get(team)
                if team_series is None:
                    team_series = self.teams[team] = tuple(Series() for _ in METRICS)
                # a sum of the reps' compound Poisson totals: its unit is their
                # forecast-weighted mean unit
                parts = [forecasts[r] for r in reps if r in forecasts]
                forecast = sum(f for f, _ in parts)
                unit = sum(f * u for f, u in parts) / forecast if forecast > 0 else 1.0
                team_total = sum(totals[r][m] for r in reps)
                team_series[m].close(team_total, factor, index, p.level_alpha, phi * unit)
        for book in self.reps.values():
            book.reset()
        return members

    def bare_arithmetic(self, events: Sequence[Event]) -> Callable[[], None] | None:
        """Crediting customers to reps, period accumulation and closing (reps' and teams'
        series) over pre-extracted events; the owner rep of a customer is resolved while
        extracting. No detection."""
        period = self.params.period
        rows = []
        catalog = Catalog()
        for e in events:
            if isinstance(e, Customer | Product | Rep):
                catalog.update(e)
            elif isinstance(e, Opportunity | Order | Interaction):
                owner = None
                if e.rep_id is None:
                    record = catalog.customers.get(e.customer_id)
                    owner = record.owner_rep_id if record is not None else None
                rows.append((period_of(e.occurred_at.timestamp(), period), e.customer_id,
                             e.rep_id, owner, *_primitives(e)))
        # learn_period reads reps' teams from the reference data: as it stands at the end
        # of the stream (reference data usually comes first)

        def run() -> None:
            for index, customer, rep_id, owner, code, amount, event_id in rows:
                if self.current is None:
                    self.current = index
                while self.current < index:
                    self.learn_period(self.current, catalog)
                    self.current += 1
                rep = self.credit(customer, rep_id, owner)
                if rep is not None:
                    self.learn(rep, code, amount, event_id)

        return run

    # -- detection ---------------------------------------------------------------------

    def _detect(self, index: int, members: dict[str, list[str]],
                catalog: Catalog) -> list[Finding]:
        findings = []
        for rep, book in self.reps.items():
            record = catalog.reps.get(rep)
            team = record.team if record is not None else None
            p = self.params_for_team(team)
            mates = [r for r in members.get(team or "", []) if r != rep] if team else []
            dips = []
            for m in p.metric_indexes():
                in_team = self._warm_count(mates, m, p) >= p.min_peers
                group = mates if in_team else [r for r in self.reps if r != rep]
                dip = self._dip(book.series[m], m, p, [self.reps[r].series[m] for r in group],
                                in_team, p.min_peers)
                if dip is not None:
                    dips.append(dip)
            if dips:
                self._claim(book.series, p)
                findings.append(self._rep_finding(rep, book, team, dips, index, catalog))
        findings.extend(self._detect_teams(index, members, catalog))
        return findings

    def _detect_teams(self, index: int, members: dict[str, list[str]],
                      catalog: Catalog) -> list[Finding]:
        findings = []
        for team, series in self.teams.items():
            p = self.params_for_team(team)
            if len(members.get(team, ())) < p.min_team_reps:
                continue
            others = [s for t, s in self.teams.items() if t != team]
            dips = []
            for m in p.metric_indexes():
                dip = self._dip(series[m], m, p, [o[m] for o in others], False,
                                MIN_PEER_TEAMS)
                if dip is not None:
                    dips.append(dip)
            if dips:
                self._claim(series, p)
                findings.append(self._team_finding(team, members.get(team, []), dips,
                                                   index, catalog))
        return findings

    def _claim(self, series: tuple[Series, ...], p: PerformanceParams) -> None:
        """One finding per dip: every metric not clear of it (below the level at which a
        fired metric re-arms) belongs to it."""
        for s in series:
            window = s.window(p.periods_in_dip)
            if window is not None and window.share < 1 - p.min_drop / 2:
                s.fired = True

    def _warm_count(self, reps: list[str], m: int, p: PerformanceParams) -> int:
        return sum(self.reps[r].series[m].active >= p.min_active_periods for r in reps)

    def _dip(self, series: Series, m: int, p: PerformanceParams, peers: list[Series],
             in_team: bool, min_peers: int) -> Dip | None:
        """The series' last periods, when they are a sustained dip worse than the peers'."""
        window = series.window(p.periods_in_dip, p.min_active_periods)
        if window is None or window.expected <= 0:
            return None
        if series.fired:
            if window.share >= 1 - p.min_drop / 2:
                series.fired = False  # recovered half way: the next dip is a new one
            return None
        z = NormalDist().inv_cdf(0.5 + p.interval / 2)
        low, high = window.expected - z * window.spread, window.expected + z * window.spread
        if (window.actual >= low or window.share > 1 - p.min_drop
                or window.below < p.periods_in_dip - 1):
            return None  # within the range, too small to matter, or one bad period
        shares = []
        for peer in peers:
            if peer.active < p.min_active_periods:
                continue
            theirs = peer.window(window.periods)
            if theirs is not None and theirs.expected > 0:
                shares.append(theirs.share)
        peer_share: float | None = None
        if len(shares) >= min_peers:
            peer_share = median(shares)
            if window.share > p.peer_ratio * peer_share:
                return None  # the peers dipped as much: not this rep's own dip
        return Dip(m, window.periods, window.start, window.below, window.actual,
                   window.expected, max(low, 0.0), high, peer_share, len(shares), in_team)

    # -- findings ----------------------------------------------------------------------

    def _window_text(self, dip: Dip, index: int) -> str:
        period = self.params.period
        first = period_start(dip.start, period).isoformat()
        last = period_start(index + 1, period).toordinal() - 1
        end = datetime.fromordinal(last).date().isoformat()
        unit = period if dip.periods == 1 else f"{period}s"
        return f"the {dip.periods} {unit} from {first} to {end}"

    def _amount(self, m: int, value: float) -> str:
        if m == 0:
            return money(value, self.currency)
        return f"{value:,.0f}" if value >= 10 or value == round(value) else f"{value:.1f}"

    def _numbers(self, dip: Dip) -> str:
        m = dip.metric
        got = ("won {}", "won {} deals", "logged {} activities (calls, meetings, pipeline "
               "moves)")[m].format(self._amount(m, dip.actual))
        return (f"{got} against {self._amount(m, dip.expected)} expected (usual range "
                f"{self._amount(m, dip.low)} to {self._amount(m, dip.high)}): "
                f"{dip.share:.0%} of plan")

    def _context(self, series: tuple[Series, ...], dips: list[Dip]) -> str:
        """The other metrics that are below forecast too, not (yet) beyond the range."""
        named = {d.metric for d in dips}
        text = ""
        for m, s in enumerate(series):
            window = s.window(dips[0].periods)
            if m in named or window is None or window.share >= 0.9:
                continue
            label = ("Won revenue", "Won deals", "Activities")[m]
            text += (f" {label} {'is' if m == 0 else 'are'} below forecast too: "
                     f"{self._amount(m, window.actual)} against "
                     f"{self._amount(m, window.expected)} over the same "
                     f"{self.params.period}s.")
        return text

    def _shortfall(self, series: tuple[Series, ...], periods: int) -> float:
        """Revenue below forecast over the last `periods` periods (money at stake)."""
        window = series[0].window(periods)
        return max(window.expected - window.actual, 0.0) if window is not None else 0.0

    def _severity(self, dip: Dip, p: PerformanceParams) -> Severity:
        """High when a revenue or deals dip is twice as deep as `min_drop` asks (with the
        defaults: a quarter of plan or less), medium otherwise; activity dips (a leading
        sign, nothing lost yet) one step lower."""
        deep = dip.share <= (1 - p.min_drop) / 2
        if dip.metric == 2:
            return Severity.MEDIUM if deep else Severity.LOW
        return Severity.HIGH if deep else Severity.MEDIUM

    def _facts(self, dips: list[Dip], index: int) -> dict[str, Any]:
        main = dips[0]
        period = self.params.period
        return {
            "metric": METRICS[main.metric], "period": period, "periods": main.periods,
            "from": period_start(main.start, period).isoformat(),
            "to": period_start(index + 1, period).isoformat(),
            "actual": round(main.actual, 2), "expected": round(main.expected, 2),
            "low": round(main.low, 2), "high": round(main.high, 2),
            "share_of_plan": round(main.share, 4),
            "peer_median_share": None if main.peer_share is None else round(main.peer_share, 4),
            "peers": main.peers,
            "also": {METRICS[d.metric]: {"actual": round(d.actual, 2),
                                         "expected": round(d.expected, 2)} for d in dips[1:]},
        }

    def _rep_finding(self, rep: str, book: RepBook, team: str | None, dips: list[Dip],
                     index: int, catalog: Catalog) -> Finding:
        record = catalog.reps.get(rep)
        name = record.name if record is not None and record.name else rep
        manager = record.manager_id if record is not None else None
        manager_record = catalog.reps.get(manager) if manager else None
        manager_name = manager_record.name if manager_record and manager_record.name \
            else manager
        main = dips[0]
        text = f"{name} {self._numbers(main)} in {self._window_text(main, index)}"
        if main.periods > 1:
            some = "all" if main.below == main.periods else f"{main.below} of those"
            text += f", below forecast in {some} {main.periods} {self.params.period}s"
        text += "."
        for dip in dips[1:]:
            text += f" Also {self._numbers(dip)} over the {dip.periods} {self.params.period}s."
        text += self._context(book.series, dips)
        if main.peer_share is not None:
            group = f"the {team} team" if main.in_team else "the other reps"
            text += (f" Over the same {main.periods} {self.params.period}s the median rep of "
                     f"{group} made {main.peer_share:.0%} of plan ({main.peers} reps).")
        if book.lost_streak >= 2:
            text += f" Their last {book.lost_streak} closed deals were all lost."
        value = self._shortfall(book.series, main.periods)
        if value >= 1:
            text += f" About {money(value, self.currency)} below forecast."
        metric = METRICS[main.metric]
        if main.metric == 2:
            action = (f"Ask {name} what is taking their selling time and agree a target of "
                      f"{self._amount(2, main.expected / main.periods)} calls, meetings and "
                      f"pipeline updates a {self.params.period}, their usual.")
            if manager_name:
                action += f" {manager_name} should review it with them each {self.params.period}."
        else:
            action = (f"Review {name}'s open deals with them this week: which slipped or were "
                      f"lost and why, and what help (pricing, a demo, a senior call) closes "
                      f"the next ones.")
            if manager_name:
                action += f" {manager_name} should join the next key call."
        facts = self._facts(dips, index)
        facts.update({"rep_id": rep, "team": team, "manager_id": manager,
                      "notify": [rep, manager] if manager else [rep],
                      "lost_in_a_row": book.lost_streak})
        start = period_start(main.start, self.params.period).isoformat()
        return Finding(
            detector=self.name, kind=f"{metric}_dip", subject_kind="rep", subject_id=rep,
            occurred_at=period_end(index, self.params.period),
            score=round(min(max(1 - main.share, 0.0), 1.0), 4),
            severity=self._severity(main, self.params_for_team(team)),
            title=(f"{name}: {metric} at {main.share:.0%} of plan for "
                   f"{main.periods} {self.params.period}s"),
            explanation=text, action=action,
            dedup_key=f"performance:rep:{rep}:{metric}:{start}",
            evidence=(book.last_event,) if book.last_event else (),
            value=round(value, 2), facts=facts,
        )

    def _team_finding(self, team: str, reps: list[str], dips: list[Dip], index: int,
                      catalog: Catalog) -> Finding:
        managers: list[str] = []
        for rep in reps:
            record = catalog.reps.get(rep)
            if record is not None and record.manager_id and record.manager_id not in managers:
                managers.append(record.manager_id)
        main = dips[0]
        metric = METRICS[main.metric]
        text = f"The {team} team ({len(reps)} reps) {self._numbers(main)} in " \
               f"{self._window_text(main, index)}."
        for dip in dips[1:]:
            text += f" Also {self._numbers(dip)}."
        text += self._context(self.teams[team], dips)
        if main.peer_share is not None:
            text += (f" Over the same {main.periods} {self.params.period}s the other teams' "
                     f"median made {main.peer_share:.0%} of plan.")
        value = self._shortfall(self.teams[team], main.periods)
        if value >= 1:
            text += f" About {money(value, self.currency)} below forecast."
        evidence = tuple(self.reps[r].last_event for r in reps if self.reps[r].last_event)[:3]
        names = [catalog.reps[m].name or m if m in catalog.reps else m for m in managers]
        who = " and ".join(n for n in names if n) or f"The {team} team's manager"
        facts = self._facts(dips, index)
        facts.update({"team": team, "reps": len(reps), "manager_ids": managers,
                      "notify": list(managers)})
        start = period_start(main.start, self.params.period).isoformat()
        return Finding(
            detector=self.name, kind=f"{metric}_dip", subject_kind="team", subject_id=team,
            occurred_at=period_end(index, self.params.period),
            score=round(min(max(1 - main.share, 0.0), 1.0), 4),
            severity=self._severity(main, self.params_for_team(team)),
            title=(f"{team} team: {metric} at {main.share:.0%} of plan for "
                   f"{main.periods} {self.params.period}s"),
            explanation=text,
            action=(f"{who}: review the {team} pipeline rep by rep this week, find the deals "
                    f"that slipped, and decide where to put senior help."),
            dedup_key=f"performance:team:{team}:{metric}:{start}",
            evidence=evidence, value=round(value, 2), facts=facts,
        )
