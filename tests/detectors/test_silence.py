"""The silence model behind drift's overdue alerts (sia/detectors/silence.py)."""

from __future__ import annotations

import random

import pytest

from sia.detectors.silence import CHECKPOINTS, SilenceModel, life_cell


def features(rng: random.Random) -> dict[str, float]:
    x = rng.uniform(-2, 2)
    return {"log_silent": 3 + x, "z": x, "log_gaps": rng.uniform(0, 3)}


def labelled(seed: int, n: int) -> list[tuple[dict[str, float], bool]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        f = features(rng)
        out.append((f, rng.random() < 0.3 + 0.15 * f["z"]))
    return out


def test_a_day_is_learned_the_same_whatever_order_its_outcomes_came_in() -> None:
    """Returns during the day, then the tick's block of silences that ran their course:
    learned as they came, the model would swing toward "lost" after each block."""
    day = labelled(1, 600)
    returns = [label for label in day if not label[1]]
    losses = [label for label in day if label[1]]
    as_they_came, reversed_ = SilenceModel(90.0), SilenceModel(90.0)
    for f, lost in returns + losses:
        as_they_came.learn(f, lost, 0, 10.0)
    for f, lost in losses[::-1] + returns[::-1]:
        reversed_.learn(f, lost, 0, 10.0)
    as_they_came.settle(10.0)
    reversed_.settle(10.0)
    probe = {"log_silent": 3.0, "z": 0.0, "log_gaps": 1.0}
    assert as_they_came.predict(probe, 0) == reversed_.predict(probe, 0)
    assert as_they_came.labels == reversed_.labels == 600


def test_a_block_of_losses_learned_last_no_longer_swings_the_model() -> None:
    """What the fix is for: the same day learned block by block (as before) and mixed."""
    from river import compose, linear_model, optim, preprocessing

    day = labelled(2, 2000)
    returns = [label for label in day if not label[1]]
    losses = [label for label in day if label[1]]
    blockwise = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression(
        optimizer=optim.SGD(0.02), l2=1e-4))
    for f, lost in returns + losses:
        blockwise.learn_one(f, lost)
    mixed = SilenceModel(90.0)
    for f, lost in returns + losses:
        mixed.learn(f, lost)
    mixed.settle(0.0)
    probe = {"log_silent": 3.0, "z": 0.0, "log_gaps": 1.5}
    truth = 0.3  # the labels' rate at z = 0
    swung = blockwise.predict_proba_one(probe)[True]
    assert swung > truth + 0.2
    assert mixed.model_probability(probe) == pytest.approx(truth, abs=0.1)


def test_the_table_counts_a_checkpoint_only_once_its_horizon_has_passed() -> None:
    model = SilenceModel(90.0)
    f = {"log_silent": 3.0, "z": 0.0, "log_gaps": 0.0}
    model.learn(f, False, 7, counts_from=200.0)  # a return, known early
    model.settle(120.0)
    assert model.labels == 1  # the regression learned it
    assert 7 not in model.table  # the table waits for the horizon, as for a loss
    model.settle(200.0)
    assert model.table[7][:2] == (1, 0)


def test_the_table_sets_each_cell_to_what_happened_there() -> None:
    """Two cells whose customers look alike to the regression, one mostly lost, one
    mostly back: the regression says the mixture for both, the table tells them apart."""
    rng = random.Random(3)
    gone, back = life_cell(1, 30.0), life_cell(8, 30.0)
    model = SilenceModel(90.0)
    f = {"log_silent": 3.4, "z": 0.0, "log_gaps": 1.0}
    for _ in range(2000):
        model.learn(f, rng.random() < 0.9, gone)
        model.learn(f, rng.random() < 0.3, back)
    model.settle(1.0)
    assert model.model_probability(f) == pytest.approx(0.6, abs=0.1)
    assert model.predict(f, gone) == pytest.approx(0.9, abs=0.03)
    assert model.predict(f, back) == pytest.approx(0.3, abs=0.03)


def test_life_cells_are_distinct_by_orders_and_checkpoint() -> None:
    cells = {life_cell(orders, silent) for orders in (1, 2, 3, 5, 8, 15, 40)
             for silent in CHECKPOINTS}
    assert len(cells) == 7 * len(CHECKPOINTS)
    assert life_cell(1, 22.0) == life_cell(1, 21.0)  # the last checkpoint reached


def test_a_cell_not_known_yet_says_at_least_what_a_shorter_silence_known_says() -> None:
    model = SilenceModel(90.0)
    f = {"log_silent": 3.0, "z": 0.0, "log_gaps": 0.0}
    for i in range(200):  # one-time buyers silent three weeks: 80% lost
        model.learn(f, i % 5 != 0, life_cell(1, 21.0), 0.0)
    model.settle(1.0)
    regression = model.model_probability(f)
    assert model.predict(f, life_cell(1, 21.0)) == pytest.approx(0.8, abs=0.05)
    # nothing known yet of one-time buyers silent 45 days: not below the 21 days' 80%
    assert model.predict(f, life_cell(1, 45.0)) >= 0.8 - 1e-9
    # another group knows nothing shorter: the regression, as it is
    assert model.predict(f, life_cell(8, 45.0)) == pytest.approx(regression, abs=1e-9)
