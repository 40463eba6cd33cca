"""Will a customer buy at the price break? An online logistic model, trained on the stream.

Every time a customer buys a product below one of its price breaks (close enough to it
to be a candidate), the situation is written down with a few features; once the horizon
has passed, it becomes one training example: 1 if the customer bought the product at
the break quantity or more within the horizon, 0 if not. Both outcomes are learned only
when the horizon is over, so early examples are not biased toward quick successes, and
the model only ever learns from the past (prequential).

The model is a plain logistic regression fitted by AdaGrad: a handful of weights, and a
dot product per prediction, cheap enough to score every candidate line of every order
(a river pipeline costs some tens of microseconds a call; this costs about one).
Open situations are bounded: at most one per (customer, product) and `max_open` in all.
They are the customers' own business (kept where the customer's events are learned);
the weights are what every customer teaches (`due` hands the resolved examples over,
`learn` applies one, wherever it was resolved).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

FEATURES = (
    "bias",
    "typical_ratio",  # the customer's typical quantity / break quantity (at most 1)
    "line_ratio",  # this line's quantity / break quantity
    "bought_at_break_before",  # 1 if they already bought this product at the break or more
    "log_lines",  # log(1 + lines of this product the customer bought)
    "bulk_share",  # share of the customer's lines bought at a quantity price, smoothed
    "break_share",  # share of all lines of the break quantity or more at the break price
    "growth",  # (recent typical quantity - earlier typical quantity) / break quantity
    "log_break",  # log(break quantity) / 5
    "popularity",  # share of all lines of the product at the break quantity or more
    "log_orders",  # log(1 + the customer's orders) / 3
    "repeat",  # share of the customer's orders holding this product (since tracked)
)

Open = tuple[float, float, tuple[float, ...]]  # (due day, break quantity, features)


class BreakModel:
    """P(buys at the break within the horizon | features), learned online."""

    def __init__(self, horizon_days: float, max_open: int, learning_rate: float = 0.5,
                 l2: float = 1e-4) -> None:
        self.horizon = horizon_days
        self.max_open = max_open
        self.learning_rate = learning_rate
        self.l2 = l2
        self.weights = [0.0] * len(FEATURES)
        self.squares = [1e-6] * len(FEATURES)  # AdaGrad: sums of squared gradients
        self.labels = 0
        self.positives = 0
        self.open: dict[tuple[str, int], Open] = {}
        self.hits: dict[tuple[str, int], bool] = {}
        self._queue: deque[tuple[str, int]] = deque()  # keys in the order they were opened

    def predict(self, x: tuple[float, ...]) -> float:
        """Probability of buying at the break within the horizon."""
        z = 0.0
        for w, v in zip(self.weights, x, strict=True):
            z += w * v
        if z < -30.0:
            return 0.0
        return 1.0 / (1.0 + math.exp(-z))

    def learn(self, x: tuple[float, ...], bought: bool) -> None:
        """One resolved situation."""
        g = self.predict(x) - (1.0 if bought else 0.0)
        w, sq, rate, l2 = self.weights, self.squares, self.learning_rate, self.l2
        for i, v in enumerate(x):
            grad = g * v + l2 * w[i]
            sq[i] += grad * grad
            w[i] -= rate * grad / math.sqrt(sq[i])
        self.labels += 1
        self.positives += bought

    def watch(self, customer: str, product: int, day: float, quantity: float,
              x: tuple[float, ...]) -> None:
        """Write down a candidate situation, unless one is open for the pair already."""
        key = (customer, product)
        if key in self.open or len(self.open) >= self.max_open:
            return
        self.open[key] = (day + self.horizon, quantity, x)
        self._queue.append(key)

    def saw(self, customer: str, product: int, quantity: float) -> None:
        """A line of the product: a success for the open situation if it reaches the break."""
        situation = self.open.get((customer, product))
        if situation is not None and quantity >= situation[1]:
            self.hits[(customer, product)] = True

    def resolve(self, today: float) -> None:
        """Learn from every situation whose horizon has passed by `today`."""
        for x, bought in self.due(today):
            self.learn(x, bought)

    def due(self, today: float) -> Sequence[tuple[tuple[float, ...], bool]]:
        """Close every situation whose horizon has passed by `today`: its (features,
        bought), oldest first, for `learn` (the up-sell detector shares them first, so
        that partitions of a split stream train one model on every customer's cases)."""
        queue = self._queue
        if not queue or self.open[queue[0]][0] > today:
            return ()
        open_, hits = self.open, self.hits
        resolved: list[tuple[tuple[float, ...], bool]] = []
        while queue:
            key = queue[0]
            due, _, x = open_[key]
            if due > today:
                break
            queue.popleft()
            del open_[key]
            resolved.append((x, hits.pop(key, False)))
        return resolved
