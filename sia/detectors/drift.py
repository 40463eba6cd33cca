"""Customer drift: a customer slipping away.

Learns each customer's own purchase rhythm (log-normal gaps between orders, shrunk
toward the population for short histories), order value and breadth, and
engagement. Fires when:

- `overdue`: given how long the customer has been silent, the probability that they
  place no order within `horizon_days` is at least `lost_probability` (fired from the
  clock: absence sends no events), ranked by revenue at risk. With q the chance that
  a customer has stopped for good (the population's share of orders followed by
  silence for the horizon, learned online, shrunk by the customer's own repeat
  purchases as in the BG/NBD model) and S the survival of the customer's own gaps,
  P(lost) = [q + (1 - q) S(e + h)] / [q + (1 - q) S(e)] after e silent days;
- `erosion`: the last orders are worth less, or hold fewer products, than usual;
- `engagement`: contact has dropped while complaints rise.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from river import stats

from sia.detectors.base import Context, Detector, NoScopes, Params, register, threshold
from sia.detectors.money import day_label, money
from sia.detectors.rhythm import DAY, CustomerRhythm, decay, normal_cdf
from sia.detectors.silence import CHECKPOINTS, SilenceModel, life_cell, logit
from sia.events.models import Event, Interaction, Order, Return
from sia.findings import Finding, Severity

QUARTER_DAYS = 91.0
GAP, SPEND, RESOLVED, SILENCE = "gap", "spend", "resolved", "silence"  # population updates


@dataclasses.dataclass(frozen=True)
class DriftParams(Params):
    """Thresholds of the drift detector."""

    lost_probability: float = threshold(
        0.8, "Overdue alert: fires when the chance that the customer places no order within "
        "horizon_days reaches this. Higher means fewer alerts, about customers more surely "
        "lost.",
        low=0.5, high=1, high_open=True, unit="probability 0..1", fewer_alerts="higher")
    horizon_days: float = threshold(
        90.0, "What 'lost' means: no order for this many days.",
        low=7, high=730, unit="days", learning=True)
    min_orders: int = threshold(
        1, "Orders a customer must have placed before they can get an overdue alert (one-time "
        "buyers are judged by what other customers taught).",
        low=1, unit="orders", fewer_alerts="higher")
    min_overdue_days: float = threshold(
        21.0, "Never call a customer overdue sooner than this many days after their last "
        "order, however regular they are.",
        low=0, unit="days", fewer_alerts="higher")
    prior_weight: float = threshold(
        2.0, "How strongly a short order history is pulled toward the usual rhythm of all "
        "customers, counted as that many typical gaps between orders. Higher: new customers "
        "are judged more like everyone else.",
        low=0, low_open=True, unit="gaps between orders", learning=True)
    churn_prior_weight: float = threshold(
        2.0, "How strongly a customer's chance of having stopped for good is pulled toward "
        "the rate seen across all customers, counted as that many orders. Higher: a "
        "customer's own repeat orders count for less.",
        low=0, low_open=True, unit="orders", learning=True)
    pause_share: float = threshold(
        0.15, "Share of gaps between orders that are long pauses rather than the customer's "
        "usual rhythm. Higher: long silences look less alarming, so fewer overdue alerts.",
        low=0, high=1, high_open=True, unit="share 0..1", learning=True)
    min_resolved_orders: int = threshold(
        500, "No overdue alerts at all until the rate at which customers stop has been "
        "learned from this many orders.",
        low=0, unit="orders", learning=True)
    min_labels: int = threshold(
        2000, "No overdue alerts at all until the model of silences has learned from this "
        "many silences whose outcome (order again or not) is known.",
        low=0, unit="outcomes", learning=True)
    gap_alpha: float = threshold(
        0.25, "Weight of the newest gap between orders in a customer's rhythm. Higher: the "
        "rhythm follows recent changes faster.",
        low=0, high=1, low_open=True, unit="share 0..1", learning=True)
    baseline_orders: int = threshold(
        20, "Erosion alert: the customer's usual order value and breadth are averaged over "
        "about this many orders. Must be more than recent_orders.",
        low=2, unit="orders", learning=True)
    recent_orders: int = threshold(
        5, "Erosion alert: the recent order value and breadth are averaged over about this "
        "many latest orders, compared with the usual.",
        low=1, unit="orders", learning=True)
    value_drop: float = threshold(
        0.4, "Erosion alert: fires when recent orders are worth this share less than usual "
        "(0.4: 40% less). Higher: fewer alerts, only for bigger drops.",
        low=0, high=1, low_open=True, high_open=True, unit="share 0..1", fewer_alerts="higher")
    breadth_drop: float = threshold(
        0.4, "Erosion alert: fires when recent orders hold this share fewer products than "
        "usual (0.4: 40% fewer). Higher: fewer alerts.",
        low=0, high=1, low_open=True, high_open=True, unit="share 0..1", fewer_alerts="higher")
    min_orders_erosion: int = threshold(
        8, "Orders a customer must have placed before they can get an erosion alert.",
        low=2, unit="orders", fewer_alerts="higher")
    engagement_drop: float = threshold(
        0.5, "Engagement alert: fires when the customer's contact rate lately is this share "
        "below usual (0.5: half), while complaints rise (see min_complaints).",
        low=0, high=1, low_open=True, high_open=True, unit="share 0..1", fewer_alerts="higher")
    min_complaints: float = threshold(
        2.0, "Engagement alert: recent complaints, support tickets or returns needed "
        "(recency-weighted) alongside the drop in contact.",
        low=0, low_open=True, unit="complaints", fewer_alerts="higher")
    min_interactions: float = threshold(
        3.0, "Engagement alert: contacts with the customer needed in their usual history "
        "(recency-weighted) before a drop in contact is judged.",
        low=0, low_open=True, unit="contacts", fewer_alerts="higher")
    fast_half_life_days: float = threshold(
        30.0, "Engagement alert: what 'lately' means; contacts and complaints count half "
        "after this many days. Must be below slow_half_life_days.",
        low=0, low_open=True, unit="days", learning=True)
    slow_half_life_days: float = threshold(
        180.0, "Engagement alert: what 'usual' means; contacts count half after this many "
        "days.",
        low=0, low_open=True, unit="days", learning=True)

    def check(self) -> None:
        """Rules across thresholds (each one's own range is declared with it)."""
        self.require(self.baseline_orders > self.recent_orders,
                     "baseline_orders must exceed recent_orders, got "
                     f"{self.baseline_orders} and {self.recent_orders}")
        self.require(self.fast_half_life_days < self.slow_half_life_days,
                     "fast_half_life_days must be below slow_half_life_days, got "
                     f"{self.fast_half_life_days} and {self.slow_half_life_days}")


@register
class DriftDetector(Detector[DriftParams]):
    """Customers slipping away: overdue against their own rhythm, eroding, or disengaging.

    Learns each customer's purchase rhythm (shrunk toward the population for short
    histories), order value and breadth, and contact; and, from how past silences ended,
    the chance that a silence means the customer is lost."""

    name = "drift"
    params_type = DriftParams
    handles = frozenset({"order", "return", "interaction"})
    warm_up_hint = "speaks about a customer after min_orders orders"
    global_params = frozenset({"horizon_days", "min_resolved_orders", "min_labels"})
    shares_population = True

    def __init__(self, **thresholds: object) -> None:
        super().__init__(**thresholds)
        self.customers: dict[str, CustomerRhythm] = {}
        self.log_gaps = stats.Var()  # population prior of log gap days (river)
        self.spend_p50 = stats.Quantile(0.5)  # quarterly spend across customers (river)
        self.spend_p90 = stats.Quantile(0.9)
        self.spend_seen = 0
        self.currency: str | None = None
        self._due: list[tuple[float, int, str, int]] = []  # (day, seq, customer, orders)
        self._seq = 0
        # orders waiting to learn whether another followed within the horizon
        self._unresolved: deque[tuple[float, str, int]] = deque()
        self.resolved = 0
        self.lost = 0  # resolved orders followed by silence for the whole horizon
        self.silence = SilenceModel(self.params.horizon_days)

    @classmethod
    def unit_test_params(cls) -> dict[str, object]:
        """Short warm-up for the contract tests."""
        return {"min_orders": 2, "min_overdue_days": 5.0, "min_orders_erosion": 3,
                "min_resolved_orders": 0, "min_labels": 0}

    def customer_state(self, customer_id: str) -> object | None:
        """The customer's rhythm."""
        return self.customers.get(customer_id)

    # learning
    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        """Learn from orders, returns and interactions."""
        if isinstance(event, Order):
            return self._on_order(event, ctx)
        if isinstance(event, Return):
            state = self.customers.get(event.customer_id)
            if state is not None:
                p = self.params_for(ctx, event.customer_id)
                state.add_complaint(event.day, p.fast_half_life_days)
            return []
        if isinstance(event, Interaction):
            return self._on_interaction(event, ctx)
        return []

    def _on_order(self, order: Order, ctx: Context) -> list[Finding]:
        p = self.params_for(ctx, order.customer_id)
        if order.currency:
            self.currency = order.currency
        breadth = order.breadth
        state = self.learn_order(order.customer_id, order.day,
                                 order.amount, breadth, order.event_id, p)
        if state.orders >= p.min_orders and not state.overdue_fired:
            # also after a late, older order: it changed the count the pending check keys on
            self._schedule(order.customer_id, state, p, index=0)
        return self._check_erosion(order, state, p, ctx)

    def learn_order(self, customer_id: str, at: float, value: float, breadth: int,
                    event_id: str, p: DriftParams) -> CustomerRhythm:
        """The learning arithmetic of one order (the benchmark's limit calls it directly)."""
        state = self.customers.get(customer_id)
        if state is None:
            state = self.customers[customer_id] = CustomerRhythm()
        if state.orders and at > state.last_order_at:
            self._label_checkpoints(state, p, until=at)
        gap = state.add_order(
            at, value, breadth, event_id,
            gap_alpha=p.gap_alpha,
            long_alpha=2.0 / (p.baseline_orders + 1),
            short_alpha=2.0 / (p.recent_orders + 1),
            min_gap_days=1.0,
        )
        if gap is not None:
            self.share((GAP, math.log(gap)))
        self.share((SPEND, self._quarterly_spend(state, p)))
        self._unresolved.append((at, customer_id, state.orders))
        # a late, older order changes the count too: re-key the pending silence labels
        self.silence.open_timeout(state.last_order_at, customer_id, state.orders,
                                  state.labelled)
        return state

    def _on_interaction(self, event: Interaction, ctx: Context) -> list[Finding]:
        p = self.params_for(ctx, event.customer_id)
        state = self.customers.get(event.customer_id)
        if state is None:
            state = self.customers[event.customer_id] = CustomerRhythm()
        complaint = event.channel == "ticket" or (
            event.sentiment is not None and event.sentiment <= -0.3
        )
        at = event.day
        state.add_interaction(at, complaint, p.fast_half_life_days, p.slow_half_life_days)
        if not complaint:
            return []
        return self._check_engagement(event, state, p, at, ctx)

    # population models
    def learn_population(self, update: tuple[Any, ...]) -> None:
        """The log gap prior, the spend quantiles, the churn rate and the silence model
        learn from every customer's orders and silences."""
        kind = update[0]
        if kind == GAP:
            self.log_gaps.update(update[1])
        elif kind == SPEND:
            self.spend_p50.update(update[1])
            self.spend_p90.update(update[1])
            self.spend_seen += 1
        elif kind == RESOLVED:
            self.resolved += 1
            self.lost += bool(update[1])
        elif kind == SILENCE:
            cell, counts_from = (int(update[3]), float(update[4])) if len(update) > 4 else (
                None, 0.0)
            self.silence.learn(update[1], bool(update[2]), cell, counts_from)
        else:
            raise ValueError(f"unknown drift population update {kind!r}")

    # population prior and money
    def _prior(self) -> tuple[float, float]:
        """Population (mean, variance) of log gaps; recomputed only after a new gap."""
        seen = self.log_gaps.mean.n
        cached = self.__dict__.get("_prior_cache")
        if cached is not None and cached[0] == seen:
            return cached[1], cached[2]
        if seen < 2:
            prior = (math.log(30.0), 1.0)  # no population yet: a month, wide
        else:
            prior = (self.log_gaps.mean.get(), max(self.log_gaps.get(), 0.05))
        self.__dict__["_prior_cache"] = (seen, *prior)
        return prior

    def _rhythm(self, state: CustomerRhythm, p: DriftParams) -> tuple[float, float]:
        mean, var = self._prior()
        return state.rhythm(mean, var, p.prior_weight)

    def _quarterly_spend(self, state: CustomerRhythm, p: DriftParams) -> float:
        """Usual spend a quarter: usual order value times orders a quarter while active.

        The order rate is observed over the customer's history, counted as at least a
        quarter, so two orders in one week do not read as thirteen a quarter.
        """
        tenure = max(state.last_order_at - state.first_order_at, QUARTER_DAYS)
        return state.value_long * state.orders * QUARTER_DAYS / tenure

    def _severity(self, at_risk: float) -> Severity:
        """High above the 90th percentile of customers' quarterly spend, medium above median."""
        if self.spend_seen < 20:
            return Severity.LOW
        if at_risk >= (self.spend_p90.get() or 0.0):
            return Severity.HIGH
        return Severity.MEDIUM if at_risk >= (self.spend_p50.get() or 0.0) else Severity.LOW

    # overdue, from the clock
    def churn_rate(self, state: CustomerRhythm, p: DriftParams) -> float:
        """Chance the customer has stopped for good: population rate, shrunk by repeats."""
        q0 = (self.lost + 1.0) / (self.resolved + 2.0)
        m = p.churn_prior_weight
        return q0 * m / (m + state.gaps)

    def lost_probability(self, state: CustomerRhythm, p: DriftParams, silent: float,
                         rhythm: tuple[float, float] | None = None) -> float:
        """Rhythm-model probability of no order within the horizon after `silent` days."""
        mu, sigma = rhythm or self._rhythm(state, p)
        pop_mu, pop_var = self._prior()
        pop_sigma = math.sqrt(pop_var)
        q = self.churn_rate(state, p)
        pause = p.pause_share

        def survival(days: float) -> float:
            # the customer's own rhythm, with a share of pauses as long as anyone's
            log_days = math.log(max(days, 1e-9))
            own = 1.0 - normal_cdf((log_days - mu) / sigma)
            anyone = 1.0 - normal_cdf((log_days - pop_mu) / pop_sigma)
            return (1.0 - pause) * own + pause * anyone

        now = q + (1.0 - q) * survival(silent)
        return (q + (1.0 - q) * survival(silent + p.horizon_days)) / now if now > 0 else 1.0

    def features(self, state: CustomerRhythm, p: DriftParams, silent: float) -> dict[str, float]:
        """What the silence model sees of a customer silent for `silent` days."""
        mu, sigma = self._rhythm(state, p)
        log_silent = math.log(max(silent, 1.0))
        log_gaps = math.log1p(state.gaps)
        tenure = state.last_order_at - state.first_order_at
        return {
            "z": min(max((log_silent - mu) / sigma, -6.0), 12.0),
            "log_silent": log_silent,
            "log_typical_gap": mu,
            "sigma": sigma,
            "log_gaps": log_gaps,
            "log_tenure": math.log1p(tenure),
            "orders_per_month": 30.0 * state.orders / (tenure + silent + 30.0),
            "silent_x_history": log_silent * log_gaps,
            "log_order_value": math.log1p(max(state.value_long, 0.0)),
            "rhythm_model": logit(self.lost_probability(state, p, silent, (mu, sigma))),
        }

    def _label_checkpoints(self, state: CustomerRhythm, p: DriftParams, until: float) -> None:
        """The customer ordered at `until`: label the checkpoints they reached before."""
        last = state.last_order_at
        for index in range(state.labelled, len(CHECKPOINTS)):
            silent = CHECKPOINTS[index]
            if last + silent >= until:
                break  # not reached: the order came first
            lost = until > last + silent + p.horizon_days
            self.share((SILENCE, self.features(state, p, silent), lost,
                        life_cell(state.orders, silent), last + silent + p.horizon_days))
            state.labelled = index + 1

    def _schedule(self, customer_id: str, state: CustomerRhythm, p: DriftParams,
                  index: int, not_before: float = 0.0) -> None:
        """Look at the customer again at the next checkpoint of silence."""
        while index < len(CHECKPOINTS) and CHECKPOINTS[index] < p.min_overdue_days:
            index += 1
        if index >= len(CHECKPOINTS):
            return
        due = max(state.last_order_at + CHECKPOINTS[index], not_before)
        self._seq += 1
        heapq.heappush(self._due, (due, self._seq, customer_id, state.orders * 64 + index))

    def _resolve(self, today: float, horizon: float) -> None:
        """Learn the population churn rate from orders whose horizon has passed."""
        pending = self._unresolved
        while pending and pending[0][0] + horizon <= today:
            _, customer_id, orders = pending.popleft()
            self.share((RESOLVED, self.customers[customer_id].orders == orders))

    def learn_at_tick(self, now: datetime, ctx: Context) -> None:
        """Learn from orders and silences that ran their course by `now`."""
        self.learn_until(now.timestamp() / DAY, ctx)

    def tick(self, now: datetime, ctx: Context) -> list[Finding]:
        """Learn from silences that ran their course (unless `learn_at_tick` did);
        fire for customers now likely lost."""
        today = now.timestamp() / DAY
        self.learn_until(today, ctx)
        self.silence.settle(today)  # the day's outcomes, before anyone is judged
        findings = []
        while self._due and self._due[0][0] <= today:
            _, _, customer_id, key = heapq.heappop(self._due)
            orders, index = divmod(key, 64)
            state = self.customers[customer_id]
            if state.orders != orders or state.overdue_fired:
                continue  # ordered since, or already told
            p = self.params_for(ctx, customer_id)
            finding = self._overdue(customer_id, state, p, now, ctx)
            if finding is None:
                self._schedule(customer_id, state, p, index + 1, not_before=today + 1.0)
            else:
                state.overdue_fired = True
                findings.append(finding)
        return findings

    def bare_arithmetic(self, events: Sequence[Event]) -> Callable[[], None] | None:
        """Rhythm, population and silence-model learning over pre-extracted orders, and the
        complaint and contact counts of returns and interactions."""
        ORDER, RETURN, CONTACT = 0, 1, 2
        steps: list[tuple[int, str, float, float, int, str]] = []
        for e in events:
            if isinstance(e, Order):
                steps.append((ORDER, e.customer_id, e.occurred_at.timestamp() / DAY, e.amount,
                              len({line.product_id for line in e.lines}), e.event_id))
            elif isinstance(e, Return):
                steps.append((RETURN, e.customer_id, e.occurred_at.timestamp() / DAY, 0.0, 0,
                              ""))
            elif isinstance(e, Interaction):
                complaint = e.channel == "ticket" or (
                    e.sentiment is not None and e.sentiment <= -0.3)
                steps.append((CONTACT, e.customer_id, e.occurred_at.timestamp() / DAY, 0.0,
                              int(complaint), ""))
        params, ctx = self.params, NoScopes()
        fast, slow = params.fast_half_life_days, params.slow_half_life_days

        def run() -> None:
            next_day = steps[0][2] if steps else 0.0
            customers = self.customers
            for kind, customer, day, amount, breadth, event_id in steps:
                if kind == ORDER:
                    if day >= next_day:
                        self.learn_until(day, ctx)
                        self.silence.settle(day)
                        next_day = float(int(day) + 1)
                    self.learn_order(customer, day, amount, breadth, event_id, params)
                elif kind == RETURN:
                    state = customers.get(customer)
                    if state is not None:
                        state.add_complaint(day, fast)
                else:
                    state = customers.get(customer)
                    if state is None:
                        state = customers[customer] = CustomerRhythm()
                    state.add_interaction(day, bool(breadth), fast, slow)

        return run

    def learn_until(self, today: float, ctx: Context) -> None:
        """Learn from orders and silences whose horizon has passed by `today`."""
        self._resolve(today, self.params.horizon_days)
        for customer_id, orders, index in self.silence.due_timeouts(today):
            state = self.customers[customer_id]
            if state.orders == orders and state.labelled == index:
                p = self.params_for(ctx, customer_id)
                silent = CHECKPOINTS[index]
                self.share((SILENCE, self.features(state, p, silent), True,
                            life_cell(state.orders, silent),
                            state.last_order_at + silent + p.horizon_days))
                state.labelled = index + 1
                self.silence.open_timeout(state.last_order_at, customer_id, orders, index + 1)

    def _overdue(self, customer_id: str, state: CustomerRhythm, p: DriftParams,
                 now: datetime, ctx: Context) -> Finding | None:
        elapsed = now.timestamp() / DAY - state.last_order_at
        if (elapsed < p.min_overdue_days or self.resolved < p.min_resolved_orders
                or self.silence.labels < p.min_labels):
            return None  # too early, or what silence means is not learned yet
        probability = self.silence.predict(self.features(state, p, elapsed),
                                           life_cell(state.orders, elapsed))
        if probability < p.lost_probability:
            return None
        mu, sigma = self._rhythm(state, p)
        at_risk = self._quarterly_spend(state, p)
        name = ctx.catalog.customer_name(customer_id)
        cur = self.currency
        typical, low, high = math.exp(mu), math.exp(mu - sigma), math.exp(mu + sigma)
        last = day_label(state.last_order_at)
        if state.gaps >= 2:
            history = (f"{name} orders every {typical:.0f} days (usually {low:.0f} to "
                       f"{high:.0f}, over {state.orders} orders)")
            usual = f"usually every {typical:.0f}"
        else:
            history = (f"{name} has placed {state.orders} "
                       f"order{'s' if state.orders > 1 else ''} since "
                       f"{day_label(state.first_order_at)}")
            usual = f"{state.orders} order{'s' if state.orders > 1 else ''} so far"
        text = (
            f"{history}; last order {elapsed:.0f} days ago on {last}. Trained on "
            f"{self.silence.labels:,} past silences in this stream, SIA puts the chance of no "
            f"order in the next {p.horizon_days:.0f} days at {_percent(probability)}."
        )
        if state.orders >= 2 and state.value_short < 0.9 * state.value_long:
            drop = 1 - state.value_short / state.value_long
            text += (f" Recent orders average {money(state.value_short, cur)}, "
                     f"{drop:.0%} below their usual {money(state.value_long, cur)}.")
        text += f" About {money(at_risk, cur)} a quarter at risk."
        return Finding(
            detector=self.name, kind="overdue", subject_kind="customer",
            subject_id=customer_id, occurred_at=now, score=round(probability, 4),
            severity=self._severity(at_risk),
            title=f"{name}: no order for {elapsed:.0f} days ({usual})",
            explanation=text,
            action=(f"Call {name} this week: ask what changed since the order of {last}, "
                    f"check for open issues or a competitor, and agree the next order."),
            dedup_key=f"drift:overdue:{customer_id}:{state.last_order_id}",
            evidence=(state.last_order_id,),
            value=round(at_risk, 2),
            facts={"typical_gap_days": round(typical, 1), "days_since_last_order":
                   round(elapsed, 1), "probability": round(probability, 4),
                   "revenue_at_risk_per_quarter": round(at_risk, 2),
                   "churn_rate": round(self.churn_rate(state, p), 4),
                   "orders": state.orders},
        )

    # erosion, on each order
    def _check_erosion(self, order: Order, state: CustomerRhythm, p: DriftParams,
                       ctx: Context) -> list[Finding]:
        if state.orders < p.min_orders_erosion or state.value_long <= 0:
            return []
        value_ratio = state.value_short / state.value_long
        breadth_ratio = state.breadth_short / max(state.breadth_long, 1e-9)
        eroded = value_ratio <= 1 - p.value_drop or breadth_ratio <= 1 - p.breadth_drop
        recovered = value_ratio > 1 - p.value_drop / 2 and breadth_ratio > 1 - p.breadth_drop / 2
        if state.erosion_open:
            if recovered:
                state.erosion_open = False  # hysteresis: re-arm only after a real recovery
            return []
        if not eroded:
            return []
        state.erosion_open = True
        name = ctx.catalog.customer_name(order.customer_id)
        cur = self.currency
        lost_per_quarter = max(state.value_long - state.value_short, 0.0) * \
            self._quarterly_spend(state, p) / state.value_long
        parts = []
        if value_ratio <= 1 - p.value_drop:
            parts.append(f"their last {p.recent_orders} orders average "
                         f"{money(state.value_short, cur)}, {1 - value_ratio:.0%} below their "
                         f"usual {money(state.value_long, cur)}")
        if breadth_ratio <= 1 - p.breadth_drop:
            parts.append(f"they now buy {state.breadth_short:.1f} products an order against "
                         f"{state.breadth_long:.1f} before ({1 - breadth_ratio:.0%} fewer)")
        drop = max(1 - value_ratio, 1 - breadth_ratio)
        return [Finding(
            detector=self.name, kind="erosion", subject_kind="customer",
            subject_id=order.customer_id, occurred_at=order.occurred_at,
            score=round(min(max(drop, 0.0), 1.0), 4),
            severity=self._severity(lost_per_quarter),
            title=(f"{name} is buying less: orders {1 - value_ratio:.0%} smaller than usual"
                   if value_ratio <= 1 - p.value_drop else
                   f"{name} is buying less: {1 - breadth_ratio:.0%} fewer products an order"),
            explanation=(f"{name} still orders ({state.orders} orders so far), but "
                         + "; ".join(parts) + ". About "
                         + f"{money(lost_per_quarter, cur)} a quarter less than usual."),
            action=(f"Review {name}'s recent baskets with them: find which lines they now buy "
                    f"elsewhere and offer to win them back."),
            dedup_key=f"drift:erosion:{order.customer_id}:{order.event_id}",
            evidence=(order.event_id,),
            value=round(lost_per_quarter, 2),
            facts={"value_recent": round(state.value_short, 2),
                   "value_usual": round(state.value_long, 2),
                   "breadth_recent": round(state.breadth_short, 2),
                   "breadth_usual": round(state.breadth_long, 2)},
        )]

    # engagement, when a complaint arrives
    def _check_engagement(self, event: Interaction, state: CustomerRhythm, p: DriftParams,
                          at: float, ctx: Context) -> list[Finding]:
        elapsed = at - state.engagement_seen_at
        fast = decay(state.engagement_fast, elapsed, p.fast_half_life_days)
        slow = decay(state.engagement_slow, elapsed, p.slow_half_life_days)
        if slow < p.min_interactions or state.complaints < p.min_complaints:
            return []
        fast_rate = fast * math.log(2) / p.fast_half_life_days * 30
        slow_rate = slow * math.log(2) / p.slow_half_life_days * 30
        if fast_rate > (1 - p.engagement_drop) * slow_rate:
            return []
        name = ctx.catalog.customer_name(event.customer_id)
        drop = 1 - fast_rate / slow_rate
        month = int(at // 30)
        when = datetime.fromtimestamp(at * DAY, UTC)
        return [Finding(
            detector=self.name, kind="engagement", subject_kind="customer",
            subject_id=event.customer_id, occurred_at=event.occurred_at,
            score=round(min(drop, 1.0), 4),
            severity=Severity.HIGH if state.complaints >= 2 * p.min_complaints
            else Severity.MEDIUM,
            title=f"{name} is disengaging: contact down {drop:.0%}, complaints rising",
            explanation=(f"{name} had about {fast_rate:.1f} calls, emails or meetings a month "
                         f"lately against {slow_rate:.1f} usually ({drop:.0%} fewer), while "
                         f"{state.complaints:.1f} recent complaints, tickets or returns piled up "
                         f"(latest {when.date().isoformat()})."),
            action=(f"Get {name}'s open complaints resolved and call the decision maker to "
                    f"rebuild contact before the next order is due."),
            dedup_key=f"drift:engagement:{event.customer_id}:{month}",
            evidence=(event.event_id,),
            value=round(self._quarterly_spend(state, p), 2),
            facts={"contacts_per_month_recent": round(fast_rate, 2),
                   "contacts_per_month_usual": round(slow_rate, 2),
                   "complaints_recent": round(state.complaints, 2)},
        )]


def _percent(probability: float) -> str:
    """'83%', or 'over 99%' rather than a misleading '100%'."""
    return "over 99%" if probability > 0.99 else f"{probability:.0%}"
