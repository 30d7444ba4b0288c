"""Warm start: memory preloaded from a pack of an earlier run converges faster than cold start."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy
from swarm.learning.summary import Scoring, summarise

from .base import (
    Check,
    ScenarioResult,
    baselines,
    faster,
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
                runs[label] = (summarise(log, config.scoring), memory_figures(policy), imported)
            finally:
                policy.close()
    (warm, figures, imported), (cold, _, _) = runs["warm"], runs["cold"]
    learning, trading, performance = split_summary(warm)
    learning.update(figures)
    learning["patterns_preloaded"] = imported
    learning["cold_start_convergence_episode"] = cold["convergence_episode"]
    w = config.scoring.window
    early_w = sum(warm["episode_accuracy"][:w]) / w
    early_c = sum(cold["episode_accuracy"][:w]) / w
    learning["early_accuracy"] = {"warm": round(early_w, 4), "cold": round(early_c, 4)}
    checks = [
        Check("memory preloaded from a pack", imported > 0, f"{imported} patterns imported"),
        Check("converges faster than cold start", faster(warm["convergence_episode"], cold["convergence_episode"]),
              f"episode {warm['convergence_episode']} warm vs {cold['convergence_episode']} cold"),
        Check("better early accuracy than cold start", early_w > early_c,
              f"first {w} episodes: {early_w:.3f} warm vs {early_c:.3f} cold"),
    ]
    base = baselines(decisions, config.seed, config.scoring, config.lr)
    base["cold-start memory"] = without_timings(cold)
    return ScenarioResult(PATTERN, config.seed, asdict(config), checks, learning, trading, performance, base,
                          {"episode_accuracy": warm["episode_accuracy"],
                           "cold_episode_accuracy": cold["episode_accuracy"]})
