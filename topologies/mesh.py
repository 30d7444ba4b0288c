"""Mesh: every peer gossips directly with every other; swarm decisions need 0.67 agreement."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from swarm.learning.memory_policy import MemoryConfig
from swarm.specs import AgentSpec

AGENTS = 5
CONSENSUS = 0.67


def agents(seed: int, n: int = AGENTS, memory: MemoryConfig = MemoryConfig()) -> list[AgentSpec]:
    """``n`` equal peers, each trading its own market (same regimes, different paths)."""
    return [AgentSpec(f"peer-{i}", role="peer", market_seed=seed * 100 + i, memory=memory) for i in range(n)]


#: Whom a peer may contact: everyone (no restriction).
contacts = None


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
