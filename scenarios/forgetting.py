"""Catastrophic forgetting: learn regime mix A, then mix B, then test on A.

Memory is bounded (``capacity`` patterns), as it is for any long-lived agent. Without
consolidation the bank is a FIFO buffer: learning B pushes A's patterns out and skill on A is
lost. With consolidation (distillation every ``consolidate_every`` episodes) near-duplicates
merge and the most valuable patterns become long-term memory, which new experience does not
evict (see :meth:`MemoryPolicy.consolidate`). Retention = accuracy on held-out A markets after
learning B / accuracy on them right after learning A; the target is >= 0.8.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from swarm.learning.episodes import SECONDS_PER_BAR, Decision
from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy
from swarm.learning.metrics import retention_rate
from swarm.learning.policies import (
    ContextFreeBandit,
    LinearActorCritic,
    Policy,
    QLearning,
)
from swarm.learning.session import RunLog
from swarm.learning.summary import Scoring, summarise
from swarm.market import MarketConfig

from .base import (
    HELD_OUT,
    Check,
    ScenarioResult,
    baselines,
    better,
    bp,
    figure,
    held_out_figures,
    memory_figures,
    phased_decisions,
    rounded,
    run_policy,
    split_summary,
)

PATTERN = "catastrophic-forgetting"


@dataclass(frozen=True, slots=True)
class ForgettingConfig:
    seed: int = 0
    episodes_per_phase: int = 100  # A for this many episodes, then B for as many
    mix_a: tuple[float, float, float, float] = (0.5, 0.5, 0.0, 0.0)  # trending markets
    mix_b: tuple[float, float, float, float] = (0.0, 0.0, 0.5, 0.5)  # ranging and volatile markets
    capacity: int = 800  # patterns the bank may hold (less than one phase makes)
    consolidate_every: int = 100  # episodes between distillations
    consolidate: bool = True  # False: bounded memory without consolidation (the checks must then fail)
    target: float = 0.8  # retention target
    held_out_trades: int = 600
    plasticity_tolerance: float = 0.25  # consolidation may cost at most this much Sharpe on held-out B
    scoring: Scoring = field(default_factory=Scoring)
    memory: MemoryConfig = field(default_factory=MemoryConfig)

    def __post_init__(self) -> None:
        if self.episodes_per_phase < 1 or self.consolidate_every < 1 or self.capacity < 1:
            raise ValueError("episodes_per_phase, consolidate_every and capacity must be >= 1")


@dataclass(frozen=True, slots=True)
class _Markets:
    a: list[Decision]
    b: list[Decision]
    test_a: list[Decision]
    test_b: list[Decision]


def _markets(config: ForgettingConfig) -> _Markets:
    n = config.episodes_per_phase * config.scoring.trades_per_episode
    a, b = phased_decisions(config.seed, [(MarketConfig(regime_mix=config.mix_a), n),
                                          (MarketConfig(regime_mix=config.mix_b), n)])
    after = b[-1].context.time + 10 * SECONDS_PER_BAR  # tests come after training, in virtual time
    test_a, test_b = phased_decisions(config.seed + HELD_OUT,
                                      [(MarketConfig(regime_mix=config.mix_a), config.held_out_trades),
                                       (MarketConfig(regime_mix=config.mix_b), config.held_out_trades)],
                                      start=after)
    return _Markets(a, b, test_a, test_b)


def _memory_run(config: ForgettingConfig, m: _Markets, *, capacity: int | None,
                consolidate: bool) -> dict[str, Any]:
    """Train on A then B (consolidating every ``consolidate_every`` episodes if asked) and test."""
    mem = replace(config.memory, capacity=capacity, seed=config.seed)
    policy = MemoryPolicy.open(":memory:", mem)
    per = config.scoring.trades_per_episode
    log = RunLog(policy.name)
    episode = 0
    a_before: dict[str, Any] = {}
    try:
        for phase in (m.a, m.b):
            for i in range(0, len(phase), per):
                log.extend(run_policy(policy, phase[i:i + per]))
                episode += 1
                if consolidate and episode % config.consolidate_every == 0:
                    policy.consolidate()
            if phase is m.a:
                a_before = held_out_figures(policy, m.test_a, config.scoring)
        a_after = held_out_figures(policy, m.test_a, config.scoring)
        b_after = held_out_figures(policy, m.test_b, config.scoring)
        figures = memory_figures(policy)
        stats = policy.stats
        return {"log": log, "figures": figures, **_skill("a_after_a", a_before), **_skill("a_after_b", a_after),
                **_skill("b_after_b", b_after), "retention": _retention_of(a_after, a_before),
                "evicted": stats.evicted, "consolidations": len(stats.consolidations)}
    finally:
        policy.close()


def _skill(name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Held-out figures under the names the report shows (return per decision is the skill)."""
    return {f"return_{name}": figures["avg_return"], f"sharpe_{name}": figures["sharpe_ratio"],
            f"regret_{name}": figures["regret"], f"accuracy_{name}": figures["accuracy"]}


def _retention_of(after: dict[str, Any], before: dict[str, Any]) -> float:
    """Share of the held-out return on A that survives learning B (1 = all of it); NaN when
    there was no positive return on A to keep."""
    return retention_rate(after["avg_return"], before["avg_return"])


def _retention(policy: Policy, m: _Markets, scoring: Scoring) -> dict[str, Any]:
    """Retention of a baseline learner trained the same way (A, then B, then tested on A)."""
    run_policy(policy, m.a)
    before = held_out_figures(policy, m.test_a, scoring)
    run_policy(policy, m.b)
    after = held_out_figures(policy, m.test_a, scoring)
    return {**_skill("a_after_a", before), **_skill("a_after_b", after),
            "retention": rounded(_retention_of(after, before))}



def _brief(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("return_a_after_a", "return_a_after_b", "return_b_after_b", "sharpe_b_after_b", "regret_b_after_b",
            "retention")
    out = {k: rounded(run[k], 6) for k in keys}
    out.update(pattern_count=run["figures"]["pattern_count"], evicted=run["evicted"],
               consolidations=run["consolidations"])
    return out



#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = ForgettingConfig
QUICK: dict[str, Any] = {}

def run(config: ForgettingConfig = ForgettingConfig()) -> ScenarioResult:
    m = _markets(config)
    main = _memory_run(config, m, capacity=config.capacity, consolidate=config.consolidate)
    fifo = _memory_run(config, m, capacity=config.capacity, consolidate=False)
    unbounded = _memory_run(config, m, capacity=None, consolidate=False)

    summary = summarise(main["log"], config.scoring)
    learning, trading, performance = split_summary(summary)
    learning.update(main["figures"])
    learning.update({"retention_rate": round(main["retention"], 4), **{k: v for k, v in _brief(main).items()
                                                                      if k != "retention"},
                     "with_consolidation": config.consolidate,
                     "retention_without_consolidation": round(fifo["retention"], 4),
                     "retention_unbounded_memory": round(unbounded["retention"], 4)})
    label = "with consolidation" if config.consolidate else "bounded memory, no consolidation"
    checks = [
        Check(f"retains A after learning B (target {config.target})", main["retention"] >= config.target,
              f"retention {figure(main['retention'])} {label}: held-out return on A "
              f"{bp(main['return_a_after_a'])} -> {bp(main['return_a_after_b'])} per decision"),
        Check("consolidation retains more than bounded memory without it", main["retention"] > fifo["retention"],
              f"retention {figure(main['retention'])} {label} vs {figure(fifo['retention'])} without consolidation "
              f"(unbounded memory: {figure(unbounded['retention'])}); held-out return on A after B "
              f"{bp(main['return_a_after_b'])} vs {bp(fifo['return_a_after_b'])}",
              better(main["return_a_after_b"], fifo["return_a_after_b"])),
        Check("memory stays within capacity", main["figures"]["pattern_count"] <= config.capacity,
              f"{main['figures']['pattern_count']} patterns, capacity {config.capacity}, {main['evicted']} evicted"),
        Check("still learns B", main["sharpe_b_after_b"] >= fifo["sharpe_b_after_b"] - config.plasticity_tolerance,
              f"Sharpe on held-out B {figure(main['sharpe_b_after_b'])} vs {figure(fifo['sharpe_b_after_b'])} "
              f"without consolidation (tolerance {config.plasticity_tolerance}); regret "
              f"{bp(main['regret_b_after_b'])} vs {bp(fifo['regret_b_after_b'])}"),
    ]
    base = baselines(m.a + m.b, config.seed, config.scoring, config.memory.lr)
    for name, policy in (("no-memory", ContextFreeBandit(lr=config.memory.lr, seed=config.seed)),
                         ("q-learning", QLearning(seed=config.seed)),
                         ("actor-critic", LinearActorCritic(seed=config.seed))):
        base[name].update(_retention(policy, m, config.scoring))
    base["memory without consolidation"] = _brief(fifo)
    base["memory, unbounded"] = _brief(unbounded)
    return ScenarioResult(PATTERN, config.seed, asdict(config), checks, learning, trading, performance, base,
                          {"episode_accuracy": summary["episode_accuracy"], "episode_regret": summary["episode_regret"]})
