"""A user's own topology (registered with :func:`swarm.topology.register` or an entry point), run
with the checks every swarm must pass.

Behaviours: memory pays (the swarm's risk-adjusted return beats the no-memory learner on exactly
the decisions it traded) and, for a topology that gossips, sharing pays (its agents give up less
to the hindsight-best strategy than the same agents learning alone, on the same decisions).
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.summary import Scoring
from swarm.orchestrator import Swarm
from swarm.specs import SwarmConfig
from swarm.topology import Topology

from .base import Check, ScenarioResult, bp, figure
from .swarm_base import mean_episode_regret, mean_regret, mean_sharpe, swarm_baselines, swarm_figures

NO_MEMORY = "no-memory"


@dataclass(frozen=True, slots=True)
class CustomConfig:
    seed: int = 0
    episodes: int = 30
    memory: MemoryConfig = field(default_factory=MemoryConfig)  # for the baselines' learning rate
    scoring: Scoring = field(default_factory=Scoring)


QUICK: dict[str, Any] = {"episodes": 20}


def _controller(topology: Topology, episodes: int) -> Any:
    """The topology's controller, given the run's length if its factory takes ``episodes``."""
    if topology.controller is None:
        return None
    params = inspect.signature(topology.controller).parameters
    return topology.controller(episodes=episodes) if "episodes" in params else topology.controller()


def run(topology: Topology, config: CustomConfig = CustomConfig()) -> ScenarioResult:
    cfg = SwarmConfig(seed=config.seed, episodes=config.episodes, trades_per_episode=config.scoring.trades_per_episode)
    specs = topology.agents(config.seed)
    if not specs:
        raise ValueError(f"topology {topology.name!r} made no agents")
    with Swarm.of(topology, cfg, specs, controller=_controller(topology, config.episodes)) as swarm, \
            Swarm(replace(cfg, sync=False), specs) as alone:
        swarm.run()
        alone.run()
        agents = list(swarm.agents.values())
        learning, trading, performance, curve = swarm_figures(swarm, config.scoring)
        regret_curve = mean_episode_regret(agents, config.scoring.trades_per_episode)
        base = swarm_baselines(swarm, config.seed, config.scoring, config.memory.lr, alone)
        sharpe = mean_sharpe(agents, config.scoring)
        regret, regret_alone = mean_regret(agents), mean_regret(list(alone.agents.values()))
    no_memory = base.get(NO_MEMORY, {}).get("sharpe_ratio")
    learning["topology"] = {"name": topology.name, "summary": topology.summary, "gossip": topology.gossip,
                            "roles": sorted({s.role for s in specs})}
    checks = [
        Check("memory pays", no_memory is not None and sharpe > no_memory,
              f"Sharpe of every agent's trades pooled in time order {figure(sharpe)} vs {figure(no_memory)} for the "
              "no-memory learner on the same decisions", None if no_memory is None else sharpe - no_memory),
    ]
    if topology.gossip:
        checks.append(Check(
            "sharing pays", regret < regret_alone,
            f"regret per decision {bp(regret)} with the topology's sharing vs {bp(regret_alone)} for the same agents "
            "learning alone, on the same decisions", regret_alone - regret))
    return ScenarioResult(topology.name, config.seed, {**asdict(config), "topology": topology.name}, checks, learning,
                          trading, performance, base, {"episode_accuracy": curve, "episode_regret": regret_curve})
