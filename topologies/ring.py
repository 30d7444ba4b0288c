"""Ring: agents in a cycle; every ``HANDOFF_EVERY`` episodes each passes its memory to the next,
as a pack file (export, then validated import): a learning pipeline."""

from __future__ import annotations

from swarm.learning.memory_policy import MemoryConfig
from swarm.specs import AgentSpec

AGENTS = 4
HANDOFF_EVERY = 15  # episodes


def agents(seed: int, n: int = AGENTS, memory: MemoryConfig = MemoryConfig()) -> list[AgentSpec]:
    return [AgentSpec(f"ring-{i}", role="stage", market_seed=seed * 100 + i, memory=memory) for i in range(n)]


def successor(agent_ids: list[str], agent_id: str) -> str:
    """The next agent around the ring."""
    i = agent_ids.index(agent_id)
    return agent_ids[(i + 1) % len(agent_ids)]


#: Ring agents do not gossip; knowledge moves only at hand-offs.
contacts = None
