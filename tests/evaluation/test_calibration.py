"""Brier score and expected calibration error, by hand (sia/evaluation/calibration.py)."""

from __future__ import annotations

import pytest

from sia.evaluation.calibration import calibration


def test_brier_and_ece_by_hand() -> None:
    # bin 0.8-0.9: stated 0.8 and 0.88 (mean 0.84), one right of two (0.5): gap 0.34
    # bin 0.9-1.0: stated 0.95 four times, all right: gap 0.05
    judged = [(0.8, True), (0.88, False), (0.95, True), (0.95, True), (0.95, True),
              (0.95, True)]
    report = calibration(judged)
    assert report is not None
    brier = (0.2**2 + 0.88**2 + 4 * 0.05**2) / 6
    assert report["brier"] == pytest.approx(brier, abs=1e-4)
    assert report["ece"] == pytest.approx(2 / 6 * 0.34 + 4 / 6 * 0.05, abs=1e-4)
    assert report["bins"] == [
        {"from": 0.8, "to": 0.9, "alerts": 2, "stated": 0.84, "observed": 0.5},
        {"from": 0.9, "to": 1.0, "alerts": 4, "stated": 0.95, "observed": 1.0}]


def test_a_probability_of_one_falls_in_the_last_bin_and_nothing_judged_is_none() -> None:
    report = calibration([(1.0, True)])
    assert report is not None and report["bins"][0]["from"] == 0.9
    assert report["ece"] == 0.0 and report["brier"] == 0.0
    assert calibration([]) is None
