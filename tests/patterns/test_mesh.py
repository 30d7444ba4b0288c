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
    # regret of the peers' trades with gossip vs the same peers alone, on the same decisions
    assert result.learning["regret"] < result.learning["regret_isolated"]
    check = next(c for c in result.checks if c.name == "pattern sharing")
    gains = [r.learning["regret_isolated"] - r.learning["regret"] for r in result.runs]
    assert check.delta == pytest.approx(sum(gains) / len(gains), abs=1e-5)  # mean over the seeds run
    assert "Sharpe of all peers' trades" in check.detail


def test_sharing_over_quic(result):
    """Only a run on real sockets (--swarm-transport quic) measures sharing on the wire."""
    names = [c.name for c in result.checks]
    if result.performance["transport"] != "quic":
        assert "sharing over QUIC" not in names  # the default suite runs no wall-clock swarm
        return
    assert_check(result, "sharing over QUIC")


def test_consensus_decisions(result):
    assert_check(result, "consensus decisions")
    assert result.trading["consensus_rate"] > 0


def test_pattern_replication(result):
    assert_check(result, "pattern replication")
    latency = result.performance["sync_latency_ms"]
    assert latency["samples"] > 0
    unit = "virtual ms" if latency["clock"] == "virtual" else " ms"
    assert unit in next(c.detail for c in result.checks if c.name == "pattern replication")


def test_fault_tolerance(result):
    assert_check(result, "fault tolerance")
    assert result.performance["fault_tolerance"]["committed_patterns_lost"] == 0
