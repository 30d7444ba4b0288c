"""Learning agents and policies, and the metrics that judge them."""

from .metrics import (
    TRADES_PER_YEAR,
    Convergence,
    accuracy,
    average_return,
    convergence_episode,
    episode_accuracy,
    hindsight_best,
    latency_ms,
    max_drawdown,
    mean_ci,
    retention_rate,
    rolling_mean,
    sharpe_ratio,
    win_rate,
)

__all__ = [
    "TRADES_PER_YEAR",
    "Convergence",
    "accuracy",
    "average_return",
    "convergence_episode",
    "episode_accuracy",
    "hindsight_best",
    "latency_ms",
    "max_drawdown",
    "mean_ci",
    "retention_rate",
    "rolling_mean",
    "sharpe_ratio",
    "win_rate",
]
