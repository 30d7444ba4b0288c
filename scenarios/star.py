"""Star hub learning: a hub relays patterns between spokes.

Behaviours: hub relay (every spoke ends with every other spoke's patterns, and no frame ever
went spoke to spoke), hub failure impact (while the hub is down, nothing a spoke learns reaches
another spoke; after it restarts from its SQLite file, replication completes and nothing is lost).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.summary import Scoring
from swarm.orchestrator import Swarm
from swarm.specs import SwarmConfig
from topologies import star as topo

from .base import Check, ScenarioResult
from .swarm_base import (
    mean_accuracy,
    mean_episode_regret,
    swarm_baselines,
    swarm_figures,
)

PATTERN = topo.TOPOLOGY.name


@dataclass(frozen=True, slots=True)
class StarConfig:
    seed: int = 0
    spokes: int = topo.SPOKES
    episodes: int = 30
    hub_down_after: int = 10  # episodes
    hub_down_for: int = 5
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    scoring: Scoring = field(default_factory=Scoring)


def _config(config: StarConfig) -> SwarmConfig:
    return SwarmConfig(seed=config.seed, episodes=config.episodes, trades_per_episode=config.scoring.trades_per_episode)



#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = StarConfig
QUICK: dict[str, Any] = {"episodes": 20}

def run(config: StarConfig = StarConfig()) -> ScenarioResult:
    cfg = _config(config)
    specs = topo.agents(config.seed, config.spokes, config.memory)
    with Swarm.of(topo.TOPOLOGY, cfg, specs) as swarm:
        swarm.run()
        learning, trading, performance, curve = swarm_figures(swarm, config.scoring)
        regret_curve = mean_episode_regret(list(swarm.agents.values()), config.scoring.trades_per_episode)
        base = swarm_baselines(swarm, config.seed, config.scoring, config.memory.lr)
        spokes = [a for a in swarm.agents.values() if a.spec.role == "spoke"]
        spoke_ids = {a.id for a in spokes}
        sideways = sum(n for (src, dst), n in swarm.frames_by_link().items() if src in spoke_ids and dst in spoke_ids)
        spoke_consistency = swarm.replication_consistency(spokes)
        relayed = sum(1 for (pid, at) in swarm.arrivals if at in spoke_ids and swarm.first_seen[pid][0] in spoke_ids)
    outage = _hub_failure(config)
    learning["spoke_replication_consistency"] = round(spoke_consistency, 4)
    performance["fault_tolerance"] = outage
    checks = [
        Check("hub relay", spoke_consistency >= 0.999 and sideways == 0 and relayed > 0,
              f"{relayed} spoke-to-spoke pattern deliveries, all through the hub ({sideways} frames went spoke to "
              f"spoke); spoke replication consistency {spoke_consistency:.4f}"),
        Check("hub failure impact", outage["crossed_while_hub_down"] == 0 and outage["lost"] == 0
              and outage["spoke_replication_after"] >= 0.999 and outage["created_while_hub_down"] > 0,
              f"hub down for episodes {config.hub_down_after + 1}-{config.hub_down_after + config.hub_down_for}: "
              f"{outage['created_while_hub_down']} spoke patterns created, {outage['crossed_while_hub_down']} reached "
              f"another spoke meanwhile, {outage['delivered_after_restart']} delivered after the restart; lost "
              f"{outage['lost']}; spoke replication afterwards {outage['spoke_replication_after']:.4f}"),
    ]
    return ScenarioResult(PATTERN, config.seed, asdict(config), checks, learning, trading, performance, base,
                          {"episode_accuracy": curve, "episode_regret": regret_curve})


def _hub_failure(config: StarConfig) -> dict[str, Any]:
    cfg = _config(config)
    window: dict[str, float] = {}

    async def outage(swarm: Swarm) -> None:
        k = swarm.kernel
        await swarm.after_episode(config.hub_down_after)
        window["down"] = k.now()
        swarm.crash(topo.HUB)
        await k.sleep(config.hub_down_for * cfg.episode_seconds)
        window["up"] = k.now()
        swarm.restart(topo.HUB)

    specs = topo.agents(config.seed, config.spokes, config.memory)
    with Swarm.of(topo.TOPOLOGY, cfg, specs, controller=outage) as swarm:
        swarm.run()
        spokes = [a for a in swarm.agents.values() if a.spec.role == "spoke"]
        ids = {a.id for a in spokes}
        created = {pid for pid, (o, t) in swarm.first_seen.items() if o in ids and window["down"] <= t < window["up"]}
        crossed = delivered_after = 0
        for (pid, at), lat in swarm.arrivals.items():
            if pid in created and at in ids:
                when = swarm.first_seen[pid][1] + lat
                if when < window["up"]:
                    crossed += 1
                else:
                    delivered_after += 1
        held = set().union(*(a.pattern_ids() for a in spokes))
        lost = sum(1 for pid, (o, _) in swarm.first_seen.items() if o in ids and pid not in held)
        return {"hub_down_at": window["down"], "hub_up_at": window["up"], "created_while_hub_down": len(created),
                "crossed_while_hub_down": crossed, "delivered_after_restart": delivered_after, "lost": lost,
                "spoke_replication_after": round(swarm.replication_consistency(spokes), 4),
                "spoke_accuracy": round(mean_accuracy(spokes), 4)}
