"""Cold start: a memory learner with an empty bank learns the market from scratch."""

from __future__ import annotations

from typing import Any

from dataclasses import asdict, dataclass, field, replace

from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy
from swarm.learning.summary import Scoring, summarise

from .base import (
    HELD_OUT,
    Check,
    ScenarioResult,
    baselines,
    better,
    bp,
    figure,
    held_out_figures,
    market_decisions,
    memory_figures,
    run_policy,
    split_summary,
)

PATTERN = "cold-start"


@dataclass(frozen=True, slots=True)
class ColdStartConfig:
    seed: int = 0
    n_bars: int = 4000  # per asset; three assets, one trade every 10 bars each
    lr: float = 0.02
    scoring: Scoring = field(default_factory=Scoring)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    store_path: str = ":memory:"
    learn: bool = True  # False switches learning off (the check must then fail)
    held_out_bars: int = 2000
    min_improvement: float = 0.5  # held-out Sharpe after learning minus before



#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = ColdStartConfig
QUICK: dict[str, Any] = {"n_bars": 2500}

def run(config: ColdStartConfig = ColdStartConfig()) -> ScenarioResult:
    decisions = market_decisions(config.seed, config.n_bars)
    held_out = market_decisions(config.seed + HELD_OUT, config.held_out_bars)
    mem = replace(config.memory, lr=config.lr, seed=config.seed)
    untrained = MemoryPolicy.open(":memory:", mem)
    before = held_out_figures(untrained, held_out, config.scoring)
    untrained.close()
    policy = MemoryPolicy.open(config.store_path, mem)
    try:
        empty_at_start = len(policy.bank) == 0
        log = run_policy(policy, decisions, learn=config.learn)
        summary = summarise(log, config.scoring)
        figures = memory_figures(policy)
        after = held_out_figures(policy, held_out, config.scoring)
    finally:
        policy.close()
    base = baselines(decisions, config.seed, config.scoring, config.lr)
    learning, trading, performance = split_summary(summary)
    learning.update(figures)
    ep = summary["episode_accuracy"]
    learning["held_out"] = {"before": before, "after": after}
    sharpe = summary["sharpe_ratio"]
    gain = better(after["sharpe_ratio"], before["sharpe_ratio"])
    vs_nomem = better(sharpe, base["no-memory"]["sharpe_ratio"])
    vs_fixed = better(sharpe, base["best-fixed"]["sharpe_ratio"])
    checks = [
        Check("starts with empty memory", empty_at_start, f"{figures['pattern_count']} patterns at the end"),
        Check("improves with experience", gain is not None and gain >= config.min_improvement,
              f"held-out Sharpe {figure(before['sharpe_ratio'])} untrained, {figure(after['sharpe_ratio'])} after "
              f"{len(decisions)} trades (regret {bp(before['regret'])} -> {bp(after['regret'])} per decision)",
              gain),
        Check("beats the no-memory learner", vs_nomem is not None and vs_nomem > 0,
              f"Sharpe {figure(sharpe)} vs no-memory {figure(base['no-memory']['sharpe_ratio'])} on the same "
              f"decisions (regret {bp(summary['regret'])} vs {bp(base['no-memory']['regret'])})", vs_nomem),
        Check("beats the best fixed strategy", vs_fixed is not None and vs_fixed > 0,
              f"Sharpe {figure(sharpe)} vs always-{base['best-fixed']['strategy']} {figure(base['best-fixed']['sharpe_ratio'])}"
              f" (chosen in hindsight); convergence episode {summary['convergence_episode']}", vs_fixed),
    ]
    cfg = asdict(config)
    return ScenarioResult(PATTERN, config.seed, cfg, checks, learning, trading, performance, base,
                          {"episode_accuracy": ep, "episode_regret": summary["episode_regret"]})
