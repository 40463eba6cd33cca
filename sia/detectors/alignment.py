"""Customer alignment: how a customer is served compared with how they behave.

Addressed to managers (facts["manager_id"] is the owner rep's manager). Learns online
the spread of customer value (annual spend estimated from decayed order value) across
all customers and within each segment, as bounded histograms that count each customer
once (see alignment_state.py), the rep contact each customer gets, and which team
serves the customers of each region and segment. Fires when:

- `segment_value` (on an order, at most every `recheck_days`): the customer spends more
  than `segment_quantile` of their segment, at least `min_segment_ratio` times the
  segment's typical (median) customer, and more than `key_quantile` of all customers:
  e.g. a Home Office customer buying like a Corporate key account. Once per episode:
  re-arms when they fall back under `rearm_quantile` of their segment;
- `no_contact` (from the clock, every `sweep_days`): a customer in the top
  `1 - key_quantile` of all customers by value has had no call, email, meeting or
  opportunity with a rep for `max_silent_days`. Only once the stream carries contacts
  (`min_contacts_seen` of them): data without any contact log says nothing about
  neglect, and the silence is counted from the first contact seen in the stream at the
  earliest;
- `owner_mismatch` (on an order, at most every `recheck_days`): the owner rep's team is
  not the team serving the customer's region (their segment when they have no region:
  teams are usually territories): the region carries the name of another team, or
  `dominant_share` of the region's customers, at least `min_region_customers` of them,
  are served by one other team.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sia.catalog import Catalog
from sia.detectors.alignment_state import CustomerAlignment, ValueHistogram, bin_of
from sia.detectors.base import Context, Detector, Params, register, threshold
from sia.detectors.money import day_label, money
from sia.detectors.rhythm import DAY
from sia.events.models import Customer, Event, Interaction, Opportunity, Order, Product, Rep
from sia.findings import Finding, Severity

MAX_LABELS = 64  # segments, regions and teams tracked (each); more are ignored
PLACE, TEAM, CONTACT = "place", "team", "contact"  # population updates
REP_CHANNELS = ("call", "email", "meeting", "other")  # contact made by or with a rep


@dataclasses.dataclass(frozen=True)
class AlignmentParams(Params):
    """Thresholds of the alignment detector."""

    half_life_days: float = threshold(
        182.5, "Memory of a customer's spend for their annual value: spend counts half after "
        "this many days.",
        low=0, low_open=True, unit="days", learning=True)
    sweep_days: float = threshold(
        30.0, "How often every customer's value is refreshed and neglected key accounts are "
        "looked for.",
        low=1, unit="days", learning=True)
    forget_after_days: float = threshold(
        365.0, "A customer silent this long is left out of the value comparisons.",
        low=0, low_open=True, unit="days", learning=True)
    min_orders: int = threshold(
        5, "Orders a customer must have placed before they are judged.",
        low=2, unit="orders", fewer_alerts="higher")
    min_tenure_days: float = threshold(
        90.0, "Days since the customer's first order before they are judged.",
        low=0, unit="days", fewer_alerts="higher")
    recheck_days: float = threshold(
        30.0, "Segment and owner checks at most this often per customer.",
        low=0, unit="days", fewer_alerts="higher")
    segment_quantile: float = threshold(
        0.97, "Segment misfit: the customer spends more than this share of the customers in "
        "their segment (0.97: the top 3%) ...",
        low=0.5, high=1, low_open=True, high_open=True, unit="share 0..1", fewer_alerts="higher")
    min_segment_ratio: float = threshold(
        3.0, "... and at least this many times the segment's typical (median) customer ...",
        low=1, unit="times", fewer_alerts="higher")
    rearm_quantile: float = threshold(
        0.85, "A segment misfit ends once the customer falls back below this share of their "
        "segment. Must be below segment_quantile.",
        low=0, high=1, low_open=True, high_open=True, unit="share 0..1", learning=True)
    min_segment_customers: int = threshold(
        30, "Segments with fewer customers (with orders) are not judged.",
        low=2, unit="customers", fewer_alerts="higher")
    key_quantile: float = threshold(
        0.9, "... and more than this share of all customers (0.9: the top 10%); also who "
        "counts as a key account.",
        low=0, high=1, low_open=True, high_open=True, unit="share 0..1", fewer_alerts="higher")
    max_silent_days: float = threshold(
        60.0, "No-contact alert: a key account with no call, email, meeting or opportunity "
        "for this many days.",
        low=0, low_open=True, unit="days", fewer_alerts="higher")
    min_contacts_seen: int = threshold(
        50, "No no-contact alerts until the data has carried this many rep contacts (else "
        "missing contact data would look like neglect).",
        low=0, unit="contacts", learning=True)
    dominant_share: float = threshold(
        0.8, "Owner mismatch: another team serves at least this share of the customers in the "
        "customer's region ...",
        low=0.5, high=1, low_open=True, unit="share 0..1", fewer_alerts="higher")
    min_region_customers: int = threshold(
        10, "... out of at least this many customers (or the region carries the other team's "
        "name).",
        low=1, unit="customers", fewer_alerts="higher")

    def check(self) -> None:
        """Rules across thresholds (each one's own range is declared with it)."""
        self.require(self.rearm_quantile < self.segment_quantile,
                     "rearm_quantile must be below segment_quantile, got "
                     f"{self.rearm_quantile} and {self.segment_quantile}")


class Labels:
    """Strings (segments, regions, teams) as small integers, in order of appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def name(self, index: int) -> str | None:
        """The label of an index; None for -1."""
        return self.names[index] if index >= 0 else None

    def of(self, name: str | None) -> int:
        """Index of a label; -1 for none, or once MAX_LABELS are taken."""
        if not name:
            return -1
        found = self.index.get(name)
        if found is None:
            if len(self.names) >= MAX_LABELS:
                return -1
            found = self.index[name] = len(self.names)
            self.names.append(name)
        return found


@register
class AlignmentDetector(Detector[AlignmentParams]):
    """Customers served unlike they behave: segment, contact and owner out of line.

    Learns each customer's annual value (decayed spend) against all customers and their
    segment, the rep contact each customer gets, and which team serves each region."""

    name = "alignment"
    params_type = AlignmentParams
    handles = frozenset({"order", "interaction", "opportunity", "customer", "rep"})
    warm_up_hint = ("speaks about a customer after min_orders orders over min_tenure_days, "
                    "once their segment has min_segment_customers customers")
    global_params = frozenset({"half_life_days", "sweep_days", "forget_after_days",
                               "min_contacts_seen"})
    shares_population = True
    placed_at = -1.0  # the sweep day `learn_at_tick` placed every customer for

    def __init__(self, **thresholds: object) -> None:
        super().__init__(**thresholds)
        self.customers: dict[str, CustomerAlignment] = {}
        self.segments, self.regions, self.teams = Labels(), Labels(), Labels()
        self.overall = ValueHistogram()
        self.by_segment: dict[int, ValueHistogram] = {}
        # customers counted per (region or segment) and owner team: {label: {team: count}}
        self.region_teams: dict[int, dict[int, int]] = {}
        self.segment_teams: dict[int, dict[int, int]] = {}
        self.contacts_seen = 0
        self.contacts_since = -1.0  # day of the first contact in the stream; < 0: none
        self.swept_at = -1.0
        self.reps_changed = False  # a rep record arrived: owner teams to recount at the sweep
        self.currency: str | None = None

    @classmethod
    def unit_test_params(cls) -> dict[str, object]:
        """Small populations for the contract tests."""
        return {"min_segment_customers": 5, "segment_quantile": 0.9, "min_tenure_days": 30.0,
                "min_contacts_seen": 5,
                "min_region_customers": 4, "sweep_days": 7.0, "max_silent_days": 45.0}

    def customer_state(self, customer_id: str) -> object | None:
        """The customer's value, contact and coverage."""
        return self.customers.get(customer_id)

    # learning
    def _state(self, customer_id: str) -> CustomerAlignment:
        state = self.customers.get(customer_id)
        if state is None:
            state = self.customers[customer_id] = CustomerAlignment()
        return state

    def place(self, state: CustomerAlignment, at: float) -> None:
        """Put the customer in the value bin of their current annual spend."""
        p = self.params
        if state.orders == 0:
            return
        new = bin_of(state.annual(at, p.half_life_days)) \
            if at - state.last_order_at <= p.forget_after_days else -1
        if new == state.bin:
            return
        segment = self.segments.name(state.segment)
        self.share((PLACE, segment, state.bin, segment, new))
        state.bin = new

    def learn_order(self, customer_id: str, at: float, value: float,
                    event_id: str) -> CustomerAlignment:
        """The learning arithmetic of one order (the benchmark's limit calls it directly)."""
        state = self._state(customer_id)
        state.add_order(at, value, event_id, self.params.half_life_days)
        self.place(state, at)
        return state

    def learn_contact(self, customer_id: str, at: float) -> None:
        """A rep contacted the customer on day `at`."""
        state = self._state(customer_id)
        state.last_contact_at = max(state.last_contact_at, at)
        self.share((CONTACT, at))

    def sync(self, customer_id: str, state: CustomerAlignment, ctx: Context) -> None:
        """Bring the customer's segment, region and owner team up to date in the counts."""
        catalog = ctx.catalog
        record = catalog.customers.get(customer_id)
        self.sync_to(state, record.segment if record else None,
                     record.region if record else None, catalog.team_of(customer_id))

    def sync_to(self, state: CustomerAlignment, segment_name: str | None,
                region_name: str | None, team_name: str | None) -> None:
        """`sync` with the customer's segment, region and owner team given."""
        segment = self.segments.of(segment_name)
        region = self.regions.of(region_name)
        team = self.teams.of(team_name)
        if team != state.team:
            state.owner_fired = False
        if segment != state.segment:
            self.share((PLACE, self.segments.name(state.segment), state.bin, segment_name
                        if segment >= 0 else None, state.bin))
            state.value_open = False
        if (segment, region, team) != (state.segment, state.region, state.team):
            self.share((TEAM, self.segments.name(state.segment),
                        self.regions.name(state.region), self.teams.name(state.team),
                        self.segments.name(segment), self.regions.name(region),
                        self.teams.name(team)))
        state.segment, state.region, state.team = segment, region, team

    # population models
    def learn_population(self, update: tuple[Any, ...]) -> None:
        """Customers counted by value bin (overall and per segment), by region or
        segment and owner team, and the contacts seen: one customer's move, or one
        contact, by name (label indexes differ between partitions)."""
        kind = update[0]
        if kind == PLACE:
            _, old_segment, old_bin, new_segment, new_bin = update
            old = self.by_segment.get(self.segments.of(old_segment))
            # a partition whose checkpoint is from before alignment shared has not
            # counted the other partitions' customers: it skips their first moves
            if old_bin >= 0:
                if old_bin != new_bin and self.overall.counts[old_bin]:
                    self.overall.remove(old_bin)
                if old is not None and old.counts[old_bin]:
                    old.remove(old_bin)
            index = self.segments.of(new_segment)
            if index >= 0:
                hist = self.by_segment.get(index)
                if hist is None:
                    hist = self.by_segment[index] = ValueHistogram()
                if new_bin >= 0:
                    hist.add(new_bin)
            if new_bin >= 0 and old_bin != new_bin:
                self.overall.add(new_bin)
        elif kind == TEAM:
            segments, regions, teams = self.segments.of, self.regions.of, self.teams.of
            old_team, new_team = teams(update[3]), teams(update[6])
            _move(self.segment_teams, segments(update[1]), old_team, segments(update[4]),
                  new_team)
            _move(self.region_teams, regions(update[2]), old_team, regions(update[5]),
                  new_team)
        elif kind == CONTACT:
            at = update[1]
            self.contacts_seen += 1
            if self.contacts_since < 0 or at < self.contacts_since:
                self.contacts_since = at
        else:
            raise ValueError(f"unknown alignment population update {kind!r}")

    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        """Learn from orders, contacts and customer records; check a customer's coverage."""
        if isinstance(event, Order):
            return self._on_order(event, ctx)
        if isinstance(event, Interaction | Opportunity):
            if isinstance(event, Interaction) and event.channel not in REP_CHANNELS:
                self._state(event.customer_id)
                return []
            self.learn_contact(event.customer_id, event.day)
            return []
        if isinstance(event, Customer):
            self.sync(event.customer_id, self._state(event.customer_id), ctx)
        elif isinstance(event, Rep):
            self.reps_changed = True
        return []

    def _on_order(self, order: Order, ctx: Context) -> list[Finding]:
        if order.currency:
            self.currency = order.currency
        at = order.day
        state = self.learn_order(order.customer_id, at, order.amount, order.event_id)
        p = self.params_for(ctx, order.customer_id)
        if (state.orders < p.min_orders or at - state.first_order_at < p.min_tenure_days
                or at - state.value_checked_at < p.recheck_days):
            return []
        state.value_checked_at = at
        self.sync(order.customer_id, state, ctx)
        findings = []
        misfit = self._segment_value(order, state, p, ctx, at)
        if misfit is not None:
            findings.append(misfit)
        owner = self._owner_mismatch(order, state, p, ctx)
        if owner is not None:
            findings.append(owner)
        return findings

    def _sweep_due(self, today: float) -> bool:
        return self.swept_at < 0 or today - self.swept_at >= self.params.sweep_days

    def learn_at_tick(self, now: datetime, ctx: Context) -> None:
        """On a sweep day, put every customer in the bin of their value today (and
        recount owner teams after a rep record): every partition learns it before the
        sweep compares customers."""
        today = now.timestamp() / DAY
        if not self._sweep_due(today) or self.placed_at == today:
            return
        self.placed_at = today
        resync, self.reps_changed = self.reps_changed, False
        for customer_id, state in self.customers.items():
            if resync:  # a rep joined or changed team: recount owner teams
                self.sync(customer_id, state, ctx)
            self.place(state, today)

    def tick(self, now: datetime, ctx: Context) -> list[Finding]:
        """Every sweep_days: refresh every customer's value (unless `learn_at_tick` did);
        report neglected key accounts."""
        today = now.timestamp() / DAY
        if not self._sweep_due(today):
            return []
        self.learn_at_tick(now, ctx)
        self.swept_at = today
        if self.contacts_seen < self.params.min_contacts_seen or self.contacts_since < 0:
            return []
        findings = []
        for customer_id, state in self.customers.items():
            if state.bin < 0:
                continue
            p = self.params_for(ctx, customer_id)
            if state.orders < p.min_orders or state.contact_fired == state.last_contact_at:
                continue
            share = self.overall.percentile(state.bin)
            if share < p.key_quantile:
                continue
            since = max(state.last_contact_at, self.contacts_since, state.first_order_at)
            if today - since < p.max_silent_days:
                continue
            state.contact_fired = state.last_contact_at
            findings.append(self._no_contact(customer_id, state, p, ctx, now, since, share))
        return findings

    # helpers
    def _manager(self, customer_id: str, ctx: Context) -> tuple[str | None, str, str]:
        """(manager id, manager's name or '', owner rep's name or '')."""
        rep = ctx.catalog.owner_rep(customer_id)
        if rep is None:
            return None, "", ""
        manager = ctx.catalog.reps.get(rep.manager_id) if rep.manager_id else None
        return rep.manager_id, (manager.name or "") if manager else "", rep.name or rep.rep_id

    def _severity(self, value: float) -> Severity:
        """High for the top decile of customers by value, medium above the median."""
        if self.overall.total < 20:
            return Severity.LOW
        if value >= self.overall.quantile(0.9):
            return Severity.HIGH
        return Severity.MEDIUM if value >= self.overall.quantile(0.5) else Severity.LOW

    def _facts(self, customer_id: str, ctx: Context, **numbers: Any) -> dict[str, Any]:
        manager_id, _, _ = self._manager(customer_id, ctx)
        customer = ctx.catalog.customers.get(customer_id)
        return {"manager_id": manager_id,
                "owner_rep_id": customer.owner_rep_id if customer else None,
                "segment": customer.segment if customer else None,
                "region": customer.region if customer else None, **numbers}

    # segment value
    def _segment_value(self, order: Order, state: CustomerAlignment, p: AlignmentParams,
                       ctx: Context, at: float) -> Finding | None:
        hist = self.by_segment.get(state.segment) if state.segment >= 0 else None
        if hist is None or hist.total < p.min_segment_customers or state.bin < 0:
            return None
        share = hist.percentile(state.bin)
        if state.value_open:
            if share < p.rearm_quantile:
                state.value_open = False  # hysteresis: back among their segment
            return None
        value = state.annual(at, p.half_life_days)
        typical = hist.quantile(0.5)
        overall = self.overall.percentile(state.bin)
        if (share < p.segment_quantile or value < p.min_segment_ratio * typical
                or overall < p.key_quantile):
            return None
        state.value_open = True
        segment = self.segments.names[state.segment]
        name = ctx.catalog.customer_name(order.customer_id)
        cur = self.currency
        ratio = value / typical if typical > 0 else float("inf")
        text = (f"{name}, in segment {segment}, spends about {money(value, cur)} a year: more "
                f"than {_pct(share)} of the {hist.total:,} customers of that segment, whose "
                f"typical customer spends {money(typical, cur)} ({ratio:.0f} times less); among "
                f"all {self.overall.total:,} customers that is the top "
                f"{_pct(max(1 - overall, 0.01))}.")
        richer = self._richest_other_segment(state.segment, p)
        if richer is not None:
            other, other_hist = richer
            text += (f" Even in segment {self.segments.names[other]} (typical customer "
                     f"{money(other_hist.quantile(0.5), cur)}) they would out-spend "
                     f"{_pct(other_hist.percentile(state.bin))} of customers.")
        _, manager, owner = self._manager(order.customer_id, ctx)
        text += f" {state.orders} orders since {day_label(state.first_order_at)}"
        text += f"; owner {owner}." if owner else "."
        return Finding(
            detector=self.name, kind="segment_value", subject_kind="customer",
            subject_id=order.customer_id, occurred_at=order.occurred_at,
            score=round(min(max(1.0 - 1.0 / ratio, 0.0), 1.0), 4),
            severity=Severity.HIGH if overall >= 0.98 and self.overall.total >= 20
            else Severity.MEDIUM if self.overall.total >= 20 else Severity.LOW,
            title=(f"{name} buys like a key account, unlike segment {segment} "
                   f"({money(value, cur)} a year)"),
            explanation=text,
            action=(f"{manager or 'Manager'}: review how {name} is served with "
                    f"{owner or 'the owner rep'}: offer key-account terms and a named contact, "
                    f"or move them to the tier that serves customers buying like this, once "
                    f"the next orders confirm the level."),
            dedup_key=f"alignment:segment_value:{order.customer_id}:{segment}",
            evidence=(order.event_id,),
            value=round(value, 2),
            facts=self._facts(order.customer_id, ctx, annual_value=round(value, 2),
                              segment_percentile=round(share, 4),
                              segment_typical=round(typical, 2),
                              overall_percentile=round(overall, 4),
                              segment_customers=hist.total),
        )

    def _richest_other_segment(self, own: int,
                               p: AlignmentParams) -> tuple[int, ValueHistogram] | None:
        best: tuple[float, int, ValueHistogram] | None = None
        for index, hist in self.by_segment.items():
            if index == own or hist.total < p.min_segment_customers:
                continue
            median = hist.quantile(0.5)
            if best is None or median > best[0]:
                best = (median, index, hist)
        return (best[1], best[2]) if best else None

    # owner mismatch
    def _owner_mismatch(self, order: Order, state: CustomerAlignment, p: AlignmentParams,
                        ctx: Context) -> Finding | None:
        """Region first (teams are usually territories); segment only without a region.
        Only once a sweep has counted every customer's owner."""
        if state.team < 0 or state.owner_fired or self.swept_at < 0:
            return None
        if state.region >= 0:
            kind, label, table, labels = "region", state.region, self.region_teams, self.regions
        elif state.segment >= 0:
            kind, label, table = "segment", state.segment, self.segment_teams
            labels = self.segments
        else:
            return None
        name = labels.names[label]
        expected, why = self._serving_team(name, table.get(label, {}), p)
        if expected is None or expected == state.team:
            return None
        state.owner_fired = True
        return self._owner_finding(order, state, ctx, kind, name, expected, why)

    def _serving_team(self, label: str, counts: dict[int, int],
                      p: AlignmentParams) -> tuple[int | None, str]:
        """The team that serves a region or segment, and why we think so."""
        for index, team in enumerate(self.teams.names):
            if team.casefold() == label.casefold():
                return index, "it carries its name"
        total = sum(counts.values())
        if total < p.min_region_customers:
            return None, ""
        serving, n = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
        if n < p.dominant_share * total:
            return None, ""
        return serving, f"it serves {n} of its {total} customers ({n / total:.0%})"

    def _owner_finding(self, order: Order, state: CustomerAlignment, ctx: Context,
                       kind: str, label: str, expected: int, why: str) -> Finding:
        name = ctx.catalog.customer_name(order.customer_id)
        _, manager, owner = self._manager(order.customer_id, ctx)
        team, serving = self.teams.names[state.team], self.teams.names[expected]
        value = state.annual(order.day, self.params.half_life_days)
        cur = self.currency
        return Finding(
            detector=self.name, kind="owner_mismatch", subject_kind="customer",
            subject_id=order.customer_id, occurred_at=order.occurred_at,
            score=0.5, severity=self._severity(value),
            title=f"{name}, {kind} {label}, is owned by team {team}, not team {serving}",
            explanation=(f"{name} is in {kind} {label}, which team {serving} serves ({why}), "
                         f"but their owner {owner} is in team {team}. They spend about "
                         f"{money(value, cur)} a year over {state.orders} orders."),
            action=(f"{manager or 'Manager'}: confirm whether {owner} should keep {name}; "
                    f"if not, hand the account to a rep of team {serving} with a joint "
                    f"introduction call."),
            dedup_key=f"alignment:owner_mismatch:{order.customer_id}:{team}:{label}",
            evidence=(order.event_id,),
            value=round(value, 2),
            facts=self._facts(order.customer_id, ctx, owner_team=team, serving_team=serving,
                              mismatch_on=kind, annual_value=round(value, 2)),
        )

    # no contact
    def _no_contact(self, customer_id: str, state: CustomerAlignment, p: AlignmentParams,
                    ctx: Context, now: datetime, since: float, share: float) -> Finding:
        today = now.timestamp() / DAY
        name = ctx.catalog.customer_name(customer_id)
        _, manager, owner = self._manager(customer_id, ctx)
        value = state.annual(today, p.half_life_days)
        silent = today - since
        cur = self.currency
        if state.last_contact_at >= 0:
            last = f"the last rep contact was on {day_label(state.last_contact_at)}"
        else:
            last = f"no rep contact is on record since contacts started on {day_label(since)}"
        return Finding(
            detector=self.name, kind="no_contact", subject_kind="customer",
            subject_id=customer_id, occurred_at=now,
            score=round(min(0.5 + 0.5 * (silent - p.max_silent_days) / p.max_silent_days,
                            1.0), 4),
            severity=Severity.HIGH if share >= 0.97 else Severity.MEDIUM,
            title=f"{name}, a top {_pct(max(1 - share, 0.01))} account, has had no rep "
                  f"contact for {silent:.0f} days",
            explanation=(f"{name} spends about {money(value, cur)} a year, more than "
                         f"{_pct(share)} of customers, and ordered {state.orders} times (last on "
                         f"{day_label(state.last_order_at)}), but {last}: {silent:.0f} days "
                         f"without a call, email, meeting or opportunity."),
            action=(f"{manager or 'Manager'}: ask {owner or 'the owner rep'} to call {name} "
                    f"this week and book a review meeting; a key account should hear from "
                    f"us at least every {p.max_silent_days:.0f} days."),
            dedup_key=f"alignment:no_contact:{customer_id}:{day_label(since)}",
            evidence=(state.last_order_id,),
            value=round(value, 2),
            facts=self._facts(customer_id, ctx, annual_value=round(value, 2),
                              overall_percentile=round(share, 4),
                              days_without_contact=round(silent, 1)),
        )

    def bare_arithmetic(self, events: Sequence[Event]) -> Callable[[], None] | None:
        """Value learning and monthly sweeps over pre-extracted orders; contacts; and each
        customer record's segment, region and owner team (resolved while extracting)
        moved in the counts. Not included: the recount of every customer when a rep
        changes team."""
        ORDER, CONTACT, RECORD, SEEN = 0, 1, 2, 3
        steps: list[tuple[int, str, float, float, str, tuple[str | None, ...]]] = []
        catalog = Catalog()
        for e in events:
            if isinstance(e, Customer | Product | Rep):
                catalog.update(e)
            if isinstance(e, Order):
                steps.append((ORDER, e.customer_id, e.occurred_at.timestamp() / DAY, e.amount,
                              e.event_id, ()))
            elif isinstance(e, Interaction | Opportunity):
                kind = SEEN if isinstance(e, Interaction) and e.channel not in REP_CHANNELS \
                    else CONTACT
                steps.append((kind, e.customer_id, e.occurred_at.timestamp() / DAY, 0.0, "",
                              ()))
            elif isinstance(e, Customer):
                newest = catalog.customers.get(e.customer_id)  # as `sync` reads it
                steps.append((RECORD, e.customer_id, 0.0, 0.0, "",
                              (newest.segment if newest else None,
                               newest.region if newest else None,
                               catalog.team_of(e.customer_id))))
        sweep = self.params.sweep_days

        def run() -> None:
            next_sweep = next((at for kind, _, at, *_ in steps if kind == ORDER), 0.0)
            for kind, customer, at, value, event_id, record in steps:
                if kind == ORDER:
                    if at >= next_sweep:
                        for state in self.customers.values():
                            self.place(state, at)
                        next_sweep = at + sweep
                    self.learn_order(customer, at, value, event_id)
                elif kind == CONTACT:
                    self.learn_contact(customer, at)
                elif kind == RECORD:
                    self.sync_to(self._state(customer), *record)
                else:
                    self._state(customer)

        return run


def _pct(share: float) -> str:
    """A share as a whole percentage that never reads 100% or 0%."""
    return f"{min(max(share, 0.01), 0.99):.0%}"


def _move(table: dict[int, dict[int, int]], old_label: int, old_team: int,
          new_label: int, new_team: int) -> None:
    """Move one customer's count from (old label, old team) to (new label, new team)."""
    if (old_label, old_team) == (new_label, new_team):
        return
    if old_label >= 0 and old_team >= 0:
        counts = table.get(old_label, {})
        left = counts.get(old_team, 0) - 1
        if left > 0:
            counts[old_team] = left
        else:  # none left (or none counted: a checkpoint from before alignment shared)
            counts.pop(old_team, None)
    if new_label >= 0 and new_team >= 0:
        counts = table.setdefault(new_label, {})
        counts[new_team] = counts.get(new_team, 0) + 1
