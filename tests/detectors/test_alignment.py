"""Alignment by hand: customer value, the value histograms, and the three misalignments.

Days are counted from T0 = 2024-01-01 00:00 UTC (day 19723 since the epoch). Value is
annual spend from a decayed sum with a half-life of 182.5 days, the history counted as
at least a year: annual = S ln2 / 182.5 x 365 / (1 - 2^-2) = S x 1.386294 / 0.75.
Histogram bins are 2^(1/4) apart: bin = floor(ln v / (ln 2 / 4)) + 1.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from sia.detectors.alignment import AlignmentDetector, AlignmentParams
from sia.detectors.alignment_state import (
    CustomerAlignment,
    ValueHistogram,
    annual_value,
    bin_of,
    bin_value,
)
from sia.engine.admission import TimeLimits
from sia.engine.engine import Engine
from sia.events.models import Event, Rep
from sia.findings import Finding, Severity

from .builders import T0_DAY, at, customer, interaction, order

SMALL = [f"S{k}" for k in range(1, 10)]
HAND: dict[str, Any] = {"min_segment_customers": 5, "segment_quantile": 0.9,
                        "rearm_quantile": 0.85, "min_orders": 2, "min_tenure_days": 0.0,
                        "recheck_days": 0.0, "key_quantile": 0.8}

# these hand-built streams pause for months or come out of order: the engine's time
# bounds (tests/hardening/test_engine_input.py) are not what they test
OUT_OF_ORDER = TimeLimits(max_gap=timedelta(days=3650), max_late=timedelta(days=3650))


def feed(engine: Engine, events: Sequence[Event]) -> list[Finding]:
    out: list[Finding] = []
    for event in events:
        out.extend(engine.observe(event))
    return out


def reps() -> list[Event]:
    return [Rep(event_id="rep-M1", occurred_at=at(-30), rep_id="M1", name="Mary Boss",
                team="West"),
            Rep(event_id="rep-R1", occurred_at=at(-30), rep_id="R1", name="Rob Rep",
                team="West", manager_id="M1"),
            Rep(event_id="rep-R2", occurred_at=at(-30), rep_id="R2", name="Eve East",
                team="East", manager_id="M1")]


def home_office(days: tuple[int, ...] = (0, 10)) -> list[Event]:
    """Nine customers ordering 100 and BIG ordering 1,000, on each of `days`, all in
    segment Home Office, owned by R1 (team West, manager Mary Boss)."""
    events: list[Event] = [*reps()]
    events += [customer(c, owner="R1", segment="Home Office", name=f"{c} Co")
               for c in [*SMALL, "BIG"]]
    for day in days:
        events += [order(c, day, 100.0) for c in SMALL]
        events.append(order("BIG", day, 1000.0))
    return events


def test_value_and_bins_by_hand() -> None:
    # one order of 100: annual = 100 * 1.386294 / 0.75 = 184.84; ln 184.84 = 5.219488,
    # / 0.173287 = 30.12: bin 31, whose middle is e^(30.5 * 0.173287) = 197.40
    assert annual_value(100.0, 182.5, 0.0) == pytest.approx(184.8392, abs=1e-4)
    assert bin_of(184.84) == 31
    assert bin_value(31) == pytest.approx(197.40, abs=0.01)
    assert bin_of(1.0) == 0 and bin_of(0.0) == 0
    # a year and a half of history fills 1 - 2^-3 of the window instead of 1 - 2^-2
    assert annual_value(100.0, 182.5, 547.5) == pytest.approx(100 * 1.386294 / 0.875, abs=1e-3)
    state = CustomerAlignment()
    state.add_order(T0_DAY, 100.0, "o1", 182.5)
    state.add_order(T0_DAY + 10, 100.0, "o2", 182.5)
    # S = 100 * 2^(-10/182.5) + 100 = 196.2744: annual 362.79, bin floor(34.01) + 1 = 35
    assert state.annual(T0_DAY + 10, 182.5) == pytest.approx(362.79, abs=0.01)
    assert bin_of(362.79) == 35
    # a late, older order is discounted to the reference day
    state.add_order(T0_DAY + 5, 100.0, "o0", 182.5)
    assert state.value_sum == pytest.approx(100 * 2 ** (-10 / 182.5) + 100
                                            + 100 * 2 ** (-5 / 182.5))
    assert state.last_order_id == "o2"


def test_histogram_percentiles_count_customers_mid_rank() -> None:
    hist = ValueHistogram()
    for index in [35] * 9 + [48]:
        hist.add(index)
    # nine below bin 48, none beside: (9 + 0.5 * 1) / 10
    assert hist.percentile(48) == pytest.approx(0.95)
    # none below bin 35, nine in it: 0.5 * 9 / 10
    assert hist.percentile(35) == pytest.approx(0.45)
    assert hist.quantile(0.5) == pytest.approx(bin_value(35))
    assert hist.quantile(0.95) == pytest.approx(bin_value(48))
    hist.remove(48)
    assert hist.total == 9 and hist.percentile(35) == pytest.approx(0.5)


def test_a_customer_far_above_their_segment() -> None:
    detector = AlignmentDetector(**HAND)
    engine = Engine([detector])
    events = home_office()
    findings = feed(engine, events)
    assert [f.subject_id for f in findings] == ["BIG"]
    f = findings[0]
    # BIG at day 10: S = 1,000 * 2^(-10/182.5) + 1,000 = 1,962.744: annual 3,627.90,
    # bin floor(ln 3627.9 / 0.173287) + 1 = floor(47.30) + 1 = 48; the nine others sit in
    # bin 35 (annual 362.79). In the segment: (9 + 0.5) / 10 = 0.95 >= 0.9; typical
    # (median) = middle of bin 35 = e^(34.5 * 0.173287) = 394.81: ratio 9.19 >= 3;
    # among all customers also 0.95 >= key_quantile 0.8
    assert f.kind == "segment_value"
    assert f.facts["annual_value"] == pytest.approx(3627.90, abs=0.01)
    assert f.facts["segment_percentile"] == pytest.approx(0.95)
    assert f.facts["segment_typical"] == pytest.approx(394.81, abs=0.01)
    assert f.facts["overall_percentile"] == pytest.approx(0.95)
    assert f.facts["manager_id"] == "M1" and f.facts["owner_rep_id"] == "R1"
    assert f.score == pytest.approx(1 - 394.8104 / 3627.9016, abs=1e-4)  # 1 - 1/9.19
    assert f.severity is Severity.LOW  # 10 customers: too few to rank severity
    assert f.value == pytest.approx(3627.90, abs=0.01)
    assert f.dedup_key == "alignment:segment_value:BIG:Home Office"
    assert f.evidence == (events[-1].event_id,)
    assert f.explanation.startswith(
        "BIG Co (BIG), in segment Home Office, spends about £3,628 a year: more than 95% of "
        "the 10 customers of that segment, whose typical customer spends £395 (9 times "
        "less); among all 10 customers that is the top 5%.")
    assert f.action.startswith("Mary Boss: review how BIG Co (BIG) is served with Rob Rep")
    # the situation stays open: the next order says nothing
    assert feed(engine, [order("BIG", 20, 1000.0)]) == []
    assert detector.customers["BIG"].value_open


def test_the_misfit_rearms_when_the_customer_falls_back() -> None:
    detector = AlignmentDetector(**HAND)
    engine = Engine([detector])
    assert len(feed(engine, home_office())) == 1
    # BIG stops; the others keep buying 300 a month: BIG's value falls among theirs
    later: list[Event] = []
    for day in range(30, 400, 30):
        later += [order(c, day, 300.0) for c in SMALL]
        later.append(order("BIG", day, 10.0))
    assert feed(engine, later) == []
    assert not detector.customers["BIG"].value_open
    # back to big orders: a new alert (the same dedup key: the policy's cooldown decides)
    again = feed(engine, [order("BIG", 400 + k, 20_000.0) for k in range(3)])
    assert [f.dedup_key for f in again] == ["alignment:segment_value:BIG:Home Office"]


def test_small_segments_and_one_order_say_nothing() -> None:
    engine = Engine([AlignmentDetector(**{**HAND, "min_segment_customers": 11})])
    assert feed(engine, home_office()) == []  # 10 customers < 11
    engine = Engine([AlignmentDetector(**HAND)])
    assert feed(engine, home_office(days=(0,))) == []  # one order each


def ticks(engine: Engine, days: range) -> list[tuple[int, Finding]]:
    return [(d, f) for d in days for f in engine.tick(at(d))]


def test_a_key_account_nobody_calls() -> None:
    detector = AlignmentDetector(**HAND, min_contacts_seen=3, max_silent_days=30.0,
                                 sweep_days=7.0)
    engine = Engine([detector], time_limits=OUT_OF_ORDER)  # calls logged late
    feed(engine, home_office())
    # contact is logged from day 0.5 on, for the small customers only
    feed(engine, [interaction(c, 0.5, "call") for c in SMALL[:3]])
    # sweeps on days 11 (the first tick), 18, 25, 32, 39, ...: silent since day 0.5
    # (the first contact in the stream, later than BIG's first order): 31.5 days
    # >= 30 on day 32
    emitted = ticks(engine, range(11, 60))
    assert [(d, f.kind, f.subject_id) for d, f in emitted] == [(32, "no_contact", "BIG")]
    f = emitted[0][1]
    assert f.facts["days_without_contact"] == pytest.approx(31.5)
    assert f.facts["overall_percentile"] == pytest.approx(0.95)
    assert f.dedup_key == "alignment:no_contact:BIG:2024-01-01"
    assert "no rep contact is on record since contacts started on 2024-01-01" in f.explanation
    # score: 0.5 + 0.5 * (31.5 - 30) / 30 = 0.525
    assert f.score == pytest.approx(0.525)
    # a call resets the clock: silent again from day 60, so day 95 (first sweep >= 90)
    feed(engine, [interaction("BIG", 60, "meeting")])
    later = ticks(engine, range(60, 100))
    assert [(d, f.subject_id) for d, f in later] == [(95, "BIG")]
    assert later[0][1].dedup_key == "alignment:no_contact:BIG:2024-03-01"


def test_no_contact_log_no_neglect_alerts() -> None:
    engine = Engine([AlignmentDetector(**HAND, min_contacts_seen=3, max_silent_days=30.0)])
    feed(engine, home_office())
    assert [f for _, f in ticks(engine, range(11, 200)) if f.kind == "no_contact"] == []
    # web visits and quote requests are the customer's doing, not a rep's contact
    feed(engine, [interaction(c, 200, "web_visit") for c in SMALL])
    assert [f for _, f in ticks(engine, range(200, 400)) if f.kind == "no_contact"] == []


def test_owner_from_another_team() -> None:
    detector = AlignmentDetector(**HAND, min_region_customers=5)
    engine = Engine([detector])
    events: list[Event] = [*reps()]
    # region West carries a team's name; region Pacific is served 4 to 1 by team West
    events += [customer(f"W{k}", owner="R1") for k in range(4)]
    events += [customer(f"P{k}", owner="R1") for k in range(4)]
    events.append(customer("X", owner="R2"))
    events.append(customer("Y", owner="R2"))
    regions = {**{f"W{k}": "West" for k in range(4)}, **{f"P{k}": "Pacific" for k in range(4)},
               "X": "West", "Y": "Pacific"}
    events = [e.model_copy(update={"region": regions[e.customer_id]})
              if e.type == "customer" else e for e in events]
    feed(engine, events)
    who = list(regions)
    feed(engine, [order(c, 0, 50.0) for c in who])
    engine.tick(at(1))  # the first sweep counts every owner
    found = feed(engine, [order(c, 5, 50.0) for c in who])
    assert [(f.kind, f.subject_id) for f in found] == [("owner_mismatch", "X"),
                                                        ("owner_mismatch", "Y")]
    x, y = found
    assert x.facts["serving_team"] == "West" and x.facts["owner_team"] == "East"
    assert "which team West serves (it carries its name)" in x.explanation
    assert "it serves 4 of its 5 customers (80%)" in y.explanation
    assert x.facts["manager_id"] == "M1"
    assert x.dedup_key == "alignment:owner_mismatch:X:East:West"
    # once per owner: the next order says nothing
    assert feed(engine, [order("X", 10, 50.0)]) == []


def test_a_segment_change_moves_the_customer_between_histograms() -> None:
    detector = AlignmentDetector(**HAND)
    engine = Engine([detector])
    feed(engine, home_office())
    home = detector.by_segment[detector.segments.index["Home Office"]]
    assert home.total == 10
    feed(engine, [customer("BIG", owner="R1", segment="Corporate", day=15)])
    corporate = detector.by_segment[detector.segments.index["Corporate"]]
    assert (home.total, corporate.total) == (9, 1)
    assert detector.overall.total == 10
    assert detector.segment_teams[detector.segments.index["Corporate"]] == {
        detector.teams.index["West"]: 1}


def test_state_is_small_and_pickles() -> None:
    state = CustomerAlignment()
    state.add_order(T0_DAY + 0.417, 1234.56, "online-retail-581587", 182.5)
    state.bin, state.segment, state.region, state.team = 52, 1, 3, 2
    state.last_contact_at = T0_DAY + 3.5
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(blob) < 200
    assert pickle.loads(blob).__getstate__() == state.__getstate__()


def test_bare_arithmetic_learns_the_same_values() -> None:
    events = home_office()
    fed = AlignmentDetector(**HAND)
    feed(Engine([fed]), events)
    bare = AlignmentDetector(**HAND)
    loop = bare.bare_arithmetic(events)
    assert loop is not None
    loop()
    for c in [*SMALL, "BIG"]:
        assert bare.customers[c].value_sum == fed.customers[c].value_sum
        assert bare.customers[c].bin == fed.customers[c].bin
    assert bare.overall.counts == fed.overall.counts


def test_params_ranges_name_the_field() -> None:
    cases: tuple[tuple[str, Any], ...] = (
        ("segment_quantile", 1.0), ("rearm_quantile", 0.99), ("min_orders", 1),
        ("dominant_share", 0.5), ("key_quantile", 1.0), ("sweep_days", 0.5),
        ("min_segment_ratio", 0.5))
    for key, value in cases:
        with pytest.raises(ValueError, match=key):
            AlignmentParams(**{key: value})
    assert math.isclose(AlignmentParams().segment_quantile, 0.97)
