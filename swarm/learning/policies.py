"""Policies that choose a strategy for a context, and learn from the outcome.

All are sans-IO and deterministic for a seed: ``choose(context)`` returns a :class:`Choice`,
``update(outcome)`` learns; neither touches a clock or a socket. Learners here keep their
knowledge in small numpy tables; the ReasoningBank memory policy is in
:mod:`swarm.learning.memory_policy`. Baselines (random, best fixed, hindsight oracle) sit beside
every learner in every report.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol
from collections.abc import Mapping, Sequence

import numpy as np

from ..market import FEATURE_NAMES, FEATURE_SCALE, STRATEGIES
from .episodes import Context, Decision, Outcome

F = {name: i for i, name in enumerate(FEATURE_NAMES)}
N_ACTIONS = len(STRATEGIES)
#: Trade P&L is divided by this before learners see it, so rewards are of order one.
REWARD_SCALE = 0.01


@dataclass(frozen=True, slots=True)
class Choice:
    """A policy's decision: the strategy, whether it was an exploratory pick, and what informed it."""

    strategy: str
    explored: bool = False
    scores: tuple[float, ...] = ()  # the policy's value for each strategy, STRATEGIES order
    informed_by: tuple[str, ...] = ()  # memory pattern ids behind the choice

    @property
    def index(self) -> int:
        return STRATEGIES.index(self.strategy)


class Policy(Protocol):
    name: str

    def choose(self, context: Context) -> Choice: ...

    def update(self, outcome: Outcome) -> None: ...


@dataclass(frozen=True, slots=True)
class Exploration:
    """Epsilon-greedy exploration that decays: ``max(floor, start * decay ** decisions)``."""

    start: float = 0.3
    decay: float = 0.995
    floor: float = 0.02

    def __post_init__(self) -> None:
        if not (0 <= self.floor <= self.start <= 1 and 0 < self.decay <= 1):
            raise ValueError("exploration needs 0 <= floor <= start <= 1 and 0 < decay <= 1")

    def epsilon(self, decisions: int) -> float:
        return max(self.floor, self.start * self.decay ** decisions)


def _argmax(values: Sequence[float] | np.ndarray) -> int:
    """Index of the largest value; ties go to the first (deterministic)."""
    return int(np.argmax(np.asarray(values)))


class _Explorer:
    """Shared epsilon-greedy machinery: the decision counter and the seeded generator."""

    def __init__(self, exploration: Exploration, seed: int) -> None:
        self.exploration = exploration
        self.rng = np.random.default_rng(seed)
        self.decisions = 0

    def pick(self, values: Sequence[float] | np.ndarray, allowed: Sequence[int] | None = None) -> tuple[int, bool]:
        """Epsilon-greedy over all actions, or over the ``allowed`` action indices only."""
        eps = self.exploration.epsilon(self.decisions)
        self.decisions += 1
        if self.rng.random() < eps:
            if allowed is not None:
                return int(allowed[int(self.rng.integers(len(allowed)))]), True
            return int(self.rng.integers(N_ACTIONS)), True
        v = np.asarray(values, dtype=float)
        if allowed is not None:
            v = np.where(np.isin(np.arange(v.size), allowed), v, -np.inf)
        best = np.flatnonzero(v >= v.max() - 1e-12)
        # ties mean "no preference": pick among them at random, not always the first strategy
        return (int(best[0]) if best.size == 1 else int(self.rng.choice(best))), False


# ---- baselines ------------------------------------------------------------------------------


class RandomPolicy:
    """Uniformly random strategy: the floor every learner must clear."""

    def __init__(self, seed: int = 0) -> None:
        self.name = "random"
        self.rng = np.random.default_rng(seed)

    def choose(self, context: Context) -> Choice:
        return Choice(STRATEGIES[int(self.rng.integers(N_ACTIONS))], explored=True)

    def update(self, outcome: Outcome) -> None:
        pass


class FixedPolicy:
    """Always the same strategy (the "best fixed" baseline when given :func:`best_fixed_strategy`)."""

    def __init__(self, strategy: str, name: str | None = None) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self.name = name or f"fixed:{strategy}"

    def choose(self, context: Context) -> Choice:
        return Choice(self.strategy)

    def update(self, outcome: Outcome) -> None:
        pass


def best_fixed_strategy(decisions: Sequence[Decision]) -> str:
    """The single strategy with the best risk-adjusted return (mean / sd of its trades) over
    ``decisions``, known only in hindsight; ``flat`` when no strategy makes money on average.

    Ranked by Sharpe, not total P&L: the headline figure, so the baseline is the strongest fixed
    choice on the figure it is compared on.
    """
    if not decisions:
        raise ValueError("no decisions")
    pnl = np.vstack([d.pnl for d in decisions])
    mean, sd = pnl.mean(axis=0), pnl.std(axis=0)
    ratio = np.where((sd > 0) & (mean > 0), mean / np.where(sd > 0, sd, 1.0), -np.inf)
    return STRATEGIES[_argmax(ratio)] if np.isfinite(ratio.max()) else "flat"


class HindsightOracle:
    """Knows every trade's P&L in advance and takes the best: the upper bound (accuracy 1)."""

    def __init__(self, decisions: Sequence[Decision]) -> None:
        self.name = "oracle"
        # keyed by time too: phased markets reuse bar numbers
        self._best: Mapping[tuple[str, int, float], int] = {
            (d.context.symbol, d.context.bar, d.context.time): int(d.best[0]) for d in decisions}

    def choose(self, context: Context) -> Choice:
        return Choice(STRATEGIES[self._best[(context.symbol, context.bar, context.time)]])

    def update(self, outcome: Outcome) -> None:
        pass


class ContextFreeBandit:
    """The no-memory learner: one running value per strategy, blind to context.

    Values move towards each reward by ``lr`` (an exponential moving average, so it tracks a
    drifting market); epsilon-greedy exploration decays as :class:`Exploration` says.
    """

    def __init__(self, lr: float = 0.02, exploration: Exploration = Exploration(), seed: int = 0) -> None:
        if not 0 < lr <= 1:
            raise ValueError("lr must be in (0, 1]")
        self.name = "no-memory"
        self.lr = lr
        self.values = np.zeros(N_ACTIONS)
        self._explore = _Explorer(exploration, seed)

    def choose(self, context: Context) -> Choice:
        i, explored = self._explore.pick(self.values)
        return Choice(STRATEGIES[i], explored, tuple(self.values))

    def update(self, outcome: Outcome) -> None:
        i = STRATEGIES.index(outcome.strategy)
        self.values[i] += self.lr * (outcome.reward / REWARD_SCALE - self.values[i])


# ---- tabular and linear learners over the same features --------------------------------------

#: Bin edges of the discretised state: trend strength, z-score, |channel|, volatility.
STATE_BINS: dict[str, tuple[float, ...]] = {
    "trend_strength": (-1.0, 1.0),
    "zscore": (-1.0, 1.0),
    "channel": (-1.0, 1.0),
    "volatility": (0.008, 0.016),
}


def discretise(features: np.ndarray) -> int:
    """A state index in ``[0, 3**4)`` from the binned features in :data:`STATE_BINS`."""
    state = 0
    for name, edges in STATE_BINS.items():
        v = float(features[F[name]])
        state = state * (len(edges) + 1) + int(np.searchsorted(edges, v if math.isfinite(v) else 0.0))
    return state


N_STATES = math.prod(len(e) + 1 for e in STATE_BINS.values())


class _TemporalDifference(ABC):
    """Tabular Q over discretised contexts; consecutive decisions on an asset form its episode.

    The update for a trade waits for that asset's next decision, which supplies the bootstrap
    ``gamma * next_value``; :meth:`finish` closes open trades with no bootstrap.
    """

    def __init__(self, name: str, lr: float, gamma: float, exploration: Exploration, seed: int) -> None:
        if not 0 < lr <= 1 or not 0 <= gamma < 1:
            raise ValueError("lr must be in (0, 1] and gamma in [0, 1)")
        self.name = name
        self.lr, self.gamma = lr, gamma
        self.q = np.zeros((N_STATES, N_ACTIONS))
        self._explore = _Explorer(exploration, seed)
        self._pending: dict[str, tuple[int, int, float]] = {}  # symbol -> (state, action, reward)
        self._last: dict[str, tuple[int, int]] = {}  # symbol -> (state, action) awaiting its reward

    @abstractmethod
    def _next_value(self, state: int, action: int) -> float:
        """The bootstrap value of the next state, given the action chosen there."""

    def _settle(self, symbol: str, next_value: float) -> None:
        s, a, r = self._pending.pop(symbol)
        self.q[s, a] += self.lr * (r + self.gamma * next_value - self.q[s, a])

    def choose(self, context: Context) -> Choice:
        s = discretise(context.features)
        a, explored = self._explore.pick(self.q[s])
        if context.symbol in self._pending:
            self._settle(context.symbol, self._next_value(s, a))
        self._last[context.symbol] = (s, a)
        return Choice(STRATEGIES[a], explored, tuple(self.q[s]))

    def update(self, outcome: Outcome) -> None:
        s, a = self._last.pop(outcome.context.symbol)
        self._pending[outcome.context.symbol] = (s, a, outcome.reward / REWARD_SCALE)

    def finish(self) -> None:
        for symbol in list(self._pending):
            self._settle(symbol, 0.0)


class QLearning(_TemporalDifference):
    """Off-policy TD control: bootstraps on the best next action, ``max_a Q(s', a)``."""

    def __init__(self, lr: float = 0.1, gamma: float = 0.3, exploration: Exploration = Exploration(),
                 seed: int = 0) -> None:
        super().__init__("q-learning", lr, gamma, exploration, seed)

    def _next_value(self, state: int, action: int) -> float:
        return float(self.q[state].max())


class Sarsa(_TemporalDifference):
    """On-policy TD control: bootstraps on the action actually taken next, ``Q(s', a')``."""

    def __init__(self, lr: float = 0.1, gamma: float = 0.3, exploration: Exploration = Exploration(),
                 seed: int = 0) -> None:
        super().__init__("sarsa", lr, gamma, exploration, seed)

    def _next_value(self, state: int, action: int) -> float:
        return float(self.q[state, action])


def linear_features(features: np.ndarray) -> np.ndarray:
    """Scaled, clipped features plus a bias term: the input of the linear learners."""
    x = np.nan_to_num(np.asarray(features, dtype=float) / np.asarray(FEATURE_SCALE), nan=0.0)
    return np.append(np.clip(x, -5.0, 5.0), 1.0)


class LinearActorCritic:
    """One-step actor-critic: a softmax actor and a linear critic over :func:`linear_features`.

    ``delta = r - V(x)``; critic ``w += lr_critic * delta * x``; actor
    ``theta_a += lr_actor * delta * (1[a] - pi_a) * x``. Exploration comes from the softmax.
    """

    def __init__(self, lr_actor: float = 0.02, lr_critic: float = 0.05, seed: int = 0) -> None:
        self.name = "actor-critic"
        self.lr_actor, self.lr_critic = lr_actor, lr_critic
        n = len(FEATURE_NAMES) + 1
        self.theta = np.zeros((N_ACTIONS, n))
        self.w = np.zeros(n)
        self.rng = np.random.default_rng(seed)
        self._last: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        z = self.theta @ x
        z = np.exp(z - z.max())
        return z / z.sum()

    def choose(self, context: Context) -> Choice:
        x = linear_features(context.features)
        pi = self.probabilities(x)
        a = int(self.rng.choice(N_ACTIONS, p=pi))
        self._last[context.symbol] = (x, pi)
        return Choice(STRATEGIES[a], bool(a != _argmax(pi)), tuple(pi))

    def update(self, outcome: Outcome) -> None:
        x, pi = self._last.pop(outcome.context.symbol)
        a = STRATEGIES.index(outcome.strategy)
        delta = outcome.reward / REWARD_SCALE - float(self.w @ x)
        self.w += self.lr_critic * delta * x
        grad = -pi[:, None] * x[None, :]
        grad[a] += x
        self.theta += self.lr_actor * delta * grad


class RegimeRule:
    """Knows each decision's hidden regime and plays the strategy with the best mean P&L in that
    regime over ``decisions`` (chosen in hindsight): the context ceiling, what a learner that read
    the regime perfectly from its features could earn with one strategy per regime."""

    def __init__(self, decisions: Sequence[Decision]) -> None:
        self.name = "regime-rule"
        known = [d for d in decisions if d.regime >= 0]
        if not known:
            raise ValueError("the regime rule needs decisions whose regime is known (synthetic markets)")
        by_regime: dict[int, list[np.ndarray]] = {}
        for d in known:
            by_regime.setdefault(d.regime, []).append(d.pnl)
        self.per_regime = {r: _argmax(np.mean(rows, axis=0)) for r, rows in sorted(by_regime.items())}
        self._regime: dict[tuple[str, int, float], int] = {}
        self.add(known)

    def add(self, decisions: Sequence[Decision]) -> None:
        """Learn the hidden regime of ``decisions`` too (a stream it will be asked to play)."""
        self._regime.update({(d.context.symbol, d.context.bar, d.context.time): d.regime for d in decisions})

    def choose(self, context: Context) -> Choice:
        regime = self._regime[(context.symbol, context.bar, context.time)]
        return Choice(STRATEGIES[self.per_regime[regime]])

    def update(self, outcome: Outcome) -> None:
        pass
