"""Canary incremental learning: a new policy version rolls out over a fleet of ten agents in
stages (10%, 25%, 50%, 100%), gated on measured accuracy, with automatic rollback.

Behaviours: staged rollout (a healthy v2 passes every gate and reaches 100%), automatic rollback
(a broken v2 fails the first gate and every agent returns to v1, keeping its memory).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.summary import Scoring
from swarm.orchestrator import Swarm
from swarm.specs import SwarmConfig
from topologies import canary as topo

from .base import Check, ScenarioResult, figure
from .swarm_base import mean_episode_regret, swarm_baselines, swarm_figures

PATTERN = topo.TOPOLOGY.name


@dataclass(frozen=True, slots=True)
class CanaryConfig:
    seed: int = 0
    agents: int = topo.AGENTS
    warmup_episodes: int = 5  # everyone on v1 first
    stage_episodes: int = 5
    tolerance: float = topo.Gate().tolerance  # skill the canary may lose against stable
    scoring: Scoring = field(default_factory=Scoring)

    @property
    def episodes(self) -> int:
        return self.warmup_episodes + self.stage_episodes * (len(topo.STAGES) + 1)


def _rollout(config: CanaryConfig, v2: MemoryConfig, episodes: int) -> tuple[Swarm, dict[str, Any]]:
    cfg = SwarmConfig(seed=config.seed, episodes=episodes, trades_per_episode=config.scoring.trades_per_episode)
    rollout = topo.Rollout(v2, config.warmup_episodes, config.stage_episodes, topo.Gate(config.tolerance))
    swarm = Swarm.of(topo.TOPOLOGY, cfg, topo.agents(config.seed, config.agents), controller=rollout)
    swarm.run()
    return swarm, {"stages": rollout.stages, "rolled_back": rollout.rolled_back, "share": rollout.share}



#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = CanaryConfig
QUICK: dict[str, Any] = {}

def run(config: CanaryConfig = CanaryConfig()) -> ScenarioResult:
    healthy, hlog = _rollout(config, topo.CANARY, config.episodes)
    # the broken version should fail its first gate; the run goes on one more stage on v1 only
    broken, blog = _rollout(config, topo.BROKEN, config.warmup_episodes + 2 * config.stage_episodes)
    with healthy, broken:
        learning, trading, performance, curve = swarm_figures(healthy, config.scoring)
        regret_curve = mean_episode_regret(list(healthy.agents.values()), config.scoring.trades_per_episode)
        base = swarm_baselines(healthy, config.seed, config.scoring, 0.02)
        on_v2 = sum(1 for a in broken.agents.values() if a.memory_config.exploration != topo.STABLE.exploration)
        memory_kept = min(len(a.store) for a in broken.agents.values())
    learning.update({"healthy_rollout": hlog, "broken_rollout": blog})
    reached = [s["share"] for s in hlog["stages"] if s["passed_gate"]]
    first = blog["stages"][-1] if blog["stages"] else {}  # the stage that decided
    checks = [
        Check("staged rollout", not hlog["rolled_back"] and reached == list(topo.STAGES),
              f"healthy v2 went through {reached} of {list(topo.STAGES)}; gates: "
              + "; ".join(f"{s['share']:.0%}: skill canary {figure(s['canary_skill'])} vs stable "
                          f"{figure(s['stable_skill'])}" for s in hlog["stages"])
              + f" (skill = 1 - regret / a random pick's regret; tolerance {config.tolerance})"),
        Check("automatic rollback", blog["rolled_back"] and blog["share"][-1] == 0.0 and on_v2 == 0 and memory_kept > 0,
              f"broken v2 at {first.get('share', 0):.0%}: skill canary {figure(first.get('canary_skill'))} vs stable "
              f"{figure(first.get('stable_skill'))} (tolerance {config.tolerance}) -> rolled back: "
              f"{'yes' if blog['rolled_back'] else 'no'}; "
              f"agents left on v2: {on_v2}; every agent kept its memory (>= {memory_kept} patterns)"),
    ]
    return ScenarioResult(PATTERN, config.seed, {**asdict(config), "episodes": config.episodes}, checks, learning,
                          trading, performance, base,
                          {"episode_accuracy": curve, "episode_regret": regret_curve, "healthy_canary_share": hlog["share"],
                           "broken_canary_share": blog["share"]})
