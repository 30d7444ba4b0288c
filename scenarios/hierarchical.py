"""Hierarchical centralized learning: a leader aggregates and consolidates its workers' patterns
and pushes the consolidated ones back down; each worker trades one asset.

Behaviours: leader aggregation (the leader holds, or has merged, every worker pattern), top-down
updates (the leader's consolidated versions reach every worker), worker specialisation (workers
decide mostly on their own asset's patterns while holding everyone's), scalability (with twice the
workers, each worker's traffic stays flat: workers only talk to the leader).
"""

from __future__ import annotations

from typing import Any

from dataclasses import asdict, dataclass, field

import numpy as np

from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.summary import Scoring
from swarm.orchestrator import Swarm
from swarm.specs import SwarmConfig
from topologies import hierarchical as topo

from .base import Check, ScenarioResult
from .swarm_base import mean_episode_regret, swarm_baselines, swarm_figures

PATTERN = topo.TOPOLOGY.name


@dataclass(frozen=True, slots=True)
class HierarchicalConfig:
    seed: int = 0
    workers: int = topo.WORKERS
    episodes: int = 30
    consolidate_every: int = topo.CONSOLIDATE_EVERY
    duplicate_similarity: float = 0.95  # the leader merges near-identical patterns
    scale_workers: int = 8  # scalability run: this many workers...
    scale_episodes: int = 10  # ...for this many episodes, beside the same with ``workers``
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    scoring: Scoring = field(default_factory=Scoring)


def _run(config: HierarchicalConfig, workers: int, episodes: int) -> tuple[Swarm, topo.LeaderLoop]:
    specs = topo.agents(config.seed, workers, config.memory)
    cfg = SwarmConfig(seed=config.seed, episodes=episodes, trades_per_episode=config.scoring.trades_per_episode)
    leader = topo.LeaderLoop(episodes, config.consolidate_every, config.duplicate_similarity)
    swarm = Swarm.of(topo.TOPOLOGY, cfg, specs, controller=leader)
    swarm.run()
    return swarm, leader


def _aggregated(swarm: Swarm, leader: topo.LeaderLoop) -> float:
    """Share of worker-created patterns the leader holds or merged into another."""
    created = [pid for pid, (origin, _) in swarm.first_seen.items() if origin != topo.LEADER]
    held = swarm.agents[topo.LEADER].pattern_ids() | leader.absorbed
    return sum(pid in held for pid in created) / max(1, len(created))



#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = HierarchicalConfig
QUICK: dict[str, Any] = {"episodes": 20}

def run(config: HierarchicalConfig = HierarchicalConfig()) -> ScenarioResult:
    swarm, leader = _run(config, config.workers, config.episodes)
    with swarm:
        workers = [a for a in swarm.agents.values() if a.spec.role == "worker"]
        learning, trading, performance, curve = swarm_figures(swarm, config.scoring)
        regret_curve = mean_episode_regret(list(swarm.agents.values()), config.scoring.trades_per_episode)
        base = swarm_baselines(swarm, config.seed, config.scoring, config.memory.lr)
        aggregated = _aggregated(swarm, leader)
        created = [pid for pid, (origin, _) in swarm.first_seen.items() if origin != topo.LEADER]
        # top-down: each worker holds the leader's consolidated version (or a newer one) of each survivor
        down = []
        for w in workers:
            copies = w.store.get_many(list(leader.leader_versions))
            down += [pid in copies and copies[pid].version >= v for pid, v in leader.leader_versions.items()]
        top_down = float(np.mean(down)) if down else float("nan")
        # specialisation: share of the patterns informing a worker's decisions that its own asset produced
        own_share = {}
        for w in workers:
            ids = [pid for ids in w.informed_by for pid in ids]
            origins = [swarm.first_seen.get(pid, ("?", 0.0))[0] for pid in ids]
            own_share[w.id] = round(sum(o == w.id for o in origins) / len(origins), 4) if origins else float("nan")
        consolidated_held = min(sum(1 for p in w.store.iter_patterns() if p.updated_by == topo.LEADER) for w in workers)
        raw_foreign = max(sum(1 for p in w.store.iter_patterns()
                              if swarm.first_seen.get(p.id, (w.id,))[0] not in (w.id, topo.LEADER)
                              and p.updated_by != topo.LEADER and p.id not in leader.leader_versions) for w in workers)
    big, bi = _run(config, config.scale_workers, config.scale_episodes)
    small, si = _run(config, config.workers, config.scale_episodes)
    with big, small:
        def per_worker(s: Swarm) -> float:
            ws = [a.id for a in s.agents.values() if a.spec.role == "worker"]
            return sum(s.frames_sent_by(w) for w in ws) / len(ws) / config.scale_episodes
        scale: dict[str, list[float]]
        scale = {"workers": [config.workers, config.scale_workers],
                 "worker_frames_per_episode": [round(per_worker(small), 2), round(per_worker(big), 2)],
                 "leader_frames_per_episode": [round(s.frames_sent_by(topo.LEADER) / config.scale_episodes, 2)
                                               for s in (small, big)],
                 "leader_aggregated_share": [round(_aggregated(s, i), 4) for s, i in ((small, si), (big, bi))]}
    learning.update({"leader_aggregated_share": round(aggregated, 4), "top_down_share": round(top_down, 4),
                     "leader_consolidations": leader.consolidations, "patterns_merged_by_leader": len(leader.absorbed),
                     "own_asset_evidence_share": own_share, "scalability": scale})
    performance["aggregation_time_ms"] = round(float(np.mean(leader.aggregation_ms)), 3) if leader.aggregation_ms else None
    n = config.workers
    checks = [
        Check("leader aggregation", aggregated >= 0.99 and leader.consolidations > 0,
              f"the leader holds or merged {aggregated:.1%} of {len(created)} worker patterns; "
              f"{leader.consolidations} consolidations merged {len(leader.absorbed)}"),
        Check("top-down updates", bool(down) and top_down >= 0.99,
              f"{len(leader.leader_versions)} consolidated patterns; {top_down:.1%} of (worker, pattern) pairs hold "
              "the leader's version or newer"),
        Check("worker specialisation", min(own_share.values()) > 1.0 / n and consolidated_held > 0,
              f"own-asset share of the evidence behind each worker's decisions {own_share} (1/{n} if every "
              f"pattern went everywhere); each worker holds >= {consolidated_held} consolidated patterns from the "
              f"leader and at most {raw_foreign} raw patterns of other workers that the leader never consolidated"),
        Check("scalability", scale["worker_frames_per_episode"][1] <= 1.5 * scale["worker_frames_per_episode"][0]
              and min(scale["leader_aggregated_share"]) >= 0.99,
              f"frames per worker per episode {scale['worker_frames_per_episode'][0]} with {config.workers} workers, "
              f"{scale['worker_frames_per_episode'][1]} with {config.scale_workers}; leader "
              f"{scale['leader_frames_per_episode']}; the leader aggregated {scale['leader_aggregated_share']}"),
    ]
    return ScenarioResult(PATTERN, config.seed, asdict(config), checks, learning, trading, performance, base,
                          {"episode_accuracy": curve, "episode_regret": regret_curve})
