"""What every scenario shares: checks, results, markets, and the baselines run beside a learner."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from swarm.learning.agent import LearningAgent
from swarm.learning.episodes import SECONDS_PER_BAR, Context, Decision, interleave
from swarm.learning.memory_policy import MemoryPolicy
from swarm.learning.policies import (
    ContextFreeBandit,
    FixedPolicy,
    HindsightOracle,
    LinearActorCritic,
    Policy,
    QLearning,
    RandomPolicy,
    Sarsa,
    best_fixed_strategy,
)
from swarm.learning.session import RunLog, run
from swarm.learning.summary import Scoring, summarise
from swarm.market import MarketConfig, TradeRules, generate_market

SYMBOLS: tuple[str, ...] = ("AAA", "BBB", "CCC")


@dataclass(frozen=True, slots=True)
class Check:
    """One pass/fail statement about a run, with the measured numbers behind it."""

    name: str
    passed: bool
    detail: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "passed", bool(self.passed))  # never a truthy list or numpy bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(slots=True)
class ScenarioResult:
    """A scenario's outcome: its checks, the learner's metrics, the baselines, and time series."""

    pattern: str
    seed: int
    config: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    learning: dict[str, Any] = field(default_factory=dict)
    trading: dict[str, Any] = field(default_factory=dict)
    performance: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"


def market_decisions(seed: int, n_bars: int, symbols: Sequence[str] = SYMBOLS,
                     market: MarketConfig | None = None, rules: TradeRules = TradeRules()) -> list[Decision]:
    """The decisions of a seeded synthetic market, all assets interleaved in time order."""
    cfg = market or MarketConfig(n_bars=n_bars)
    return interleave(generate_market(cfg, seed, tuple(symbols)), rules)


def bars_for(trades: int, n_symbols: int = len(SYMBOLS), rules: TradeRules = TradeRules()) -> int:
    """Bars per asset that give at least ``trades`` decisions over ``n_symbols`` assets."""
    return max(50, 21 + rules.horizon * (trades // n_symbols + 2) + rules.horizon)


def phased_decisions(seed: int, phases: Sequence[tuple[MarketConfig, int]], *, gap_bars: int = 10,
                     start: float = 0.0, symbols: Sequence[str] = SYMBOLS) -> list[list[Decision]]:
    """Consecutive market phases, each with its own parameters and ``trades`` decisions.

    Phase ``i`` draws its paths from seed ``seed + i`` and its clock starts ``gap_bars`` after the
    previous phase ends (the first at ``start``, in virtual seconds), so virtual time (and with
    it recency) runs on across the phases.
    """
    out: list[list[Decision]] = []
    for i, (cfg, trades) in enumerate(phases):
        cfg = replace(cfg, n_bars=bars_for(trades, len(symbols)))
        phase = market_decisions(seed + i, cfg.n_bars, symbols, cfg)[:trades]
        if len(phase) < trades:
            raise ValueError(f"phase {i} gave {len(phase)} decisions, fewer than {trades}")
        phase = [Decision(Context(d.context.symbol, d.context.bar, start + d.context.time, d.context.features),
                          d.pnl, d.regime) for d in phase]
        start = phase[-1].context.time + gap_bars * SECONDS_PER_BAR
        out.append(phase)
    return out


def run_policy(policy: Policy, decisions: Sequence[Decision], *, learn: bool = True) -> RunLog:
    return run(LearningAgent(policy.name, policy), decisions, learn=learn)


#: Held-out markets use this offset from the scenario's seed, so they are never trained on.
HELD_OUT = 10_000


def evaluate(policy: Policy, decisions: Sequence[Decision]) -> float:
    """Accuracy over ``decisions`` without learning from them (a held-out test)."""
    log = run_policy(policy, decisions, learn=False)
    return float(log.correct_array.mean()) if len(log) else float("nan")


def baselines(decisions: Sequence[Decision], seed: int, scoring: Scoring, lr: float) -> dict[str, dict[str, Any]]:
    """Random, best fixed (in hindsight), no-memory bandit, tabular and linear learners, oracle."""
    policies: list[Policy] = [
        RandomPolicy(seed),
        FixedPolicy(best_fixed_strategy(decisions), name="best-fixed"),
        ContextFreeBandit(lr=max(lr, 0.02), seed=seed),
        QLearning(seed=seed),
        Sarsa(seed=seed),
        LinearActorCritic(seed=seed),
        HindsightOracle(decisions),
    ]
    out = {}
    for p in policies:
        s = summarise(run_policy(p, decisions), scoring)
        for key in ("episode_accuracy", "decision_latency_ms", "learning_overhead_ms"):
            s.pop(key)  # wall-clock timings belong to the performance section only
        if isinstance(p, FixedPolicy):
            s["strategy"] = p.strategy
        out[p.name] = s
    return out


TIMINGS = ("decision_latency_ms", "learning_overhead_ms")


def without_timings(summary: dict[str, Any]) -> dict[str, Any]:
    """A run summary fit for a deterministic section: no wall-clock figures, no per-episode series."""
    return {k: v for k, v in summary.items() if k not in TIMINGS and k != "episode_accuracy"}


def memory_figures(policy: MemoryPolicy) -> dict[str, Any]:
    """Pattern count and bytes of the policy's bank."""
    st = policy.bank.stats()
    return {"pattern_count": st["patterns"], "memory_size_bytes": st["bytes_on_disk"],
            "patterns_by_kind": st["by_kind"]}


def split_summary(summary: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split :func:`summarise` output into the report's learning, trading and performance sections."""
    learning = {k: summary[k] for k in ("decisions", "episodes", "accuracy", "final_accuracy", "exploration_share")}
    learning["convergence_episodes"] = summary["convergence_episode"]  # the report's name for it
    trading = {k: summary[k] for k in ("win_rate", "avg_return", "sharpe_ratio", "max_drawdown")}
    performance = {k: summary[k] for k in ("decision_latency_ms", "learning_overhead_ms")}
    return learning, trading, performance


def faster(a: int | str, b: int | str) -> bool:
    """Whether convergence ``a`` came strictly before ``b`` ("not reached" is never)."""
    if a == "not reached":
        return False
    return b == "not reached" or int(a) < int(b)
