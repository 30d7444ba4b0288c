"""Auto-scale: the swarm grows on new knowledge and shrinks when memory turns redundant."""

import pytest

from reports.plugin import assert_check

PATTERN = "auto-scale-adaptive-learning"
pytestmark = pytest.mark.pattern(PATTERN)


@pytest.fixture(scope="module")
def result(pattern_result):
    return pattern_result(PATTERN)


def test_scale_up_on_patterns(result):
    assert_check(result, "scale up on patterns")


def test_scale_down_on_consolidation(result):
    assert_check(result, "scale down on consolidation")


def test_vix_based_adaptation(result):
    assert_check(result, "VIX-based adaptation")


def test_performance_allocation(result):
    assert_check(result, "performance allocation")


def test_scaling_rules_by_hand():
    from topologies.auto_scale import ScalingRules, learning_rate, quotas, should_scale_up
    rules = ScalingRules()
    assert should_scale_up(20, 10.0, 3, rules) == "patterns"
    assert should_scale_up(5, 30.0, 3, rules) == "volatility"
    assert should_scale_up(50, 30.0, 10, rules) is None  # at the ceiling
    assert learning_rate(0.02, 30.0, rules) == pytest.approx(0.04)
    assert learning_rate(0.02, 1.0, rules) == pytest.approx(0.01)  # floored
    assert quotas({"a": 0.9, "b": 0.4, "c": 0.6}, rules) == {"a": 1.0, "c": 1.0, "b": 0.5}
