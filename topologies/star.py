"""Star: a hub relays patterns between spokes; spokes never talk to each other."""

from __future__ import annotations

from collections.abc import Sequence

from swarm.learning.memory_policy import MemoryConfig
from swarm.specs import AgentSpec, rule
from swarm.topology import Topology

HUB = "hub"
SPOKES = 4


def agents(seed: int, spokes: int = SPOKES, memory: MemoryConfig = MemoryConfig()) -> list[AgentSpec]:
    """The hub (a relay that trades nothing) and spokes, each on its own market."""
    return [AgentSpec(HUB, role="hub", market_seed=seed, memory=memory, trades=False)] + [
        AgentSpec(f"spoke-{i}", role="spoke", market_seed=seed * 100 + i, memory=memory) for i in range(spokes)]


@rule
def contacts(me: str, live: Sequence[str]) -> list[str]:
    """The hub talks to everyone; a spoke only to the hub."""
    return list(live) if me == HUB else [m for m in live if m == HUB]


TOPOLOGY = Topology(
    name="star-hub-learning",
    summary="a hub that trades nothing relays patterns between spokes that never talk to each other",
    agents=agents, contacts=contacts)
