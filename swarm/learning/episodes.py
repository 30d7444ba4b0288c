"""The decisions an agent faces: contexts drawn from a market, each with its answer key.

A :class:`Context` is what the agent sees at a decision (past-only features of one asset). A
:class:`Decision` adds what the driver keeps hidden until the trade is done: every strategy's
P&L from that bar (so the outcome of the chosen one, and the hindsight-best, can be told) and
the hidden regime (for analysis only). Decisions are spaced one holding horizon apart per asset,
so trades of one asset never overlap, and interleaved across assets in time order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from ..market import FEATURE_NAMES, STRATEGIES, PricePath, TradeRules, compute_features, trade_table

#: Virtual seconds per bar (one bar is one trading day).
SECONDS_PER_BAR = 86_400.0


@dataclass(frozen=True, slots=True, eq=False)
class Context:
    """What an agent observes before a decision."""

    symbol: str
    bar: int
    time: float  # virtual seconds since the start of the path
    features: np.ndarray  # FEATURE_NAMES, in order

    def as_dict(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(FEATURE_NAMES, self.features)}


@dataclass(frozen=True, slots=True, eq=False)
class Decision:
    """A context plus its answer key (hidden from the agent until after it has chosen)."""

    context: Context
    pnl: np.ndarray  # one trade P&L per strategy, STRATEGIES order
    regime: int  # index into REGIMES; -1 when unknown (real data)

    @property
    def best(self) -> np.ndarray:
        """Indices of the hindsight-best strategies (ties all count)."""
        return np.flatnonzero(self.pnl >= self.pnl.max() - 1e-12)


@dataclass(frozen=True, slots=True, eq=False)
class Outcome:
    """What an agent learns after a decision: the trade it made and what it earned."""

    context: Context
    strategy: str
    reward: float  # trade P&L (log return after costs)
    informed_by: tuple[str, ...] = ()  # pattern ids that informed the choice, if any
    metadata: Mapping[str, object] = field(default_factory=dict)


def decisions_for(path: PricePath, rules: TradeRules = TradeRules(), *, start: int = 0,
                  stop: int | None = None) -> list[Decision]:
    """Decisions on one asset every ``rules.horizon`` bars in ``[start, stop)`` where a trade can be judged."""
    x = compute_features(path)
    pnl = trade_table(x, path.log_close, rules)
    ok = ~np.isnan(pnl).any(axis=1)
    out: list[Decision] = []
    bars = np.flatnonzero(ok)
    bars = bars[(bars >= start) & (bars < (stop if stop is not None else len(path)))]
    if bars.size == 0:
        return out
    for bar in range(int(bars[0]), int(bars[-1]) + 1, rules.horizon):
        if ok[bar]:
            ctx = Context(path.symbol, bar, bar * SECONDS_PER_BAR, x[bar].copy())
            out.append(Decision(ctx, pnl[bar].copy(), int(path.regime[bar])))
    return out


def interleave(market: Mapping[str, PricePath], rules: TradeRules = TradeRules(), *, start: int = 0,
               stop: int | None = None) -> list[Decision]:
    """All assets' decisions in time order (ties by symbol order as given)."""
    per = [decisions_for(p, rules, start=start, stop=stop) for p in market.values()]
    order = {s: i for i, s in enumerate(market)}
    merged = [d for ds in per for d in ds]
    merged.sort(key=lambda d: (d.context.bar, order[d.context.symbol]))
    return merged


def chunks(decisions: Sequence[Decision], size: int) -> Iterator[Sequence[Decision]]:
    """Consecutive episodes of ``size`` decisions (the last one may be shorter)."""
    if size < 1:
        raise ValueError("episode size must be >= 1")
    for i in range(0, len(decisions), size):
        yield decisions[i:i + size]


def pnl_matrix(decisions: Sequence[Decision]) -> np.ndarray:
    """``(len(decisions), len(STRATEGIES))`` P&L table of a run, for the metrics module."""
    if not decisions:
        return np.zeros((0, len(STRATEGIES)))
    return np.vstack([d.pnl for d in decisions])
