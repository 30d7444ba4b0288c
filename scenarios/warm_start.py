"""Warm start: memory preloaded from a pack of an earlier run learns faster than cold start (early regret and Sharpe).

The early figures pool the first ``early_episodes`` of several new markets per seed (``targets``),
so one seed's verdict rests on more than one short stretch of one market.
"""

from __future__ import annotations

from typing import Any

import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from swarm.learning.episodes import Decision
from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy
from swarm.learning.metrics import sharpe_ratio
from swarm.learning.session import RunLog
from swarm.learning.summary import Scoring, summarise

from .base import (
    Check,
    ScenarioResult,
    bars_for,
    baselines,
    better,
    bp,
    figure,
    market_decisions,
    memory_figures,
    run_policy,
    split_summary,
    without_timings,
)
from .packs import PACK_SEED_OFFSET, generate_pack

PATTERN = "warm-start"


@dataclass(frozen=True, slots=True)
class WarmStartConfig:
    seed: int = 0
    n_bars: int = 4000
    lr: float = 0.02
    pack: str | None = None  # a pack file; None: generate one from a run on another seed
    pack_bars: int = 4000
    early_episodes: int = 20  # the stretch where a preloaded memory should pay
    targets: int = 4  # new markets per seed whose early stretches the checks pool (the first runs n_bars)
    use_pack: bool = True  # False: start empty (the check must then fail)
    scoring: Scoring = field(default_factory=Scoring)
    memory: MemoryConfig = field(default_factory=MemoryConfig)


def _early(policy: MemoryPolicy, pack: Path | None, decisions: list[Decision]) -> tuple[RunLog, int]:
    """Run a fresh policy (preloaded from ``pack`` unless None) over ``decisions``."""
    imported = policy.bank.import_(pack).imported if pack is not None else 0
    return run_policy(policy, decisions), imported



#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = WarmStartConfig
QUICK: dict[str, Any] = {}

def run(config: WarmStartConfig = WarmStartConfig()) -> ScenarioResult:
    if config.targets < 1:
        raise ValueError("targets must be >= 1")
    n_early = config.early_episodes * config.scoring.trades_per_episode
    # Target 0 is the scenario's market, run in full; the others contribute their early stretch only.
    markets = [market_decisions(config.seed, config.n_bars)]
    markets += [market_decisions(config.seed + 100 * i, bars_for(n_early))[:n_early] for i in range(1, config.targets)]
    decisions = markets[0]
    mem = replace(config.memory, lr=config.lr)
    logs: dict[str, list[RunLog]] = {"warm": [], "cold": []}
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(config.pack) if config.pack else Path(tmp) / "pack.jsonl"
        if config.pack is None:
            generate_pack(pack, config.seed + PACK_SEED_OFFSET, config.pack_bars, config.memory)
        for i, market in enumerate(markets):
            for label, preload in (("warm", config.use_pack), ("cold", False)):
                # Warm and cold draw the same exploration on one market (paired); markets differ.
                policy = MemoryPolicy.open(":memory:", replace(mem, seed=config.seed + 100 * i), name=label)
                try:
                    log, n = _early(policy, pack if preload else None, market)
                    logs[label].append(log)
                    if market is decisions and label == "warm":
                        imported, figures = n, memory_figures(policy)
                finally:
                    policy.close()
    warm, cold = (summarise(logs[k][0], config.scoring) for k in ("warm", "cold"))
    learning, trading, performance = split_summary(warm)
    learning.update(figures)
    learning["patterns_preloaded"] = imported
    learning["cold_start_convergence_episode"] = cold["convergence_episode"]
    w = config.early_episodes
    # Both early figures pool the first n_early decisions of every market (all runs have that many).
    regrets = {k: [r for log_ in v for r in log_.regrets[:n_early]] for k, v in logs.items()}
    early_w, early_c = (float(np.mean(regrets[k])) for k in ("warm", "cold"))
    learning["early_regret"] = {"warm": early_w, "cold": early_c, "episodes": w, "markets": config.targets}
    rewards = {k: [r for log_ in v for r in log_.rewards[:n_early]] for k, v in logs.items()}
    sharpe_w, sharpe_c = (sharpe_ratio(rewards[k], config.scoring.periods_per_year) for k in ("warm", "cold"))
    learning["early_sharpe"] = {"warm": sharpe_w, "cold": sharpe_c, "episodes": w, "markets": config.targets}
    gain, sharper = better(early_c, early_w), better(sharpe_w, sharpe_c)
    checks = [
        Check("memory preloaded from a pack", imported > 0, f"{imported} patterns imported"),
        Check("learns faster than cold start", gain is not None and gain > 0,
              f"regret per decision over the first {w} episodes of {config.targets} new markets {bp(early_w)} warm "
              f"vs {bp(early_c)} cold (convergence episode on the first: {warm['convergence_episode']} vs "
              f"{cold['convergence_episode']})", gain),
        Check("better early risk-adjusted return than cold start", sharper is not None and sharper > 0,
              f"Sharpe over the first {w} episodes of {config.targets} new markets {figure(sharpe_w)} warm vs "
              f"{figure(sharpe_c)} cold (whole first market: {figure(warm['sharpe_ratio'])} vs "
              f"{figure(cold['sharpe_ratio'])})", sharper),
    ]
    base = baselines(decisions, config.seed, config.scoring, config.lr)
    base["cold-start memory"] = without_timings(cold)
    return ScenarioResult(PATTERN, config.seed, asdict(config), checks, learning, trading, performance, base,
                          {"episode_accuracy": warm["episode_accuracy"],
                           "cold_episode_accuracy": cold["episode_accuracy"],
                           "episode_regret": warm["episode_regret"], "cold_episode_regret": cold["episode_regret"]})
