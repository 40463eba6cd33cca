"""Evaluation arithmetic on a hand-made history where every outcome is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sia.detectors.rhythm import DAY
from sia.evaluation.baselines import PopularNotBought, inactivity_alerts
from sia.evaluation.judges.cross_sell import _adoption_recall
from sia.evaluation.judges.drift import _matched_inactivity, judge_overdue
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Order

START = datetime(2011, 1, 1, tzinfo=UTC)
D0 = START.timestamp() / DAY


def order(customer: str, day: int, *products: str) -> Order:
    return Order(event_id=f"{customer}-{day}", occurred_at=START + timedelta(days=day),
                 customer_id=customer, order_id=f"{customer}-{day}",
                 lines=[{"product_id": p, "quantity": 1, "unit_price": 10.0}
                        for p in products or ("A",)])


@pytest.fixture()
def history() -> Outcomes:
    # a: orders every 10 days to day 300; b: stops after day 20; c: day 0 and day 150
    events = [order("a", d) for d in range(0, 301, 10)]
    events += [order("b", 0), order("b", 10), order("b", 20, "A", "B")]
    events += [order("c", 0), order("c", 150, "B")]
    return Outcomes.from_events(events)


def test_outcomes_index_orders_and_products(history: Outcomes) -> None:
    assert history.last_day - history.first_day == pytest.approx(300)
    assert history.next_order_after("c", D0 + 1) == pytest.approx(D0 + 150)
    assert history.buys_within("c", "B", D0 + 1, 90) is None
    assert history.buys_within("c", "B", D0 + 61, 90) == pytest.approx(D0 + 150)
    assert history.spend_between("a", D0 - 1, D0 + 25) == pytest.approx(30.0)


def test_churn_episodes_are_silences_longer_than_the_horizon(history: Outcomes) -> None:
    episodes = {(c, round(d - D0)) for c, d in history.churn_episodes(90)}
    # b is silent after day 20; c for 150 days after day 0 and again after day 150
    # (150 + 90 <= 300, so judgeable); a is never silent for 90 days
    assert episodes == {("b", 20), ("c", 0), ("c", 150)}


def test_judge_overdue_precision_and_lead(history: Outcomes) -> None:
    alerts = [("b", D0 + 50), ("c", D0 + 30), ("a", D0 + 105), ("b", D0 + 250)]
    tally, caught = judge_overdue(history, alerts, 90)
    # b@50: silent to the end -> right, lead = 20 + 90 - 50 = 60
    # c@30: next order day 150 > 120 -> right, lead = 0 + 90 - 30 = 60
    # a@105: orders on day 110 -> wrong; b@250: 250 + 90 > 300 -> unjudged
    assert (tally.alerts, tally.correct, tally.unjudged) == (3, 2, 1)
    assert tally.precision == pytest.approx(2 / 3, abs=1e-4)
    assert tally.median_lead() == 60.0
    assert ("b", D0 + 20) in caught and ("c", D0 + 0) in caught


def test_inactivity_baseline_fires_once_per_silence(history: Outcomes) -> None:
    alerts = {(c, round(d - D0), round(last - D0))
              for c, d, last in inactivity_alerts(history, 30)}
    assert alerts == {("b", 50, 20), ("c", 30, 0), ("c", 180, 150)}
    # the smallest N raising 3 judged alerts is 10: a's gaps of exactly 10 days are not
    # longer than 10, so only b (day 30), c (day 10) and c (day 160) fire
    days, tally, _ = _matched_inactivity(history, 3, 90)
    assert (days, tally.alerts, tally.correct) == (10.0, 3, 3)


def test_popular_not_bought_is_prequential() -> None:
    popular = PopularNotBought()
    popular.learn(order("x", 0, "A", "B"))
    popular.learn(order("y", 1, "A"))
    assert popular.suggest("z") == "A"
    assert popular.suggest("y") == "B"
    popular.learn(order("z", 2, "A", "B", "C"))
    assert popular.suggest("z") is None


def test_adoption_recall_counts_alerts_before_the_first_purchase() -> None:
    adoptions = [("c", "B", D0 + 150), ("d", "Q", D0 + 100)]
    predicted = {("c", "B", int(D0 + 100)), ("d", "Q", int(D0 + 101))}
    assert _adoption_recall(adoptions, predicted, 90) == 0.5
