"""What a customer's silence means, learned online from the stream (river).

Every order opens checkpoints: moments when the customer has been silent for 14, 21,
30 ... 365 days. Each checkpoint the customer reaches becomes one training example once
its outcome is known: label 1 if no order followed within the horizon, 0 if one did.
The outcome is known either when the next order arrives or when the horizon has passed
in silence, so the model only ever learns from the past (prequential).

Two parts give the probability that a silent customer places no order within the
horizon:

- a logistic regression over a few features of the customer's rhythm, which ranks
  customers against each other;
- a life table: for each group of customers by orders placed (1, 2, 3, 4-5, 6-9,
  10-19, 20 or more) and each checkpoint, how many silences reached it, how many ended
  lost, and what the regression said of them (its log-odds, summed, each taken before
  it learned from that checkpoint). The probability stated is the regression's,
  shifted by how far it was off in the customer's cell: log-odds + the cell's mean
  error, weighted n / (n + `CELL_PRIOR`) for a cell of n checkpoints. A cell not known
  yet (fewer than `CELL_PRIOR` checkpoints) says at least what the longest shorter
  silence known in the group says: a customer silent longer is not less likely lost.
  This matters for a base whose customers all arrive together (CDNOW's first quarter):
  they reach each silence before anyone's outcome of it is known.

One line through every kind of customer cannot say both that a one-time buyer is
mostly gone after three weeks and that a weekly buyer silent as long is not: on a
CDNOW-shaped stream the regression alone put one-time buyers at over 99% at any
silence (78% were lost after three weeks, 97% after a year). The table sets each
cell's level from what happened there; within a cell the regression still orders
customers by their own rhythm.
"""

from __future__ import annotations

import bisect
import heapq
import math

from river import compose, linear_model, optim, preprocessing

CHECKPOINTS = (14.0, 21.0, 30.0, 45.0, 60.0, 75.0, 90.0, 120.0, 150.0, 180.0, 240.0,
               300.0, 365.0)
ORDER_GROUPS = (1, 2, 3, 4, 6, 10, 20)  # lower bounds of the groups by orders placed
CELL_PRIOR = 50.0  # checkpoints a cell needs before its error counts half
MAX_LOG_ODDS = 4.0  # the regression's, clipped: 1.8% .. 98.2%
# features, lost, life-table cell, day the outcome counts in the table
Label = tuple[dict[str, float], bool, int | None, float]


def life_cell(orders: int, silent_days: float) -> int:
    """The life-table cell of a customer of `orders` orders silent `silent_days`: their
    order group and the last checkpoint they reached."""
    group = max(bisect.bisect_right(ORDER_GROUPS, orders) - 1, 0)
    checkpoint = max(bisect.bisect_right(CHECKPOINTS, silent_days + 1e-9) - 1, 0)
    return group * len(CHECKPOINTS) + checkpoint


def in_mixed_order(labels: list[Label]) -> list[Label]:
    """The labels in an order set by what they hold, not by when they came: each one's
    place is a hash of its content and of how many identical ones came before it, so
    that identical checkpoints with different outcomes are mixed too (hashes of numbers
    do not change between runs or processes; None's does before Python 3.12)."""
    seen: dict[int, int] = {}
    keyed = []
    for label in labels:
        features, lost, cell, _ = label
        content = hash((*features.values(), lost, -1 if cell is None else cell))
        repeat = seen[content] = seen.get(content, -1) + 1
        keyed.append((hash((content, repeat)), content, repeat, label))
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]


def logit(probability: float) -> float:
    """log(p / (1 - p)), clipped away from 0 and 1."""
    p = min(max(probability, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


class SilenceModel:
    """An online logistic model of P(no order within the horizon | silent so long)."""

    def __init__(self, horizon_days: float) -> None:
        self.horizon = horizon_days
        self.model = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optim.SGD(0.02), l2=1e-4),
        )
        self.labels = 0
        self.positives = 0
        # timeouts: (day the outcome is known, seq, customer, orders, checkpoint index)
        self._timeouts: list[tuple[float, int, str, int, int]] = []
        self._seq = 0

    def learn(self, features: dict[str, float], lost: bool, cell: int | None = None,
              counts_from: float = 0.0) -> None:
        """One resolved checkpoint in life-table cell `cell` (None: an update from
        before the table, which teaches the regression only), which the table counts
        from day `counts_from` on. Kept until `settle`."""
        self._pending().append((features, lost, cell, counts_from))

    def settle(self, today: float) -> None:
        """On the first call of a day, learn the checkpoints resolved before it, in an
        order set by their content rather than by when they resolved; on every call,
        count in the table those whose horizon has passed by `today`.

        Once a day, not at every call: a live partition is ticked at moments that
        depend on the other partitions and on when a worker restarted, and a batch cut
        at such a moment would be learned in another order than the same day uncut.

        A day's outcomes arrive in two blocks: silences that ended in an order during
        the day (mostly "not lost"), and silences that ran their course, all at the
        day's tick ("lost"). Learned in that order, stochastic gradient descent swings
        toward "lost" after every tick's block, which is when overdue customers are
        judged: on a stream of 23,570 customers a block of about 900 made the model say
        90% for a customer it put at 3% before the tick. Mixed, the day's outcomes
        teach the model what they say together; and the order, set by content, is the
        same in every partition that learns them.

        The table counts a checkpoint only once its horizon has passed, whatever its
        outcome: an order that ends a silence is known at once, the silence that runs
        its course only a horizon later, so counting each as it is known would count
        the recent checkpoints' returns and not yet their losses (on the CDNOW-shaped
        stream, 67% lost for two-order customers silent three weeks, against 80%
        among the alerts judged)."""
        pending, table, waiting = self._pending(), self._table(), self._waiting()
        day = math.floor(today)
        if day > self.__dict__.get("settled_day", -math.inf):
            self.__dict__["settled_day"] = day
            for features, lost, cell, counts_from in in_mixed_order(pending):
                if cell is not None:
                    heapq.heappush(waiting, (counts_from, cell, lost,
                                             self._log_odds(features)))
                self.model.learn_one(features, lost)
                self.labels += 1
                self.positives += lost
            pending.clear()
        while waiting and waiting[0][0] <= today:
            _, cell, lost, said = heapq.heappop(waiting)
            seen, lost_, said_ = table.get(cell, (0, 0, 0.0))
            table[cell] = (seen + 1, lost_ + lost, said_ + said)

    def predict(self, features: dict[str, float], cell: int) -> float:
        """Probability of no order within the horizon for a customer in life-table
        cell `cell`: the regression's, shifted by its mean error in the cell; in a cell
        not known yet, at least what the longest shorter silence known in the group
        says."""
        table = self._table()
        log_odds = self._log_odds(features)
        seen, lost, said = table.get(cell, (0, 0, 0.0))
        if seen:
            error = logit((lost + 0.5) / (seen + 1.0)) - said / seen
            log_odds += error * seen / (seen + CELL_PRIOR)
        probability = 1.0 / (1.0 + math.exp(-log_odds))
        if seen < CELL_PRIOR:
            # not known yet: at least as likely lost as after a shorter silence known
            first = cell - cell % len(CHECKPOINTS)
            for shorter in range(cell - 1, first - 1, -1):
                seen, lost, _ = table.get(shorter, (0, 0, 0.0))
                if seen >= CELL_PRIOR:
                    return max(probability, lost / seen)
        return probability

    def _log_odds(self, features: dict[str, float]) -> float:
        """The regression's log-odds, within +-MAX_LOG_ODDS (a cell's mean error must not
        be swamped by a few saturated predictions)."""
        return max(min(logit(self.model_probability(features)), MAX_LOG_ODDS), -MAX_LOG_ODDS)

    def model_probability(self, features: dict[str, float]) -> float:
        """The regression's probability alone."""
        return float(self.model.predict_proba_one(features).get(True, 0.0))

    def _pending(self) -> list[Label]:
        pending: list[Label] = self.__dict__.setdefault("pending", [])
        return pending

    def _waiting(self) -> list[tuple[float, int, bool, float]]:
        """(day the table counts it, cell, lost, the regression's log-odds) of checkpoints
        learned, not yet counted."""
        waiting: list[tuple[float, int, bool, float]] = self.__dict__.setdefault("waiting", [])
        return waiting

    def _table(self) -> dict[int, tuple[int, int, float]]:
        """(checkpoints, of which lost, the regression's log-odds summed) by cell; made
        on first use (a snapshot from before the table has none)."""
        table: dict[int, tuple[int, int, float]] = self.__dict__.setdefault("table", {})
        return table

    def open_timeout(self, last_order_at: float, customer: str, orders: int,
                     index: int) -> None:
        """Expect checkpoint `index` of the customer's last order to time out."""
        if index < len(CHECKPOINTS):
            self._seq += 1
            due = last_order_at + CHECKPOINTS[index] + self.horizon
            heapq.heappush(self._timeouts, (due, self._seq, customer, orders, index))

    def due_timeouts(self, today: float) -> list[tuple[str, int, int]]:
        """(customer, orders, checkpoint index) whose horizon passed by `today`."""
        out = []
        while self._timeouts and self._timeouts[0][0] <= today:
            _, _, customer, orders, index = heapq.heappop(self._timeouts)
            out.append((customer, orders, index))
        return out

    def positive_rate(self) -> float:
        """Share of resolved checkpoints that ended in a lost customer."""
        return self.positives / self.labels if self.labels else 0.0
