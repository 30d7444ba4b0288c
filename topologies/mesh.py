"""Mesh: every peer gossips directly with every other (beyond 5 peers: with its 4 neighbours on a
hash ring, see ``DEGREE``); swarm decisions need 0.67 agreement."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm.learning.episodes import Decision
from swarm.learning.memory_policy import MemoryConfig
from swarm.orchestrator import Swarm
from swarm.specs import AgentSpec
from swarm.topology import Topology

AGENTS = 5
CONSENSUS = 0.67
#: A peer keeps the writes of this many others: all of them in the 5-peer mesh, and its 4 nearest
#: on a hash ring in a bigger one, so a write costs 4 copies (and gossip a bounded share of a
#: decision) whatever the mesh's size. Full replication would copy every write to every peer.
DEGREE = 4


def agents(seed: int, n: int = AGENTS, memory: MemoryConfig = MemoryConfig()) -> list[AgentSpec]:
    """``n`` equal peers, each trading its own market (same regimes, different paths)."""
    return [AgentSpec(f"peer-{i}", role="peer", market_seed=seed * 100 + i, memory=memory) for i in range(n)]




def consensus(votes: Sequence[int | None], threshold: float = CONSENSUS) -> int | None:
    """The strategy a share >= ``threshold`` of all voters agree on, or None (no decision).
    Abstentions count as voters who did not agree."""
    if not votes:
        return None
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return None
    choice, n = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
    return choice if n / len(votes) >= threshold else None


@dataclass(eq=False)
class Voting:
    """After each episode the live peers vote on ``per_episode`` held-out contexts; the swarm
    decides where a share >= ``threshold`` agrees. Keeps every ballot for the checks."""

    held_out: Sequence[Decision]
    episodes: int
    per_episode: int = 10
    threshold: float = CONSENSUS
    ballots: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, swarm: Swarm) -> None:
        for e in range(self.episodes):
            await swarm.after_episode(e + 1)
            for d in self.held_out[e * self.per_episode:(e + 1) * self.per_episode]:
                votes = [a.vote(d.context) for a in swarm.live()]
                decided = consensus(votes, self.threshold)
                right = [v in d.best for v in votes if v is not None]
                self.ballots.append({"episode": e + 1, "decided": decided,
                                     "correct": None if decided is None else bool(decided in d.best),
                                     "individual_accuracy": float(np.mean(right)) if right else None})


#: Whom a peer may contact: everyone (no restriction).
TOPOLOGY = Topology(
    name="mesh-distributed-learning",
    summary="equal peers gossiping with every other; the swarm decides by a 0.67 vote",
    agents=agents, controller=Voting, degree=DEGREE)
