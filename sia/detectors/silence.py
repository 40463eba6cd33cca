"""What a customer's silence means, learned online from the stream (river).

Every order opens checkpoints: moments when the customer has been silent for 14, 21,
30 ... 365 days. Each checkpoint the customer reaches becomes one training example once
its outcome is known: label 1 if no order followed within the horizon, 0 if one did.
The outcome is known either when the next order arrives or when the horizon has passed
in silence, so the model only ever learns from the past (prequential). A logistic
regression over a few features of the customer's rhythm then gives a calibrated
probability that a silent customer places no order within the horizon.
"""

from __future__ import annotations

import heapq
import math

from river import compose, linear_model, optim, preprocessing

CHECKPOINTS = (14.0, 21.0, 30.0, 45.0, 60.0, 75.0, 90.0, 120.0, 150.0, 180.0, 240.0,
               300.0, 365.0)


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

    def learn(self, features: dict[str, float], lost: bool) -> None:
        """One resolved checkpoint."""
        self.model.learn_one(features, lost)
        self.labels += 1
        self.positives += lost

    def predict(self, features: dict[str, float]) -> float:
        """Probability of no order within the horizon."""
        return float(self.model.predict_proba_one(features).get(True, 0.0))

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
