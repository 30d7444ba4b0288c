"""Trading strategies: each turns the context at entry and the path ahead into one managed trade.

A trade enters at bar ``t`` with a direction the strategy reads from the context (long +1,
short -1, or no trade 0), is managed bar by bar over at most ``horizon`` bars by the strategy's
own exit rule, and earns ``direction * (log price at exit - log price at entry)`` less a
round-trip cost. Distinct exit rules make the strategies' P&L differ even when they agree on
direction, so "the hindsight-best strategy" of a decision is rarely a tie:

* **momentum** — follow the 20-bar return; hold the full horizon. Built for trends (up or down).
* **mean_reversion** — fade the z-score; take profit once price has moved ``2 * |z| * sigma``
  back towards its mean, else exit at the horizon. Built for ranges.
* **breakout** — trade only a close outside the previous 10-bar channel, in its direction;
  exit on a retrace of ``stop_sigmas * sigma`` from the best price seen (a trailing stop).
  Built for volatile bursts, which it rides while they last and leaves when they turn.
* **flat** — never exposed: P&L 0, the bar every other strategy must clear to be worth its risk.

``sigma`` is the 20-bar realised volatility per bar at entry (the ``volatility`` feature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import FEATURE_NAMES

F = {name: i for i, name in enumerate(FEATURE_NAMES)}
STRATEGIES: tuple[str, ...] = ("momentum", "mean_reversion", "breakout", "flat")

#: The regimes each strategy is built for (checked by the tests, on seeded paths). ``flat`` is
#: built for none: it is the no-risk fallback.
BUILT_FOR: dict[str, tuple[str, ...]] = {
    "momentum": ("trend_up", "trend_down"),
    "mean_reversion": ("ranging",),
    "breakout": ("volatile",),
    "flat": (),
}


@dataclass(frozen=True, slots=True)
class TradeRules:
    """How trades are managed: holding horizon (bars), cost and the strategies' exit parameters."""

    horizon: int = 10
    round_trip_cost: float = 0.0005  # fraction of price per unit of position (5 bp)
    take_profit_sigmas: float = 2.0  # mean reversion: take profit at 2*|z|*sigma towards the mean
    stop_sigmas: float = 1.0  # breakout: trailing stop distance
    channel_threshold: float = 1.0  # breakout: |channel| above this is a breakout

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError("horizon must be >= 1 bar")
        if self.round_trip_cost < 0 or self.take_profit_sigmas <= 0 or self.stop_sigmas <= 0:
            raise ValueError("costs must be >= 0 and exit distances > 0")


def directions(features: np.ndarray, rules: TradeRules = TradeRules()) -> np.ndarray:
    """``(n_bars, len(STRATEGIES))`` entry directions in {-1, 0, +1}; NaN features give 0."""
    x = np.nan_to_num(np.atleast_2d(features), nan=0.0)
    channel = x[:, F["channel"]]
    return np.column_stack([
        np.sign(x[:, F["ret_20"]]),
        -np.sign(x[:, F["zscore"]]),
        np.where(np.abs(channel) > rules.channel_threshold, np.sign(channel), 0.0),
        np.zeros(x.shape[0]),
    ])


def _first_exit(hit: np.ndarray, horizon: int) -> np.ndarray:
    """Bar offset (1..horizon) of the first True in each row of ``hit``; ``horizon`` if none."""
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, horizon)


def trade_table(features: np.ndarray, log_close: np.ndarray, rules: TradeRules = TradeRules()) -> np.ndarray:
    """P&L of each strategy's trade entered at every bar: ``(n_bars, len(STRATEGIES))``.

    Rows whose horizon runs past the end of the path, or whose features are not yet defined
    (warm-up), are NaN: no trade can be judged there.
    """
    x = np.atleast_2d(features)
    lp = np.asarray(log_close, dtype=float)
    n, h = lp.shape[0], rules.horizon
    out = np.full((n, len(STRATEGIES)), np.nan)
    m = n - h
    if m <= 0:
        return out
    path = np.lib.stride_tricks.sliding_window_view(lp, h + 1)[:m] - lp[:m, None]  # (m, h+1), path[:, 0] = 0
    d = directions(x[:m], rules)
    sigma = np.nan_to_num(x[:m, F["volatility"]])
    rows = np.arange(m)
    cost = rules.round_trip_cost * np.abs(d)
    # momentum: hold to the horizon
    out[:m, 0] = d[:, 0] * path[:, -1]
    # mean reversion: take profit once the move towards the mean reaches its target
    target = rules.take_profit_sigmas * np.abs(np.nan_to_num(x[:m, F["zscore"]])) * sigma
    exit_mr = _first_exit(d[:, 1:2] * path[:, 1:] >= target[:, None], h)
    out[:m, 1] = d[:, 1] * path[rows, exit_mr]
    # breakout: trailing stop from the best price seen since entry
    favour = d[:, 2:3] * path
    retrace = np.maximum.accumulate(favour, axis=1) - favour
    exit_bo = _first_exit(retrace[:, 1:] > rules.stop_sigmas * sigma[:, None], h)
    out[:m, 2] = favour[rows, exit_bo]
    out[:m, 3] = 0.0
    out[:m] -= cost
    out[np.isnan(x).any(axis=1)] = np.nan
    return out
