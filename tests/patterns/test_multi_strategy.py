"""Multi-strategy: specialists and a rotating meta-learner."""

import pytest

from reports.plugin import assert_check

PATTERN = "multi-strategy-meta-learning"
pytestmark = pytest.mark.pattern(PATTERN)


@pytest.fixture(scope="module")
def result(pattern_result):
    return pattern_result(PATTERN)


def test_strategy_condition_mapping(result):
    assert_check(result, "strategy-condition mapping")


def test_dynamic_rotation(result):
    assert_check(result, "dynamic rotation")


def test_cross_strategy_transfer(result):
    assert_check(result, "cross-strategy transfer")


def test_specialists_only_trade_their_strategy_or_flat(result):
    from topologies.multi_strategy import RotatingPolicy  # noqa: F401  (the meta-learner's policy)
    assert set(result.learning["specialist_accuracy"]) == {
        "momentum-specialist", "mean-reversion-specialist", "breakout-specialist"}
