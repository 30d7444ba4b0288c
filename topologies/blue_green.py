"""Blue-green: blue (v1) and green (v2) fleets of two agents each. Blue hands its memory to green
when green starts; both then trade the same markets for an A/B comparison; a rollback to blue
merges what green learned into blue, so nothing green learned is lost."""

from __future__ import annotations

import math
from typing import Sequence

from swarm.learning.memory_policy import MemoryConfig
from swarm.orchestrator import AgentSpec

PER_COLOUR = 2
BLUE_MEMORY = MemoryConfig()  # v1
GREEN_MEMORY = MemoryConfig(k=48, sharpness=3.0)  # v2: wider retrieval, sharper similarity


def agents(seed: int, per_colour: int = PER_COLOUR) -> list[AgentSpec]:
    blue = [AgentSpec(f"blue-{i}", role="blue", market_seed=seed * 100 + i, memory=BLUE_MEMORY, version="v1")
            for i in range(per_colour)]
    green = [AgentSpec(f"green-{i}", role="green", market_seed=seed * 100 + i, memory=GREEN_MEMORY, version="v2")
             for i in range(per_colour)]
    return blue + green


def contacts(me: str, live: Sequence[str]) -> list[str]:
    """Each colour gossips within itself; knowledge crosses only by hand-off or rollback."""
    colour = me.split("-")[0]
    return [m for m in live if m.split("-")[0] == colour]


def mcnemar(a_only: int, b_only: int) -> float:
    """Two-sided p-value of McNemar's test (continuity-corrected) on paired right/wrong outcomes:
    ``a_only`` decisions only A got right, ``b_only`` only B. Chi-square with 1 degree of freedom,
    whose tail is ``erfc(sqrt(x / 2))``; written out because it is two lines, not a dependency."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    stat = (abs(a_only - b_only) - 1) ** 2 / n
    return float(math.erfc(math.sqrt(max(stat, 0.0) / 2)))
