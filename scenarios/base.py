"""What every scenario shares: checks, results, markets, and the baselines run beside a learner."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, cast
from collections.abc import Sequence

from swarm.learning import bandit
from swarm.learning import markets as market_source
from swarm.learning.agent import LearningAgent
from swarm.learning.episodes import SECONDS_PER_BAR, Context, Decision
from swarm.learning.memory_policy import MemoryPolicy
from swarm.learning.policies import (
    ContextFreeBandit,
    FixedPolicy,
    HindsightOracle,
    LinearActorCritic,
    Policy,
    QLearning,
    RandomPolicy,
    RegimeRule,
    Sarsa,
    best_fixed_strategy,
)
from swarm.learning.session import RunLog, merge_in_time, run
from swarm.learning.summary import Scoring, summarise
from swarm.market import STRATEGIES, MarketConfig, TradeRules

SYMBOLS: tuple[str, ...] = ("AAA", "BBB", "CCC")


@dataclass(frozen=True, slots=True)
class Check:
    """One pass/fail statement about a run, with the measured numbers behind it.

    A check that compares two learners carries ``delta``: how much better the one it vouches for
    did on the headline figure (risk-adjusted return or regret; positive = better), so runs over
    several seeds can judge the comparison by its confidence interval, not by a vote.
    """

    name: str
    passed: bool
    detail: str
    delta: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "passed", bool(self.passed))  # never a truthy list or numpy bool
        if self.delta is not None:
            object.__setattr__(self, "delta", round(float(self.delta), 6))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "passed": self.passed, "detail": self.detail}
        if self.delta is not None:
            out["delta"] = self.delta
        return out


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
    series: dict[str, Sequence[float | None]] = field(default_factory=dict)  # None: a point not measured

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"


def market_decisions(seed: int, n_bars: int, symbols: Sequence[str] = SYMBOLS,
                     market: MarketConfig | None = None, rules: TradeRules = TradeRules()) -> list[Decision]:
    """The decisions of the seeded market, all assets interleaved in time order.

    The market comes from the active source (:func:`swarm.learning.markets.active`): the synthetic
    market with ``market`` (or ``n_bars`` bars per asset), or windows of real files (see
    :mod:`swarm.learning.markets`; there only ``n_bars`` of ``market`` applies).
    """
    cfg = market or MarketConfig(n_bars=n_bars)
    return market_source.active().decisions(cfg, seed, tuple(symbols), rules)


def bars_for(trades: int, n_symbols: int = len(SYMBOLS), rules: TradeRules = TradeRules()) -> int:
    """Bars per asset that give at least ``trades`` decisions over ``n_symbols`` assets."""
    return max(50, 21 + rules.horizon * (trades // n_symbols + 2) + rules.horizon)


def phased_decisions(seed: int, phases: Sequence[tuple[MarketConfig, int]], *, gap_bars: int = 10,
                     start: float = 0.0, symbols: Sequence[str] = SYMBOLS) -> list[list[Decision]]:
    """Consecutive market phases, each with its own parameters and ``trades`` decisions.

    Phase ``i`` draws its paths from seed ``seed + i`` and its clock starts ``gap_bars`` after the
    previous phase ends (the first at ``start``, in virtual seconds), so virtual time (and with
    it recency) runs on across the phases.

    On real data (a CSV source) the phases are consecutive stretches of one window for ``seed``
    (the phases' market settings cannot apply; the run's market notes say so), on one clock from
    ``start``; when the window holds fewer decisions than the phases ask for, each phase gets its
    share of what there is.
    """
    source = market_source.active()
    if not isinstance(source, market_source.SyntheticSource):
        market_source.note("phases", "phases are consecutive stretches of the real data; their market settings "
                                     "(regime mix, drift...) do not apply")
        wanted = [trades for _, trades in phases]
        total = sum(wanted)
        pooled = source.decisions(MarketConfig(n_bars=bars_for(total, len(symbols))), seed, tuple(symbols))
        counts = wanted if len(pooled) >= total else [trades * len(pooled) // max(total, 1) for trades in wanted]
        if not all(counts):
            raise market_source.MarketDataError(
                f"{source.label}: {len(pooled)} decisions for seed {seed} are too few for {len(phases)} market phases "
                f"of {', '.join(map(str, wanted))} trades; use longer files")
        out: list[list[Decision]] = []
        at = 0
        for n in counts:
            out.append([Decision(Context(d.context.symbol, d.context.bar, start + d.context.time, d.context.features),
                                 d.pnl, d.regime) for d in pooled[at:at + n]])
            at += n
        return out
    out = []
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


def _baseline_policies(stream: Sequence[Decision], pooled: Sequence[Decision], seed: int,
                       lr: float) -> list[Policy]:
    """The baselines one agent's decisions are replayed with (hindsight choices over ``pooled``)."""
    out: list[Policy] = [
        RandomPolicy(seed),
        FixedPolicy(best_fixed_strategy(pooled), name="best-fixed"),
        *(FixedPolicy(s, name=f"always-{s}") for s in STRATEGIES if s != "flat"),
        ContextFreeBandit(lr=max(lr, 0.02), seed=seed),
        QLearning(seed=seed),
        Sarsa(seed=seed),
        LinearActorCritic(seed=seed),
        HindsightOracle(stream),
    ]
    if all(d.regime >= 0 for d in pooled):
        rule = RegimeRule(pooled)
        rule.add(stream)
        out.append(rule)
    if bandit.available():
        out.append(bandit.ContextualBandit(seed))
    return out


def held_out_figures(policy: Policy, decisions: Sequence[Decision], scoring: Scoring) -> dict[str, Any]:
    """How ``policy`` trades ``decisions`` without learning from them: Sharpe, regret, return,
    accuracy (a held-out test; no wall-clock figures)."""
    s = summarise(run_policy(policy, decisions, learn=False), scoring)
    return {k: s[k] for k in ("sharpe_ratio", "regret", "avg_return", "accuracy", "decisions")}


def rounded(x: float | None, digits: int = 4) -> float | None:
    """A figure for the metrics: rounded, and None when it could not be measured (None or NaN)."""
    return None if x is None or x != x else round(float(x), digits)


def figure(x: float | None, digits: int = 3) -> str:
    """A figure for a check's detail: rounded, or "n/a" when it could not be measured."""
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def bp(x: float | None) -> str:
    """A per-decision return or regret in basis points, for a check's detail."""
    return "n/a" if x is None or x != x else f"{x * 1e4:.1f} bp"


def better(a: float | None, b: float | None) -> float | None:
    """``a - b`` when both were measured (the delta of a comparison check), else None."""
    return None if a is None or b is None or a != a or b != b else float(a - b)


def baselines(decisions: Sequence[Decision] | Sequence[Sequence[Decision]], seed: int, scoring: Scoring,
              lr: float) -> dict[str, dict[str, Any]]:
    """Every baseline on exactly the decisions a learner's figure covers.

    ``decisions`` is one agent's stream, or one stream per agent: then each agent's seat is
    replayed by a fresh copy of the baseline and the trades are pooled in time order, as the
    swarm's own figure is. Baselines: random, best fixed (in hindsight, by Sharpe), every
    always-<strategy> that trades, the no-memory bandit, tabular and linear learners, the Vowpal
    Wabbit contextual bandit, the regime rule (context ceiling; synthetic markets only) and the
    oracle. A baseline that cannot run here is ``{"null_reason": ...}``.
    """
    # one stream when the first item is a Decision, else one per agent (the union cannot be
    # narrowed by looking at an item)
    streams: list[list[Decision]] = (
        [list(cast("Sequence[Decision]", decisions))] if decisions and isinstance(decisions[0], Decision)
        else [list(s) for s in cast("Sequence[Sequence[Decision]]", decisions)])
    streams = [s for s in streams if s]
    pooled = [d for s in streams for d in s]
    logs: dict[str, list[RunLog]] = {}
    fixed: dict[str, str] = {}
    for k, stream in enumerate(streams):
        for p in _baseline_policies(stream, pooled, seed * 1000 + k if k else seed, lr):
            logs.setdefault(p.name, []).append(run_policy(p, stream))
            if isinstance(p, FixedPolicy):
                fixed[p.name] = p.strategy
    out: dict[str, dict[str, Any]] = {}
    for name, parts in logs.items():
        s = summarise(merge_in_time(parts) if len(parts) > 1 else parts[0], scoring)
        for key in ("episode_accuracy", "episode_regret", "decision_latency_ms", "learning_overhead_ms"):
            s.pop(key)  # wall-clock timings belong to the performance section only
        if name in fixed:
            s["strategy"] = fixed[name]
        out[name] = s
    if not bandit.available():
        out["contextual-bandit"] = {"null_reason": "vowpalwabbit is not installed (pip install '.[dev]')"}
    if "regime-rule" not in out:
        out["regime-rule"] = {"null_reason": "the hidden regime is unknown (real price data)"}
    return out


TIMINGS = ("decision_latency_ms", "learning_overhead_ms")


def without_timings(summary: dict[str, Any]) -> dict[str, Any]:
    """A run summary fit for a deterministic section: no wall-clock figures, no per-episode series."""
    return {k: v for k, v in summary.items() if k not in TIMINGS and k not in ("episode_accuracy", "episode_regret")}


def memory_figures(policy: MemoryPolicy) -> dict[str, Any]:
    """Pattern count and bytes of the policy's bank."""
    st = policy.bank.stats()
    return {"pattern_count": st["patterns"], "memory_size_bytes": st["bytes_on_disk"],
            "patterns_by_kind": st["by_kind"]}


def split_summary(summary: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split :func:`summarise` output into the report's learning, trading and performance sections."""
    learning = {k: summary[k] for k in ("decisions", "episodes", "accuracy", "tie_share", "regret", "final_accuracy",
                                        "exploration_share")}
    learning["convergence_episodes"] = summary["convergence_episode"]  # the report's name for it
    trading = {k: summary[k] for k in ("win_rate", "avg_return", "sharpe_ratio", "max_drawdown")}
    performance = {k: summary[k] for k in ("decision_latency_ms", "learning_overhead_ms")}
    return learning, trading, performance
