"""Metric formulas against examples worked by hand."""

import math

import numpy as np
import pytest

from swarm.learning import (
    accuracy,
    average_return,
    convergence_episode,
    max_drawdown,
    retention_rate,
    rolling_mean,
    sharpe_ratio,
    win_rate,
)


def test_accuracy_counts_picks_among_the_hindsight_best_including_ties():
    table = np.array([
        [0.02, -0.01, 0.00],   # best: 0
        [-0.01, 0.03, 0.00],   # best: 1
        [0.00, -0.02, 0.00],   # best: 0 and 2 (tie)
        [-0.01, -0.02, 0.00],  # best: 2
    ])
    assert accuracy([0, 1, 2, 0], table) == 0.75
    assert accuracy([2, 2, 2, 2], table) == 0.5
    assert math.isnan(accuracy([], table))


def test_win_rate_ignores_trades_without_a_position():
    assert win_rate([0.01, -0.02, 0.0, 0.03, 0.0]) == pytest.approx(2 / 3)
    assert math.isnan(win_rate([0.0, 0.0]))


def test_sharpe_hand_computed_and_annualised():
    r = [0.01, 0.02, -0.01, 0.02]
    mean, sd = 0.01, math.sqrt(((0) ** 2 + 0.01 ** 2 + 0.02 ** 2 + 0.01 ** 2) / 3)
    assert sharpe_ratio(r, periods_per_year=1) == pytest.approx(mean / sd)
    assert sharpe_ratio(r) == pytest.approx(mean / sd * math.sqrt(252))
    assert math.isnan(sharpe_ratio([0.01]))
    assert math.isnan(sharpe_ratio([0.01, 0.01]))


def test_max_drawdown_on_a_known_equity_curve():
    # equity 1 -> 1.2 -> 0.9 -> 1.08 -> 0.72 -> 1.5: worst fall is from 1.2 to 0.72 = 40 %
    steps = [1.2, 0.75, 1.2, 2 / 3, 1.5 / 0.72]
    assert max_drawdown(np.log(steps)) == pytest.approx(0.4)
    assert max_drawdown([0.01, 0.02]) == 0.0
    assert max_drawdown([]) == 0.0
    assert average_return([0.01, 0.03]) == pytest.approx(0.02)


def test_rolling_mean_and_convergence():
    assert rolling_mean([1, 2, 3, 4], 2).tolist() == [1.0, 1.5, 2.5, 3.5]
    acc = [0.9, 0.2, 0.5, 0.6, 0.7, 0.8, 0.8]
    # full 3-episode windows: ep3 0.533, ep4 0.433, ep5 0.6, ep6 0.7 -> converges at 6
    conv = convergence_episode(acc, target=0.7, window=3)
    assert conv.episode == 6 and conv.reached and conv.to_json() == 6
    never = convergence_episode([0.1] * 20, target=0.7, window=5)
    assert not never.reached and never.to_json() == "not reached"
    # one lucky first episode does not count before a full window exists
    assert convergence_episode([1.0, 0.0, 0.0], target=0.7, window=2).episode is None


def test_retention_rate():
    assert retention_rate(0.72, 0.8) == pytest.approx(0.9)
    assert math.isnan(retention_rate(0.5, 0.0))
