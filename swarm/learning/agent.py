"""A learning agent, sans-IO: ``decide(context)`` and ``learn(outcome)`` are plain methods.

The agent owns a policy and the bookkeeping around it (what it decided and has not yet heard
back about); it never reads a clock or touches a network, so the same agent runs in the
swarm's virtual time, in real time, or in a test that calls it by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .episodes import Context, Outcome
from .policies import Choice, Policy


@dataclass(slots=True)
class AgentCounters:
    decisions: int = 0
    explored: int = 0
    outcomes: int = 0
    total_reward: float = 0.0


class LearningAgent:
    """One agent: a name, a policy, and the decisions it is waiting to hear about."""

    def __init__(self, name: str, policy: Policy) -> None:
        self.name = name
        self.policy = policy
        self.counters = AgentCounters()
        self._open: dict[tuple[str, int], Choice] = {}

    def decide(self, context: Context) -> Choice:
        """Observe, retrieve and choose (what retrieval means is the policy's business)."""
        choice = self.policy.choose(context)
        self._open[(context.symbol, context.bar)] = choice
        self.counters.decisions += 1
        self.counters.explored += int(choice.explored)
        return choice

    def learn(self, outcome: Outcome) -> None:
        """Learn from a finished trade; the choice behind it supplies the informing patterns."""
        choice = self._open.pop((outcome.context.symbol, outcome.context.bar), None)
        if choice is None:
            raise KeyError(f"{self.name}: no open decision for {outcome.context.symbol} bar {outcome.context.bar}")
        if choice.strategy != outcome.strategy:
            raise ValueError(f"{self.name}: outcome is for {outcome.strategy}, the agent chose {choice.strategy}")
        if not outcome.informed_by and choice.informed_by:
            outcome = replace(outcome, informed_by=choice.informed_by)
        self.policy.update(outcome)
        self.counters.outcomes += 1
        self.counters.total_reward += outcome.reward

    def abandon(self, context: Context) -> None:
        """Close a decision without learning from it (evaluation runs)."""
        self._open.pop((context.symbol, context.bar), None)

    @property
    def open_decisions(self) -> int:
        return len(self._open)
