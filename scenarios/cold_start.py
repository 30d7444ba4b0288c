"""Cold start: a memory learner with an empty bank learns the market from scratch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy
from swarm.learning.summary import Scoring, summarise

from .base import (
    HELD_OUT,
    Check,
    ScenarioResult,
    baselines,
    evaluate,
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
    min_improvement: float = 0.1  # held-out accuracy after learning minus before


def run(config: ColdStartConfig = ColdStartConfig()) -> ScenarioResult:
    decisions = market_decisions(config.seed, config.n_bars)
    held_out = market_decisions(config.seed + HELD_OUT, config.held_out_bars)
    mem = replace(config.memory, lr=config.lr, seed=config.seed)
    untrained = MemoryPolicy.open(":memory:", mem)
    before = evaluate(untrained, held_out)
    untrained.close()
    policy = MemoryPolicy.open(config.store_path, mem)
    try:
        empty_at_start = len(policy.bank.store) == 0
        log = run_policy(policy, decisions, learn=config.learn)
        summary = summarise(log, config.scoring)
        figures = memory_figures(policy)
        after = evaluate(policy, held_out)
    finally:
        policy.close()
    base = baselines(decisions, config.seed, config.scoring, config.lr)
    learning, trading, performance = split_summary(summary)
    learning.update(figures)
    ep = summary["episode_accuracy"]
    learning["held_out_accuracy"] = {"before": round(before, 4), "after": round(after, 4)}
    acc = summary["accuracy"] or 0.0
    nomem = base["no-memory"]["accuracy"] or 0.0
    checks = [
        Check("starts with empty memory", empty_at_start, f"{figures['pattern_count']} patterns at the end"),
        Check("improves with experience", after - before >= config.min_improvement,
              f"held-out accuracy {before:.3f} untrained, {after:.3f} after {len(decisions)} trades"),
        Check("beats the no-memory learner", acc > nomem, f"run accuracy {acc:.3f} vs no-memory {nomem:.3f}"),
        Check(f"reaches accuracy {config.scoring.target}", summary["convergence_episode"] != "not reached",
              f"convergence episode: {summary['convergence_episode']}"),
    ]
    cfg = asdict(config)
    return ScenarioResult(PATTERN, config.seed, cfg, checks, learning, trading, performance, base,
                          {"episode_accuracy": ep})
