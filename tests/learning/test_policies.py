import numpy as np
import pytest

from swarm.learning.agent import LearningAgent
from swarm.learning.episodes import Context, Decision, Outcome
from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy
from swarm.learning.policies import (
    ContextFreeBandit,
    FixedPolicy,
    HindsightOracle,
    LinearActorCritic,
    QLearning,
    RandomPolicy,
    Sarsa,
    best_fixed_strategy,
)
from swarm.learning.session import run
from swarm.market import FEATURE_NAMES, STRATEGIES

F = {n: i for i, n in enumerate(FEATURE_NAMES)}


def stationary(n: int, seed: int = 0, contextual: bool = True) -> list[Decision]:
    """Two kinds of context: trending (momentum pays) and stretched (mean reversion pays)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        trending = (not contextual) or rng.random() < 0.5
        x = np.zeros(len(FEATURE_NAMES))
        x[F["ret_20"]], x[F["trend_strength"]] = (0.08, 2.0) if trending else (0.0, 0.0)
        x[F["zscore"]] = 0.2 if trending else 2.0
        x[F["volatility"]] = 0.01
        x += rng.normal(0, 0.05, x.size) * np.array([0.01, 0.02, 0.05, 0.001, 1, 1, 0.5, 1])
        best = 0 if trending else 1
        pnl = np.array([-0.01, -0.01, -0.005, 0.0])
        pnl[best] = 0.02
        pnl += rng.normal(0, 0.002, 4)
        out.append(Decision(Context(f"S{t % 2}", t, t * 86400.0, x), pnl, -1))
    return out


def last_accuracy(policy, decisions, tail=100) -> float:
    log = run(LearningAgent(policy.name, policy), decisions)
    return float(np.mean(log.correct[-tail:]))


@pytest.mark.parametrize("make", [
    lambda: MemoryPolicy.open(config=MemoryConfig(seed=1)),
    lambda: QLearning(seed=1),
    lambda: Sarsa(seed=1),
    lambda: LinearActorCritic(lr_actor=0.1, seed=1),
], ids=["memory", "q-learning", "sarsa", "actor-critic"])
def test_each_context_learner_learns_a_tiny_stationary_problem(make):
    assert last_accuracy(make(), stationary(500)) >= 0.85


def test_context_free_bandit_finds_the_best_arm_but_cannot_use_context():
    assert last_accuracy(ContextFreeBandit(lr=0.1, seed=1), stationary(400, contextual=False)) >= 0.85
    assert last_accuracy(ContextFreeBandit(lr=0.1, seed=1), stationary(600)) <= 0.7  # half the contexts differ


def test_baselines():
    ds = stationary(400)
    assert 0.1 < last_accuracy(RandomPolicy(3), ds, 400) < 0.4
    assert last_accuracy(HindsightOracle(ds), ds, 400) == 1.0
    fixed = best_fixed_strategy(ds)
    assert fixed in ("momentum", "mean_reversion")
    with pytest.raises(ValueError):
        FixedPolicy("hold")


def test_memory_policy_records_outcomes_on_informing_patterns_and_respects_capacity():
    policy = MemoryPolicy.open(config=MemoryConfig(seed=2, capacity=50))
    log = run(LearningAgent("m", policy), stationary(200))
    assert len(policy.bank.store) == 50 and policy.stats.evicted == 150
    assert policy.stats.outcomes_recorded > 0
    assert sum(p.uses for p in policy.bank.store.iter_patterns()) > 0
    assert len(log) == 200


def test_bounded_memory_evicts_unconsolidated_patterns_before_long_term_ones(tmp_path):
    config = MemoryConfig(seed=2, capacity=40, long_term_share=0.5)
    policy = MemoryPolicy.open(tmp_path / "m.db", config)
    agent = LearningAgent("m", policy)
    ds = stationary(200)
    run(agent, ds[:60])
    policy.consolidate()
    long_term = {p.id for p in policy.bank.store.iter_patterns()}
    assert 0 < len(long_term) <= 20  # at most long_term_share of the capacity survives
    run(agent, ds[60:])
    kept = {p.id for p in policy.bank.store.iter_patterns()}
    assert len(kept) == 40 and long_term <= kept  # 140 newer patterns came and went; none of these
    policy.close()
    # a reopened bank knows which patterns are long-term from its consolidation log
    again = MemoryPolicy.open(tmp_path / "m.db", config)
    later = [Decision(Context(d.context.symbol, d.context.bar, d.context.time + 3e7, d.context.features), d.pnl,
                      d.regime) for d in stationary(50, seed=1)]
    run(LearningAgent("m", again), later)
    assert long_term <= {p.id for p in again.bank.store.iter_patterns()}
    again.close()


def test_fifo_eviction_without_consolidation_drops_the_oldest():
    policy = MemoryPolicy.open(config=MemoryConfig(seed=2, capacity=30))
    agent = LearningAgent("m", policy)
    ds = stationary(60)
    run(agent, ds[:30])
    first = {p.id for p in policy.bank.store.iter_patterns()}
    run(agent, ds[30:])
    assert not first & {p.id for p in policy.bank.store.iter_patterns()}


def test_agent_refuses_outcomes_it_did_not_decide():
    agent = LearningAgent("a", FixedPolicy("momentum"))
    d = stationary(2)
    with pytest.raises(KeyError):
        agent.learn(Outcome(d[0].context, "momentum", 0.01))
    agent.decide(d[0].context)
    with pytest.raises(ValueError):
        agent.learn(Outcome(d[0].context, "flat", 0.0))


def test_learning_rate_hint_follows_context():
    policy = MemoryPolicy.open(config=MemoryConfig())
    calm, wild = stationary(1)[0].context, stationary(2)[1].context
    wild = Context(wild.symbol, wild.bar, wild.time, wild.features * 0 + np.array([0, 0, -0.1, 0.04, -3, -2, -2, 60]))
    assert policy.learning_rate_hint(calm, 0.02) == 0.02  # nothing remembered: the default
    for lr, ctx, reward in [(0.01, calm, 0.02), (0.1, calm, -0.01), (0.1, wild, 0.03), (0.01, wild, -0.02)]:
        policy.set_learning_rate(lr)
        policy.record_learning_rate([ctx], reward)
    assert policy.learning_rate_hint(calm, 0.02) == 0.01
    assert policy.learning_rate_hint(wild, 0.02) == 0.1


def test_strategies_names_are_the_action_space():
    assert STRATEGIES == ("momentum", "mean_reversion", "breakout", "flat")


def test_a_folded_memory_sees_a_context_and_its_mirror_image_as_one():
    """``fold``: the market is mirror-symmetric (a sell-off is a rally upside down), so the memory
    embeds a context from the side of its 20-bar move; the unfolded embedder tells them apart."""
    from swarm.learning.memory_policy import SIGNED_FEATURES, MemoryConfig, fold, make_embedder
    from swarm.market import FEATURE_NAMES

    rng = np.random.default_rng(3)
    up = rng.normal(size=len(FEATURE_NAMES))
    up[FEATURE_NAMES.index("ret_20")] = abs(up[FEATURE_NAMES.index("ret_20")]) + 0.01
    down = up.copy()
    down[list(SIGNED_FEATURES)] *= -1.0
    assert {FEATURE_NAMES[i] for i in SIGNED_FEATURES} == {"ret_1", "ret_5", "ret_20", "trend_strength", "zscore",
                                                         "channel"}
    assert np.array_equal(fold(down), up) and np.array_equal(fold(up), up)
    assert np.array_equal(fold(np.stack([up, down])), np.stack([up, up]))
    folded, plain = make_embedder(MemoryConfig()), make_embedder(MemoryConfig(fold=False))
    assert np.array_equal(folded.embed(up), folded.embed(down))
    for x in (up, down):  # folding as it scales gives the bits of the plain embedding of the folded context
        assert folded.embed(x).tobytes() == plain.embed(fold(x)).tobytes()
    assert not np.allclose(plain.embed(up), plain.embed(down))
    assert folded.fingerprint != plain.fingerprint  # packs from one space are refused by the other


def test_with_no_prior_a_strategy_without_evidence_has_no_estimate_and_the_policy_still_decides():
    """``prior=0`` is allowed: an untried strategy's mean is then 0/0, NaN (as numpy divided
    before the decision path moved to plain floats), and a choice is still made, never an error."""
    policy = MemoryPolicy.open(config=MemoryConfig(seed=1, prior=0.0))
    decisions = stationary(30)
    first = policy.choose(decisions[0].context)  # nothing retrieved: every estimate undefined
    assert first.strategy in STRATEGIES and all(np.isnan(v) for v in first.scores)
    assert np.isnan(policy.preference(decisions[0].context)).all()
    run(LearningAgent(policy.name, policy), decisions)  # learns, then decides over partial evidence
    scores = policy.choose(decisions[-1].context).scores
    assert any(np.isfinite(scores))
