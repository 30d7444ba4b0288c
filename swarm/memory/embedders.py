"""Embedders: turn text or numeric context vectors into unit vectors for cosine search.

The defaults need no model download and are deterministic across processes and machines
(they use blake2b and a seeded numpy generator, never Python's salted ``hash``).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Protocol, runtime_checkable
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+(?:[._'-][a-z0-9]+)*")


@runtime_checkable
class Embedder(Protocol):
    """Anything with a fixed ``dim`` that maps an input to a float32 vector of that size."""

    dim: int

    def embed(self, item: object) -> np.ndarray: ...


def fingerprint_of(embedder: object) -> str | None:
    """The embedder's ``fingerprint`` (names its embedding space), or None if it has none."""
    fp = getattr(embedder, "fingerprint", None)
    return fp if isinstance(fp, str) else None


def _normalise(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)


class HashingTextEmbedder:
    """Signed feature hashing of words and adjacent word pairs, L2-normalised.

    Each feature hashes (blake2b) to a bucket and a sign; texts that share words share
    buckets, so their cosine similarity grows with their overlap. Word pairs add a little
    order sensitivity. ``pair_weight`` scales word pairs relative to single words.
    """

    def __init__(self, dim: int = 384, pair_weight: float = 0.5) -> None:
        if dim < 8:
            raise ValueError(f"embedding dimension must be >= 8, not {dim}")
        self.dim = int(dim)
        self.pair_weight = float(pair_weight)
        self._cache: dict[str, tuple[int, float]] = {}

    @property
    def fingerprint(self) -> str:
        """Names the embedding space: vectors compare only with vectors of the same fingerprint."""
        return f"hashing-text/{self.dim}/{self.pair_weight!r}"

    def _bucket(self, feature: str) -> tuple[int, float]:
        hit = self._cache.get(feature)
        if hit is None:
            h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
            hit = (h % self.dim, 1.0 if (h >> 63) & 1 else -1.0)
            if len(self._cache) < 200_000:
                self._cache[feature] = hit
        return hit

    def tokens(self, text: str) -> list[str]:
        return _WORD.findall(text.lower())

    def embed(self, item: object) -> np.ndarray:
        if not isinstance(item, str):
            raise TypeError(f"HashingTextEmbedder embeds text, not {type(item).__name__}")
        v = np.zeros(self.dim, dtype=np.float64)
        words = self.tokens(item)
        for w in words:
            i, s = self._bucket("w:" + w)
            v[i] += s
        for a, b in zip(words, words[1:]):
            i, s = self._bucket("p:" + a + " " + b)
            v[i] += s * self.pair_weight
        return _normalise(v)

    def embed_many(self, items: Sequence[str]) -> np.ndarray:
        return np.stack([self.embed(t) for t in items]) if items else np.zeros((0, self.dim), np.float32)


class ContextEmbedder:
    """Embeds numeric context vectors so that cosine similarity tracks Euclidean closeness.

    Random Fourier features (Rahimi & Recht, 2007): ``z(x) = cos(W x / bandwidth + b)`` with
    Gaussian ``W`` and uniform ``b`` from a fixed seed, then L2-normalised. The dot product of
    two embeddings approximates the Gaussian kernel ``exp(-|x - y|^2 / (2 bandwidth^2))``, so
    near contexts get cosine near 1 and far ones near 0 — unlike raw cosine, which ignores
    magnitude. ``scale`` (per feature) puts features on comparable units before that.
    """

    def __init__(
        self,
        n_features: int,
        dim: int = 256,
        bandwidth: float = 1.0,
        scale: Sequence[float] | None = None,
        seed: int = 0,
    ) -> None:
        if n_features < 1:
            raise ValueError("n_features must be >= 1")
        if dim < 8:
            raise ValueError(f"embedding dimension must be >= 8, not {dim}")
        if bandwidth <= 0:
            raise ValueError("bandwidth must be > 0")
        self.n_features = int(n_features)
        self.dim = int(dim)
        self.bandwidth = float(bandwidth)
        self.scale = np.ones(n_features) if scale is None else np.asarray(scale, dtype=np.float64)
        if self.scale.shape != (n_features,) or np.any(self.scale <= 0):
            raise ValueError("scale must hold one positive number per feature")
        rng = np.random.default_rng(seed)
        self._w = rng.standard_normal((dim, n_features)) / self.bandwidth
        self._b = rng.uniform(0.0, 2.0 * np.pi, dim)
        digest = hashlib.blake2b(digest_size=8)
        for a in (self._w, self._b, self.scale):
            digest.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
        self._fingerprint = f"context-rff/{self.n_features}x{self.dim}/{digest.hexdigest()}"

    @property
    def fingerprint(self) -> str:
        """Names the embedding space (features, size, and a hash of the projection and scale)."""
        return self._fingerprint

    def embed(self, item: object) -> np.ndarray:
        return self._project(self._features(item))

    def _features(self, item: object) -> np.ndarray:
        """``item`` as a checked float64 vector of ``n_features`` (a copy: callers may edit it)."""
        x = np.array(item, dtype=np.float64).ravel()
        if x.shape != (self.n_features,):
            raise ValueError(f"context has {x.size} features, the embedder expects {self.n_features}")
        if not math.isfinite(float(x.sum())) and not np.all(np.isfinite(x)):  # sum: one pass, no temporary
            raise ValueError("context has non-finite values")
        return x

    def _project(self, x: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
        """The normalised random Fourier features of a checked context: the arithmetic of
        ``_normalise(cos(W @ (x / scale) + b))`` in place (one decision embeds one context, and
        numpy's per-call overhead was most of its ~18 us). ``scale`` replaces the embedder's own
        (a subclass that flips features' signs divides by the scale with those signs flipped)."""
        z = self._w @ (x / (self.scale if scale is None else scale))
        z += self._b
        np.cos(z, out=z)
        n = math.sqrt(float(z.dot(z)))  # what np.linalg.norm computes for a 1-d float64 vector
        if n > 0:
            z /= n
        return z.astype(np.float32)

    def embed_many(self, items: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        x = np.asarray(items, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"contexts must be an (n, {self.n_features}) array")
        z = np.cos((x / self.scale) @ self._w.T + self._b)
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return z.astype(np.float32)
