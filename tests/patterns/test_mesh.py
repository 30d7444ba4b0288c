"""Mesh: five peers gossip directly (pattern id mesh-distributed-learning)."""

import pytest

from reports.plugin import assert_check

PATTERN = "mesh-distributed-learning"
pytestmark = pytest.mark.pattern(PATTERN)


@pytest.fixture(scope="module")
def result(pattern_result):
    return pattern_result(PATTERN)


def test_pattern_sharing(result):
    assert_check(result, "pattern sharing")
    assert result.learning["accuracy"] > result.learning["accuracy_isolated"]


def test_consensus_decisions(result):
    assert_check(result, "consensus decisions")
    assert result.trading["consensus_rate"] > 0


def test_pattern_replication(result):
    assert_check(result, "pattern replication")
    assert result.performance["sync_latency_ms"]["samples"] > 0


def test_fault_tolerance(result):
    assert_check(result, "fault tolerance")
    assert result.performance["fault_tolerance"]["committed_patterns_lost"] == 0
