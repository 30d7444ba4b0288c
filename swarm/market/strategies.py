"""Trading strategies: each maps a context to a position (long 1 or flat 0) held for a horizon.

Long-or-flat, as in a cash account, so each strategy has a regime it is built for:
momentum rides up-trends, mean-reversion buys dips in ranges, breakout buys new highs that
bursts carry on, and flat — never exposed — is best when prices fall.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .features import FEATURE_NAMES

F = {name: i for i, name in enumerate(FEATURE_NAMES)}
STRATEGIES: tuple[str, ...] = ("momentum", "mean_reversion", "breakout", "flat")

#: The regime each strategy is built for (checked by the tests, on seeded paths).
BUILT_FOR = {"momentum": "trend_up", "mean_reversion": "ranging", "breakout": "volatile", "flat": "trend_down"}


def _momentum(x: np.ndarray) -> np.ndarray:
    return ((x[:, F["ret_20"]] > 0) & (x[:, F["trend_strength"]] > 1.0)).astype(np.int8)


def _mean_reversion(x: np.ndarray) -> np.ndarray:
    return (x[:, F["zscore"]] < -1.0).astype(np.int8)


def _breakout(x: np.ndarray) -> np.ndarray:
    return ((x[:, F["channel"]] > 1.0) & (x[:, F["ret_5"]] > 0)).astype(np.int8)


def _flat(x: np.ndarray) -> np.ndarray:
    return np.zeros(x.shape[0], dtype=np.int8)


RULES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "momentum": _momentum, "mean_reversion": _mean_reversion, "breakout": _breakout, "flat": _flat,
}


@dataclass(frozen=True, slots=True)
class TradeCosts:
    """Round-trip cost per unit of position, as a fraction of price (5 bp by default)."""

    round_trip: float = 0.0005


def positions(features: np.ndarray) -> np.ndarray:
    """``(n_bars, len(STRATEGIES))`` positions; NaN features give flat."""
    x = np.nan_to_num(np.atleast_2d(features), nan=0.0)
    return np.column_stack([RULES[s](x) for s in STRATEGIES])


def forward_returns(log_close: np.ndarray, horizon: int) -> np.ndarray:
    """Log return from bar ``t`` to ``t + horizon``; NaN where the path ends first."""
    out = np.full(log_close.shape[0], np.nan)
    out[:-horizon] = log_close[horizon:] - log_close[:-horizon]
    return out


def pnl_table(features: np.ndarray, log_close: np.ndarray, horizon: int,
              costs: TradeCosts = TradeCosts()) -> np.ndarray:
    """P&L of every strategy at every bar: ``position * forward return - cost * position``."""
    pos = positions(features).astype(float)
    fwd = forward_returns(log_close, horizon)[:, None]
    return pos * fwd - costs.round_trip * pos
