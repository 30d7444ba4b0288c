"""The six learning scenarios, as part of the pattern suite (each with baselines beside it)."""

import pytest

LEARNING = ("cold-start", "warm-start", "transfer-learning", "continual-learning", "catastrophic-forgetting",
            "poisoning-defence")


@pytest.mark.parametrize("pattern", LEARNING)
def test_learning_scenario(pattern_result, pattern):
    result = pattern_result(pattern)
    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.passed]
    assert not failed, failed
    assert {"random", "best-fixed", "no-memory", "oracle"} <= set(result.baselines)
