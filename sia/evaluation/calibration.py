"""Is a stated probability right that often? Brier score and expected calibration error.

A detector that says "82% chance of no order in 90 days" makes a promise each alert can
be held to. Over the judged alerts: the Brier score is the mean squared gap between the
stated probability and the outcome (1 right, 0 wrong); the expected calibration error
(ECE) puts the alerts in ten bins of stated probability (0-0.1 ... 0.9-1) and averages,
weighted by the alerts in each bin, the gap between the bin's mean stated probability
and the share of its alerts that were right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BINS = 10


def calibration(judged: Sequence[tuple[float, bool]]) -> dict[str, Any] | None:
    """Brier, ECE and the reliability bins of (stated probability, right) pairs; None
    when there are none."""
    if not judged:
        return None
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(BINS)]
    for probability, right in judged:
        bins[min(int(probability * BINS), BINS - 1)].append((probability, right))
    brier = sum((p - right) ** 2 for p, right in judged) / len(judged)
    ece = 0.0
    rows = []
    for index, members in enumerate(bins):
        if not members:
            continue
        stated = sum(p for p, _ in members) / len(members)
        observed = sum(right for _, right in members) / len(members)
        ece += len(members) / len(judged) * abs(stated - observed)
        rows.append({"from": index / BINS, "to": (index + 1) / BINS, "alerts": len(members),
                     "stated": round(stated, 4), "observed": round(observed, 4)})
    return {"alerts": len(judged), "brier": round(brier, 4), "ece": round(ece, 4),
            "bins": rows}
