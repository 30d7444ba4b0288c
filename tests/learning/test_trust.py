"""The poisoning defence: trust per author learned from outcomes, capped claims; and the attacker."""

from __future__ import annotations

import numpy as np
import pytest

from swarm.learning.episodes import Outcome
from swarm.learning.memory_policy import AuthorTrust, MemoryConfig, MemoryPolicy

from .test_policies import stationary


def test_trust_follows_whether_an_authors_claims_point_the_right_way():
    rng = np.random.default_rng(0)
    trust = AuthorTrust("me", prior=2.0)
    for _ in range(300):  # noisy market: every claim misses by a lot
        truth = rng.normal(0, 2)
        realised = truth + rng.normal(0, 5)
        claims = [("me", truth + rng.normal(0, 5), 1.0), ("honest", truth + rng.normal(0, 5), 1.0),
                  ("liar", -5 * truth, 1.0), ("loud", 4 * truth, 1.0)]
        trust.observe(claims, realised)
    assert trust.of("honest") > 0.7
    assert trust.of("liar") == 0.0
    assert trust.of("loud") == 1.0  # four times too strong but the right way: trusted (claim_cap bounds its size)
    assert trust.of("stranger") == 1.0  # judged only on its record


def test_a_poisoner_stores_its_trades_flipped_and_amplified_many_times():
    d = stationary(1)[0]
    evil = MemoryPolicy.open(":memory:", MemoryConfig(poison=5.0, poison_copies=3), name="evil")
    choice = evil.choose(d.context)
    reward = float(d.pnl[list(np.argsort(-d.pnl)).index(0)])
    evil.update(Outcome(d.context, choice.strategy, reward))
    stored = list(evil.bank.patterns())
    assert len(stored) == 3 and all(p.source.reward == pytest.approx(-5.0 * reward) for p in stored)
    evil.close()


def test_claims_are_capped_and_weighed_by_trust():
    config = MemoryConfig(trust=True, claim_cap=3.0)
    policy = MemoryPolicy.open(":memory:", config, name="me")
    d = stationary(1)[0]
    emb = policy.bank.embedder.embed(d.context.features)
    from swarm.memory import Pattern, Source
    for author, reward in (("me", 0.01), ("liar", 10.0)):  # a claim of 1,000 units
        policy.bank.store.add(Pattern(id=f"{author}-p", title="t", content="c", domain="trading", action="momentum",
                                      embedding=emb, source=Source(agent=author, reward=reward)))
    capped = policy.evidence(emb).mean[0]
    assert capped <= (1.0 + 3.0) / (2 + config.prior) + 1e-9  # the liar's 1,000 counts as 3
    assert policy.trust is not None
    policy.trust.observe([("me", 1.0, 1.0), ("liar", 3.0, 1.0)] * 5 + [("liar", -3.0, 1.0)] * 20, 1.0)
    assert policy.trust.of("liar") == 0.0
    assert policy.evidence(emb).mean[0] == pytest.approx(1.0 / (1 + config.prior))  # only its own claim is left
    policy.close()


def test_claims_of_decisions_never_traded_do_not_pile_up():
    from swarm.learning.memory_policy import OPEN_CLAIMS

    policy = MemoryPolicy.open(":memory:", MemoryConfig(trust=True), name="me")
    for d in stationary(OPEN_CLAIMS + 50, seed=4):  # evaluated only: chosen, never learned from
        policy.choose(d.context)
    assert len(policy._claims) <= OPEN_CLAIMS
    policy.close()
