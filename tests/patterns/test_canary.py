"""Canary: staged rollout with automatic rollback."""

import pytest

from reports.plugin import assert_check

PATTERN = "canary-incremental-learning"
pytestmark = pytest.mark.pattern(PATTERN)


@pytest.fixture(scope="module")
def result(pattern_result):
    return pattern_result(PATTERN)


def test_staged_rollout(result):
    assert_check(result, "staged rollout")


def test_automatic_rollback(result):
    assert_check(result, "automatic rollback")


def test_gate_and_stage_sizes_by_hand():
    from topologies.canary import Gate, on_canary
    assert [on_canary(10, s) for s in (0.10, 0.25, 0.50, 1.00)] == [1, 2, 5, 10]
    assert Gate(0.05).healthy(0.60, 0.64) and not Gate(0.05).healthy(0.50, 0.64)


def test_skill_is_relative_to_a_random_pick():
    from swarm.learning.metrics import skill
    assert skill([0.0, 0.0], [0.01, 0.03]) == 1.0  # always the best strategy
    assert skill([0.01, 0.03], [0.01, 0.03]) == 0.0  # no better than random
    assert skill([0.02, 0.04], [0.01, 0.03]) == -0.5  # worse than random
