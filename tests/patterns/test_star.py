"""Star: a hub relays between spokes."""

import pytest

from reports.plugin import assert_check

PATTERN = "star-hub-learning"
pytestmark = pytest.mark.pattern(PATTERN)


@pytest.fixture(scope="module")
def result(pattern_result):
    return pattern_result(PATTERN)


def test_hub_relay(result):
    assert_check(result, "hub relay")


def test_hub_failure_impact(result):
    assert_check(result, "hub failure impact")
    assert result.performance["fault_tolerance"]["delivered_after_restart"] > 0
