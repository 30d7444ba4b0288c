"""The memory policy's decision: what it weighs from the index's columns, and what it reads rows for."""

from __future__ import annotations

import math

import numpy as np
import pytest

from swarm.learning.episodes import Context
from swarm.learning.memory_policy import NOISE_BATCH, MemoryConfig, MemoryPolicy
from swarm.learning.policies import N_ACTIONS, REWARD_SCALE, Exploration
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


def _reference(policy: MemoryPolicy, emb: np.ndarray) -> tuple[list[float], list[float], list[float], list]:
    """The module docstring's rule computed from the retrieved rows themselves (``bank.nearest``),
    not from the index's columns: per strategy the weighted mean reward, its spread and the mass,
    and the hits as ``(pattern, weight, similarity, claim)`` in retrieval order."""
    c = policy.config
    total, mass, square = [0.0] * len(STRATEGIES), [0.0] * len(STRATEGIES), [0.0] * len(STRATEGIES)
    hits = []
    for p, sim in policy.bank.nearest(emb, c.k, domain="trading"):
        if p.action not in STRATEGIES or sim <= 0 or p.source.reward is None:
            continue
        w = sim ** c.sharpness
        if c.half_life is not None:
            last = p.last_used_at if p.last_used_at is not None else p.created_at
            w *= 0.5 ** (max(0.0, policy._clock.at - last) / c.half_life)
        m = p.source.reward / REWARD_SCALE
        if policy.trust is not None:
            m = min(c.claim_cap, max(-c.claim_cap, m))
            w *= policy.trust.of(p.author or p.source.agent)
        i = STRATEGIES.index(p.action)
        total[i] += w * m
        mass[i] += w
        hits.append((p, w, sim, m))
    mean = [t / (n + c.prior) for t, n in zip(total, mass)]
    for p, w, _, m in hits:
        i = STRATEGIES.index(p.action)
        square[i] += w * (m - mean[i]) ** 2
    spread = [math.sqrt((q + c.prior * c.prior_sd ** 2) / (n + c.prior)) for q, n in zip(square, mass)]
    return mean, spread, mass, hits


@pytest.mark.parametrize("config", [MemoryConfig(), MemoryConfig(half_life=10 * 86400.0),
                                    MemoryConfig(trust=True), MemoryConfig(update_top=5)])
def test_a_choice_weighs_the_retrieved_rows_and_names_the_heaviest_about_the_strategy_it_plays(config):
    """What a decision weighs (from the index's columns) is what the rows say, and its informers
    are the ``update_top`` heaviest retrieved patterns about the strategy played, ties in
    retrieval order; under ``trust`` every informer's capped claim waits for the outcome."""
    for seed in range(4):
        policy = MemoryPolicy.open(":memory:", config, name="me")
        d = stationary(1, seed=seed)[0]
        ctx = Context(d.context.symbol, d.context.bar, 60 * 86400.0, d.context.features)
        emb = policy.bank.embedder.embed(ctx.features)
        _store_around(policy, emb, 60, seed)
        if policy.trust is not None:  # authors trusted unequally
            policy.trust.observe([("author1", 1.0, 1.0), ("author2", -1.0, 1.0)] * 5, 1.0)
        policy._clock.at = ctx.time
        mean, spread, mass, hits = _reference(policy, emb)
        ev = policy.evidence(emb)
        assert (ev.mean.tolist(), ev.spread.tolist(), ev.mass.tolist()) == (mean, spread, mass)
        assert [(p.id, w, s) for p, w, s in ev.hits] == [(p.id, w, s) for p, w, s, _ in hits]
        state = policy._rng.bit_generator.state, list(policy._noise_ahead or ()), policy._noise_at
        choice = policy.choose(ctx)
        about = sorted((h for h in hits if h[0].action == choice.strategy), key=lambda h: -h[1])
        assert choice.informed_by == tuple(p.id for p, _, _, _ in about[: config.update_top])
        assert len(choice.informed_by) == min(config.update_top, len(about)) > 0
        if policy.trust is not None:
            assert policy._claims[(ctx.symbol, ctx.bar)] == [
                (p.author or p.source.agent, m, s ** config.sharpness) for p, _, s, m in about]
        policy._rng.bit_generator.state, ahead, policy._noise_at = state  # the same draw again: the same choice
        if policy._noise_ahead is not None:
            policy._noise_ahead[:] = ahead
        assert policy.choose(ctx) == choice
        policy.close()


def test_thompson_noise_drawn_ahead_is_what_one_draw_per_decision_gives():
    """Batched normals are the very numbers one ``standard_normal(N_ACTIONS)`` per decision
    draws, across batch boundaries; with epsilon exploration (which draws from the same
    generator between decisions) each decision draws its own."""
    policy = MemoryPolicy.open(":memory:", MemoryConfig(seed=7), name="me")
    reference = np.random.default_rng(7)
    for _ in range(2 * NOISE_BATCH + 3):
        assert policy._noise() == reference.standard_normal(N_ACTIONS).tolist()
    exploring = MemoryPolicy.open(":memory:", MemoryConfig(seed=7, exploration=Exploration()), name="me")
    reference = np.random.default_rng(7)
    for _ in range(20):
        assert exploring._noise() == reference.standard_normal(N_ACTIONS).tolist()
        assert exploring._rng.random() == reference.random()  # what an epsilon draw takes in between
    policy.close()
    exploring.close()


def test_equally_heavy_informers_are_named_in_retrieval_order():
    policy = MemoryPolicy.open(":memory:", MemoryConfig(update_top=3, explore_scale=0.0), name="me")
    emb = policy.bank.embedder.embed(stationary(1)[0].context.features)
    policy.bank.store.add_many([  # five copies of one context: equally similar, equally heavy
        Pattern(id=f"p{i}", title="t", content="c", domain="trading", action=STRATEGIES[0], embedding=emb,
                source=Source(agent="me", reward=0.01)) for i in (4, 2, 0, 3, 1)])
    ctx = stationary(1)[0].context
    choice = policy.choose(ctx)
    assert choice.strategy == STRATEGIES[0]
    assert choice.informed_by == ("p4", "p2", "p0")  # the first written (smaller key) first
    policy.close()


def test_a_pattern_deleted_after_the_search_gives_way_to_the_next_informer(tmp_path):
    """Another connection may delete a retrieved pattern before the choice names its informers:
    the next heaviest then informs, so the choice still names ``update_top`` of them."""
    from swarm.memory import PatternStore

    policy = MemoryPolicy.open(tmp_path / "bank.db", MemoryConfig(update_top=2, explore_scale=0.0), name="me")
    ctx = stationary(1)[0].context
    emb = policy.bank.embedder.embed(ctx.features)
    policy.bank.store.add_many([
        Pattern(id=f"p{i}", title="t", content="c", domain="trading", action=STRATEGIES[0],
                embedding=emb + 0.01 * i, source=Source(agent="me", reward=0.01)) for i in range(3)])
    policy.bank.store.clear_row_cache()
    other = PatternStore(tmp_path / "bank.db")
    store = policy.bank.store
    search = store.neighbours

    def search_then_delete(*args, **kwargs):
        found = search(*args, **kwargs)
        other.delete_many([store.at_keys(found.keys[:1])[found.keys[0]].id])  # the nearest goes
        store.clear_row_cache()
        return found

    store.neighbours = search_then_delete  # type: ignore[method-assign]
    choice = policy.choose(ctx)
    assert len(choice.informed_by) == 2 and "p0" not in choice.informed_by
    other.close()
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


@pytest.mark.parametrize("config", [MemoryConfig(), MemoryConfig(trust=True, half_life=10 * 86400.0),
                                    MemoryConfig(allowed=(STRATEGIES[1], STRATEGIES[2]))])
def test_a_vote_prefers_what_the_evidence_says(config):
    """What an agent votes for (``preference``) is the value its evidence gives each strategy it
    may trade: mean minus risk aversion times spread."""
    policy = MemoryPolicy.open(":memory:", config, name="me")
    d = stationary(1, seed=3)[0]
    emb = policy.bank.embedder.embed(d.context.features)
    _store_around(policy, emb, 40, 3)
    policy._clock.at = d.context.time
    ev = policy.evidence(emb)
    value = ev.mean - config.risk_aversion * ev.spread
    if config.allowed is not None:
        value = np.where([s in config.allowed for s in STRATEGIES], value, -np.inf)
    assert policy.preference(d.context).tolist() == value.tolist()
    policy.close()
