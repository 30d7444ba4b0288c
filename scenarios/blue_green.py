"""Blue-green knowledge transfer: a v2 fleet (green) starts from v1's (blue) memory, is A/B tested
against it on the same decisions, and a rollback keeps what green learned.

Behaviours: blue-to-green transfer (green's early accuracy with blue's memory beats a cold green),
A/B testing (a paired significance test on the same decisions decides promote or roll back),
rollback preservation (after the rollback blue holds every pattern green learned).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any
from collections.abc import Sequence

import numpy as np

from swarm.learning.episodes import Decision
from swarm.learning.metrics import sharpe_ratio
from swarm.learning.summary import Scoring
from swarm.memory import ImportPolicy
from swarm.agent import agent_decisions
from swarm.orchestrator import Swarm
from swarm.specs import SwarmConfig
from topologies import blue_green as topo

from .base import Check, ScenarioResult, bp
from .swarm_base import mean_episode_regret, swarm_baselines, swarm_figures

PATTERN = topo.TOPOLOGY.name


@dataclass(frozen=True, slots=True)
class BlueGreenConfig:
    seed: int = 0
    episodes: int = 30
    green_starts_after: int = 10  # episodes of blue alone before green starts
    early_episodes: int = 5  # green's first episodes, compared with a cold green
    transfer: bool = True  # False: green starts cold (the transfer check must then fail)
    scoring: Scoring = field(default_factory=Scoring)


def _run(config: BlueGreenConfig, transfer: bool) -> tuple[Swarm, dict[str, Any]]:
    cfg = SwarmConfig(seed=config.seed, episodes=config.episodes, trades_per_episode=config.scoring.trades_per_episode)
    specs = topo.agents(config.seed)
    start = config.green_starts_after * cfg.trades_per_episode
    decisions: dict[str, Sequence[Decision]] = {}
    for s in specs:
        full = agent_decisions(s, cfg)
        decisions[s.id] = full[start:] if s.role == "green" else full
    specs = [s if s.role == "blue" else replace(s, start=start * cfg.trade_interval + 0.25) for s in specs]
    handoff = topo.Handoff(start * cfg.trade_interval + 0.1, topo.PER_COLOUR, transfer)
    swarm = Swarm.of(topo.TOPOLOGY, cfg, specs, controller=handoff, decisions=decisions)
    swarm.run()
    return swarm, {"handoff": handoff.imported}



#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = BlueGreenConfig
QUICK: dict[str, Any] = {"episodes": 20}

def run(config: BlueGreenConfig = BlueGreenConfig()) -> ScenarioResult:
    swarm, info = _run(config, config.transfer)
    cold, _ = _run(config, False)
    per = config.scoring.trades_per_episode
    start = config.green_starts_after * per
    early = config.early_episodes * per
    with swarm, cold:
        learning, trading, performance, curve = swarm_figures(swarm, config.scoring)
        regret_curve = mean_episode_regret(list(swarm.agents.values()), config.scoring.trades_per_episode)
        base = swarm_baselines(swarm, config.seed, config.scoring, 0.02)
        greens = [a for a in swarm.agents.values() if a.spec.role == "green"]
        cold_greens = [a for a in cold.agents.values() if a.spec.role == "green"]
        early_regret = float(np.mean([r for a in greens for r in a.log.regrets[:early]]))
        early_cold = float(np.mean([r for a in cold_greens for r in a.log.regrets[:early]]))
        early_acc = float(np.mean([np.mean(a.log.correct[:early]) for a in greens]))
        # A/B: blue and green on the very same decisions (blue's after green started)
        diffs: list[float] = []
        blue_pnl: list[float] = []
        green_pnl: list[float] = []
        for i in range(topo.PER_COLOUR):
            b = swarm.agents[f"blue-{i}"].log.rewards[start:]
            g = swarm.agents[f"green-{i}"].log.rewards
            m = min(len(b), len(g))
            diffs += [gg - bb for gg, bb in zip(g[:m], b[:m])]
            blue_pnl += b[:m]
            green_pnl += g[:m]
        n = len(diffs)
        decision, ci = topo.promotion(diffs)
        ppy = config.scoring.periods_per_year
        blue_sharpe, green_sharpe = sharpe_ratio(blue_pnl, ppy), sharpe_ratio(green_pnl, ppy)
        # rollback: blue keeps serving and takes in everything green learned
        green_made = {pid for pid, (o, _) in swarm.first_seen.items() if o.startswith("green-")}
        for i in range(topo.PER_COLOUR):
            pack = swarm.store_dir / f"green-{i}-rollback.jsonl"
            swarm.agents[f"green-{i}"].export_pack(pack)
            swarm.agents[f"blue-{i}"].import_pack(pack, ImportPolicy(on_conflict="merge"))
        kept = min(len(green_made & swarm.agents[f"blue-{i}"].pattern_ids()) / max(1, len(green_made))
                   for i in range(topo.PER_COLOUR))
    ab = {"paired_decisions": n, "blue_sharpe": round(blue_sharpe, 4), "green_sharpe": round(green_sharpe, 4),
          "green_minus_blue_pnl": ci, "decision": decision}
    learning.update({"green_early_regret": round(early_regret, 6), "green_early_regret_cold": round(early_cold, 6),
                     "green_early_accuracy": round(early_acc, 4),
                     "handed_off": info["handoff"], "ab_test": ab, "green_patterns_kept_by_blue": round(kept, 4)})
    base["cold green (no hand-off)"] = {"early_regret": round(early_cold, 6)}
    interval = ("no interval" if ci["ci_low"] is None or ci["ci_high"] is None  # mean_ci sets both or neither
                else f"95% CI [{ci['ci_low'] * 1e4:.1f}, {ci['ci_high'] * 1e4:.1f}]")
    checks = [
        Check("blue-to-green transfer", early_regret < early_cold and sum(info["handoff"]) > 0,
              f"green's first {config.early_episodes} episodes: {early_regret * 1e4:.1f} bp per decision given up "
              f"to the hindsight-best strategy with blue's {sum(info['handoff'])} patterns vs "
              f"{early_cold * 1e4:.1f} bp starting cold", early_cold - early_regret),
        Check("A/B testing", n >= 100 and ci["n"] == len(diffs),
              f"{n} paired decisions (blue and green on the same market, bar by bar): Sharpe blue {blue_sharpe:.3f}, green {green_sharpe:.3f}; green - blue "
              f"P&L per decision {bp(ci['mean'])}, {interval} -> {decision}"),
        Check("rollback preservation", kept >= 0.999,
              f"after rolling back, each blue agent holds {kept:.1%} of the {len(green_made)} patterns green learned"),
    ]
    return ScenarioResult(PATTERN, config.seed, asdict(config), checks, learning, trading, performance, base,
                          {"episode_accuracy": curve, "episode_regret": regret_curve})
