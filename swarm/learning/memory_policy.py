"""The ReasoningBank memory policy: choose the strategy that similar past trades support.

The loop, per decision: embed the context -> retrieve the ``k`` most similar patterns ->
weigh their evidence -> choose (exploring now and then) -> trade (the driver) -> judge the
trade -> distill it into a pattern -> store it -> ``record_outcome`` on the patterns that
informed the choice. The policy touches no clock: the bank is built with a :class:`DecisionClock`
that reads the virtual time of the context being decided.

What the memory keeps: every trade becomes a pattern (a strategy if it made money, a lesson if
it lost) whose ``source.reward`` is what its action earned in its context, so the memory holds the
size of outcomes, not only wins and losses. Patterns that informed a choice also record the
outcome (uses, successes, total reward) for consolidation and for readers of the bank.

How it weighs: for each strategy ``a``, the retrieved patterns about ``a`` give a kernel-weighted
mean reward ``mean_a = sum(w * r) / (sum(w) + prior)`` with ``w = similarity ** sharpness``
(times a recency factor if a half-life is set; the prior shrinks thin evidence towards zero,
what ``flat`` earns), and a spread ``s_a`` (weighted deviation of those rewards, starting from
``prior_sd``). The value of ``a`` is ``mean_a - risk_aversion * s_a``: a strategy that earns the
same with wilder swings is worth less (Sharpe, not win rate). Linear in the spread, so rescaled
rewards (another market, another asset) barely move a choice once evidence outweighs the prior; a
mean-variance rule (``s_a**2``) did as well on the default market but fell to a Sharpe of 1.09 on
the previous one, whose bursts are four times larger.

What it compares: contexts folded onto one direction (``fold``, on by default). The market and
the strategies are mirror-symmetric (a sell-off is a rally upside down, and every strategy trades
the mirror image the other way round), so each context is embedded as seen from the side of its
20-bar move: the signed features (returns, trend strength, z-score, channel position) times the
sign of ``ret_20``. A rally and the mirror-image sell-off then retrieve the same evidence, which
doubles the evidence behind every choice (on real prices, which drift and skew, the symmetry only
holds roughly: ``fold=False`` compares raw contexts). Measured on tuning seeds 0-19 (before any
held-out look), it raised the edge captured on every setting (weakest 0.49 -> 0.60); a 5-bar
volatility feature and a wider ``k`` on top of it did not help.

How it explores: Thompson sampling. Each decision draws ``value_a + explore_scale * s_a /
sqrt(1 + sum(w)) * N(0, 1)`` and plays the largest draw, so a strategy is tried in proportion to
the chance it is the best here, and exploration fades where evidence is dense.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
from collections import deque
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..market import FEATURE_NAMES, STRATEGIES
from ..memory import ContextEmbedder, Neighbours, OutcomeJudge, Pattern, ReasoningBank, Step, Trajectory
from ..memory.consolidate import ConsolidationPolicy, ConsolidationReport
from .episodes import Context, Outcome
from .policies import N_ACTIONS, REWARD_SCALE, Choice, Exploration

DOMAIN = "trading"
_ACTION_INDEX = {name: i for i, name in enumerate(STRATEGIES)}
#: Decisions whose claims wait for their outcome (the oldest go: a decision that was only
#: evaluated, never traded, gets none)
OPEN_CLAIMS = 1024
#: Decisions' Thompson noise drawn in one call (MemoryPolicy._noise)
NOISE_BATCH = 256

#: How far apart two contexts are, per feature (FEATURE_NAMES order; inf = not compared; smaller =
#: matters more). Tuned on seeds below 100 only: one- and five-bar returns are noise for what a
#: 10-bar trade will earn, and the volatility index tells the regime apart best.
MEMORY_FEATURE_SCALE: tuple[float, ...] = (math.inf, math.inf, 0.1, 0.01, 1.0, 1.0, 1.0, 2.5)


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """Knobs of the memory policy; the defaults are the ones the benchmarks report."""

    lr: float = 0.02  # record_outcome learning rate (confidence EMA)
    k: int = 32  # patterns retrieved per decision
    sharpness: float = 2.0  # similarity exponent: higher trusts only the nearest
    prior: float = 0.5  # evidence mass that shrinks thin evidence towards zero
    prior_sd: float = 1.5  # reward spread assumed before evidence (units of REWARD_SCALE)
    risk_aversion: float = 0.1  # value = mean - risk_aversion * spread (scales with the rewards)
    explore_scale: float = 0.2  # Thompson sampling width, in standard errors
    exploration: Exploration | None = None  # extra epsilon-greedy random play on top (None: Thompson only)
    half_life: float | None = None  # virtual seconds; None = no recency decay
    capacity: int | None = None  # most patterns kept; when full, the oldest unconsolidated go first
    long_term_share: float = 0.75  # share of ``capacity`` consolidation may keep as long-term memory
    update_top: int = 2  # informing patterns whose outcome is recorded per decision
    judge_scale: float = 2 * REWARD_SCALE  # a trade this far from 0 is judged with confidence ~0.88
    feature_scale: tuple[float, ...] = MEMORY_FEATURE_SCALE  # per-feature distance unit; larger = matters less
    embed_dim: int = 64
    bandwidth: float = 2.0
    embed_seed: int = 0  # fixes the embedding space: agents that share patterns must share it
    retrieval: bool = True  # False: decide without looking at memory (the ablation that proves it helps)
    allowed: tuple[str, ...] | None = None  # strategies this agent may trade (None: all); specialists
    seed: int = 0  # exploration
    trust: bool = False  # weigh each author's patterns by how well its claims matched outcomes here
    claim_cap: float = 10.0  # with ``trust``: a pattern's reward counts at most this (units of REWARD_SCALE)
    trust_prior: float = 2.0  # with ``trust``: evidence mass at the own error before an author is judged
    poison: float = 0.0  # > 0: an attacker; it stores each trade's reward sign-flipped and this much larger
    poison_copies: int = 1  # an attacker's patterns per trade (a flood)
    fold: bool = True  # embed contexts folded onto one direction (the market's up/down mirror symmetry)

    def __post_init__(self) -> None:
        if not 0 < self.lr <= 1:
            raise ValueError("lr must be in (0, 1]")
        if self.k < 1 or self.update_top < 0 or self.prior < 0 or self.prior_sd <= 0:
            raise ValueError("k >= 1, update_top >= 0, prior >= 0 and prior_sd > 0 are required")
        if self.risk_aversion < 0 or self.explore_scale < 0:
            raise ValueError("risk_aversion and explore_scale must be >= 0")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError("capacity must be >= 1")
        if not 0 < self.long_term_share < 1:
            raise ValueError("long_term_share must be in (0, 1)")
        if self.allowed is not None and (not self.allowed or set(self.allowed) - set(STRATEGIES)):
            raise ValueError(f"allowed must be a non-empty subset of {STRATEGIES}")
        if self.claim_cap <= 0 or self.trust_prior <= 0 or self.poison < 0 or self.poison_copies < 1:
            raise ValueError("claim_cap > 0, trust_prior > 0, poison >= 0 and poison_copies >= 1 are required")


@dataclass(frozen=True, slots=True)
class Evidence:
    """Per strategy (STRATEGIES order): estimated reward here, its spread, and the evidence mass;
    plus the hits behind them as ``(pattern, weight, similarity)``."""

    mean: np.ndarray
    spread: np.ndarray
    mass: np.ndarray
    hits: list[tuple[Pattern, float, float]]


@dataclass(slots=True)
class MemoryStats:
    """What the policy did, for the metrics: pattern writes, outcome updates, evictions."""

    stored: int = 0
    outcomes_recorded: int = 0
    evicted: int = 0
    consolidations: list[ConsolidationReport] = field(default_factory=list)


class AuthorTrust:
    """How far each author's advice can be trusted here, learned from outcomes (in the spirit of
    gossipsub v1.1's peer scores). After a trade, every retrieved pattern about the strategy played
    made a claim (its reward, capped) that the realised reward tests. Per author, the weighted
    least-squares slope of realised rewards on its claims says whether its advice predicts what
    happens here, and how strongly; its trust is that slope over a yardstick (the median other
    author's slope, at most this agent's own patterns' slope), clipped to [0, 1]. Each author's
    slope starts at the own one, with a prior mass of ``prior`` times the own claims' mass shared
    out over the authors seen, so a new author is trusted like oneself until its record says
    otherwise. Tuned on the poisoning scenario's seeds 10-12 (see the README). A slope, not an error: the
    market's noise makes every claim miss by a lot (honest peers' squared errors here are 30-40
    units against an attacker's 100-140), but honest claims still point the right way on average
    and flipped ones the wrong way."""

    def __init__(self, me: str, prior: float) -> None:
        self.me, self.prior = me, prior
        self._xy: dict[str, float] = {}  # author -> sum of weight * claim * realised
        self._xx: dict[str, float] = {}  # author -> sum of weight * claim**2
        self._trust: dict[str, float] = {}

    def of(self, author: str) -> float:
        return self._trust.get(author, 1.0)

    def observe(self, claims: Sequence[tuple[str, float, float]], realised: float) -> None:
        """Judge ``(author, claim, weight)`` claims against the ``realised`` reward (both in units
        of REWARD_SCALE)."""
        for author, claim, w in claims:
            self._xy[author] = self._xy.get(author, 0.0) + w * claim * realised
            self._xx[author] = self._xx.get(author, 0.0) + w * claim * claim
        own_xx = self._xx.get(self.me, 0.0)
        own = self._xy.get(self.me, 0.0) / own_xx if own_xx > 0 else 1.0
        prior = self.prior * (own_xx / max(1, len(self._xx)) if own_xx > 0 else 1.0)
        slopes = {a: (self._xy[a] + prior * own) / (xx + prior) for a, xx in self._xx.items() if a != self.me}
        # the yardstick: the typical other author's slope (a minority of liars does not move it;
        # peers' experience of other market paths predicts a little less than one's own, and is
        # no less honest for it), no higher than one's own; near zero (early, or an unlearnable
        # market) it judges little
        typical = float(np.median(list(slopes.values()))) if len(slopes) >= 3 else own
        scale = max(min(own, typical), 0.05)
        for author, slope in slopes.items():
            self._trust[author] = min(1.0, max(0.0, slope / scale))

    def to_json(self) -> dict[str, float]:
        return {a: round(t, 4) for a, t in sorted(self._trust.items())}


#: Features that change sign when the market is mirrored (prices -> 1 / prices)
SIGNED_FEATURES: tuple[int, ...] = tuple(i for i, n in enumerate(FEATURE_NAMES)
                                         if n in ("ret_1", "ret_5", "ret_20", "trend_strength", "zscore", "channel"))
_FOLD_BY = FEATURE_NAMES.index("ret_20")
_SIGNED = np.array(SIGNED_FEATURES, dtype=np.intp)


def fold(features: np.ndarray) -> np.ndarray:
    """The context seen from the side of its 20-bar move: signed features times the sign of
    ``ret_20``, so a rally and the mirror-image sell-off are one context."""
    x = np.array(features, dtype=np.float64)
    if x.ndim == 1:
        if x[_FOLD_BY] < 0:
            x[_SIGNED] *= -1.0
        return x
    neg = x[:, _FOLD_BY] < 0
    x[np.ix_(neg, _SIGNED)] *= -1.0
    return x


class FoldedContextEmbedder(ContextEmbedder):
    """:class:`ContextEmbedder` over :func:`fold`-ed contexts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the scale with the signed features' signs flipped: dividing by it folds a falling
        # context as it scales it, with the same bits (IEEE division is symmetric in sign) and
        # without a fancy-indexed write per decision
        self._folding_scale = self.scale.copy()
        self._folding_scale[_SIGNED] *= -1.0

    @property
    def fingerprint(self) -> str:
        return "folded/" + super().fingerprint

    def embed(self, item: object) -> np.ndarray:
        x = self._features(item)
        return self._project(x, self._folding_scale if x[_FOLD_BY] < 0 else None)

    def embed_many(self, items: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        return super().embed_many(fold(np.asarray(items, dtype=np.float64)))


def make_embedder(config: MemoryConfig) -> ContextEmbedder:
    cls = FoldedContextEmbedder if config.fold else ContextEmbedder
    return cls(len(FEATURE_NAMES), dim=config.embed_dim, bandwidth=config.bandwidth,
               scale=config.feature_scale, seed=config.embed_seed)


def _first_max(values: list[float]) -> int:
    """The index of the largest value, the first of ties, or of the first NaN (``np.argmax``)."""
    for i, v in enumerate(values):
        if v != v:
            return i
    return values.index(max(values))


def _divide(a: float, b: float) -> float:
    """``a / b`` as numpy divides float64: NaN for 0 / 0 and an infinity for x / 0 (with a
    ``prior`` of 0, a strategy nothing was retrieved for has no estimate, which voting skips)."""
    if b:
        return a / b
    if a == 0 or a != a:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


#: A retrieved pattern as weighed: ``(key, strategy index, weight, similarity, claim)``, the claim
#: its reward in units of REWARD_SCALE (capped under ``trust``). A plain tuple: a decision makes
#: 32, and a dataclass or NamedTuple each cost it ~10 us more.
_Hit = tuple[int, int, float, float, float]
_WEIGHT = operator.itemgetter(2)
_NOBODY = Neighbours([], [], [], [])  # what a decision without retrieval weighs


class DecisionClock:
    """The virtual time of the context being decided: the bank's clock, so what the memory
    stamps (creation, last use) follows the market, not the wall."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self) -> float:
        return self.at


def make_judge(config: MemoryConfig) -> OutcomeJudge:
    """Success is a trade that made money; confidence grows with its size (``judge_scale``)."""
    return OutcomeJudge(threshold=0.0, scale=config.judge_scale)


class MemoryPolicy:
    """A learner whose only knowledge is its ReasoningBank.

    Build one with :meth:`open`: the bank gets the policy's clock, judge and outcome rate at
    construction. ``clock`` must be the one the bank was built with.
    """

    def __init__(self, bank: ReasoningBank, config: MemoryConfig, name: str, clock: DecisionClock) -> None:
        self.name = name
        self.config = config
        self.bank = bank
        self.stats = MemoryStats()
        self._clock = clock
        self.lr = config.lr
        self._rng = np.random.default_rng(config.seed)
        # Thompson noise drawn ahead in batches, used in order (see _noise); None: drawn per
        # decision, because epsilon exploration draws from the same generator in between
        self._noise_ahead: list[float] | None = [] if config.exploration is None else None
        self._noise_at = 0  # the next unused number in _noise_ahead
        self._trades = 0
        self.decisions = 0  # made so far: the epsilon schedule of ``exploration`` runs on it
        self._short_term: deque[str] | None = None  # unconsolidated pattern ids, oldest first
        self._allowed = None if config.allowed is None else [STRATEGIES.index(a) for a in config.allowed]
        self.trust = AuthorTrust(name, config.trust_prior) if config.trust else None
        # per open decision (symbol, bar): the chosen strategy's evidence as (author, claim, weight)
        self._claims: dict[tuple[str, int], list[tuple[str, float, float]]] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str] = ":memory:", config: MemoryConfig = MemoryConfig(),
             name: str = "memory", **store_options: object) -> MemoryPolicy:
        """A policy over a bank at ``path`` (created if new), embedding contexts as :func:`make_embedder`."""
        clock = DecisionClock()
        bank = ReasoningBank.open(path, make_embedder(config), agent=name, clock=clock, judge=make_judge(config),
                                  outcome_lr=config.lr, **store_options)
        return cls(bank, config, name, clock)

    def with_config(self, config: MemoryConfig) -> MemoryPolicy:
        """Another version of this learner over the same memory and clock (a rollout), keeping its
        experience (the decision count its exploration schedule runs on)."""
        self.bank.use_judge(make_judge(config))
        self.bank.set_outcome_lr(config.lr)
        policy = MemoryPolicy(self.bank, config, self.name, self._clock)
        policy.decisions = self.decisions
        return policy

    def close(self) -> None:
        self.bank.close()

    # ---- deciding --------------------------------------------------------------------------

    def evidence(self, embedding: np.ndarray) -> Evidence:
        """What the retrieved patterns say each strategy earns here: kernel-weighted mean reward,
        its spread, and the evidence mass behind it (see the module docstring)."""
        mean, spread, mass, hits, rows = self._weigh(embedding, read_rows=True)
        return Evidence(np.array(mean), np.array(spread), np.array(mass),
                        [(rows[key], w, sim) for key, _, w, sim, _ in hits])

    def _weigh(self, embedding: np.ndarray, read_rows: bool = False) -> tuple[
            list[float], list[float], list[float], list[_Hit], dict[int, Pattern]]:
        """:meth:`evidence` as plain floats, one per strategy: a decision weighs five numbers, and
        numpy's per-call overhead on arrays that small cost more than the arithmetic. The same
        IEEE operations in the same order as the array arithmetic, so the same numbers. It weighs
        the index's columns (similarity, action, reward) as of the search; the retrieved rows
        themselves are read (and returned, by key) only with ``read_rows`` or when their author or
        last use counts, and a row another connection deleted since the search is then skipped."""
        c = self.config
        trust = self.trust
        half_life = c.half_life
        near = self.bank.neighbours(embedding, c.k, domain=DOMAIN) if c.retrieval else _NOBODY
        read_rows = read_rows or trust is not None or half_life is not None
        rows = self.bank.at_keys(near.keys) if read_rows else {}
        total, mass, square = [0.0] * N_ACTIONS, [0.0] * N_ACTIONS, [0.0] * N_ACTIONS
        hits = []
        sharpness, now = c.sharpness, self._clock.at
        action_index = _ACTION_INDEX.get
        for key, sim, action, reward in zip(near.keys, near.similarity, near.action, near.reward):
            i = action_index(action)
            if i is None or sim <= 0 or reward != reward:  # NaN: a pattern without a reward
                continue
            w = sim ** sharpness
            if read_rows:
                p = rows.get(key)
                if p is None:  # deleted since the index was read
                    continue
                if half_life is not None:
                    last = p.last_used_at if p.last_used_at is not None else p.created_at
                    w *= 0.5 ** (max(0.0, now - last) / half_life)
            m = reward / REWARD_SCALE
            if trust is not None:  # bounded influence: a capped claim, weighed by its author's record
                m = min(c.claim_cap, max(-c.claim_cap, m))
                p = rows[key]
                w *= trust.of(p.author or p.source.agent)  # the signed author (the distiller, until published)
            total[i] += w * m
            mass[i] += w
            hits.append((key, i, w, sim, m))
        prior = c.prior
        if prior > 0:  # every denominator is positive: plain division (10 calls fewer)
            mean = [t / (n + prior) for t, n in zip(total, mass)]
        else:
            mean = [_divide(t, n + prior) for t, n in zip(total, mass)]
        for _, i, w, _, m in hits:
            square[i] += w * (m - mean[i]) ** 2
        floor = prior * c.prior_sd ** 2
        if prior > 0:
            spread = [math.sqrt((q + floor) / (n + prior)) for q, n in zip(square, mass)]
        else:
            spread = [math.sqrt(_divide(q + floor, n + prior)) for q, n in zip(square, mass)]
        return mean, spread, mass, hits, rows

    def choose(self, context: Context) -> Choice:
        self._clock.at = context.time
        emb = self.bank.embedder.embed(context.features)
        mean, spread, mass, hits, rows = self._weigh(emb)
        c = self.config
        risk_aversion, explore_scale = c.risk_aversion, c.explore_scale
        value = [m - risk_aversion * s for m, s in zip(mean, spread)]
        # Thompson sampling: draw each strategy's value from its estimate's uncertainty, so a
        # strategy is tried in proportion to the chance that it is the best one here
        noise = self._noise()
        draw = [v + explore_scale * s / math.sqrt(1.0 + n) * z for v, s, n, z in zip(value, spread, mass, noise)]
        if self._allowed is not None:
            allowed = self._allowed
            draw = [d if a in allowed else -math.inf for a, d in enumerate(draw)]
            value = [v if a in allowed else -math.inf for a, v in enumerate(value)]
        i = _first_max(draw)
        eps = 0.0 if c.exploration is None else c.exploration.epsilon(self.decisions)
        self.decisions += 1
        if eps > 0 and self._rng.random() < eps:
            pool = self._allowed if self._allowed is not None else range(N_ACTIONS)
            i = int(list(pool)[int(self._rng.integers(len(pool)))])
        explored = i != _first_max(value)
        informers = [h for h in hits if h[1] == i]
        informers.sort(key=_WEIGHT, reverse=True)  # heaviest first; a stable sort keeps ties in order
        top = [h[0] for h in informers[: c.update_top]]
        if not rows:
            rows = self.bank.at_keys(top)
            if len(rows) < len(top):  # another connection deleted some since the search: the next ones inform
                rows = self.bank.at_keys([h[0] for h in informers])
        ids = tuple(rows[key].id for key in top if key in rows)
        if len(ids) < len(top):  # some were deleted since the search: the next heaviest inform
            ids = tuple(itertools.islice((rows[h[0]].id for h in informers if h[0] in rows), c.update_top))
        if self.trust is not None:  # judged against the outcome once it is known (update)
            if len(self._claims) >= OPEN_CLAIMS:  # decisions closed without an outcome (evaluations)
                del self._claims[next(iter(self._claims))]
            self._claims[(context.symbol, context.bar)] = [  # the claim: the capped reward
                (rows[key].author or rows[key].source.agent, claim, sim ** c.sharpness)
                for key, _, _, sim, claim in informers]
        return Choice(STRATEGIES[i], explored, tuple(value), ids)

    def _noise(self) -> list[float]:
        """``N_ACTIONS`` standard normals, the ones ``self._rng.standard_normal(N_ACTIONS)`` would
        draw now. Without exploration nothing else draws from the generator, so they come from a
        batch drawn ahead: numpy's normals are drawn one after another from the bit stream, so a
        batch is the same numbers as its parts, and one call per decision cost it ~2 us."""
        ahead, at = self._noise_ahead, self._noise_at
        if ahead is None:
            return self._rng.standard_normal(N_ACTIONS).tolist()
        if at == len(ahead):
            ahead[:] = self._rng.standard_normal(NOISE_BATCH * N_ACTIONS).tolist()
            at = 0
        self._noise_at = at + N_ACTIONS
        return ahead[at:at + N_ACTIONS]

    def preference(self, context: Context) -> np.ndarray:
        """Net evidence per strategy for ``context``, without exploring or recording anything:
        what this agent would vote for."""
        mean, spread, _, _, _ = self._weigh(self.bank.embedder.embed(context.features))  # no row read
        value = np.array(mean) - self.config.risk_aversion * np.array(spread)
        if self._allowed is not None:
            value = np.where(np.isin(np.arange(value.size), self._allowed), value, -np.inf)
        return value

    # ---- learning --------------------------------------------------------------------------

    def update(self, outcome: Outcome) -> None:
        """Judge the trade, distill and store it, and record the outcome on its informers."""
        self._clock.at = outcome.context.time
        self._trades += 1
        claims = self._claims.pop((outcome.context.symbol, outcome.context.bar), None)
        if self.trust is not None and claims:
            self.trust.observe(claims, outcome.reward / REWARD_SCALE)
        if self.config.poison > 0:
            return self._poison(outcome)
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
            informers = self.bank.get_many(list(outcome.informed_by))
            updates = [(pid, success if informers[pid].kind == "strategy" else not success, outcome.reward)
                       for pid in outcome.informed_by if pid in informers]
            self.bank.record_outcomes(updates)
            self.stats.outcomes_recorded += len(updates)
        self._evict_over_capacity()

    def _poison(self, outcome: Outcome) -> None:
        """An attacker's learning: each trade stored ``poison_copies`` times with its reward
        sign-flipped and ``poison`` times larger, so losers become confident strategies and
        winners lessons, and gossip spreads them like any other writes."""
        fake = -self.config.poison * outcome.reward
        for copy in range(self.config.poison_copies):
            traj = Trajectory(
                id=f"{outcome.context.symbol}-{outcome.context.bar}-{self._trades}-{copy}", agent=self.name,
                context=outcome.context.features, steps=(Step(outcome.strategy, f"{outcome.context.symbol} trade",
                                                              fake),),
                reward=fake, task=f"trade {outcome.context.symbol}", domain=DOMAIN,
                metadata={"feature_names": FEATURE_NAMES})
            self.stats.stored += len(self.bank.learn(traj).patterns)
        self._evict_over_capacity()

    def _evict_over_capacity(self) -> None:
        """Bounded memory in two tiers: patterns that survived a consolidation are long-term;
        the rest are a short-term buffer evicted oldest first (plain FIFO if never consolidated)."""
        cap = self.config.capacity
        bank = self.bank
        if cap is None or len(bank) <= cap:
            return
        if self._short_term is None:
            since = bank.last_consolidation_at()
            fresh = (p for p in bank.patterns(domain=DOMAIN) if since is None or p.created_at > since)
            self._short_term = deque(p.id for p in sorted(fresh, key=lambda p: (p.created_at, p.id)))
        while len(bank) > cap:
            need = len(bank) - cap
            victims = [self._short_term.popleft() for _ in range(min(need, len(self._short_term)))]
            if not victims:  # the short-term buffer is empty: the oldest long-term patterns go
                oldest = sorted(bank.patterns(domain=DOMAIN), key=lambda p: (p.created_at, p.id))
                victims = [p.id for p in oldest[:need]]
            # ids already gone (deleted elsewhere) delete nothing; the loop then takes the next
            self.stats.evicted += bank.evict(victims)

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
        self.bank.set_outcome_lr(lr)
        self.lr = lr

    def learning_rate_hint(self, context: Context, default: float) -> float:
        """The learning rate that worked best in similar past episodes (``default`` if none)."""
        return self.bank.recommend_setting("learning_rate", default, context.features).value

    def record_learning_rate(self, contexts: Sequence[Context], reward: float) -> None:
        """Remember how the current learning rate did over an episode of ``contexts``."""
        centre = np.mean([c.features for c in contexts], axis=0)
        self.bank.record_setting("learning_rate", self.lr, reward / REWARD_SCALE, context=centre)
