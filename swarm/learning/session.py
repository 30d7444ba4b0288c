"""Drive one agent through a sequence of decisions and log what happened.

This is the simplest driver (synchronous, one agent); the swarm orchestrator drives many agents
through the same ``decide``/``learn`` calls on its kernel. The driver, not the agent, reads the
performance counter, to measure decision latency and learning overhead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from collections.abc import Callable, Sequence

import numpy as np

from .. import progress
from ..market import STRATEGIES
from .agent import LearningAgent
from .episodes import Decision, Outcome
from .policies import Choice


#: Decisions per episode in progress reports of :func:`run` (the scorers' default episode).
EPISODE_DECISIONS = 10


@dataclass(slots=True)
class RunLog:
    """One agent's run: per decision, the choice, reward, correctness and timings."""

    agent: str
    choices: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    tied: list[bool] = field(default_factory=list)  # more than one strategy was hindsight-best
    regrets: list[float] = field(default_factory=list)  # best strategy's P&L minus the chosen one's
    explored: list[bool] = field(default_factory=list)
    regimes: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # virtual time of each decision
    decide_s: list[float] = field(default_factory=list)
    learn_s: list[float] = field(default_factory=list)

    def extend(self, other: RunLog) -> None:
        for name in ("choices", "rewards", "correct", "tied", "regrets", "explored", "regimes", "times", "decide_s", "learn_s"):
            getattr(self, name).extend(getattr(other, name))

    def __len__(self) -> int:
        return len(self.choices)

    @property
    def correct_array(self) -> np.ndarray:
        return np.asarray(self.correct, dtype=float)


def step(agent: LearningAgent, decision: Decision, log: RunLog, *, learn: bool = True,
         clock: Callable[[], float] = time.perf_counter) -> Choice:
    """One decision: decide, trade (look up the chosen strategy's P&L), learn; log it all.
    Returns the choice (with the patterns that informed it)."""
    t0 = clock()
    choice = agent.decide(decision.context)
    t1 = clock()
    i = STRATEGIES.index(choice.strategy)
    reward = float(decision.pnl[i])
    if learn:
        agent.learn(Outcome(decision.context, choice.strategy, reward, choice.informed_by))
    else:  # evaluation only: close the decision without learning from it
        agent.abandon(decision.context)
    t2 = clock()
    log.choices.append(i)
    log.rewards.append(reward)
    best = decision.best
    log.correct.append(bool(i in best))
    log.tied.append(bool(best.size > 1))
    log.regrets.append(float(decision.pnl.max()) - reward)
    log.explored.append(choice.explored)
    log.regimes.append(decision.regime)
    log.times.append(decision.context.time)
    log.decide_s.append(t1 - t0)
    log.learn_s.append(t2 - t1)
    return choice


def run(agent: LearningAgent, decisions: Sequence[Decision], *, learn: bool = True,
        log: RunLog | None = None) -> RunLog:
    """Every decision in order; returns (or extends) the log."""
    log = log if log is not None else RunLog(agent.name)
    per, total = EPISODE_DECISIONS, len(decisions) // EPISODE_DECISIONS
    for i, d in enumerate(decisions, start=1):
        step(agent, d, log, learn=learn)
        if i % per == 0:
            progress.report(i // per, total)
    finish = getattr(agent.policy, "finish", None)
    if learn and callable(finish):
        finish()
    return log


def merge_in_time(logs: Sequence[RunLog], name: str = "swarm") -> RunLog:
    """Every log's decisions in one log, in time order (ties keep the order of ``logs``): the
    trades of a swarm as one book, so its equity curve, Sharpe and drawdown follow the clock
    instead of running one agent's trades after another's."""
    order = sorted((t, k, i) for k, log in enumerate(logs) for i, t in enumerate(log.times))
    out = RunLog(name)
    fields = ("choices", "rewards", "correct", "tied", "regrets", "explored", "regimes", "times",
              "decide_s", "learn_s")
    for _, k, i in order:
        for f in fields:
            getattr(out, f).append(getattr(logs[k], f)[i])
    return out
