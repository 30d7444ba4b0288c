"""Multi-strategy: momentum, mean-reversion and breakout specialists plus a meta-learner that maps
market conditions to a strategy, re-chosen for each asset every ``ROTATE_EVERY`` of its trades. Everyone shares
patterns, so each specialist's lessons reach the meta-learner (cross-strategy transfer)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

from swarm.learning.episodes import Context, Outcome
from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy
from swarm.learning.policies import Choice
from swarm.specs import AgentSpec, rule
from swarm.topology import Topology

SPECIALISTS = ("momentum", "mean_reversion", "breakout")
ROTATE_EVERY = 3  # trades (every 30 bars: well inside a regime, which lasts ~200 bars)
META = "meta-learner"
#: The conditions the meta-learner maps to strategies, by hidden regime.
CONDITIONS = {"trend_up": "trending", "trend_down": "trending", "ranging": "ranging", "volatile": "volatile"}
INTENDED = {"trending": "momentum", "ranging": "mean_reversion", "volatile": "breakout"}


@rule  # an agent process sends it back to the orchestrator by name
@dataclass(frozen=True, slots=True)
class RotationReport:
    picks: list[tuple[int, str, str]]


@rule
class RotatingPolicy:
    """Per asset, holds one strategy for ``every`` trades, then asks the memory policy again."""

    def __init__(self, inner: MemoryPolicy, every: int = ROTATE_EVERY) -> None:
        self.inner = inner
        self.name = inner.name
        self.every = every
        self.count = 0
        self._per_symbol: dict[str, int] = {}
        self._active: dict[str, str] = {}
        self.picks: list[tuple[int, str, str]] = []  # (trade number, symbol, strategy chosen at a rotation)

    def report(self) -> RotationReport:
        """What the rotator did, as plain data (an agent process sends it to its orchestrator)."""
        return RotationReport(list(self.picks))

    def choose(self, context: Context) -> Choice:
        n = self._per_symbol.get(context.symbol, 0)
        if n % self.every == 0 or context.symbol not in self._active:
            choice = self.inner.choose(context)
            self._active[context.symbol] = choice.strategy
            self.picks.append((self.count, context.symbol, choice.strategy))
        else:
            choice = Choice(self._active[context.symbol], False)
        self._per_symbol[context.symbol] = n + 1
        self.count += 1
        return choice

    def update(self, outcome: Outcome) -> None:
        self.inner.update(outcome)


def agents(seed: int, memory: MemoryConfig = MemoryConfig(), symbols: tuple[str, ...] = ("AAA", "BBB", "CCC"),
           every: int = ROTATE_EVERY) -> list[AgentSpec]:
    """Three specialists (their strategy or flat) and the rotating meta-learner, on one market."""
    out = [AgentSpec(f"{s.replace('_', '-')}-specialist", role="specialist", market_seed=seed, symbols=symbols,
                     memory=replace(memory, allowed=(s, "flat"))) for s in SPECIALISTS]
    # it weighs the advice of four authors (itself and three specialists), so it retrieves an agent's
    # worth of patterns per author: with one agent's k, their patterns only narrowed its neighbourhood
    # instead of adding evidence, and over seeds 0-19 sharing gained nothing (see the README)
    meta_memory = replace(memory, allowed=SPECIALISTS, k=memory.k * (len(SPECIALISTS) + 1))
    out.append(AgentSpec(META, role="meta", market_seed=seed, symbols=symbols, memory=meta_memory,
                         wrap=partial(RotatingPolicy, every=every)))  # picklable: agent processes get it
    return out


#: Everyone talks to everyone; no controller: the meta-learner's rotation is its policy.
TOPOLOGY = Topology(
    name="multi-strategy-meta-learning",
    summary="momentum, mean-reversion and breakout specialists and a meta-learner that picks whom to follow",
    agents=agents)
