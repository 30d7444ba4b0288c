"""The ReasoningBank memory policy: choose the strategy that similar past trades support.

The loop, per decision: embed the context -> retrieve the ``k`` most similar patterns ->
weigh their evidence -> choose (exploring now and then) -> trade (the driver) -> judge the
trade -> distill it into a pattern -> store it -> ``record_outcome`` on the patterns that
informed the choice. The policy touches no clock: the bank's clock reads the virtual time of
the context being decided.

Evidence: a retrieved pattern about strategy ``a`` votes ``s = +/-(2 * confidence - 1)`` (a
strategy for, a lesson against; confidence is the chance its advice holds) with weight
``w = similarity ** sharpness * (1 + successes) ** use_weight`` (times a recency factor if a half-life
is set). The value of ``a`` is ``sum(w * s) / (sum(w) + prior)``, shrunk towards zero when
evidence is thin; unexplored strategies get an optimism bonus that decays with local evidence.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..market import FEATURE_NAMES, FEATURE_SCALE, STRATEGIES
from ..memory import ContextEmbedder, OutcomeJudge, Pattern, ReasoningBank, Step, Trajectory
from ..memory.consolidate import ConsolidationPolicy, ConsolidationReport
from .episodes import Context, Outcome
from .policies import N_ACTIONS, REWARD_SCALE, Choice, Exploration, _Explorer

DOMAIN = "trading"


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """Knobs of the memory policy; the defaults are the ones the benchmarks report."""

    lr: float = 0.02  # record_outcome learning rate (confidence EMA)
    k: int = 32  # patterns retrieved per decision
    sharpness: float = 2.0  # similarity exponent: higher trusts only the nearest
    use_weight: float = 0.5  # how much a pattern's record (times its advice held) adds to its weight
    prior: float = 0.5  # evidence mass that shrinks thin evidence towards zero
    optimism: float = 0.3  # bonus for strategies with little local evidence
    exploration: Exploration = Exploration()
    half_life: float | None = None  # virtual seconds; None = no recency decay
    capacity: int | None = None  # most patterns kept; when full, the oldest unconsolidated go first
    long_term_share: float = 0.75  # share of ``capacity`` consolidation may keep as long-term memory
    update_top: int = 8  # informing patterns whose outcome is recorded per decision
    judge_scale: float = 2 * REWARD_SCALE  # a trade this far from 0 is judged with confidence ~0.88
    feature_scale: tuple[float, ...] = FEATURE_SCALE  # per-feature distance unit; larger = matters less
    embed_dim: int = 64
    bandwidth: float = 2.0
    embed_seed: int = 0  # fixes the embedding space: agents that share patterns must share it
    allowed: tuple[str, ...] | None = None  # strategies this agent may trade (None: all); specialists
    seed: int = 0  # exploration

    def __post_init__(self) -> None:
        if not 0 < self.lr <= 1:
            raise ValueError("lr must be in (0, 1]")
        if self.k < 1 or self.update_top < 0 or self.prior < 0 or self.optimism < 0:
            raise ValueError("k >= 1, update_top >= 0, prior >= 0 and optimism >= 0 are required")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError("capacity must be >= 1")
        if not 0 < self.long_term_share < 1:
            raise ValueError("long_term_share must be in (0, 1)")
        if self.allowed is not None and (not self.allowed or set(self.allowed) - set(STRATEGIES)):
            raise ValueError(f"allowed must be a non-empty subset of {STRATEGIES}")


@dataclass(slots=True)
class MemoryStats:
    """What the policy did, for the metrics: pattern writes, outcome updates, evictions."""

    stored: int = 0
    outcomes_recorded: int = 0
    evicted: int = 0
    consolidations: list[ConsolidationReport] = field(default_factory=list)


def make_embedder(config: MemoryConfig) -> ContextEmbedder:
    return ContextEmbedder(len(FEATURE_NAMES), dim=config.embed_dim, bandwidth=config.bandwidth,
                           scale=config.feature_scale, seed=config.embed_seed)


class MemoryPolicy:
    """A learner whose only knowledge is its ReasoningBank."""

    def __init__(self, bank: ReasoningBank, config: MemoryConfig = MemoryConfig(), name: str = "memory") -> None:
        self.name = name
        self.config = config
        self.bank = bank
        self.stats = MemoryStats()
        self._now = 0.0
        bank.clock = lambda: self._now
        self.lr = config.lr
        bank.outcome_lr = config.lr
        bank.judge = OutcomeJudge(threshold=0.0, scale=config.judge_scale)
        self._explore = _Explorer(config.exploration, config.seed)
        self._trades = 0
        self._started = False
        self._short_term: deque[str] | None = None  # unconsolidated pattern ids, oldest first
        self._allowed = None if config.allowed is None else [STRATEGIES.index(a) for a in config.allowed]

    @classmethod
    def open(cls, path: str | os.PathLike[str] = ":memory:", config: MemoryConfig = MemoryConfig(),
             name: str = "memory", **store_options: object) -> "MemoryPolicy":
        """A policy over a bank at ``path`` (created if new), embedding contexts as :func:`make_embedder`."""
        bank = ReasoningBank.open(path, make_embedder(config), agent=name, **store_options)
        return cls(bank, config, name)

    def close(self) -> None:
        self.bank.close()

    # ---- deciding --------------------------------------------------------------------------

    def evidence(self, embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[Pattern, float, float]]]:
        """Per strategy: net evidence value and evidence mass; plus the hits behind them as
        ``(pattern, weight, similarity)``."""
        c = self.config
        hits = self.bank.store.search(embedding, c.k, domain=DOMAIN)
        num, mass = np.zeros(N_ACTIONS), np.zeros(N_ACTIONS)
        weighted = []
        for p, sim in hits:
            if p.action not in STRATEGIES or sim <= 0:
                continue
            w = sim ** c.sharpness * (1.0 + p.successes) ** c.use_weight
            if c.half_life is not None:
                last = p.last_used_at if p.last_used_at is not None else p.created_at
                w *= 0.5 ** (max(0.0, self._now - last) / c.half_life)
            s = (1.0 if p.kind == "strategy" else -1.0) * (2.0 * p.confidence - 1.0)
            i = STRATEGIES.index(p.action)
            num[i] += w * s
            mass[i] += w
            weighted.append((p, w, sim))
        return num / (mass + c.prior), mass, weighted

    def choose(self, context: Context) -> Choice:
        self._now = context.time
        if not self._started:
            # exploration decays with experience, and a preloaded bank *is* experience: a warm
            # agent starts with the exploration rate of one that made that many trades itself
            self._started = True
            self._explore.decisions += len(self.bank.store)
        emb = self.bank.embedder.embed(context.features)
        value, mass, weighted = self.evidence(emb)
        score = value + self.config.optimism / np.sqrt(1.0 + mass)
        i, explored = self._explore.pick(score, self._allowed)
        informers = sorted((h for h in weighted if h[0].action == STRATEGIES[i]), key=lambda h: -h[1])
        ids = tuple(p.id for p, _, _ in informers[: self.config.update_top])
        return Choice(STRATEGIES[i], explored, tuple(float(v) for v in score), ids)

    def preference(self, context: Context) -> np.ndarray:
        """Net evidence per strategy for ``context``, without exploring or recording anything:
        what this agent would vote for."""
        value, _, _ = self.evidence(self.bank.embedder.embed(context.features))
        if self._allowed is not None:
            value = np.where(np.isin(np.arange(value.size), self._allowed), value, -np.inf)
        return value

    # ---- learning --------------------------------------------------------------------------

    def update(self, outcome: Outcome) -> None:
        """Judge the trade, distill and store it, and record the outcome on its informers."""
        self._now = outcome.context.time
        self._trades += 1
        traj = Trajectory(
            id=f"{outcome.context.symbol}-{outcome.context.bar}-{self._trades}", agent=self.name,
            context=outcome.context.features, steps=(Step(outcome.strategy, f"{outcome.context.symbol} trade",
                                                          outcome.reward),),
            reward=outcome.reward, task=f"trade {outcome.context.symbol}", domain=DOMAIN,
            metadata={"feature_names": FEATURE_NAMES})
        learned = self.bank.learn(traj)
        self.stats.stored += len(learned.patterns)
        if self._short_term is not None:
            self._short_term.extend(p.id for p in learned.patterns)
        if outcome.informed_by:
            success = outcome.reward > 0
            informers = self.bank.store.get_many(list(outcome.informed_by))
            updates = [(pid, success if informers[pid].kind == "strategy" else not success, outcome.reward)
                       for pid in outcome.informed_by if pid in informers]
            self.bank.record_outcomes(updates)
            self.stats.outcomes_recorded += len(updates)
        self._evict_over_capacity()

    def _evict_over_capacity(self) -> None:
        """Bounded memory in two tiers: patterns that survived a consolidation are long-term;
        the rest are a short-term buffer evicted oldest first (plain FIFO if never consolidated)."""
        cap = self.config.capacity
        if cap is None or len(self.bank.store) <= cap:
            return
        store = self.bank.store
        if self._short_term is None:
            since = self._consolidated_at()
            fresh = (p for p in store.iter_patterns(domain=DOMAIN) if since is None or p.created_at > since)
            self._short_term = deque(p.id for p in sorted(fresh, key=lambda p: (p.created_at, p.id)))
        while len(store) > cap:
            need = len(store) - cap
            victims = [self._short_term.popleft() for _ in range(min(need, len(self._short_term)))]
            if not victims:  # the short-term buffer is empty: the oldest long-term patterns go
                oldest = sorted(store.iter_patterns(domain=DOMAIN), key=lambda p: (p.created_at, p.id))
                victims = [p.id for p in oldest[:need]]
            # ids already gone (deleted elsewhere) delete nothing; the loop then takes the next
            self.stats.evicted += store.delete_many(victims)

    def _consolidated_at(self) -> float | None:
        """Virtual time of the bank's last consolidation that changed anything (None if never)."""
        log = self.bank.store.consolidation_log()
        return max(e.at for e in log) if log else None

    def consolidate(self, policy: ConsolidationPolicy | None = None) -> ConsolidationReport:
        """Distill memory: merge duplicates and keep the most valuable patterns (not the newest)
        as long-term memory, at most ``long_term_share`` of the capacity.

        Only near-identical contexts merge (cosine >= 0.97): measured on the forgetting scenario,
        merging at 0.9 blurred distinct contexts together and lost a tenth of the retained skill.
        """
        cap = self.config.capacity
        keep = None if cap is None else max(1, int(cap * self.config.long_term_share))
        report = self.bank.consolidate(policy or ConsolidationPolicy(duplicate_similarity=0.97, max_patterns=keep))
        self.stats.consolidations.append(report)
        self._short_term = deque()  # every survivor is long-term now
        return report

    def set_learning_rate(self, lr: float) -> None:
        if not 0 < lr <= 1:
            raise ValueError("lr must be in (0, 1]")
        self.lr = self.bank.outcome_lr = lr

    def learning_rate_hint(self, context: Context, default: float) -> float:
        """The learning rate that worked best in similar past episodes (``default`` if none)."""
        return self.bank.recommend_setting("learning_rate", default, context.features).value

    def record_learning_rate(self, contexts: Sequence[Context], reward: float) -> None:
        """Remember how the current learning rate did over an episode of ``contexts``."""
        centre = np.mean([c.features for c in contexts], axis=0)
        self.bank.record_setting("learning_rate", self.lr, reward / REWARD_SCALE, context=centre)
