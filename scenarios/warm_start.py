"""Warm start: memory preloaded from a pack of an earlier run learns faster than cold start (early regret and Sharpe)."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy
from swarm.learning.metrics import sharpe_ratio
from swarm.learning.summary import Scoring, summarise

from .base import (
    Check,
    ScenarioResult,
    baselines,
    better,
    bp,
    early_regret,
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
    use_pack: bool = True  # False: start empty (the check must then fail)
    scoring: Scoring = field(default_factory=Scoring)
    memory: MemoryConfig = field(default_factory=MemoryConfig)


def run(config: WarmStartConfig = WarmStartConfig()) -> ScenarioResult:
    decisions = market_decisions(config.seed, config.n_bars)
    mem = replace(config.memory, lr=config.lr, seed=config.seed)
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(config.pack) if config.pack else Path(tmp) / "pack.jsonl"
        if config.pack is None:
            generate_pack(pack, config.seed + PACK_SEED_OFFSET, config.pack_bars, config.memory)
        runs = {}
        for label, preload in (("warm", config.use_pack), ("cold", False)):
            policy = MemoryPolicy.open(":memory:", mem, name=label)
            try:
                imported = policy.bank.import_(pack).imported if preload else 0
                log = run_policy(policy, decisions)
                runs[label] = (summarise(log, config.scoring), memory_figures(policy), imported, log)
            finally:
                policy.close()
    (warm, figures, imported, warm_log), (cold, _, _, cold_log) = runs["warm"], runs["cold"]
    learning, trading, performance = split_summary(warm)
    learning.update(figures)
    learning["patterns_preloaded"] = imported
    learning["cold_start_convergence_episode"] = cold["convergence_episode"]
    w = config.early_episodes
    early_w, early_c = early_regret(warm, w), early_regret(cold, w)
    learning["early_regret"] = {"warm": early_w, "cold": early_c, "episodes": w}
    n_early = config.early_episodes * config.scoring.trades_per_episode
    sharpe_w, sharpe_c = (sharpe_ratio(log.rewards[:n_early], config.scoring.periods_per_year)
                          for log in (warm_log, cold_log))
    learning["early_sharpe"] = {"warm": sharpe_w, "cold": sharpe_c, "episodes": config.early_episodes}
    gain, sharper = better(early_c, early_w), better(sharpe_w, sharpe_c)
    checks = [
        Check("memory preloaded from a pack", imported > 0, f"{imported} patterns imported"),
        Check("learns faster than cold start", gain is not None and gain > 0,
              f"regret per decision over the first {w} episodes {bp(early_w)} warm vs {bp(early_c)} cold "
              f"(convergence episode {warm['convergence_episode']} vs {cold['convergence_episode']})", gain),
        Check("better early risk-adjusted return than cold start", sharper is not None and sharper > 0,
              f"Sharpe over the first {config.early_episodes} episodes {figure(sharpe_w)} warm vs "
              f"{figure(sharpe_c)} cold (whole run: {figure(warm['sharpe_ratio'])} vs {figure(cold['sharpe_ratio'])})",
              sharper),
    ]
    base = baselines(decisions, config.seed, config.scoring, config.lr)
    base["cold-start memory"] = without_timings(cold)
    return ScenarioResult(PATTERN, config.seed, asdict(config), checks, learning, trading, performance, base,
                          {"episode_accuracy": warm["episode_accuracy"],
                           "cold_episode_accuracy": cold["episode_accuracy"],
                           "episode_regret": warm["episode_regret"], "cold_episode_regret": cold["episode_regret"]})
