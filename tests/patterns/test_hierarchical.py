"""Hierarchical: a leader aggregates workers' patterns and pushes consolidations down."""

import pytest

from reports.plugin import assert_check

PATTERN = "hierarchical-centralized-learning"
pytestmark = pytest.mark.pattern(PATTERN)


@pytest.fixture(scope="module")
def result(pattern_result):
    return pattern_result(PATTERN)


def test_leader_aggregation(result):
    assert_check(result, "leader aggregation")
    assert result.performance["aggregation_time_ms"] is not None


def test_top_down_updates(result):
    assert_check(result, "top-down updates")


def test_worker_specialisation(result):
    assert_check(result, "worker specialisation")


def test_scalability(result):
    assert_check(result, "scalability")
