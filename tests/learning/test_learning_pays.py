"""The memory learner earns on what pays, its baselines are the strong ones, accuracy ignores ties."""

import numpy as np
import pytest

from scenarios.base import market_decisions, run_policy
from swarm.learning import bandit
from swarm.learning.episodes import Context, Decision
from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy
from swarm.learning.metrics import mean_ci, sharpe_ratio
from swarm.learning.policies import FixedPolicy, RandomPolicy, RegimeRule, best_fixed_strategy
from swarm.learning.session import run
from swarm.learning.agent import LearningAgent
from swarm.learning.summary import summarise
from swarm.market import STRATEGIES


def _sharpe(policy, decisions) -> float:
    return sharpe_ratio(run_policy(policy, decisions).rewards)


def test_retrieval_off_does_measurably_worse():
    """Same learner, same decisions: without looking at its memory it trades like a coin."""
    diffs = []
    for seed in (1, 2, 3):
        d = market_decisions(seed, 1500)
        on = MemoryPolicy.open(":memory:", MemoryConfig(seed=seed))
        off = MemoryPolicy.open(":memory:", MemoryConfig(seed=seed, retrieval=False))
        diffs.append(_sharpe(on, d) - _sharpe(off, d))
    ci = mean_ci(diffs)
    assert ci["ci_low"] > 0.5, diffs


def test_memory_beats_best_fixed_and_always_momentum_on_a_tuning_seed():
    d = market_decisions(4, 3000)
    mem = _sharpe(MemoryPolicy.open(":memory:", MemoryConfig(seed=4)), d)
    assert mem > _sharpe(FixedPolicy(best_fixed_strategy(d)), d)
    assert mem > _sharpe(FixedPolicy("momentum"), d)


def _decision(bar: int, pnl, regime: int) -> Decision:
    return Decision(Context("X", bar, float(bar), np.zeros(8)), np.asarray(pnl, dtype=float), regime)


def test_best_fixed_is_ranked_by_risk_adjusted_return_not_total():
    # momentum earns more in total but swings wildly; breakout earns less, steadily
    d = [_decision(i, [(0.10 if i % 2 else -0.08), -0.01, 0.005, 0.0], 0) for i in range(40)]
    assert sum(x.pnl[0] for x in d) > sum(x.pnl[2] for x in d)
    assert best_fixed_strategy(d) == "breakout"
    losing = [_decision(i, [-0.01, -0.02, -0.01 - 0.001 * (i % 2), 0.0], 0) for i in range(10)]
    assert best_fixed_strategy(losing) == "flat"


def test_regime_rule_plays_the_best_mean_strategy_of_each_hidden_regime():
    d = [_decision(i, [0.02, -0.01, 0.0, 0.0], 0) for i in range(5)]
    # in regime 2 breakout wins less often than mean reversion but earns more on average
    d += [_decision(10 + i, [-0.01, 0.01, 0.06 if i % 2 else -0.01, 0.0], 2) for i in range(6)]
    rule = RegimeRule(d)
    assert rule.per_regime == {0: 0, 2: 2}
    assert [STRATEGIES[p.index] for p in (rule.choose(x.context) for x in d[:5])] == ["momentum"] * 5


def test_accuracy_counts_only_decisions_with_one_best_strategy():
    tie = _decision(0, [0.01, 0.01, -0.01, 0.0], 0)
    single = _decision(1, [0.02, 0.01, -0.01, 0.0], 0)
    wrong = _decision(2, [-0.02, 0.01, -0.01, 0.0], 0)
    log = run(LearningAgent("m", FixedPolicy("momentum")), [tie, single, wrong])
    s = summarise(log)
    assert s["accuracy"] == 0.5  # the tie is left out, not counted as a hit
    assert s["tie_share"] == pytest.approx(1 / 3)
    assert s["regret"] == pytest.approx((0.0 + 0.0 + 0.03) / 3)


@pytest.mark.skipif(not bandit.available(), reason="vowpalwabbit not installed")
def test_contextual_bandit_learns_a_context_rule_with_bandit_feedback():
    """Momentum pays when feature ret_20 > 0, mean reversion otherwise: VW must find it."""
    rng = np.random.default_rng(0)
    decisions = []
    for i in range(1500):
        x = np.zeros(8)
        x[2] = rng.choice([-0.1, 0.1])
        good = 0 if x[2] > 0 else 1
        pnl = np.full(4, -0.01)
        pnl[good], pnl[3] = 0.01, 0.0
        decisions.append(Decision(Context("X", i, float(i), x), pnl, -1))
    log = run_policy(bandit.ContextualBandit(seed=0), decisions)
    late = np.asarray(log.rewards[-500:])
    assert (late > 0).mean() > 0.8
    assert np.mean(run_policy(RandomPolicy(0), decisions).rewards) < 0
