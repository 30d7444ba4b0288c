"""Multi-strategy: specialists and a rotating meta-learner."""

import pytest

from reports.plugin import assert_check

PATTERN = "multi-strategy-meta-learning"
pytestmark = pytest.mark.pattern(PATTERN)


@pytest.fixture(scope="module")
def result(pattern_result):
    return pattern_result(PATTERN)


def test_strategy_condition_mapping(result):
    assert_check(result, "strategy-condition mapping")


def test_dynamic_rotation(result):
    assert_check(result, "dynamic rotation")


def test_cross_strategy_transfer(result):
    assert_check(result, "cross-strategy transfer")


def test_specialists_only_trade_their_strategy_or_flat(result):
    from topologies.multi_strategy import RotatingPolicy  # noqa: F401  (the meta-learner's policy)
    assert set(result.learning["specialist_accuracy"]) == {
        "momentum-specialist", "mean-reversion-specialist", "breakout-specialist"}


def test_meta_learner_retrieves_an_agents_worth_of_patterns_per_author():
    # with one agent's k, the specialists' patterns only narrowed the meta-learner's neighbourhood
    # and sharing gained nothing over seeds 0-19 (README, "cross-strategy transfer")
    from swarm.learning.memory_policy import MemoryConfig
    from topologies.multi_strategy import META, SPECIALISTS, agents

    specs = {s.id: s for s in agents(0, MemoryConfig(k=20))}
    assert specs[META].memory.k == 20 * (len(SPECIALISTS) + 1)
    assert all(s.memory.k == 20 for name, s in specs.items() if name != META)
