"""Auto-scale: start small, add agents when knowledge or volatility surges, remove one when
consolidation shows the memory is redundant, let the learning rate follow the volatility index,
and give more trading (compute) to the agents that perform better."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarm.learning.memory_policy import MemoryConfig
from swarm.specs import AgentSpec


@dataclass(frozen=True, slots=True)
class ScalingRules:
    start: int = 2
    max_agents: int = 10
    min_agents: int = 2
    scale_up_patterns: int = 20  # new patterns in the swarm since the last scale-up
    vix_high: float = 25.0  # mean volatility index of the last episode that also triggers a scale-up
    shrink_down: float = 0.3  # consolidation removing this share of memory triggers a scale-down
    consolidate_every: int = 5  # episodes
    allocate_every: int = 5  # episodes
    vix_reference: float = 15.0  # lr = base * clip(vix / reference, lr_floor, lr_cap)
    lr_floor: float = 0.5
    lr_cap: float = 2.0
    low_quota: float = 0.5  # trades per slot for the weaker half of the agents


def agent(seed: int, index: int, memory: MemoryConfig = MemoryConfig()) -> AgentSpec:
    return AgentSpec(f"auto-{index}", role="elastic", market_seed=seed * 100 + index, memory=memory)


def learning_rate(base: float, vix: float, rules: ScalingRules) -> float:
    """The learning rate for an agent whose recent contexts had volatility index ``vix``."""
    return float(base * np.clip(vix / rules.vix_reference, rules.lr_floor, rules.lr_cap))


def should_scale_up(new_patterns: int, vix: float, live: int, rules: ScalingRules) -> str | None:
    """Why to add an agent now ("patterns" or "volatility"), or None."""
    if live >= rules.max_agents:
        return None
    if new_patterns >= rules.scale_up_patterns:
        return "patterns"
    if vix >= rules.vix_high:
        return "volatility"
    return None


def quotas(recent_skill: dict[str, float], rules: ScalingRules) -> dict[str, float]:
    """Full trading for the better half by recent skill (ties by id), ``low_quota`` for the rest."""
    ranked = sorted(recent_skill, key=lambda a: (-recent_skill[a], a))
    top = set(ranked[: (len(ranked) + 1) // 2])
    return {a: (1.0 if a in top else rules.low_quota) for a in ranked}
