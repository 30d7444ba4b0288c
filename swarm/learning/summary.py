"""Turn a run log into the numbers a report prints: learning, trading and performance figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import markets
from . import metrics as m
from .session import RunLog


@dataclass(frozen=True, slots=True)
class Scoring:
    """How runs are scored: episode size, convergence target and window, Sharpe annualisation."""

    trades_per_episode: int = 10
    target: float = 0.7
    window: int = 5  # episodes in the rolling accuracy
    horizon_bars: int = 10  # one trade lasts this many bars, so trades per year = 252 / horizon

    @property
    def periods_per_year(self) -> float:
        """Trades a year: the active market's bars a year (252 for daily bars, the synthetic
        market's clock; more for intraday files) over the bars one trade lasts."""
        return markets.active().bars_per_year / self.horizon_bars


def _finite(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def summarise(log: RunLog, scoring: Scoring = Scoring()) -> dict[str, Any]:
    """Accuracy (on decisions with a single best strategy; ``tie_share`` is the rest), regret to
    the oracle (mean P&L per decision given up), convergence, win rate, return, Sharpe (annualised
    by ``252 / horizon``), drawdown and timings of one run. Undefined figures are None."""
    ep = m.episode_accuracy(log.correct, scoring.trades_per_episode) if len(log) else np.zeros(0)
    conv = m.convergence_episode(ep, scoring.target, scoring.window)
    tail = ep[-scoring.window:] if ep.size else ep
    single = np.asarray(log.correct, dtype=bool)[~np.asarray(log.tied, dtype=bool)] if len(log) else np.zeros(0)
    return {
        "decisions": len(log),
        "episodes": int(ep.size),
        # accuracy counts only decisions with one best strategy: where several tie, any of them is
        # "right" and a learner that favours tie-prone strategies would look better than it trades
        "accuracy": _finite(float(np.mean(single))) if single.size else None,
        "tie_share": _finite(float(np.mean(log.tied))) if len(log) else None,
        "regret": _finite(float(np.mean(log.regrets))) if len(log) else None,
        "final_accuracy": _finite(float(tail.mean())) if tail.size else None,
        "convergence_episode": conv.to_json(),
        "win_rate": _finite(m.win_rate(log.rewards)),
        "avg_return": _finite(m.average_return(log.rewards)),
        "sharpe_ratio": _finite(m.sharpe_ratio(log.rewards, periods_per_year=scoring.periods_per_year)),
        "max_drawdown": _finite(m.max_drawdown(log.rewards)),
        "exploration_share": _finite(float(np.mean(log.explored))) if len(log) else None,
        "decision_latency_ms": m.latency_ms(log.decide_s),
        "learning_overhead_ms": m.latency_ms(log.learn_s),
        "episode_accuracy": [round(float(x), 4) for x in ep],
        "episode_regret": [round(float(x), 6) for x in m.episode_mean(log.regrets, scoring.trades_per_episode)],
    }
