"""Auto-scale adaptive learning: the swarm grows and shrinks with what it learns.

Behaviours: scale up on patterns (20 new patterns in the swarm add an agent), scale down on
consolidation (a consolidation that finds a quarter of what the members authored redundant
retires the weakest agent),
VIX-based adaptation (each agent's learning rate follows its market's volatility index), and
performance allocation (the better half of the agents gets full trading, the rest half).
"""

from __future__ import annotations

from typing import Any

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.summary import Scoring
from swarm.orchestrator import Swarm
from swarm.specs import SwarmConfig
from topologies import auto_scale as topo

from .base import Check, ScenarioResult
from .swarm_base import mean_episode_regret, swarm_baselines, swarm_figures

PATTERN = topo.TOPOLOGY.name


@dataclass(frozen=True, slots=True)
class AutoScaleConfig:
    seed: int = 0
    episodes: int = 30
    rules: topo.ScalingRules = field(default_factory=topo.ScalingRules)
    duplicate_similarity: float = 0.9
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    scoring: Scoring = field(default_factory=Scoring)



#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = AutoScaleConfig
QUICK: dict[str, Any] = {"episodes": 20}

def run(config: AutoScaleConfig = AutoScaleConfig()) -> ScenarioResult:
    rules = config.rules
    cfg = SwarmConfig(seed=config.seed, episodes=config.episodes, trades_per_episode=config.scoring.trades_per_episode)
    scaler = topo.Scaler(config.episodes, config.seed, config.memory, rules, config.duplicate_similarity)
    log = scaler.log
    specs = topo.starting_agents(config.seed, rules, config.memory)
    with Swarm.of(topo.TOPOLOGY, cfg, specs, controller=scaler) as swarm:
        swarm.run()
        learning, trading, performance, curve = swarm_figures(swarm, config.scoring)
        regret_curve = mean_episode_regret(list(swarm.agents.values()), config.scoring.trades_per_episode)
        base = swarm_baselines(swarm, config.seed, config.scoring, config.memory.lr)
    vix, lr = (np.array([x[0] for x in log["lr"]]), np.array([x[1] for x in log["lr"]])) if log["lr"] else (np.zeros(0),) * 2
    # rank correlation: the rule is monotone but clipped, so Spearman is the honest measure
    corr = (float(np.corrcoef(pd.Series(vix).rank(), pd.Series(lr).rank())[0, 1])
            if vix.size > 2 and lr.std() > 0 else float("nan"))  # not measurable: null in the metrics
    closed = [r for r in log["alloc"] if "trades_after" in r]  # windows the run saw to their end
    full = [r for r in closed if r["quota"] == 1.0]
    half = [r for r in closed if r["quota"] < 1.0]
    skill_full = float(np.mean([r["recent_skill"] for r in full])) if full else float("nan")
    skill_half = float(np.mean([r["recent_skill"] for r in half])) if half else float("nan")
    tr_full = float(np.mean([r["trades_after"] for r in full])) if full else float("nan")
    tr_half = float(np.mean([r["trades_after"] for r in half])) if half else float("nan")
    learning.update({"agents_over_time": log["size"], "scale_ups": log["up"], "scale_downs": log["down"],
                     "peak_agents": max(log["size"]) if log["size"] else rules.start,
                     "lr_vix_correlation": round(corr, 4),
                     "lr_range": [round(float(lr.min()), 5), round(float(lr.max()), 5)] if lr.size else None})
    performance["allocation"] = {"full_quota_recent_skill": round(skill_full, 4), "half_quota_recent_skill":
                                 round(skill_half, 4), "full_quota_trades_after": round(tr_full, 2),
                                 "half_quota_trades_after": round(tr_half, 2)}
    by_patterns = [u for u in log["up"] if u["trigger"] == "patterns"]
    checks = [
        Check("scale up on patterns", bool(by_patterns) and max(log["size"]) > rules.start,
              f"{len(by_patterns)} scale-ups triggered by >= {rules.scale_up_patterns} new patterns"
              + (f" (first at episode {by_patterns[0]['episode']}, {by_patterns[0]['new_patterns']} new patterns)"
                 if by_patterns else "") + f"; peak {max(log['size']) if log['size'] else 0} agents"),
        Check("scale down on consolidation", bool(log["down"]) and all(d["shrink"] >= rules.shrink_down for d in log["down"]),
              f"{len(log['down'])} scale-downs after consolidations that shrank memory by >= "
              f"{rules.shrink_down:.0%}: " + "; ".join(f"episode {d['episode']} (shrank {d['shrink']:.0%}, retired "
                                                      f"{d['retired']})" for d in log["down"][:3])),
        Check("VIX-based adaptation", corr >= 0.9 and lr.size > 0 and lr.max() > lr.min(),
              f"rank correlation of learning rate with the volatility index {corr:.3f} over {lr.size} agent-episodes; "
              f"learning rate from {lr.min() if lr.size else 0:.4f} to {lr.max() if lr.size else 0:.4f}"),
        Check("performance allocation", bool(full) and bool(half) and skill_full > skill_half and tr_full > 0
              and abs(tr_half / tr_full - rules.low_quota) <= 0.1,
              f"agents given full trading had recent skill (1 - regret / a random pick's regret) {skill_full:.3f} vs {skill_half:.3f} for those given "
              f"{rules.low_quota}; in the {rules.allocate_every} episodes that followed they made {tr_full:.1f} "
              f"vs {tr_half:.1f} trades (ratio {tr_half / tr_full if tr_full else float('nan'):.2f})"),
    ]
    return ScenarioResult(PATTERN, config.seed, asdict(config), checks, learning, trading, performance, base,
                          {"episode_accuracy": curve, "episode_regret": regret_curve, "agents": [float(x) for x in log["size"]]})
