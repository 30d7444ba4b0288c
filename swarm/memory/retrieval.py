"""Ranking of retrieved patterns: the composite score and MMR re-ranking. Pure functions.

Composite score (all terms in [0, 1] except similarity, which is cosine in [-1, 1])::

    score = w_similarity * similarity + w_confidence * confidence + w_recency * recency
    recency = 0.5 ** (age / half_life),   age = now - (last_used_at or created_at), >= 0

Defaults weigh similarity 0.7, confidence 0.2, recency 0.1 with a 7-day half-life: relevance
dominates, a trusted pattern beats an untested one of equal relevance, and recent use breaks
near-ties. With ``w_similarity=1`` and the others 0 the score is plain cosine.

MMR (Carbonell & Goldstein, 1998) picks, one at a time, the candidate maximising
``lam * score(i) - (1 - lam) * max_{j picked} cos(i, j)``; ``lam = 1`` is no diversity penalty
(the score order), smaller ``lam`` trades relevance for variety.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np

from .models import Pattern

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """Weights of the composite score and the recency half-life (seconds)."""

    similarity: float = 0.7
    confidence: float = 0.2
    recency: float = 0.1
    half_life: float = 7 * DAY

    def __post_init__(self) -> None:
        if min(self.similarity, self.confidence, self.recency) < 0:
            raise ValueError("score weights must be >= 0")
        if self.half_life <= 0:
            raise ValueError("half_life must be > 0")


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A retrieved pattern with its cosine similarity to the query and its composite score."""

    pattern: Pattern
    similarity: float
    score: float


def recency(pattern: Pattern, now: float, half_life: float) -> float:
    last = pattern.last_used_at if pattern.last_used_at is not None else pattern.created_at
    age = max(0.0, now - last)
    return float(0.5 ** (age / half_life))


def composite_score(pattern: Pattern, similarity: float, now: float,
                    weights: ScoreWeights = ScoreWeights()) -> float:
    return (weights.similarity * similarity
            + weights.confidence * pattern.confidence
            + weights.recency * recency(pattern, now, weights.half_life))


def rank(candidates: Sequence[tuple[Pattern, float]], now: float,
         weights: ScoreWeights = ScoreWeights()) -> list[SearchHit]:
    """Score candidates and order them by score, ties by pattern id (deterministic)."""
    hits = [SearchHit(p, float(s), composite_score(p, float(s), now, weights)) for p, s in candidates]
    hits.sort(key=lambda h: (-h.score, h.pattern.id))
    return hits


def mmr(hits: Sequence[SearchHit], k: int, lam: float) -> list[SearchHit]:
    """Select ``k`` of ``hits`` (already ordered by score) by maximal marginal relevance."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"MMR lambda must be in [0, 1], not {lam}")
    if k <= 0 or not hits:
        return []
    if lam == 1.0:
        return list(hits[:k])
    emb = np.stack([h.pattern.embedding for h in hits]).astype(np.float64)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    pair = emb @ emb.T
    rel = np.array([h.score for h in hits])
    chosen: list[int] = []
    max_sim = np.full(len(hits), -np.inf)
    free = np.ones(len(hits), dtype=bool)
    while len(chosen) < min(k, len(hits)):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = lam * rel - (1.0 - lam) * penalty
        value[~free] = -np.inf
        i = int(np.argmax(value))  # first maximum: ties go to the higher-ranked hit
        chosen.append(i)
        free[i] = False
        max_sim = np.maximum(max_sim, pair[i])
    return [hits[i] for i in chosen]
