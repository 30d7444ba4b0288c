"""``ReasoningBank``: the library facade over store, embedder, retrieval, judge and distiller.

This is the edge of the memory engine: it is the one place that reads a clock, and the clock is
injected (``clock=time.time`` by default; a simulation passes its virtual clock).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any
from collections.abc import Callable, Collection, Iterator, Sequence

import numpy as np

from .consolidate import ConsolidationPolicy, ConsolidationReport, index_neighbours, plan
from .distill import Distiller, RuleDistiller
from .embedders import Embedder, HashingTextEmbedder, fingerprint_of
from .judge import Judge, OutcomeJudge
from .models import DEFAULT_OUTCOME_LR, Pattern, PatternKind, Source, Trajectory, Verdict, make_pattern_id
from .retrieval import DAY, ScoreWeights, SearchHit, mmr, rank
from .store import Neighbours, PatternStore
from .transfer import ImportLimits, ImportPolicy, ImportReport, export_patterns, import_patterns


@dataclass(frozen=True, slots=True)
class Evidence:
    """One retrieved pattern's vote in a recommendation: + for a strategy, - for a lesson."""

    pattern_id: str
    kind: PatternKind
    action: str
    similarity: float
    confidence: float
    weight: float


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The best-supported action for a context, or ``action=None`` with the reason why not."""

    action: str | None
    score: float = 0.0
    confidence: float = 0.0
    evidence: tuple[Evidence, ...] = ()
    reason: str = ""
    scores: tuple[tuple[str, float], ...] = ()  # net evidence per action, best first

    def __bool__(self) -> bool:
        return self.action is not None

    @classmethod
    def none(cls, reason: str) -> Recommendation:
        return cls(None, reason=reason)


@dataclass(frozen=True, slots=True)
class LearnResult:
    verdict: Verdict
    patterns: tuple[Pattern, ...]


@dataclass(frozen=True, slots=True)
class SettingHint:
    """A recommended value for a setting (e.g. a learning rate) and how well memory supports it."""

    name: str
    value: float
    from_memory: bool  # False: no similar past episode, ``value`` is the caller's default
    score: float = 0.0  # similarity-weighted mean evidence for ``value`` in [-1, 1]
    support: int = 0  # past episodes that voted for ``value``


class ReasoningBank:
    """A ReasoningBank memory: store, search, recommend, learn, consolidate, export, import."""

    def __init__(
        self,
        store: PatternStore,
        embedder: Embedder,
        *,
        judge: Judge | None = None,
        distiller: Distiller | None = None,
        weights: ScoreWeights = ScoreWeights(),
        outcome_lr: float = DEFAULT_OUTCOME_LR,
        agent: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if embedder.dim != store.dim:
            raise ValueError(f"embedder dimension {embedder.dim} differs from the store's {store.dim}")
        self.store = store
        self.embedder = embedder
        self.judge = judge or OutcomeJudge()
        self.distiller = distiller or RuleDistiller()
        self.weights = weights
        self.outcome_lr = outcome_lr
        self.agent = agent
        self.clock = clock

    @classmethod
    def open(cls, path: str | os.PathLike[str] = ":memory:", embedder: Embedder | None = None,
             **kwargs: Any) -> ReasoningBank:
        """Open (or create) a bank at ``path``; the default embedder hashes text into 384 dims."""
        store_keys = {"index_mode", "ann_threshold", "synchronous", "busy_timeout_s", "row_cache_bytes"}
        store_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in store_keys}
        embedder = embedder or HashingTextEmbedder(384)
        return cls(PatternStore(path, dim=embedder.dim, **store_kwargs), embedder, **kwargs)

    def close(self) -> None:
        self.store.close()

    def __len__(self) -> int:
        return len(self.store)

    def use_judge(self, judge: Judge) -> None:
        """Label trajectories with ``judge`` from now on (a learner's new version may judge differently)."""
        self.judge = judge

    def set_outcome_lr(self, lr: float) -> None:
        """The rate at which recorded outcomes move a pattern's confidence (:func:`apply_outcome`)."""
        if not 0 < lr <= 1:
            raise ValueError("lr must be in (0, 1]")
        self.outcome_lr = lr

    def __enter__(self) -> ReasoningBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _vector(self, query: object, embedding: np.ndarray | None) -> np.ndarray:
        if embedding is not None:
            return np.asarray(embedding, dtype=np.float32)
        if query is None:
            raise ValueError("give a query (text or context) or an embedding")
        return self.embedder.embed(query)

    # ---- writing -------------------------------------------------------------------------

    def store_pattern(self, title: str, content: str, *, description: str = "", domain: str = "general",
                      tags: Sequence[str] = (), kind: PatternKind = "strategy", action: str = "",
                      confidence: float = 0.5, context: object = None, embedding: np.ndarray | None = None,
                      source: Source | None = None, id: str | None = None) -> Pattern:
        """Store one pattern. Its embedding is given, or embedded from ``context``, or from its text."""
        now = self.clock()
        if embedding is None:
            embedding = self.embedder.embed(context if context is not None else f"{title}\n{description}\n{content}")
        pid = id or make_pattern_id(self.agent, domain, kind, title, content, repr(now))
        p = Pattern(id=pid, title=title, content=content, description=description, domain=domain,
                    tags=tuple(tags), kind=kind, action=action, confidence=confidence,
                    embedding=embedding, created_at=now, source=source or Source(self.agent),
                    updated_by=self.agent)
        self.store.add(p)
        return p

    def record_outcome(self, pattern_id: str, success: bool, reward: float = 0.0) -> Pattern:
        """Count an outcome for a pattern that informed a decision (rule: :func:`apply_outcome`)."""
        return self.store.record_outcome(pattern_id, success, reward, self.clock(),
                                         lr=self.outcome_lr, by=self.agent)

    def record_outcomes(self, outcomes: Sequence[tuple[str, bool, float]]) -> list[Pattern]:
        """:meth:`record_outcome` for several ``(pattern_id, success, reward)`` in one transaction."""
        return self.store.record_outcomes(outcomes, self.clock(), lr=self.outcome_lr, by=self.agent)

    def learn(self, trajectory: Trajectory) -> LearnResult:
        """Judge a trajectory, distill it into patterns, store them (one transaction)."""
        verdict = self.judge.judge(trajectory)
        patterns = self.distiller.distill(trajectory, verdict, self.embedder, self.clock())
        self.store.put_many(patterns)
        return LearnResult(verdict, tuple(patterns))

    # ---- reading -------------------------------------------------------------------------

    def nearest(self, embedding: np.ndarray, k: int, *, domain: str | None = None) -> list[tuple[Pattern, float]]:
        """The evidence for a context: the ``k`` patterns nearest ``embedding`` by cosine, with their
        similarity, unranked (a learner weighs them itself)."""
        return self.store.search(np.asarray(embedding, dtype=np.float32), k, domain=domain)

    def neighbours(self, embedding: np.ndarray, k: int, *, domain: str | None = None) -> Neighbours:
        """:meth:`nearest` as columns (key, similarity, action, source reward) without reading a
        row: what a learner weighs at every decision; :meth:`at_keys` reads the rows it needs."""
        return self.store.neighbours(np.asarray(embedding, dtype=np.float32), k, domain=domain)

    def at_keys(self, keys: Sequence[int]) -> dict[int, Pattern]:
        """The patterns at these keys (as :meth:`neighbours` names them) that the bank holds."""
        return self.store.at_keys(keys)

    def get_many(self, ids: Sequence[str]) -> dict[str, Pattern]:
        """The patterns with these ids that the bank holds, by id."""
        return self.store.get_many(ids)

    def patterns(self, *, domain: str | None = None) -> Iterator[Pattern]:
        return self.store.iter_patterns(domain=domain)

    def last_consolidation_at(self) -> float | None:
        """When the bank's last consolidation that changed anything ran (None if never)."""
        log = self.store.consolidation_log()
        return max(e.at for e in log) if log else None

    def evict(self, ids: Sequence[str]) -> int:
        """Forget these patterns (a bounded memory's eviction); returns how many were held."""
        return self.store.delete_many(list(ids))

    def search(self, query: object = None, k: int = 5, *, domain: str | None = None,
               kind: PatternKind | None = None, min_confidence: float | None = None,
               mmr_lambda: float = 1.0, candidates: int | None = None,
               embedding: np.ndarray | None = None) -> list[SearchHit]:
        """Top ``k`` by composite score among the ``candidates`` nearest by cosine, MMR-diversified.

        ``query`` is whatever the embedder takes (text, a context vector); or pass ``embedding``.
        """
        fetch = candidates if candidates is not None else max(4 * k, 20)
        raw = self.store.search(self._vector(query, embedding), fetch, domain=domain, kind=kind, min_confidence=min_confidence)
        return mmr(rank(raw, self.clock(), self.weights), k, mmr_lambda)

    def recommend(self, context: object = None, *, domain: str | None = None, k: int = 10,
                  min_similarity: float = 0.0, embedding: np.ndarray | None = None) -> Recommendation:
        """The action best supported by similar patterns, with the evidence.

        Each retrieved pattern with an action votes ``similarity * confidence`` for it (a
        strategy) or against it (a lesson); the action with the highest positive net vote wins.
        ``confidence`` is the winner's share of all absolute votes.
        """
        hits = self.search(context, k, domain=domain, embedding=embedding)
        evidence = []
        totals: dict[str, float] = defaultdict(float)
        for h in hits:
            p = h.pattern
            if not p.action or h.similarity < min_similarity:
                continue
            w = max(h.similarity, 0.0) * p.confidence * (1.0 if p.kind == "strategy" else -1.0)
            totals[p.action] += w
            evidence.append(Evidence(p.id, p.kind, p.action, h.similarity, p.confidence, w))
        if not evidence:
            return Recommendation.none("no similar pattern with an action")
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
        best, score = ranked[0]
        if score <= 0:
            return Recommendation(None, reason="similar patterns only advise against actions",
                                  evidence=tuple(evidence), scores=tuple(ranked))
        mass = sum(abs(e.weight) for e in evidence)
        return Recommendation(best, score, score / mass if mass else 0.0, tuple(evidence),
                              f"{sum(1 for e in evidence if e.action == best)} pattern(s) support {best}",
                              tuple(ranked))

    # ---- settings learned from past episodes (the hook adaptive topologies use) ----------

    def record_setting(self, name: str, value: float, reward: float, *, context: object = None,
                       embedding: np.ndarray | None = None, scale: float = 1.0) -> Pattern:
        """Remember that an episode in this context ran with ``name = value`` and earned ``reward``.

        Stored like any pattern (a strategy if ``reward > 0``, else a lesson) in the domain
        ``setting:<name>``, with confidence ``0.5 + 0.5 * tanh(|reward| / scale)``.
        """
        if not np.isfinite(value) or not np.isfinite(reward) or scale <= 0:
            raise ValueError("setting value and reward must be finite, scale > 0")
        conf = 0.5 + 0.5 * float(np.tanh(abs(reward) / scale))
        kind: PatternKind = "strategy" if reward > 0 else "lesson"
        return self.store_pattern(
            f"{name}={value!r} {'worked' if reward > 0 else 'did not work'}",
            f"An episode with {name}={value!r} earned {reward:.4g}.",
            domain=f"setting:{name}", tags=("setting",), kind=kind, action=f"{value!r}",
            confidence=conf, embedding=self._vector(context, embedding))

    def recommend_setting(self, name: str, default: float, context: object = None, *, k: int = 20,
                          embedding: np.ndarray | None = None) -> SettingHint:
        """The value of ``name`` that worked best in past episodes with similar contexts.

        Each of the ``k`` nearest past episodes votes ``similarity * (2 * confidence - 1)`` for
        its value, positive if it earned, negative if not; the value with the best mean vote
        wins if that mean is positive; otherwise (or with no past episode) ``default``.
        """
        hits = self.store.search(self._vector(context, embedding), k, domain=f"setting:{name}")
        votes: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # sum w*s, sum w, n
        for p, sim in hits:
            w = max(sim, 0.0)
            sign = 1.0 if p.kind == "strategy" else -1.0
            v = votes[p.action]
            v[0] += w * sign * (2.0 * p.confidence - 1.0)
            v[1] += w
            v[2] += 1
        scored = sorted(((v[0] / v[1], int(v[2]), a) for a, v in votes.items() if v[1] > 0),
                        key=lambda t: (-t[0], -t[1], t[2]))
        if not scored or scored[0][0] <= 0:
            return SettingHint(name, float(default), False)
        score, n, action = scored[0]
        return SettingHint(name, float(action), True, float(score), n)

    # ---- maintenance ---------------------------------------------------------------------

    def consolidate(self, policy: ConsolidationPolicy | None = None, *, min_success_rate: float | None = None,
                    min_uses: int | None = None, lookback_days: float | None = None,
                    max_patterns: int | None = None, authors: Collection[str] | None = None) -> ConsolidationReport:
        """Merge duplicates, link contradictions, prune, cap; applied in one transaction. With
        ``authors``, only their patterns (and unpublished ones) are touched: in a swarm, a member
        may change or delete only what it authored.

        The keyword form is the one library users ask for, e.g.
        ``bank.consolidate(min_success_rate=0.5, min_uses=3, lookback_days=30)``.
        """
        base = policy or ConsolidationPolicy()
        overrides: dict[str, Any] = {}
        if min_success_rate is not None:
            overrides["min_success_rate"] = min_success_rate
        if min_uses is not None:
            overrides["min_uses"] = min_uses
        if lookback_days is not None:
            overrides["lookback"] = lookback_days * DAY
        if max_patterns is not None:
            overrides["max_patterns"] = max_patterns
        if overrides:
            base = replace(base, **overrides)
        return consolidate_store(self.store, base, self.clock(), by=self.agent or "consolidation", authors=authors)

    def export(self, path: str | os.PathLike[str], *, domain: str | None = None,
               min_confidence: float | None = None) -> int:
        return export_patterns(self.store.iter_patterns(domain=domain, min_confidence=min_confidence),
                               path, self.store.dim, self.clock(), origin=self.agent,
                               embedder=fingerprint_of(self.embedder))

    def import_(self, path: str | os.PathLike[str], policy: ImportPolicy | None = None, *,
                limits: ImportLimits = ImportLimits()) -> ImportReport:
        return import_patterns(self.store, path, self.clock(), policy or ImportPolicy(), limits,
                               embedder=fingerprint_of(self.embedder))

    def stats(self) -> dict[str, Any]:
        """Counts, confidence, size on disk, and which vector index serves searches and why."""
        by_kind: dict[str, int] = defaultdict(int)
        by_domain: dict[str, int] = defaultdict(int)
        conf_sum, uses = 0.0, 0
        for kind, domain, n, c, u in self.store.summary():
            by_kind[kind] += n
            by_domain[domain] += n
            conf_sum += c
            uses += u
        total = sum(by_kind.values())
        idx = self.store.index
        assert idx is not None  # an opened store has built its index
        return {
            "patterns": total,
            "by_kind": dict(by_kind),
            "by_domain": dict(by_domain),
            "mean_confidence": conf_sum / total if total else None,
            "total_uses": uses,
            "dim": self.store.dim,
            **idx.stats(),  # which index serves and why, with the recall figures behind it
            "bytes_on_disk": self.store.size_bytes(),
            "schema_version": self.store.schema_version,
            "links": len(self.store.links()),
        }


def consolidate_store(store: PatternStore, policy: ConsolidationPolicy, now: float,
                      by: str = "consolidation", authors: Collection[str] | None = None) -> ConsolidationReport:
    """Plan a consolidation over every pattern in ``store`` (or only those ``authors`` wrote, and
    those nobody has published yet) and apply it in one transaction."""
    store.refresh()
    patterns = list(store.iter_patterns())
    if authors is not None:
        patterns = [p for p in patterns if p.author in authors or not p.author]
    rowids = store.rowid_of([p.id for p in patterns])
    assert store.index is not None  # an opened store has built its index
    near = index_neighbours(store.index.search_many, [rowids[p.id] for p in patterns])
    changes = plan(patterns, near, policy, now, by=by)
    if changes.report.changed:
        store.apply_changes(puts=changes.updates, deletes=changes.deletes, links=changes.links,
                            log=changes.log, now=now)
    return changes.report
