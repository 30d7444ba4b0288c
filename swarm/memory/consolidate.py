"""Consolidation: merge near-duplicates, link contradictions, prune dead weight, cap the size.

:func:`plan` is pure — patterns and their nearest neighbours in, a list of changes out — and
:func:`consolidate` applies that plan to a store in one transaction.

Rules (thresholds in :class:`ConsolidationPolicy`):

* **merge** — same kind, domain and action, cosine >= ``duplicate_similarity``. The stronger
  pattern (more uses, then higher confidence, then older, then smaller id) survives and absorbs
  the other: counts and rewards add up, confidence becomes the use-weighted mean
  (weights ``uses + 1``), tags are united, and the merge is written to the survivor's
  provenance and to the consolidation log.
* **link** — opposite kinds (a strategy and a lesson) for the same action in the same domain,
  cosine >= ``contradiction_similarity``: similar context, opposite outcome. Linked, not deleted.
* **prune** — unused (``uses <= prune_max_uses``), old (age >= ``prune_min_age``) and
  low-confidence (< ``prune_max_confidence``). Library form, when set: a pattern with at least
  ``min_uses`` uses and a success rate below ``min_success_rate`` is proven bad and goes; one
  with fewer uses whose last activity is older than ``lookback`` is stale and goes too.
* **cap** — above ``max_patterns``, the weakest go first: lowest
  ``confidence * (1 + ln(1 + uses))``, then least recently active, then id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Sequence

import numpy as np

from .models import MAX_PROVENANCE, Pattern
from .retrieval import DAY


@dataclass(frozen=True, slots=True)
class ConsolidationPolicy:
    duplicate_similarity: float = 0.95
    contradiction_similarity: float = 0.85
    prune_max_uses: int = 0
    prune_min_age: float = 30 * DAY
    prune_max_confidence: float = 0.3
    max_patterns: int | None = None
    min_success_rate: float | None = None
    min_uses: int = 1
    lookback: float | None = None
    neighbours: int = 16

    def __post_init__(self) -> None:
        for name in ("duplicate_similarity", "contradiction_similarity"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a cosine in [-1, 1]")
        if self.min_success_rate is not None and not 0.0 <= self.min_success_rate <= 1.0:
            raise ValueError("min_success_rate must be in [0, 1]")
        if self.max_patterns is not None and self.max_patterns < 0:
            raise ValueError("max_patterns must be >= 0")
        if self.min_uses < 0 or self.neighbours < 1:
            raise ValueError("min_uses must be >= 0 and neighbours >= 1")


@dataclass(slots=True)
class ConsolidationReport:
    """What a consolidation changed; ``before`` and ``after`` count patterns."""

    before: int = 0
    after: int = 0
    merged: list[tuple[str, str, float]] = field(default_factory=list)  # survivor, absorbed, cosine
    linked: list[tuple[str, str, float]] = field(default_factory=list)  # a, b, cosine
    pruned: list[str] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.merged or self.linked or self.pruned or self.capped)

    @property
    def shrink_ratio(self) -> float:
        """Share of patterns removed (0 when the store was empty)."""
        return (self.before - self.after) / self.before if self.before else 0.0


@dataclass(slots=True)
class Plan:
    """Changes to apply in one transaction."""

    report: ConsolidationReport
    updates: list[Pattern] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    links: list[tuple[str, str, str, float]] = field(default_factory=list)  # a, b, relation, cosine
    log: list[tuple[str, str, str | None, dict[str, Any]]] = field(default_factory=list)


def _strength(p: Pattern) -> tuple[Any, ...]:
    return (-p.uses, -p.confidence, p.created_at, p.id)


def _activity(p: Pattern) -> float:
    return p.last_used_at if p.last_used_at is not None else p.created_at


def _absorb(survivor: Pattern, other: Pattern, cos: float, now: float, by: str) -> Pattern:
    w1, w2 = survivor.uses + 1, other.uses + 1
    last = [t for t in (survivor.last_used_at, other.last_used_at) if t is not None]
    return survivor.bumped(
        by,
        uses=survivor.uses + other.uses,
        successes=survivor.successes + other.successes,
        failures=survivor.failures + other.failures,
        total_reward=survivor.total_reward + other.total_reward,
        confidence=min(1.0, max(0.0, (survivor.confidence * w1 + other.confidence * w2) / (w1 + w2))),
        tags=tuple(sorted(set(survivor.tags) | set(other.tags))),
        created_at=min(survivor.created_at, other.created_at),
        last_used_at=max(last) if last else None,
        provenance=(survivor.provenance + ({"event": "merge", "absorbed": other.id,
                                            "similarity": round(cos, 6), "at": now},))[-MAX_PROVENANCE:],
    )


Neighbours = Callable[[Sequence[Pattern], int], list[list[tuple[int, float]]]]


def plan(patterns: Sequence[Pattern], neighbours: Neighbours, policy: ConsolidationPolicy,
         now: float, by: str = "consolidation") -> Plan:
    """Decide every change. ``neighbours(patterns, k)`` gives, per pattern, up to ``k``
    ``(index into patterns, cosine)`` pairs of its nearest others."""
    report = ConsolidationReport(before=len(patterns))
    out = Plan(report)
    if not patterns:
        return out
    near = neighbours(patterns, policy.neighbours)
    current: dict[int, Pattern] = dict(enumerate(patterns))
    absorbed: set[int] = set()
    # merges, strongest first, so the survivor of a cluster is its strongest member
    for i in sorted(range(len(patterns)), key=lambda i: _strength(patterns[i])):
        if i in absorbed:
            continue
        for j, cos in near[i]:
            pj, pi = patterns[j], current[i]
            if (j == i or j in absorbed or cos < policy.duplicate_similarity or pj.kind != pi.kind
                    or pj.domain != pi.domain or pj.action != pi.action
                    or _strength(pj) < _strength(patterns[i])):
                continue
            current[i] = _absorb(pi, pj, cos, now, by)
            absorbed.add(j)
            report.merged.append((pi.id, pj.id, cos))
            out.log.append(("merge", pi.id, pj.id, {"similarity": round(cos, 6)}))
    # contradictions among the patterns that remain
    seen: set[tuple[str, str]] = set()
    for i, row in enumerate(near):
        if i in absorbed:
            continue
        for j, cos in row:
            if j in absorbed or j == i or cos < policy.contradiction_similarity:
                continue
            a, b = current[i], current[j]
            if a.kind == b.kind or a.domain != b.domain or not a.action or a.action != b.action:
                continue
            key = (min(a.id, b.id), max(a.id, b.id))
            if key in seen:
                continue
            seen.add(key)
            out.links.append((key[0], key[1], "contradicts", cos))
            report.linked.append((key[0], key[1], cos))
            out.log.append(("link", key[0], key[1], {"relation": "contradicts", "similarity": round(cos, 6)}))
    # pruning
    keep: list[int] = []
    for i in range(len(patterns)):
        if i in absorbed:
            continue
        p = current[i]
        why = _prune_reason(p, policy, now)
        if why:
            report.pruned.append(p.id)
            out.log.append(("prune", p.id, None, {"reason": why}))
        else:
            keep.append(i)
    # cap
    if policy.max_patterns is not None and len(keep) > policy.max_patterns:
        ranked = sorted(keep, key=lambda i: (current[i].confidence * (1 + math.log1p(current[i].uses)),
                                             _activity(current[i]), current[i].id))
        drop = ranked[: len(keep) - policy.max_patterns]
        for i in drop:
            report.capped.append(current[i].id)
            out.log.append(("cap", current[i].id, None, {"max_patterns": policy.max_patterns}))
        dropped = set(drop)
        keep = [i for i in keep if i not in dropped]
    out.updates = [current[i] for i in keep if current[i] is not patterns[i]]
    out.deletes = [patterns[i].id for i in sorted(absorbed)] + report.pruned + report.capped
    report.after = len(keep)
    return out


def _prune_reason(p: Pattern, policy: ConsolidationPolicy, now: float) -> str:
    if (p.uses <= policy.prune_max_uses and now - p.created_at >= policy.prune_min_age
            and p.confidence < policy.prune_max_confidence):
        return "unused, old and low confidence"
    if policy.min_success_rate is not None:
        rate = p.success_rate
        if p.uses >= policy.min_uses and rate is not None and rate < policy.min_success_rate:
            return f"success rate {rate:.2f} below {policy.min_success_rate:.2f} after {p.uses} uses"
        if policy.lookback is not None and p.uses < policy.min_uses and now - _activity(p) > policy.lookback:
            return f"fewer than {policy.min_uses} uses and idle longer than the lookback"
    return ""


def index_neighbours(search_many: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
                     key_of: Sequence[int]) -> Neighbours:
    """Adapt a vector index's batched top-k (keyed by ``key_of[i]``) to :data:`Neighbours`."""
    position = {int(k): i for i, k in enumerate(key_of)}

    def near(patterns: Sequence[Pattern], k: int) -> list[list[tuple[int, float]]]:
        keys, sims = search_many(np.stack([p.embedding for p in patterns]), k + 1)
        return [[(position[int(kk)], float(s)) for kk, s in zip(krow, srow) if int(kk) in position]
                for krow, srow in zip(keys, sims)]

    return near
