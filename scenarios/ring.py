"""Ring sequential learning: four agents, each passing its memory to the next every 15 episodes.

Behaviours: pipeline learning (after hand-offs the ring learns more than the same agents without
them), incremental refinement (patterns that travelled are refined by the agents that received
them: their outcome records grow there), pattern discovery (every agent ends with patterns first
found by every other agent, and every lap adds patterns no agent had before).
"""

from __future__ import annotations

from typing import Any

from dataclasses import asdict, dataclass, field

import numpy as np

from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.summary import Scoring
from swarm.orchestrator import Swarm
from swarm.specs import SwarmConfig
from topologies import ring as topo

from .base import Check, ScenarioResult
from .swarm_base import (
    mean_episode_accuracy,
    mean_episode_regret,
    swarm_baselines,
    swarm_figures,
)

PATTERN = topo.TOPOLOGY.name


@dataclass(frozen=True, slots=True)
class RingConfig:
    seed: int = 0
    agents: int = topo.AGENTS
    handoff_every: int = topo.HANDOFF_EVERY
    laps: int = 3  # hand-off rounds; the run lasts (laps + 1) * handoff_every episodes
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    scoring: Scoring = field(default_factory=Scoring)

    @property
    def episodes(self) -> int:
        return (self.laps + 1) * self.handoff_every


def _run(config: RingConfig, handoffs: bool) -> tuple[Swarm, topo.Handoffs]:
    cfg = SwarmConfig(seed=config.seed, episodes=config.episodes, trades_per_episode=config.scoring.trades_per_episode)
    specs = topo.agents(config.seed, config.agents, config.memory)
    pipeline = topo.Handoffs(config.handoff_every, config.laps, handoffs)
    swarm = Swarm.of(topo.TOPOLOGY, cfg, specs, controller=pipeline)
    swarm.run()
    return swarm, pipeline



#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = RingConfig
QUICK: dict[str, Any] = {"handoff_every": 10}

def run(config: RingConfig = RingConfig()) -> ScenarioResult:
    ring, pipeline = _run(config, handoffs=True)
    alone, _ = _run(config, handoffs=False)
    with ring, alone:
        learning, trading, performance, curve = swarm_figures(ring, config.scoring)
        regret_curve = mean_episode_regret(list(ring.agents.values()), config.scoring.trades_per_episode)
        base = swarm_baselines(ring, config.seed, config.scoring, config.memory.lr)
        alone_curve = mean_episode_accuracy(list(alone.agents.values()), config.scoring.trades_per_episode)
        after = slice(config.handoff_every, None)
        acc_ring, acc_alone = float(np.mean(curve[after])), float(np.mean(alone_curve[after]))
        start = config.handoff_every * config.scoring.trades_per_episode
        regret_ring, regret_alone = (float(np.mean([r for a in s.agents.values() for r in a.log.regrets[start:]]))
                                     for s in (ring, alone))
        refined, travelled = 0, 0
        for agent_id, got in pipeline.imported.items():
            now = ring.agents[agent_id].store.get_many(list(got))
            for pid, (uses, _version) in got.items():
                travelled += 1
                refined += pid in now and now[pid].uses > uses
        origins_held = {a.id: len({ring.first_seen[p][0] for p in a.pattern_ids() if p in ring.first_seen})
                        for a in ring.agents.values()}
        union = pipeline.union + [len(set().union(*(a.pattern_ids() for a in ring.agents.values())))]
    base["ring without hand-offs"] = {"accuracy_after_first_handoff": round(acc_alone, 4),
                                      "regret_after_first_handoff": round(regret_alone, 6), "episode_accuracy": alone_curve}
    learning.update({"accuracy_after_first_handoff": round(acc_ring, 4),
                     "regret_after_first_handoff": round(regret_ring, 6), "handoffs": len(pipeline.log),
                     "patterns_imported": sum(h["imported"] for h in pipeline.log),
                     "travelled_patterns": travelled, "refined_downstream": refined,
                     "origins_held_per_agent": origins_held, "distinct_patterns_per_lap": union})
    n = config.agents
    growth = [b - a for a, b in zip(union, union[1:])]
    checks = [
        Check("pipeline learning", regret_ring < regret_alone and bool(pipeline.log),
              f"after the first hand-off the agents give up {regret_ring * 1e4:.1f} bp per decision to the "
              f"hindsight-best strategy with hand-offs vs {regret_alone * 1e4:.1f} bp without, on the same decisions "
              f"(accuracy {acc_ring:.3f} vs {acc_alone:.3f}); {len(pipeline.log)} hand-offs",
              regret_alone - regret_ring),
        Check("incremental refinement", travelled > 0 and refined / travelled >= 0.2,
              f"{refined} of {travelled} patterns received from the previous agent were refined (used and scored) "
              f"by the agent that received them"),
        Check("pattern discovery", min(origins_held.values()) == n and all(g > 0 for g in growth),
              f"every agent holds patterns first found by {min(origins_held.values())} of {n} agents; distinct "
              f"patterns across the ring per lap {union}"),
    ]
    return ScenarioResult(PATTERN, config.seed, {**asdict(config), "episodes": config.episodes}, checks, learning,
                          trading, performance, base, {"episode_accuracy": curve, "episode_regret": regret_curve, "no_handoff_episode_accuracy": alone_curve})
