"""The memory policy's decision: what it weighs from the index's columns, and what it reads rows for."""

from __future__ import annotations

import numpy as np
import pytest

from swarm.learning.episodes import Context
from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy
from swarm.market import STRATEGIES
from swarm.memory import Pattern, Source

from .test_policies import stationary


def _store_around(policy: MemoryPolicy, emb: np.ndarray, n: int, seed: int, **fields: object) -> None:
    """``n`` patterns near ``emb`` (similarities spread out), each for a strategy, reward and author
    drawn from ``seed``; some without a reward."""
    rng = np.random.default_rng(seed)
    patterns = []
    for i in range(n):
        vec = emb + rng.normal(0, 0.4, emb.size)
        reward = None if i % 9 == 0 else float(rng.normal(0.002, 0.01))
        patterns.append(Pattern(id=f"p{seed}-{i}", title="t", content="c", domain="trading",
                                action=STRATEGIES[int(rng.integers(len(STRATEGIES)))], embedding=vec,
                                created_at=float(rng.uniform(0, 50 * 86400)),
                                source=Source(agent=f"author{i % 3}", reward=reward), **fields))
    policy.bank.store.add_many(patterns)


@pytest.mark.parametrize("config", [MemoryConfig(), MemoryConfig(half_life=10 * 86400.0),
                                    MemoryConfig(trust=True), MemoryConfig(update_top=5)])
def test_a_choice_is_informed_by_the_heaviest_hits_about_the_strategy_it_plays(config):
    """The informers a choice names are the ``update_top`` heaviest retrieved patterns about the
    strategy played (ties in retrieval order), as :meth:`evidence` weighs them from the rows."""
    for seed in range(4):
        policy = MemoryPolicy.open(":memory:", config, name="me")
        d = stationary(1, seed=seed)[0]
        ctx = Context(d.context.symbol, d.context.bar, 60 * 86400.0, d.context.features)
        emb = policy.bank.embedder.embed(ctx.features)
        _store_around(policy, emb, 60, seed)
        policy._clock.at = ctx.time
        hits = policy.evidence(emb).hits
        state = policy._rng.bit_generator.state
        choice = policy.choose(ctx)
        about = sorted((h for h in hits if h[0].action == choice.strategy), key=lambda h: -h[1])
        assert choice.informed_by == tuple(p.id for p, _, _ in about[: config.update_top])
        assert len(choice.informed_by) == min(config.update_top, len(about)) > 0
        policy._rng.bit_generator.state = state  # the same draw again: the same choice
        assert policy.choose(ctx) == choice
        policy.close()


def test_a_half_life_discounts_each_pattern_by_the_time_since_its_last_use():
    day = 86400.0
    policy = MemoryPolicy.open(":memory:", MemoryConfig(half_life=10 * day, prior=0.0), name="me")
    emb = policy.bank.embedder.embed(stationary(1)[0].context.features)
    policy.bank.store.add_many([
        Pattern(id="old", title="t", content="c", domain="trading", action=STRATEGIES[0], embedding=emb,
                created_at=0.0, source=Source(agent="me", reward=0.01)),
        Pattern(id="used", title="t", content="c", domain="trading", action=STRATEGIES[0], embedding=emb,
                created_at=0.0, last_used_at=20 * day, source=Source(agent="me", reward=0.01))])
    policy._clock.at = 30 * day
    ev = policy.evidence(emb)
    sim = max(s for _, _, s in ev.hits)
    # "old": 30 days since it was made (1/8); "used": 10 days since its last use (1/2)
    assert ev.mass[0] == pytest.approx(sim ** 2 * (0.125 + 0.5))
    assert {p.id: w for p, w, _ in ev.hits} == pytest.approx({"old": sim ** 2 * 0.125, "used": sim ** 2 * 0.5})
    policy.close()
