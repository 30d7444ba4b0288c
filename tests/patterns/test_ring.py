"""Ring: a pipeline of agents handing their memory to the next."""

import pytest

from reports.plugin import assert_check

PATTERN = "ring-sequential-learning"
pytestmark = pytest.mark.pattern(PATTERN)


@pytest.fixture(scope="module")
def result(pattern_result):
    return pattern_result(PATTERN)


def test_pipeline_learning(result):
    assert_check(result, "pipeline learning")


def test_incremental_refinement(result):
    assert_check(result, "incremental refinement")


def test_pattern_discovery(result):
    assert_check(result, "pattern discovery")
