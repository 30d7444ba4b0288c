"""Transfer: train a source agent, export its memory, import it ("full" or "selective") into a
new agent, and continue on a new market; it must give up less (regret) than a cold start there."""

from __future__ import annotations

from typing import Any

import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from swarm.learning.memory_policy import DOMAIN, MemoryConfig, MemoryPolicy
from swarm.learning.summary import Scoring, summarise
from swarm.memory import ImportPolicy

from .base import (
    Check,
    ScenarioResult,
    bars_for,
    baselines,
    better,
    bp,
    market_decisions,
    memory_figures,
    run_policy,
    split_summary,
    without_timings,
)
from .packs import train_memory

PATTERN = "transfer-learning"
SOURCE_SEED_OFFSET = 2_000


@dataclass(frozen=True, slots=True)
class TransferConfig:
    seed: int = 0
    source_bars: int = 4000
    episodes: int = 30  # the new agent continues this many episodes on the target market
    targets: int = 3  # target markets (seeds) averaged over, so one easy market cannot decide
    lr: float = 0.02
    selective_min_confidence: float = 0.6  # "selective" imports only confident patterns
    transfer: bool = True  # False: import nothing (the checks must then fail)
    scoring: Scoring = field(default_factory=Scoring)
    memory: MemoryConfig = field(default_factory=MemoryConfig)


def _mean_convergence(results: list[dict], episodes: int) -> float:
    """Mean convergence episode over targets; "not reached" counts as ``episodes + 1``."""
    vals = [r["convergence_episode"] for r in results]
    return sum(episodes + 1 if v == "not reached" else int(v) for v in vals) / len(vals)


def _merge(results: list[dict]) -> dict:
    """The first target's summary (the market the baselines run on), plus the mean accuracy
    over all targets under its own name, so no figure mixes markets."""
    out = dict(results[0])
    out["convergence_episode_per_target"] = [r["convergence_episode"] for r in results]
    out["accuracy_mean_over_targets"] = sum(r["accuracy"] for r in results) / len(results)
    return out



#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = TransferConfig
QUICK: dict[str, Any] = {"targets": 2}

def run(config: TransferConfig = TransferConfig()) -> ScenarioResult:
    n_target = config.episodes * config.scoring.trades_per_episode
    targets = [market_decisions(config.seed + 100 * i, bars_for(n_target))[:n_target] for i in range(config.targets)]
    mem = replace(config.memory, lr=config.lr)
    modes = {"full": ImportPolicy(), "selective": ImportPolicy(mode="selective", domains=(DOMAIN,),
                                                              min_confidence=config.selective_min_confidence)}
    runs: dict[str, list] = {"full": [], "selective": [], "cold": []}
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = train_memory(config.seed + SOURCE_SEED_OFFSET, config.source_bars, config.memory)
        exported = source.bank.export(Path(tmp) / "source.jsonl")
        source.close()
        for i, target in enumerate(targets):
            for label in runs:
                # The three starts draw the same exploration on one target (paired); targets differ.
                policy = MemoryPolicy.open(":memory:", replace(mem, seed=config.seed + 100 * i), name=label)
                try:
                    if label != "cold" and config.transfer:
                        counts[label] = policy.bank.import_(Path(tmp) / "source.jsonl", modes[label]).imported
                    log = run_policy(policy, target)
                    runs[label].append(summarise(log, config.scoring))
                    if label == "full":
                        figures = memory_figures(policy)
                finally:
                    policy.close()
    n_full, n_sel = counts.get("full", 0), counts.get("selective", 0)
    conv = {k: _mean_convergence(v, config.episodes) for k, v in runs.items()}
    full, sel, cold = (_merge(runs[k]) for k in ("full", "selective", "cold"))
    target = targets[0]
    learning, trading, performance = split_summary(full)
    learning.update(figures)
    learning.update({"exported": exported, "imported_full": n_full, "imported_selective": n_sel,
                     "selective_convergence_episode": sel["convergence_episode"],
                     "selective_accuracy": sel["accuracy"],
                     "accuracy_mean_over_targets": {k: round(v["accuracy_mean_over_targets"], 4)
                                                    for k, v in (("full", full), ("selective", sel), ("cold", cold))},
                     "cold_start_convergence_episode": cold["convergence_episode"],
                     "mean_convergence_episode": {k: round(v, 2) for k, v in conv.items()},
                     "convergence_per_target": {k: [r["convergence_episode"] for r in v] for k, v in runs.items()}})
    regret = {k: sum(r["regret"] for r in v) / len(v) for k, v in runs.items()}
    learning["mean_regret_over_targets"] = regret
    gain_full, gain_sel = better(regret["cold"], regret["full"]), better(regret["cold"], regret["selective"])
    checks = [
        Check("full transfer learns faster than cold start", gain_full is not None and gain_full > 0,
              f"regret per decision {bp(regret['full'])} with the imported memory vs {bp(regret['cold'])} cold, "
              f"over {config.targets} new markets of {config.episodes} episodes (mean convergence episode "
              f"{conv['full']:.1f} vs {conv['cold']:.1f}; not reached = {config.episodes + 1})", gain_full),
        Check("selective transfer learns faster than cold start", gain_sel is not None and gain_sel > 0,
              f"regret per decision {bp(regret['selective'])} vs {bp(regret['cold'])} cold (mean convergence "
              f"episode {conv['selective']:.1f} vs {conv['cold']:.1f})", gain_sel),
        Check("selective import takes a confident subset", 0 < n_sel < n_full,
              f"{n_sel} of {n_full} patterns (confidence >= {config.selective_min_confidence})"),
    ]
    base = baselines(target, config.seed, config.scoring, config.lr)
    base["cold-start memory"] = without_timings(cold)
    return ScenarioResult(PATTERN, config.seed, asdict(config), checks, learning, trading, performance, base,
                          {"episode_accuracy": full["episode_accuracy"], "episode_regret": full["episode_regret"],
                           "selective_episode_accuracy": sel["episode_accuracy"],
                           "cold_episode_accuracy": cold["episode_accuracy"]})
