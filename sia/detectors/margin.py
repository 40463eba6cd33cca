"""Margin erosion per customer, per rep and per product.

Each order is priced line by line: the cost is the line's `unit_cost`, else the
product's cost in the catalogue; the reference price is the line's `list_price`,
else the catalogue's, else the product's usual price (a streaming median of what
customers pay for it, learned from the stream; a line priced over twice that is
another offer and is not compared). A subject with costs is watched on its margin
(profit / revenue); without costs anywhere, on its price realisation (paid /
reference price), so a deepening discount shows even with no cost data. A product
without list price is compared with its own first price (its realisation then
follows its price).

Observations: a customer's orders one by one; a rep's and a product's sales pooled
into periods (`rep_period_days`, `product_period_days`), learned when the period
ends (from the clock, or at the first order after its end). Per subject, a few floats
(see margin_state.py): the usual level (revenue-weighted EW mean over
`baseline_span` observations), its variance, a run of low observations in progress,
and an open alert. Customers get their team's and segment's thresholds; reps and
products the defaults.

Findings:
- a drop: `sustain` consecutive observations each `min_drop` (points) below the
  usual level, jointly significant (z >= `min_z`), or below `floor_margin` while the
  usual margin was above it. The kind names the cause, the largest of three parts of
  the drop when costs and list prices are known: `discount_creep` (deeper discounts),
  `product_mix` (the same discounts and costs, on lower-margin products),
  `cost_increase` (the same products cost more against their list price: costs not
  passed on); else `below_floor` (a small drop under the floor), `margin_drop` (costs
  known, list prices not), `price_realisation` (no costs: paid against list or usual
  price);
- `recovered`: `sustain` observations back near the old level close the alert (low
  score, low severity; its dedup key is the opening one plus ":recovered", and
  facts["resolves"] names the opening key).

Population models (shared by the partitions of a split stream, see base.Detector): each
order is one update (`learn_population`) with its day, event, customer, rep and lines
(product id, quantity, price, and list price and cost completed from the catalogue).
From it every partition learns the products' usual prices and cost shares, the periods
of reps and products, and the counts behind the wording; customers stay with their
partition. So every partition knows every rep and product from all their customers,
and one reports about each: the partition of the customer of its first sale (`speaks`).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple, Protocol

from sia.detectors.base import Context, Detector, Params, register, threshold
from sia.detectors.margin_state import (
    BucketState,
    MarginState,
    Outcome,
    ProductState,
    Thresholds,
)
from sia.detectors.money import day_label, money
from sia.detectors.rhythm import DAY
from sia.events.models import Event, Order, Product
from sia.findings import Finding, Severity, SubjectKind

SUBJECTS = ("customer", "rep", "product")
REP, PRODUCT = 0, 1  # kinds of periodic subjects in the queue of periods
# an order line as a population update carries it: (product id, quantity, unit price,
# list price, unit cost), the prices and cost completed from the catalogue
_ROW = attrgetter("product_id", "quantity", "unit_price", "list_price", "unit_cost")
_LIST_PRICE, _UNIT_COST = attrgetter("list_price"), attrgetter("unit_cost")


class Line(Protocol):
    """What the arithmetic reads of an order line (an OrderLine, or a PlainLine)."""

    @property
    def product_id(self) -> str: ...
    @property
    def quantity(self) -> float: ...
    @property
    def unit_price(self) -> float: ...
    @property
    def list_price(self) -> float | None: ...
    @property
    def unit_cost(self) -> float | None: ...


class PlainLine(NamedTuple):
    """An order line as primitives, for the benchmark's bare arithmetic."""

    product_id: str
    quantity: float
    unit_price: float
    list_price: float | None
    unit_cost: float | None


@dataclasses.dataclass(frozen=True)
class MarginParams(Params):
    """Thresholds of the margin detector."""

    min_drop: float = threshold(
        0.05, "A drop: each low order (or period) is at least this many points of margin (or "
        "price realisation) below the usual level (0.05: 5 points). Higher: fewer, bigger "
        "drops.",
        low=0, high=1, low_open=True, high_open=True, unit="share 0..1 (points of margin)",
        fewer_alerts="higher")
    min_z: float = threshold(
        2.0, "... and the drop over the whole run must be this clearly beyond the subject's "
        "usual ups and downs (in standard deviations). Higher: fewer alerts, only for clearer "
        "drops.",
        low=0, high=10, unit="standard deviations", fewer_alerts="higher")
    sustain: int = threshold(
        3, "Low orders in a row (customers) or low periods in a row (reps, products) before a "
        "drop alert; as many back near usual to recover.",
        low=1, unit="orders or periods", fewer_alerts="higher")
    min_history: int = threshold(
        4, "Orders (or periods) learned before a customer, rep or product is judged.",
        low=1, unit="orders or periods", fewer_alerts="higher")
    baseline_span: int = threshold(
        16, "The usual margin is averaged over about this many orders (or periods), bigger "
        "ones counting more.",
        low=2, unit="orders or periods", learning=True)
    floor_margin: float = threshold(
        0.0, "A run below this margin is a drop even if smaller than min_drop, when the usual "
        "margin was above it (0: selling at a loss).",
        low=-1, high=1, high_open=True, unit="share 0..1 of revenue", fewer_alerts="lower")
    recover_within: float = threshold(
        0.025, "A drop is recovered once the margin is back within this many points of its "
        "usual level before the drop. At most min_drop.",
        low=0, high=1, high_open=True, unit="share 0..1 (points of margin)", learning=True)
    rep_period_days: float = threshold(
        14.0, "A rep's sales are added up over periods this long.",
        low=1, unit="days", learning=True)
    product_period_days: float = threshold(
        14.0, "A product's sales are added up over periods this long.",
        low=1, unit="days", learning=True)
    usual_price_step: float = threshold(
        0.02, "How fast a product's usual price (used when no list price is known) follows "
        "the prices paid, per order line.",
        low=0, high=0.5, low_open=True, high_open=True, unit="share 0..1 per order line",
        learning=True)
    subjects: str = threshold(
        "customer,rep,product", "Who is watched for margin drops: customers, reps, products, "
        "or some of them.",
        choices=SUBJECTS, many=True, learning=True)

    def check(self) -> None:
        """Rules across thresholds and the list of subjects (each threshold's own range is
        declared with it)."""
        r = self.require
        r(self.recover_within <= self.min_drop,
          f"recover_within must be at most min_drop, got {self.recover_within} and "
          f"{self.min_drop}")
        names = [s.strip() for s in self.subjects.split(",") if s.strip()]
        r(bool(names) and all(s in SUBJECTS for s in names),
          f"subjects must be a comma-separated list of {', '.join(SUBJECTS)}; "
          f"got {self.subjects!r}")

    def thresholds(self) -> Thresholds:
        """What the per-subject arithmetic needs."""
        return Thresholds(2.0 / (self.baseline_span + 1), self.min_history, self.min_drop,
                          self.min_z, self.sustain, self.floor_margin, self.recover_within)


@register
class MarginDetector(Detector[MarginParams]):
    """Margin (or price realisation) eroding for a customer, a rep or a product.

    Learns each one's usual margin (or price paid against list or usual price) as a
    revenue-weighted baseline with its spread, and each product's usual price."""

    name = "margin"
    params_type = MarginParams
    shares_population = True
    handles = frozenset({"order", "product"})
    warm_up_hint = ("speaks about a customer after min_history orders with prices, about a "
                    "rep or product after min_history periods of sales")
    global_params = frozenset({"rep_period_days", "product_period_days", "usual_price_step",
                               "subjects"})

    def __init__(self, **thresholds: object) -> None:
        super().__init__(**thresholds)
        self.customers: dict[str, MarginState] = {}
        self.reps: dict[str, BucketState] = {}
        self.products: dict[str, ProductState] = {}
        # periods waiting to end: (end day, REP|PRODUCT, id, start day), in order of end
        self._due: deque[tuple[float, int, str, float]] = deque()
        # periods an order found ended before the clock did: reported at the next tick
        self._ready: list[tuple[int, str, BucketState, Outcome, str]] = []
        self.currency: str | None = None
        self.list_orders = 0  # orders priced against list prices ...
        self.usual_orders = 0  # ... and against learned usual prices (for the wording)
        self._listed = False  # a catalogue record gave a list price ...
        self._costed = False  # ... or a unit cost
        # who speaks about a rep or a product (see `speaks`): by id, the day and the
        # customer of its first sale
        self._rep_owner: dict[str, tuple[float, str]] = {}
        self._product_owner: dict[str, tuple[float, str]] = {}
        self._sums = (0.0, 0.0, 0.0, 0.0, 0.0)  # of the order learned last (R, P, L, Q, X)
        chosen = [s.strip() for s in self.params.subjects.split(",")]
        self._watch = {s: s in chosen for s in SUBJECTS}

    @classmethod
    def unit_test_params(cls) -> dict[str, object]:
        """Short warm-up for the contract tests."""
        return {"min_history": 3, "sustain": 2, "rep_period_days": 7.0,
                "product_period_days": 7.0}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore; state pickled before margin shared its population models lacks what
        sharing added (owners are then learned from new periods on)."""
        self.__dict__.update(state)
        if "_product_owner" not in state:
            products = self.products.values()
            self._listed = any(s.list_price is not None for s in products)
            self._costed = any(s.unit_cost is not None for s in products)
            self._rep_owner, self._product_owner = {}, {}
            self._sums = (0.0, 0.0, 0.0, 0.0, 0.0)

    def customer_state(self, customer_id: str) -> object | None:
        """The customer's margin state."""
        return self.customers.get(customer_id)

    # learning
    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        """Learn from an order (a customer's drop or recovery shows at once) or a product's
        catalogue record (its list price and cost)."""
        if isinstance(event, Product):
            self.learn_product(event.product_id, event.list_price, event.unit_cost)
            return []
        if not isinstance(event, Order):
            return []
        if event.currency:
            self.currency = event.currency
        customer_id = event.customer_id
        rep_id = event.rep_id
        if rep_id is None:
            customer = ctx.catalog.customers.get(customer_id)
            rep_id = customer.owner_rep_id if customer else None
        p = self.params_for(ctx, customer_id)
        outcome = self.learn_order(customer_id, rep_id, event.day,
                                   event.event_id, event.lines, p)
        if outcome is None:
            return []
        state = self.customers[customer_id]
        return [self._finding("customer", customer_id, state, outcome, event.event_id,
                              event.occurred_at, ctx, p)]

    def learn_product(self, product_id: str, list_price: float | None,
                      unit_cost: float | None) -> None:
        """A product's catalogue list price and cost: used for lines that lack them."""
        state = self.products.get(product_id)
        if state is None:
            state = self.products[product_id] = ProductState()
        state.list_price, state.unit_cost = list_price, unit_cost
        if list_price is not None:
            self._listed = True
        if unit_cost is not None:
            self._costed = True

    def learn_order(self, customer_id: str, rep_id: str | None, day: float, event_id: str,
                    lines: Sequence[Line], p: MarginParams) -> Outcome | None:
        """The learning arithmetic of one order (the benchmark's limit calls it directly).

        The order's lines, priced with the catalogue, are an update (`learn_population`):
        learned here at once, which gives the sums the customer learns from, and in every
        partition."""
        rows = list(map(_ROW, lines))
        if ((self._listed and None in map(_LIST_PRICE, lines))
                or (self._costed and None in map(_UNIT_COST, lines))):
            products = self.products
            for k, (product_id, quantity, price, list_price, cost) in enumerate(rows):
                state = products.get(product_id)
                if state is not None and (list_price is None or cost is None):
                    rows[k] = (product_id, quantity, price,
                               state.list_price if list_price is None else list_price,
                               state.unit_cost if cost is None else cost)
        self.share((day, event_id, customer_id, rep_id, rows))
        rev, profit, ref, paid, expected = self._sums
        customer = self.customers.get(customer_id)
        if customer is None:
            customer = self.customers[customer_id] = MarginState()
        outcome = customer.fold(rev, profit, ref, paid, expected, day, event_id,
                                p.thresholds())
        return outcome if self._watch["customer"] else None

    def learn_population(self, update: tuple[Any, ...]) -> None:
        """What one order teaches across customers, by product and rep id: the products'
        usual prices and cost shares, the periods of products and reps (each subject's
        owner, see `speaks`), and the counts of orders priced against list and usual
        prices. The order's sums (what its customer learns) are left in `_sums`.
        Lists stand for tuples (updates come back from JSON)."""
        day, event_id, customer_id, rep_id, rows = update
        rev = profit = ref = paid = expected = 0.0
        listed = 0
        products = self.products
        g = self.params  # period and usual price are global
        step_up, step_down = 1.0 + g.usual_price_step, 1.0 - g.usual_price_step
        watch_product = self._watch["product"]
        due = self._due
        product_period = g.product_period_days
        owners = self._product_owner
        for product_id, quantity, price, list_price, cost in rows:
            state = products.get(product_id)
            if state is None:
                state = products[product_id] = ProductState()
            amount = quantity * price
            usual = state.usual
            if list_price:
                unit_ref = list_price
                line_ref = own_ref = quantity * list_price
                listed += 1
            elif price > 2.0 * usual:  # not the same offer (another unit, a service...)
                unit_ref, line_ref, own_ref = usual, 0.0, 0.0
            else:
                unit_ref, line_ref, own_ref = usual, quantity * usual, quantity * state.anchor
            if price > 0.0:  # usual price: a frugal streaming median of prices paid
                if usual <= 0.0:
                    state.usual = state.anchor = price
                elif price > usual:
                    state.usual = min(price, usual * step_up)
                elif price < usual:
                    state.usual = max(price, usual * step_down)
            if cost is not None:
                line_cost = quantity * cost
                line_rev, line_profit = amount, amount - line_cost
                rev += line_rev
                profit += line_profit
                if unit_ref > 0.0:  # like for like: the cost at the product's usual cost
                    ratio = cost / unit_ref
                    usual_ratio = state.cost_ratio
                    if usual_ratio:
                        line_expected = quantity * unit_ref * usual_ratio
                        state.cost_ratio = usual_ratio + 0.1 * (ratio - usual_ratio)
                    else:
                        line_expected, state.cost_ratio = line_cost, ratio
                else:
                    line_expected = line_cost
                expected += line_expected
            else:
                line_rev = line_profit = line_expected = 0.0
            if line_ref > 0.0:
                ref += line_ref
                paid += amount
            if watch_product:
                pending = state.pending
                if pending is not None and day >= pending[0] + product_period:
                    self._close(PRODUCT, product_id, state, day)  # ended before the tick
                    pending = None
                if pending is None:
                    pending = state.pending = [day, line_rev, line_profit, 0.0, 0.0,
                                               line_expected]
                    due.append((day + product_period, PRODUCT, product_id, day))
                elif line_rev:
                    pending[1] += line_rev
                    pending[2] += line_profit
                    pending[5] += line_expected
                if own_ref > 0.0:
                    pending[3] += own_ref
                    pending[4] += amount
                state.pending_event = event_id
                if day <= pending[0]:  # may be the first sale (else one was before)
                    owner = owners.get(product_id)
                    if owner is None or (day, customer_id) < owner:
                        owners[product_id] = (day, customer_id)
        if ref > 0.0:
            if listed * 2 >= len(rows):
                self.list_orders += 1
            else:
                self.usual_orders += 1
        if rep_id is not None and self._watch["rep"]:
            rep = self.reps.get(rep_id)
            if rep is None:
                rep = self.reps[rep_id] = BucketState()
            pending = rep.pending
            if pending is not None and day >= pending[0] + g.rep_period_days:
                self._close(REP, rep_id, rep, day)  # ended before the tick
                pending = None
            if pending is None:
                rep.pending = [day, rev, profit, ref, paid, expected]
                due.append((day + g.rep_period_days, REP, rep_id, day))
            else:
                pending[1] += rev
                pending[2] += profit
                pending[3] += ref
                pending[4] += paid
                pending[5] += expected
            rep.pending_event = event_id
            owner = self._rep_owner.get(rep_id)
            if owner is None or (day, customer_id) < owner:
                self._rep_owner[rep_id] = (day, customer_id)
        self._sums = (rev, profit, ref, paid, expected)

    def speaks(self, kind: int, subject_id: str) -> bool:
        """Whether this instance reports about a rep or a product (REP or PRODUCT).

        Partitions that share population models all learn every rep's and product's
        periods, so all would report the same drop. Only one does: the partition of the
        subject's owner, the customer of its first sale (least day, then least customer
        id). The owner is a function of the set of orders learned, whatever their order,
        and at a tick every partition has learned the same set (sia/engine/population.py),
        so all agree; its partition is the one that learned the owner's orders itself
        (`customers`). One engine, or partitions that do not share, hold the owner of
        every subject they learned: they report about every one, as before."""
        owner = (self._rep_owner if kind == REP else self._product_owner).get(subject_id)
        return owner is None or owner[1] in self.customers

    def learn_until(self, today: float) -> list[tuple[int, str, BucketState, Outcome, str]]:
        """Learn the periods of reps and products that ended by `today` (seen today).

        Periods wait in order of their end (an event arriving late has its period closed
        with the ones before it)."""
        due = self._due
        reps, products = self.reps, self.products
        while due and due[0][0] <= today:
            _, kind, subject_id, start = due.popleft()
            state: BucketState = (reps if kind == REP else products)[subject_id]
            pending = state.pending
            if pending is not None and pending[0] == start:  # not closed by an order
                self._close(kind, subject_id, state, today)
        out, self._ready = self._ready, []
        for _, _, state, outcome, _ in out:
            if outcome.kind == "opened" and state.opened is outcome.opened:
                state.opened = outcome.opened._replace(day=today)  # reported today
        return out

    def _close(self, kind: int, subject_id: str, state: BucketState, day: float) -> None:
        """Learn a period that ended; keep what it reveals for the next tick."""
        pending = state.pending
        assert pending is not None
        state.pending = None
        outcome = state.fold(pending[1], pending[2], pending[3], pending[4], pending[5], day,
                             state.pending_event, self.params.thresholds(), since=pending[0])
        if outcome is not None:
            self._ready.append((kind, subject_id, state, outcome, state.pending_event))

    def tick(self, now: datetime, ctx: Context) -> list[Finding]:
        """Close the periods of reps and products that ended; report the drops of those
        this instance speaks for (`speaks`)."""
        findings = []
        for kind, subject_id, state, outcome, event_id in self.learn_until(
                now.timestamp() / DAY):
            if not self.speaks(kind, subject_id):
                continue
            subject: SubjectKind = "rep" if kind == REP else "product"
            findings.append(self._finding(subject, subject_id, state, outcome, event_id, now,
                                          ctx, self.params))
        return findings

    def bare_arithmetic(self, events: Sequence[Event]) -> Callable[[], None] | None:
        """Pricing, usual prices and per-subject learning over pre-extracted orders (the
        catalogue's list prices and costs are installed while extracting)."""
        orders = []
        for e in events:
            if isinstance(e, Product):
                self.learn_product(e.product_id, e.list_price, e.unit_cost)
            elif isinstance(e, Order):
                orders.append((e.customer_id, e.rep_id, e.occurred_at.timestamp() / DAY,
                               e.event_id, [PlainLine(line.product_id, line.quantity,
                                                      line.unit_price, line.list_price,
                                                      line.unit_cost) for line in e.lines]))
        params = self.params

        def run() -> None:
            next_day = orders[0][2] if orders else 0.0
            for customer, rep, day, event_id, lines in orders:
                if day >= next_day:
                    self.learn_until(day)
                    next_day = float(int(day) + 1)
                self.learn_order(customer, rep, day, event_id, lines, params)

        return run

    # explaining
    def _finding(self, kind: SubjectKind, subject_id: str, state: MarginState,
                 outcome: Outcome, event_id: str, at: datetime, ctx: Context,
                 p: MarginParams) -> Finding:
        o = outcome.opened
        key = f"margin:{kind}:{subject_id}:{o.event_id}"
        evidence = tuple(dict.fromkeys((o.event_id, event_id)))
        words = _Words(kind, subject_id, ctx, p)
        if outcome.kind == "recovered":
            return self._recovered(kind, subject_id, state, outcome, words, key, evidence, at)
        cur = self.currency
        drop = o.base - o.level
        span = words.span(o.length, o.since)
        facts: dict[str, Any] = {
            "subject_kind": kind, "observations": o.length, "since": day_label(o.since),
            "usual": round(o.base, 4), "recent": round(o.level, 4), "drop": round(drop, 4),
            "mode": "margin" if o.margin else "price_realisation",
        }
        if o.discount >= 0.0 and o.base_discount >= 0.0:
            facts["discount_usual"] = round(o.base_discount, 4)
            facts["discount_recent"] = round(o.discount, 4)
        below_floor = o.margin and o.level < p.floor_margin
        if o.margin:
            cause, because, act = self._margin_cause(o, words, p)
            lost = drop * state.rev * state.per_quarter()
            title = (f"{words.title}: margin down to {o.level:.1%} from {o.base:.1%} "
                     f"({_CAUSE_TITLE[cause].format(floor=p.floor_margin)})")
            text = (f"Margin on {words.whose} fell to {o.level:.1%} {span} from {o.base:.1%} "
                    f"usually{because}")
            if below_floor and cause != "below_floor":
                text += f", below the {p.floor_margin:.0%} margin floor"
            text += f". About {money(lost, cur)} of margin lost a quarter."
        else:
            cause = "price_realisation"
            lost = drop * state.ref * state.per_quarter()
            title, text, act = self._realisation(kind, state, o, words, span)
            text += f" About {money(lost, cur)} a quarter given away in price."
        facts["cause"] = cause
        facts["lost_per_quarter"] = round(max(lost, 0.0), 2)
        severity = (Severity.HIGH if below_floor or drop >= 4 * p.min_drop else
                    Severity.MEDIUM if drop >= 2 * p.min_drop else Severity.LOW)
        score = min(1.0, max(drop / 0.3, 0.5 if below_floor else 0.0, 0.0))
        return Finding(
            detector=self.name, kind=cause, subject_kind=kind, subject_id=subject_id,
            occurred_at=at, score=round(score, 4), severity=severity, title=title,
            explanation=text, action=act, dedup_key=key, evidence=evidence,
            value=round(max(lost, 0.0), 2), facts=facts,
        )

    def _margin_cause(self, o: Any, words: _Words, p: MarginParams) -> tuple[str, str, str]:
        """Cause of a margin drop, the clause that says it, and the action.

        With margin m and discount d, cost / list = (1 - m)(1 - d). The drop from m0 to
        m1 splits in three: the deeper discount (margin at the run's discount and the
        old cost share, m_d = 1 - c0 / (1 - d1)), the mix (the run's products at their
        usual costs, c1 / k, with k the run's cost over its cost at usual product costs)
        and the cost increase (the rest). The largest part names the cause.
        """
        d0, d1, k = o.base_discount, o.discount, o.cost_vs_usual
        if o.base - o.level < p.min_drop:
            return ("below_floor", "", words.act_floor(p.floor_margin, o.base))
        if d0 < 0.0 or d1 < 0.0 or d1 >= 1.0 or k <= 0.0:
            return ("margin_drop", "", words.act_floor(p.floor_margin, o.base))
        c0, c1 = (1.0 - o.base) * (1.0 - d0), (1.0 - o.level) * (1.0 - d1)
        m_d = 1.0 - c0 / (1.0 - d1)
        m_mix = 1.0 - c1 / k / (1.0 - d1)
        parts = {"discount_creep": o.base - m_d, "product_mix": m_d - m_mix,
                 "cost_increase": m_mix - o.level}
        cause = max(parts, key=lambda c: parts[c])
        if cause == "discount_creep":
            return (cause, f"; average discount rose from {d0:.0%} to {d1:.0%} (discount creep)",
                    words.act_discount(d0, d1))
        if cause == "cost_increase":
            return (cause, f"; for the same products, cost takes {k - 1:.0%} more of the list "
                    f"price than usual (costs rose or list prices fell, and the other did not "
                    f"follow: cost increases not passed on), with the average discount at "
                    f"{d1:.0%} against {d0:.0%}", words.act_cost(k))
        return (cause, f"; the mix moved to lower-margin products (their cost is "
                f"{c1 / k:.0%} of list price against {c0:.0%} usually) while the average "
                f"discount went from {d0:.0%} to {d1:.0%}", words.act_mix())

    def _realisation(self, kind: SubjectKind, state: MarginState, o: Any, words: _Words,
                     span: str) -> tuple[str, str, str]:
        """Title, text and action of a price realisation drop (no costs known)."""
        listed = self.list_orders >= self.usual_orders
        d0, d1 = 1.0 - o.base, 1.0 - o.level
        if kind == "product" and not listed and isinstance(state, ProductState):
            usual, now = o.base * state.anchor, o.level * state.anchor
            lower = 1.0 - o.level / o.base if o.base > 0 else 0.0
            cur = self.currency
            title = f"{words.title}: selling {lower:.0%} below its usual price"
            text = (f"{words.title} sold at {money(now, cur)} a unit on average {span}, "
                    f"against {money(usual, cur)} usually ({lower:.0%} lower).")
            act = (f"Check the price of {words.title}: it now sells at {money(now, cur)} "
                   f"against {money(usual, cur)}; correct the price list or the discount rule "
                   f"behind it, or confirm the cut was meant.")
            return title, text, act
        reference = "list price" if listed else "the usual price of the same products"
        short = "list" if listed else "usual prices"
        title = f"{words.title}: paying {_below(d1)} {short} (usually {_below(d0)})"
        text = (f"{words.who_paid} {_below(d1)} {reference} {span}, against {_below(d0)} "
                f"usually (price realisation {o.level:.0%} against {o.base:.0%}).")
        return title, text, words.act_discount(d0, d1)

    def _recovered(self, kind: SubjectKind, subject_id: str, state: MarginState,
                   outcome: Outcome, words: _Words, key: str, evidence: tuple[str, ...],
                   at: datetime) -> Finding:
        o = outcome.opened
        what = "margin" if o.margin else "price realisation"
        opened_on = day_label(o.day)
        span = words.span(outcome.length, None)
        if (kind == "product" and not o.margin and isinstance(state, ProductState)
                and self.list_orders < self.usual_orders):  # its own price, no list price
            cur, anchor = self.currency, state.anchor
            title = (f"{words.title}: price back to {money(outcome.level * anchor, cur)} "
                     f"(alert of {opened_on} can be closed)")
            text = (f"{words.title} sells at {money(outcome.level * anchor, cur)} a unit again "
                    f"{span}, against {money(o.level * anchor, cur)} when SIA raised the alert "
                    f"on {opened_on} and {money(o.base * anchor, cur)} before.")
        else:
            title = (f"{words.title}: {what} back to {outcome.level:.1%} (alert of {opened_on} "
                     f"can be closed)")
            text = (f"{what.capitalize()} on {words.whose} is back to {outcome.level:.1%} "
                    f"{span}, against {o.level:.1%} when SIA raised the alert on {opened_on} "
                    f"and {o.base:.1%} before.")
        return Finding(
            detector=self.name, kind="recovered", subject_kind=kind, subject_id=subject_id,
            occurred_at=at, score=0.05, severity=Severity.LOW, title=title, explanation=text,
            action=f"Close the {what} alert of {opened_on} about {words.title}: no action needed.",
            dedup_key=f"{key}:recovered", evidence=evidence, value=0.0,
            facts={"resolves": key, "subject_kind": kind, "level": round(outcome.level, 4),
                   "observations": outcome.length, "level_at_alert": round(o.level, 4),
                   "usual_before": round(o.base, 4), "opened": opened_on},
        )


_CAUSE_TITLE = {
    "discount_creep": "discount creep",
    "cost_increase": "costs not passed on",
    "product_mix": "lower-margin mix",
    "below_floor": "below the {floor:.0%} floor",
    "margin_drop": "costs or prices changed",
}


def _below(discount: float) -> str:
    """'12% below', '3% above' or 'at' a reference price."""
    if abs(discount) < 0.005:
        return "at"
    return f"{discount:.0%} below" if discount > 0 else f"{-discount:.0%} above"


class _Words:
    """How a subject is named and what to ask of whom."""

    def __init__(self, kind: SubjectKind, subject_id: str, ctx: Context,
                 p: MarginParams) -> None:
        catalog = ctx.catalog
        self.kind = kind
        self.period = p.rep_period_days if kind == "rep" else p.product_period_days
        if kind == "customer":
            self.title = catalog.customer_name(subject_id)
            self.whose = f"{self.title}'s orders"
            self.who_paid = f"{self.title} paid"
            owner = catalog.owner_rep(subject_id)
            self.owner = owner.name if owner and owner.name else "the account owner"
        elif kind == "rep":
            rep = catalog.reps.get(subject_id)
            self.title = rep.name if rep and rep.name else f"rep {subject_id}"
            self.whose = f"the orders booked by {self.title}"
            self.who_paid = f"{self.title}'s customers paid"
            self.owner = self.title
        else:
            self.title = catalog.product_name(subject_id)
            self.whose = f"sales of {self.title}"
            self.who_paid = f"Customers paid for {self.title}"
            self.owner = "the product manager"

    def span(self, count: int, since: float | None) -> str:
        """'over their last 5 orders (since 2024-03-04)' or 'over 3 periods of 14 days with
        sales since 2024-03-04'."""
        if self.kind == "customer":
            start = f" (since {day_label(since)})" if since is not None else ""
            return f"over their last {count} orders{start}"
        start = f" since {day_label(since)}" if since is not None else ""
        return f"over {count} periods of {self.period:.0f} days with sales{start}"

    def act_discount(self, d0: float, d1: float) -> str:
        """Concrete action against deeper discounts."""
        if self.kind == "customer":
            return (f"Ask {self.owner} to review the discounts on {self.title}'s recent orders: "
                    f"bring the next quote back to the usual {max(d0, 0.0):.0%} discount "
                    f"(now {d1:.0%}), or trade the extra discount for volume or a longer "
                    f"commitment.")
        if self.kind == "rep":
            return (f"Go through {self.title}'s recent deals with them: which customers got "
                    f"the extra discount ({d1:.0%} on average against {max(d0, 0.0):.0%}) and "
                    f"why; require approval for discounts above {max(d0, 0.0) + 0.05:.0%} "
                    f"until it is back.")
        return (f"Review the discounts given on {self.title} ({d1:.0%} on average against "
                f"{max(d0, 0.0):.0%} usually): hold them to the usual level, or check whether "
                f"a promotion or a price-list error is behind it.")

    def act_cost(self, k: float) -> str:
        """Concrete action when costs rose against list prices and prices did not follow."""
        if self.kind == "product":
            return (f"Bring the list price of {self.title} back in line with its cost, or "
                    f"renegotiate the cost: cost takes {k - 1:.0%} more of the list price than "
                    f"usual.")
        if self.kind == "rep":
            return (f"Check the prices {self.title} quotes from with them: cost takes "
                    f"{k - 1:.0%} more of the list price than usual on the same products; "
                    f"requote at current costs and tell the customers before their next order.")
        return (f"Pass the cost increase on: ask {self.owner} to requote {self.title} at "
                f"current costs (cost takes {k - 1:.0%} more of the list price than usual on "
                f"the same products) and tell them before the next order.")

    def act_mix(self) -> str:
        """Concrete action when the mix moved to lower-margin products."""
        if self.kind == "product":
            return f"Check the cost and list price of {self.title} against similar products."
        if self.kind == "rep":
            return (f"Go through {self.title}'s recent orders with them: find the low-margin "
                    f"lines that grew, price them properly or offer higher-margin alternatives; "
                    f"discounts alone do not explain the drop.")
        return (f"Ask {self.owner} to look at the low-margin lines in {self.title}'s recent "
                f"orders: price them properly or offer higher-margin alternatives; discounts "
                f"alone do not explain the drop.")

    def act_floor(self, floor: float, base: float) -> str:
        """Concrete action when margin fell below the floor or for unknown causes."""
        return (f"Check the pricing and costs of {self.whose} with {self.owner}: require "
                f"approval for any quote under the {floor:.0%} margin floor, and bring the next "
                f"one back to about {base:.0%}.")
