"""Learning and trading metrics, one module, pure functions over arrays.

Conventions: ``returns`` are per-trade log returns after costs; ``pnl_table`` is
``(decisions, strategies)`` of what each strategy would have earned at each decision;
``choices`` are column indices into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np

#: Trades per year used to annualise the Sharpe ratio (one decision per trading day).
TRADES_PER_YEAR = 252


def hindsight_best(pnl_table: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Boolean ``(decisions, strategies)``: which strategies earned the most at each decision."""
    table = np.asarray(pnl_table, dtype=float)
    return table >= table.max(axis=1, keepdims=True) - tol


def accuracy(choices: Sequence[int], pnl_table: np.ndarray) -> float:
    """Share of decisions whose chosen strategy was (one of) the hindsight-best."""
    c = np.asarray(choices, dtype=int)
    if c.size == 0:
        return float("nan")
    best = hindsight_best(pnl_table)
    return float(best[np.arange(c.size), c].mean())


def win_rate(returns: Sequence[float]) -> float:
    """Share of trades that made money; trades with no position (return exactly 0) are excluded."""
    r = np.asarray(returns, dtype=float)
    traded = r[r != 0.0]
    return float((traded > 0).mean()) if traded.size else float("nan")


def average_return(returns: Sequence[float]) -> float:
    r = np.asarray(returns, dtype=float)
    return float(r.mean()) if r.size else float("nan")


def sharpe_ratio(returns: Sequence[float], periods_per_year: float = TRADES_PER_YEAR) -> float:
    """Annualised Sharpe ratio, risk-free rate 0: ``mean / std (ddof=1) * sqrt(periods_per_year)``.

    NaN with fewer than two trades or zero variance (undefined, not infinite).
    """
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        return float("nan")
    sd = float(r.std(ddof=1))
    return float(r.mean() / sd * math.sqrt(periods_per_year)) if sd > 0 else float("nan")


def max_drawdown(returns: Sequence[float]) -> float:
    """Largest fall of the equity curve from its running peak, as a fraction (0.25 = 25 %).

    The equity curve compounds the log returns from 1.0: ``exp(cumsum(returns))``.
    """
    r = np.asarray(returns, dtype=float)
    if r.size == 0:
        return 0.0
    equity = np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak))


def rolling_mean(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (shorter at the start)."""
    v = np.asarray(values, dtype=float)
    if window < 1:
        raise ValueError("window must be >= 1")
    c = np.concatenate([[0.0], np.cumsum(v)])
    idx = np.arange(1, v.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


@dataclass(frozen=True, slots=True)
class Convergence:
    """When rolling accuracy first reached the target; ``episode`` is None when it never did."""

    episode: int | None
    target: float
    window: int

    @property
    def reached(self) -> bool:
        return self.episode is not None

    def to_json(self) -> int | str:
        return self.episode if self.episode is not None else "not reached"


def convergence_episode(episode_accuracy: Sequence[float] | np.ndarray, target: float = 0.7,
                        window: int = 10) -> Convergence:
    """First episode (1-based) whose trailing ``window``-episode mean accuracy reaches ``target``.

    Only full windows count, so one lucky early episode cannot converge the run.
    """
    acc = np.asarray(episode_accuracy, dtype=float)
    roll = rolling_mean(acc, window)
    hits = np.flatnonzero((roll >= target) & (np.arange(1, acc.size + 1) >= window))
    return Convergence(int(hits[0]) + 1 if hits.size else None, target, window)


def skill(regrets: Sequence[float], random_regrets: Sequence[float]) -> float:
    """``1 - sum(regret) / sum(regret of a uniformly random pick)`` over the same decisions: 1 is
    the hindsight-best strategy every time, 0 no better than random. Unlike raw regret it can be
    compared between agents trading markets of different difficulty. NaN if random gives up nothing."""
    base = float(np.sum(random_regrets))
    return 1.0 - float(np.sum(regrets)) / base if base > 0 else float("nan")


def retention_rate(accuracy_after: float, accuracy_before: float) -> float:
    """How much of an earlier skill survives later learning: ``after / before`` (1 = all of it)."""
    if not accuracy_before > 0:
        return float("nan")
    return float(accuracy_after / accuracy_before)


def episode_accuracy(correct: Sequence[bool], per_episode: int) -> np.ndarray:
    """Mean correctness of each consecutive block of ``per_episode`` decisions (last may be short)."""
    c = np.asarray(correct, dtype=float)
    if per_episode < 1:
        raise ValueError("per_episode must be >= 1")
    return np.array([c[i:i + per_episode].mean() for i in range(0, c.size, per_episode)])


def episode_mean(values: Sequence[float], per_episode: int) -> np.ndarray:
    """Mean of each consecutive block of ``per_episode`` values (last may be short)."""
    v = np.asarray(values, dtype=float)
    if per_episode < 1:
        raise ValueError("per_episode must be >= 1")
    return np.array([v[i:i + per_episode].mean() for i in range(0, v.size, per_episode)])


def latency_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of timings given in seconds, in milliseconds (NaN when empty)."""
    s = np.asarray(samples_s, dtype=float) * 1e3
    if s.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "mean": float("nan")}
    return {"p50": float(np.percentile(s, 50)), "p95": float(np.percentile(s, 95)), "mean": float(s.mean())}


# two-sided 95% Student-t quantiles by degrees of freedom (1..30); beyond 30 the normal 1.96 is
# within 2%. A table, because scipy would be a whole dependency for one number.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042)


# one-sided 95% Student-t quantiles (1..30 degrees of freedom); beyond 30 the normal 1.645
_T95_ONE_SIDED = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771,
                  1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706,
                  1.703, 1.701, 1.699, 1.697)


def t95_one_sided(dof: int) -> float:
    """The one-sided 95% Student-t quantile for ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError("a t bound needs at least one degree of freedom")
    return _T95_ONE_SIDED[dof - 1] if dof <= len(_T95_ONE_SIDED) else 1.645


def one_sided_bounds(figure: dict[str, float | int | None]) -> tuple[float, float] | None:
    """The one-sided 95% lower and upper confidence bounds of a :func:`mean_ci` figure's mean (what
    a directional claim, "better" or "worse", needs); None with fewer than two values."""
    n, mean, low = figure["n"], figure["mean"], figure["ci_low"]
    if mean is None or low is None or not isinstance(n, int) or n < 2:
        return None
    margin = (float(mean) - float(low)) * t95_one_sided(n - 1) / t95(n - 1)
    return float(mean) - margin, float(mean) + margin


def t95(dof: int) -> float:
    """The two-sided 95% Student-t quantile for ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError("a t interval needs at least one degree of freedom")
    return _T95[dof - 1] if dof <= len(_T95) else 1.96


def mean_ci(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean and 95% t-interval over seeds of the finite ``values`` (None and NaN are left out).

    ``ci_low``/``ci_high`` are None with fewer than two values: one seed gives no interval.
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if x.size == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "n": 1}
    half = t95(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": int(x.size)}
