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


def test_mcnemar_by_hand():
    from topologies.blue_green import mcnemar
    assert mcnemar(0, 0) == 1.0
    assert mcnemar(10, 10) == pytest.approx(0.8231, abs=1e-3)  # (|0| - 1)^2 / 20 = 0.05
    assert mcnemar(30, 5) < 0.001
