"""Blue-green: hand-off from v1 to v2, A/B test, rollback that keeps v2's learning."""

import pytest

from reports.plugin import assert_check

PATTERN = "blue-green-knowledge-transfer"
pytestmark = pytest.mark.pattern(PATTERN)


@pytest.fixture(scope="module")
def result(pattern_result):
    return pattern_result(PATTERN)


def test_blue_to_green_transfer(result):
    assert_check(result, "blue-to-green transfer")


def test_ab_testing(result):
    assert_check(result, "A/B testing")
    ab = result.learning["ab_test"]
    assert ab["decision"] in ("promote green", "roll back to blue")


def test_rollback_preservation(result):
    assert_check(result, "rollback preservation")


def test_promotion_needs_a_confident_paired_gain():
    from topologies.blue_green import promotion
    assert promotion([0.001])[0] == "roll back to blue"  # one decision: no interval, no claim
    assert promotion([0.002, 0.001, 0.003, 0.002, 0.0015] * 20)[0] == "promote green"
    assert promotion([0.01, -0.01] * 50)[0] == "roll back to blue"  # a tie
    assert promotion([-0.002, -0.001, -0.003] * 20)[0] == "roll back to blue"
