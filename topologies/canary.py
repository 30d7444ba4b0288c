"""Canary: a new version takes a growing share of the agents, 10% -> 25% -> 50% -> 100%, moving on
only while it performs within a tolerance of the stable version; otherwise every agent rolls back.
Switching version keeps an agent's memory: only its policy changes."""

from __future__ import annotations

from dataclasses import dataclass

from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.policies import Exploration
from swarm.specs import AgentSpec

AGENTS = 10
STAGES: tuple[float, ...] = (0.10, 0.25, 0.50, 1.00)
STABLE = MemoryConfig()  # v1
CANARY = MemoryConfig(k=48, sharpness=3.0)  # v2
#: A broken v2 for the rollback drill: it almost always explores, i.e. trades at random.
BROKEN = MemoryConfig(exploration=Exploration(start=0.9, decay=1.0, floor=0.9))


@dataclass(frozen=True, slots=True)
class Gate:
    """Promote to the next stage while the canary's skill is within ``tolerance`` of the stable
    version's over the stage. Skill is ``1 - regret / random regret`` on an agent's own decisions
    (1 = the hindsight-best strategy every time, 0 = no better than picking at random), so agents
    trading markets of different difficulty can be compared."""

    tolerance: float = 0.5  # one canary agent over one stage is noisy; a broken version loses ~0.6

    def healthy(self, canary_skill: float, stable_skill: float) -> bool:
        return canary_skill >= stable_skill - self.tolerance


def agents(seed: int, n: int = AGENTS) -> list[AgentSpec]:
    return [AgentSpec(f"node-{i}", role="fleet", market_seed=seed * 100 + i, memory=STABLE) for i in range(n)]


def on_canary(n: int, share: float) -> int:
    """How many of ``n`` agents run the canary at ``share`` of the traffic (at least one)."""
    return max(1, round(share * n))


#: The fleet gossips as a mesh.
contacts = None
