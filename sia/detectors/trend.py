"""Customer trends: accounts heating up, the positive side of drift.

Learns each customer's recent and usual activity as decayed sums (a few floats, see
trend_state.py): spend and order counts at a fast and a slow half-life, categories
bought for the first time, quote requests and web visits. Fires when:

- `heating_up` (on an order): the customer's recent spend rate is at least `min_ratio`
  times their usual one (or `breadth_ratio` times while they buy `min_new_categories`
  categories new to them), carried by several recent orders (at least
  `min_recent_orders` a month, not one big order). The usual rate is the one before
  the rise (see trend_state.py). One alert per episode: it re-arms only once the
  recent rate falls back under `rearm_ratio` times the usual (hysteresis);
- `interest` (on a quote request or a web visit): at least `min_quotes` of them a month
  lately and `quote_ratio` times the usual rate.

The slope in the explanation is the difference between the recent and usual rates
divided by the difference of their mean ages: for a steady linear rise r(t) = a + b t,
an exponentially weighted mean reads a + b (t - mean age), so b = (recent - usual) /
(age_usual - age_recent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from river import stats

from sia.detectors.base import Context, Detector, Params, register, threshold
from sia.detectors.money import day_label, money
from sia.detectors.rhythm import DAY
from sia.detectors.trend_state import LN2, MONTH, CustomerTrend, mean_age, monthly_rate
from sia.events.models import Event, Interaction, Order
from sia.findings import Finding, Severity

MAX_CATEGORIES = 62  # categories beyond this many (across all customers) are not tracked
INTEREST_CHANNELS = ("quote_request", "web_visit")


@dataclasses.dataclass(frozen=True)
class TrendParams(Params):
    """Thresholds of the trend detector."""

    fast_half_life_days: float = threshold(
        30.0, "What 'lately' means for spend, orders and interest: each counts half after "
        "this many days. Must be below slow_half_life_days.",
        low=0, low_open=True, unit="days", learning=True)
    slow_half_life_days: float = threshold(
        180.0, "What 'usually' means: the baseline counts half after this many days.",
        low=0, low_open=True, unit="days", learning=True)
    min_history_days: float = threshold(
        60.0, "The customer's usual spend must cover this many days of their history before "
        "they are judged.",
        low=0, unit="days", fewer_alerts="higher")
    min_orders: int = threshold(
        4, "Orders a customer must have placed before they are judged.",
        low=2, unit="orders", fewer_alerts="higher")
    min_ratio: float = threshold(
        2.0, "Heating up: recent monthly spend is at least this many times the usual. Higher: "
        "fewer alerts, only for bigger rises.",
        low=1, low_open=True, unit="times", fewer_alerts="higher")
    min_recent_orders: float = threshold(
        2.0, "... carried by at least this many orders a month lately (not one big order).",
        low=0, unit="orders a month", fewer_alerts="higher")
    rearm_ratio: float = threshold(
        1.1, "A heating-up episode ends (and may alert again later) once recent spend falls "
        "below this many times the usual. Must be below min_ratio.",
        low=1, unit="times", learning=True)
    min_new_categories: int = threshold(
        2, "Product categories new to the customer lately that lower the spend bar to "
        "breadth_ratio.",
        low=1, unit="categories", fewer_alerts="higher")
    breadth_ratio: float = threshold(
        1.3, "The spend bar (instead of min_ratio) for a customer who started buying "
        "min_new_categories new categories.",
        low=1, unit="times", fewer_alerts="higher")
    min_quotes: float = threshold(
        3.0, "Interest alert: at least this many quote requests or web visits a month lately "
        "...",
        low=0, low_open=True, unit="requests or visits a month", fewer_alerts="higher")
    quote_ratio: float = threshold(
        3.0, "... and this many times their usual rate.",
        low=1, low_open=True, unit="times", fewer_alerts="higher")

    def check(self) -> None:
        """Rules across thresholds (each one's own range is declared with it)."""
        r = self.require
        r(self.fast_half_life_days < self.slow_half_life_days,
          "fast_half_life_days must be below slow_half_life_days, got "
          f"{self.fast_half_life_days} and {self.slow_half_life_days}")
        r(self.rearm_ratio < self.min_ratio,
          f"rearm_ratio must be below min_ratio, got {self.rearm_ratio} and {self.min_ratio}")


@dataclasses.dataclass(frozen=True, slots=True)
class Rates:
    """A customer's recent and usual rates, per 30 days, read at one moment."""

    spend_recent: float
    spend_usual: float
    orders_recent: float
    orders_usual: float
    slope: float  # change of the monthly spend, per month
    span: float  # days of history

    @property
    def ratio(self) -> float:
        """Recent spend over usual spend."""
        return self.spend_recent / self.spend_usual if self.spend_usual > 0 else float("inf")


def older_rate(slow: float, fast: float, p: TrendParams, span: float) -> float:
    """Per-30-days rate of what the slow sum holds beyond the fast one: the weights
    2^(-a/slow) - 2^(-a/fast) all but ignore the last weeks, so a burst does not raise the
    usual it is compared with. Their mass over the history is the divisor."""
    hs, hf = p.slow_half_life_days, p.fast_half_life_days
    span = max(span, 1.0)
    mass = hs / LN2 * (1 - 0.5 ** (span / hs)) - hf / LN2 * (1 - 0.5 ** (span / hf))
    if mass < 1.0:
        return 0.0
    return float(max(slow - fast, 0.0) / mass * MONTH)


@register
class TrendDetector(Detector[TrendParams]):
    """Customers heating up: spend, frequency, breadth or interest well above their usual.

    Learns each customer's recent and usual spend, orders, new categories and quote
    requests and web visits, as decayed sums at a fast and a slow half-life."""

    name = "trend"
    params_type = TrendParams
    handles = frozenset({"order", "interaction"})
    warm_up_hint = "speaks about a customer after min_orders orders over min_history_days"
    global_params = frozenset({"fast_half_life_days", "slow_half_life_days"})

    def __init__(self, **thresholds: object) -> None:
        super().__init__(**thresholds)
        self.customers: dict[str, CustomerTrend] = {}
        self.category_bits: dict[str, int] = {}
        self.category_names: list[str] = []
        self.usual_p50 = stats.Quantile(0.5)  # usual quarterly spend across checks (river)
        self.usual_p90 = stats.Quantile(0.9)
        self.usual_seen = 0
        self.currency: str | None = None

    @classmethod
    def unit_test_params(cls) -> dict[str, object]:
        """Short history for the contract tests."""
        return {"min_history_days": 45.0, "min_orders": 3, "min_ratio": 1.8}

    def customer_state(self, customer_id: str) -> object | None:
        """The customer's recent and usual activity."""
        return self.customers.get(customer_id)

    # learning
    def _state(self, customer_id: str, at: float) -> CustomerTrend:
        state = self.customers.get(customer_id)
        if state is None:
            state = self.customers[customer_id] = CustomerTrend(at)
        return state

    def _bits(self, categories: Sequence[str | None]) -> int:
        bits = 0
        for category in categories:
            if not category:
                continue
            bit = self.category_bits.get(category)
            if bit is None:
                if len(self.category_names) >= MAX_CATEGORIES:
                    continue
                bit = self.category_bits[category] = len(self.category_names)
                self.category_names.append(category)
            bits |= 1 << bit
        return bits

    def learn_order(self, customer_id: str, at: float, value: float,
                    categories: Sequence[str | None], p: TrendParams) -> CustomerTrend:
        """The learning arithmetic of one order (the benchmark's limit calls it directly)."""
        state = self._state(customer_id, at)
        state.add_order(at, value, p.fast_half_life_days, p.slow_half_life_days)
        bits = self._bits(categories)
        if bits:
            established = at - state.first_at >= p.min_history_days and state.orders > 1
            state.add_categories(bits, at, established, p.fast_half_life_days)
        return state

    def learn_usual(self, usual_quarter: float) -> None:
        """Learn the population's usual quarterly spend (for severities) from a customer
        checked after an order."""
        self.usual_p50.update(usual_quarter)
        self.usual_p90.update(usual_quarter)
        self.usual_seen += 1

    @staticmethod
    def usual_rate(state: CustomerTrend, p: TrendParams) -> float:
        """Usual monthly spend as it stood at the baseline (0 without one): the
        `spend_usual` of `rates`, which a learning loop needs without the rest."""
        base_span = state.base_at - state.first_at
        if state.base_at < 0 or base_span <= 0:
            return 0.0
        return monthly_rate(state.base_spend, p.slow_half_life_days, base_span)

    def rates(self, state: CustomerTrend, p: TrendParams, at: float,
              pending: float = 0.0, pending_orders: float = 0.0) -> Rates:
        """Recent rates at day `at` (`pending`: value of an order counted this moment) and
        usual ones, as they stood at the baseline snapshot (0 without one)."""
        span = max(at - state.first_at, 1.0)
        fast_hl, slow_hl = p.fast_half_life_days, p.slow_half_life_days
        factor_f = 0.5 ** (max(at - state.seen_at, 0.0) / fast_hl)
        factor_s = 0.5 ** (max(at - state.seen_at, 0.0) / slow_hl)
        recent = monthly_rate(state.spend_fast * factor_f, fast_hl, span, pending)
        n_recent = monthly_rate(state.count_fast * factor_f, fast_hl, span, pending_orders)
        n_usual = monthly_rate(state.count_slow * factor_s, slow_hl, span, pending_orders)
        base_span = state.base_at - state.first_at
        if state.base_at < 0 or base_span <= 0:
            return Rates(recent, 0.0, n_recent, n_usual, 0.0, span)
        usual = monthly_rate(state.base_spend, slow_hl, base_span)
        lag = (at - state.base_at + mean_age(slow_hl, base_span) - mean_age(fast_hl, span))
        slope = (recent - usual) / (lag / MONTH) if lag > 0 else 0.0
        return Rates(recent, usual, n_recent, n_usual, slope, span)

    def ready(self, state: CustomerTrend, p: TrendParams) -> bool:
        """Enough orders, and a baseline that covers min_history_days."""
        return (state.orders >= p.min_orders and state.base_at >= 0
                and state.base_at - state.first_at >= p.min_history_days)

    # detection
    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        """Learn from orders and interactions; report a customer heating up."""
        if isinstance(event, Order):
            return self._on_order(event, ctx)
        if isinstance(event, Interaction):
            return self._on_interaction(event, ctx)
        return []

    def _on_order(self, order: Order, ctx: Context) -> list[Finding]:
        p = self.params_for(ctx, order.customer_id)
        if order.currency:
            self.currency = order.currency
        at = order.day
        value = order.amount
        state = self.learn_order(order.customer_id, at, value,
                                 [line.category for line in order.lines], p)
        if not self.ready(state, p):
            return []
        r = self.rates(state, p, at, pending=value, pending_orders=1.0)
        self.learn_usual(3.0 * r.spend_usual)
        if state.hot_since >= 0:
            if r.ratio < p.rearm_ratio:
                state.hot_since = -1  # hysteresis: re-arm only after a real cool-down
            return []
        busy = r.orders_recent >= p.min_recent_orders  # several orders: not one big order
        broader = state.new_cats >= p.min_new_categories - 1e-9
        if not busy or not (r.ratio >= p.min_ratio
                            or (broader and r.ratio >= p.breadth_ratio)):
            return []
        state.hot_since = int(at)
        return [self._heating(order, state, r, p, ctx)]

    def _on_interaction(self, event: Interaction, ctx: Context) -> list[Finding]:
        at = event.day
        p = self.params_for(ctx, event.customer_id)
        state = self._state(event.customer_id, at)
        if event.channel not in INTEREST_CHANNELS:
            return []
        state.add_quote(at, p.fast_half_life_days, p.slow_half_life_days)
        if not self.ready(state, p):
            return []
        span = at - state.first_at
        recent = monthly_rate(state.quotes_fast, p.fast_half_life_days, span, 1.0)
        usual = older_rate(state.quotes_slow, state.quotes_fast, p, span)
        if state.interest_since >= 0:
            if recent < p.rearm_ratio * usual:
                state.interest_since = -1
            return []
        if recent < p.min_quotes or recent < p.quote_ratio * usual:
            return []
        state.interest_since = int(at)
        return [self._interest(event, state, recent, usual, p, ctx)]

    def _severity(self, gain_per_quarter: float) -> Severity:
        """High above the 90th percentile of customers' usual quarterly spend, medium above
        the median: the extra spend is worth as much as a good customer."""
        if self.usual_seen < 20:
            return Severity.LOW
        if gain_per_quarter >= (self.usual_p90.get() or 0.0):
            return Severity.HIGH
        return Severity.MEDIUM if gain_per_quarter >= (self.usual_p50.get() or 0.0) \
            else Severity.LOW

    def _extras(self, state: CustomerTrend, p: TrendParams, at: float) -> tuple[str, int]:
        """New categories and quote requests, as a sentence fragment; and new categories."""
        parts = []
        new = round(state.new_cats * 0.5 ** (max(at - state.seen_at, 0.0)
                                             / p.fast_half_life_days))
        if new >= 1 and state.last_cat >= 0:
            latest = self.category_names[state.last_cat]
            parts.append(f"{new} categor{'ies' if new > 1 else 'y'} new to them lately "
                         f"(latest: {latest})")
        span = at - state.first_at
        quotes = monthly_rate(state.quotes_fast, p.fast_half_life_days, span)
        if quotes >= 0.5:
            usual = older_rate(state.quotes_slow, state.quotes_fast, p, span)
            parts.append(f"{quotes:.1f} quote requests or web visits a month lately against "
                         f"{usual:.1f} usually")
        return "; ".join(parts), new

    def _heating(self, order: Order, state: CustomerTrend, r: Rates, p: TrendParams,
                 ctx: Context) -> Finding:
        cur = self.currency
        name = ctx.catalog.customer_name(order.customer_id)
        at = order.day
        gain = max(r.spend_recent - r.spend_usual, 0.0) * 3.0
        ratio = r.ratio
        times = f"{ratio:.1f} times" if ratio != float("inf") else "from nothing"
        extras, new = self._extras(state, p, at)
        text = (f"{name} is heating up: about {money(r.spend_recent, cur)} a month lately "
                f"against {money(r.spend_usual, cur)} a month usually ({times}), "
                f"{r.orders_recent:.1f} orders a month against {r.orders_usual:.1f}; "
                f"spend rising about {money(max(r.slope, 0.0), cur)} a month, month on month "
                f"(over {r.span / MONTH:.0f} months of history, {state.orders} orders).")
        if extras:
            text += f" Also {extras}."
        text += f" About {money(gain, cur)} a quarter more than usual."
        score = min(max(1.0 - 1.0 / ratio, 0.0), 1.0) if ratio > 0 else 0.0
        return Finding(
            detector=self.name, kind="heating_up", subject_kind="customer",
            subject_id=order.customer_id, occurred_at=order.occurred_at,
            score=round(score, 4), severity=self._severity(gain),
            title=(f"{name} is heating up: spend {ratio:.1f} times usual"
                   if ratio != float("inf") else f"{name} is heating up"),
            explanation=text,
            action=(f"Call {name} this week: find out what is driving the growth (a new site, "
                    f"project or a competitor's supply problem) and secure it with a standing "
                    f"order or volume terms on what they buy most."),
            dedup_key=f"trend:heating_up:{order.customer_id}:{day_label(at)}",
            evidence=(order.event_id,),
            value=round(gain, 2),
            facts={"spend_recent_per_month": round(r.spend_recent, 2),
                   "spend_usual_per_month": round(r.spend_usual, 2),
                   "ratio": round(ratio, 3) if ratio != float("inf") else None,
                   "orders_recent_per_month": round(r.orders_recent, 3),
                   "orders_usual_per_month": round(r.orders_usual, 3),
                   "slope_per_month": round(r.slope, 2),
                   "new_categories": new, "orders": state.orders,
                   "history_days": round(r.span, 1)},
        )

    def _interest(self, event: Interaction, state: CustomerTrend, recent: float,
                  usual: float, p: TrendParams, ctx: Context) -> Finding:
        name = ctx.catalog.customer_name(event.customer_id)
        at = event.day
        r = self.rates(state, p, at)
        cur = self.currency
        ratio = recent / usual if usual > 0 else float("inf")
        times = f"{ratio:.1f} times" if ratio != float("inf") else "none before"
        return Finding(
            detector=self.name, kind="interest", subject_kind="customer",
            subject_id=event.customer_id, occurred_at=event.occurred_at,
            score=round(min(1.0 - 1.0 / ratio, 1.0) if ratio > 1 else 0.0, 4),
            severity=Severity.MEDIUM,
            title=f"{name} is shopping around: {recent:.1f} quote requests or visits a month",
            explanation=(f"{name} made about {recent:.1f} quote requests or web visits a month "
                         f"lately against {usual:.1f} usually ({times}); they spend about "
                         f"{money(r.spend_usual, cur)} a month."),
            action=(f"Call {name} within two days: ask what they are pricing, and send a "
                    f"quote before a competitor does."),
            dedup_key=f"trend:interest:{event.customer_id}:{day_label(at)}",
            evidence=(event.event_id,),
            value=round(r.spend_usual * 3.0, 2),
            facts={"quotes_recent_per_month": round(recent, 3),
                   "quotes_usual_per_month": round(usual, 3),
                   "spend_usual_per_month": round(r.spend_usual, 2)},
        )

    def bare_arithmetic(self, events: Sequence[Event]) -> Callable[[], None] | None:
        """Decayed sums over pre-extracted orders and interactions, and the population's
        usual spend learned from customers ready to be judged."""
        items: list[tuple[int, str, float, float, tuple[str | None, ...]]] = []
        for e in events:
            if isinstance(e, Order):
                items.append((0, e.customer_id, e.occurred_at.timestamp() / DAY, e.amount,
                              tuple(line.category for line in e.lines)))
            elif isinstance(e, Interaction):
                items.append((1 if e.channel in INTEREST_CHANNELS else 2, e.customer_id,
                              e.occurred_at.timestamp() / DAY, 0.0, ()))
        p = self.params

        def run() -> None:
            for kind, customer, at, value, categories in items:
                if kind == 0:
                    state = self.learn_order(customer, at, value, categories, p)
                    if self.ready(state, p):
                        self.learn_usual(3.0 * self.usual_rate(state, p))
                elif kind == 1:
                    self._state(customer, at).add_quote(at, p.fast_half_life_days,
                                                        p.slow_half_life_days)
                else:
                    self._state(customer, at)  # a contact: the customer's history starts

        return run
