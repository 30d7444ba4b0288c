"""The in-memory vector index that mirrors the pattern table, for cosine top-k search.

Two paths, chosen by ``mode``:

* ``exact`` — one float32 matrix-vector product over every live row (numpy; memory-bandwidth
  bound: ~6 ms for 100k x 1024 on the reference 2-core machine).
* ``ann`` — an HNSW graph from usearch, chosen by measurement over hnswlib and faiss-cpu
  (README, "Choice of ANN library"): at 100k x 1024 clustered data, ef=64 gave 0.36 ms p50 with
  recall@10 0.993, and usearch, unlike faiss' HNSW, deletes by key — the index must follow
  deletions from consolidation.
* ``auto`` (default) — exact below ``ann_threshold`` live rows, ANN above — unless the graph's
  measured recall falls below ``min_recall`` (HNSW does badly on unclustered high-dimensional
  data: recall@10 0.05 on 100k random 1024-d vectors), in which case it falls back to exact and
  says why in ``ann_disabled``.

New rows first land in an exact-searched *tail* and are folded into the graph in batches, so
an insert never waits on graph construction. Whatever the path, returned similarities are
recomputed exactly from the stored vectors; only candidate membership is approximate, and the
ANN's recall is measured, never assumed: every ``audit_every``-th ANN query is also answered
exactly, and the overlap accumulates into ``measured_recall``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from collections.abc import Sequence

import numpy as np

if TYPE_CHECKING:
    from usearch.index import Index

IndexMode = Literal["exact", "ann", "auto"]

KIND_CODES = {"strategy": 0, "lesson": 1}


@dataclass(frozen=True, slots=True)
class Filter:
    """Search filters: domain, kind and minimum confidence; None means "any"."""

    domain: str | None = None
    kind: str | None = None
    min_confidence: float | None = None

    @property
    def empty(self) -> bool:
        return self.domain is None and self.kind is None and self.min_confidence is None


NO_FILTER = Filter()


class VectorIndex:
    """Keyed float32 vectors (unit length) with per-row domain, kind and confidence."""

    def __init__(
        self,
        dim: int,
        mode: IndexMode = "auto",
        ann_threshold: int = 20_000,
        ef_search: int = 64,
        connectivity: int = 16,
        ef_construction: int = 128,
        fold_every: int = 2_048,
        audit_every: int = 50,
        min_recall: float = 0.9,
    ) -> None:
        if mode not in ("exact", "ann", "auto"):
            raise ValueError(f"index mode must be exact, ann or auto, not {mode!r}")
        self.dim = dim
        self.mode: IndexMode = mode
        self.ann_threshold = ann_threshold
        self.ef_search = ef_search
        self.connectivity = connectivity
        self.ef_construction = ef_construction
        self.fold_every = fold_every
        cap = 64
        self._vecs = np.zeros((cap, dim), dtype=np.float32)
        self._keys = np.zeros(cap, dtype=np.int64)
        self._alive = np.zeros(cap, dtype=bool)
        self._in_ann = np.zeros(cap, dtype=bool)
        self._domain = np.zeros(cap, dtype=np.int32)
        self._kind = np.zeros(cap, dtype=np.int8)
        self._conf = np.zeros(cap, dtype=np.float32)
        self._n = 0  # slots used (live or dead)
        self._live = 0
        self._slot: dict[int, int] = {}
        self._domain_codes: dict[str, int] = {}
        self._ann: Index | None = None  # built on first ANN use
        self.audit_every = audit_every
        self.min_recall = min_recall
        #: why ``auto`` mode gave up the graph for the exact scan (recall below ``min_recall``)
        self.ann_disabled: str | None = None
        self._ann_queries = 0
        self._audit_hits = 0
        self._audit_total = 0
        #: recall@10 of the graph on a sample of stored vectors as queries, at build time
        #: (optimistic: stored points are wired to their neighbours)
        self.build_sample_recall: float | None = None

    # ---- bookkeeping -------------------------------------------------------------------

    def __len__(self) -> int:
        return self._live

    def __contains__(self, key: int) -> bool:
        return key in self._slot

    @property
    def uses_ann(self) -> bool:
        return self.mode == "ann" or (self.mode == "auto" and self._live >= self.ann_threshold
                                      and self.ann_disabled is None)

    def _check_recall(self, recall: float | None, what: str) -> None:
        """In ``auto`` mode, a graph that misses too many neighbours is dropped for the exact scan."""
        if self.mode == "auto" and recall is not None and recall < self.min_recall:
            self.ann_disabled = f"{what} recall@10 {recall:.3f} < {self.min_recall}"
            self._ann = None
            self._in_ann[:] = False

    def _grow(self, need: int) -> None:
        cap = self._vecs.shape[0]
        if need <= cap:
            return
        new = max(need, cap * 2)
        for name in ("_vecs", "_keys", "_alive", "_in_ann", "_domain", "_kind", "_conf"):
            old = getattr(self, name)
            arr = np.zeros((new,) + old.shape[1:], dtype=old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)

    def _domain_code(self, domain: str) -> int:
        code = self._domain_codes.get(domain)
        if code is None:
            code = self._domain_codes[domain] = len(self._domain_codes)
        return code

    # ---- writes ------------------------------------------------------------------------

    def upsert(
        self,
        keys: Sequence[int],
        vecs: np.ndarray,
        domains: Sequence[str],
        kinds: Sequence[str],
        confidences: Sequence[float],
    ) -> None:
        """Add rows, or replace rows whose key is already present."""
        vecs = np.asarray(vecs, dtype=np.float32).reshape(len(keys), self.dim)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = vecs / np.maximum(norms, 1e-12)
        new_keys = [k for k in keys if k not in self._slot]
        self._grow(self._n + len(new_keys))
        slots = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            slot = self._slot.get(key)
            if slot is None:
                slot = self._n
                self._n += 1
                self._slot[key] = slot
                self._live += 1
            elif self._in_ann[slot]:
                assert self._ann is not None  # rows are marked in the graph only while it exists
                self._ann.remove(int(key))
                self._in_ann[slot] = False
            slots[i] = slot
        self._vecs[slots] = vecs
        self._keys[slots] = np.asarray(keys, dtype=np.int64)
        self._alive[slots] = True
        self._domain[slots] = [self._domain_code(d) for d in domains]
        self._kind[slots] = [KIND_CODES[k] for k in kinds]
        self._conf[slots] = np.asarray(confidences, dtype=np.float32)

    def set_confidence(self, key: int, confidence: float) -> None:
        slot = self._slot.get(key)
        if slot is not None:
            self._conf[slot] = confidence

    def remove(self, keys: Sequence[int]) -> None:
        for key in keys:
            slot = self._slot.pop(key, None)
            if slot is None:
                continue
            self._alive[slot] = False
            self._live -= 1
            if self._in_ann[slot]:
                assert self._ann is not None  # rows are marked in the graph only while it exists
                self._ann.remove(int(key))
                self._in_ann[slot] = False
        if self._n > 1024 and self._live < self._n // 2:
            self._compact()

    def _compact(self) -> None:
        """Drop dead slots so the exact scan does not pay for deleted rows."""
        live = np.flatnonzero(self._alive[: self._n])
        for name in ("_vecs", "_keys", "_alive", "_in_ann", "_domain", "_kind", "_conf"):
            arr = getattr(self, name)
            fresh = np.zeros_like(arr)
            fresh[: live.size] = arr[live]
            setattr(self, name, fresh)
        self._n = int(live.size)
        self._slot = {int(k): i for i, k in enumerate(self._keys[: self._n])}

    # ---- search ------------------------------------------------------------------------

    def _mask(self, flt: Filter) -> np.ndarray:
        m = self._alive[: self._n].copy()
        if flt.domain is not None:
            code = self._domain_codes.get(flt.domain)
            if code is None:
                return np.zeros(self._n, dtype=bool)
            m &= self._domain[: self._n] == code
        if flt.kind is not None:
            m &= self._kind[: self._n] == KIND_CODES[flt.kind]
        if flt.min_confidence is not None:
            m &= self._conf[: self._n] >= flt.min_confidence
        return m

    def _top(self, slots: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of candidates, ordered by similarity, ties by key (deterministic)."""
        if slots.size > k:
            part = np.argpartition(-sims, k - 1)[:k]
            slots, sims = slots[part], sims[part]
        keys = self._keys[slots]
        order = np.lexsort((keys, -sims))
        return keys[order], sims[order]

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_ok = int(mask.sum())
        if n_ok == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if n_ok * 4 < self._n:
            slots = np.flatnonzero(mask)
            return self._top(slots, self._vecs[slots] @ q, k)  # gather the small subset
        sims = self._vecs[: self._n] @ q  # one pass over memory; excluded rows drop out below
        if n_ok < self._n:
            sims[~mask] = -np.inf
        slots = np.arange(self._n)
        if n_ok > k:
            part = np.argpartition(-sims, k - 1)[:k]
            slots, sims = part, sims[part]
        keep = np.isfinite(sims)
        return self._top(slots[keep], sims[keep], k)

    def search(self, query: np.ndarray, k: int, flt: Filter = NO_FILTER) -> tuple[np.ndarray, np.ndarray]:
        """Keys and exact cosine similarities of the (approximately, in ANN mode) top ``k`` rows."""
        if k <= 0 or self._live == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = np.asarray(query, dtype=np.float32).ravel()
        if q.shape[0] != self.dim:
            raise ValueError(f"query has dimension {q.shape[0]}, the index holds {self.dim}")
        norm = float(np.linalg.norm(q))
        if norm == 0 or not math.isfinite(norm):
            raise ValueError("query vector must be finite and non-zero")
        q = q / norm
        mask = self._mask(flt)
        if not self.uses_ann:
            return self._exact(q, k, mask)
        selectivity = mask.sum() / max(self._live, 1)
        if selectivity < 0.05:
            return self._exact(q, k, mask)  # few rows pass: scanning them beats the graph
        self._sync_ann()
        if not self.uses_ann:  # the build found the graph's recall too low
            return self._exact(q, k, mask)
        fetch = k if flt.empty else math.ceil(k / selectivity * 1.5)
        while True:
            slots = self._ann_candidates(q, fetch)
            tail = np.flatnonzero(self._alive[: self._n] & ~self._in_ann[: self._n])
            slots = np.concatenate([slots, tail]) if tail.size else slots
            slots = slots[mask[slots]]
            if slots.size >= k or fetch >= self._live:
                break
            fetch *= 4
        if slots.size < k:
            return self._exact(q, k, mask)
        keys, sims = self._top(slots, self._vecs[slots] @ q, k)
        self._ann_queries += 1
        if self.audit_every and self._ann_queries % self.audit_every == 1:
            truth = self._exact(q, k, mask)[0]
            self._audit_hits += len(set(truth.tolist()) & set(keys.tolist()))
            self._audit_total += len(truth)
            if self._audit_total >= 5 * k:
                self._check_recall(self.measured_recall, "audited")
        return keys, sims

    @property
    def measured_recall(self) -> float | None:
        """Recall of ANN answers on real queries: every ``audit_every``-th ANN query is re-run
        exactly and compared. None until the first audit."""
        return self._audit_hits / self._audit_total if self._audit_total else None

    def search_many(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` for each row of ``queries`` (no filters); ``-1`` keys pad short rows."""
        q = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        out_k = np.full((q.shape[0], k), -1, dtype=np.int64)
        out_s = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        if self._live == 0:
            return out_k, out_s
        if self.uses_ann and q.shape[0] > 1:
            for i, row in enumerate(q):
                keys, sims = self.search(row, k)
                out_k[i, : keys.size], out_s[i, : sims.size] = keys, sims
            return out_k, out_s
        alive = self._alive[: self._n]
        for start in range(0, q.shape[0], 1024):
            block = q[start:start + 1024] @ self._vecs[: self._n].T
            block[:, ~alive] = -np.inf
            kk = min(k, self._n)
            part = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
            sims = np.take_along_axis(block, part, axis=1)
            order = np.argsort(-sims, axis=1, kind="stable")
            part = np.take_along_axis(part, order, axis=1)
            sims = np.take_along_axis(sims, order, axis=1)
            keys = np.where(np.isfinite(sims), self._keys[part], -1)
            out_k[start:start + block.shape[0], :kk] = keys
            out_s[start:start + block.shape[0], :kk] = sims
        return out_k, out_s

    # ---- the ANN graph -----------------------------------------------------------------

    def _ann_candidates(self, q: np.ndarray, fetch: int) -> np.ndarray:
        if self._ann is None or len(self._ann) == 0:
            return np.zeros(0, np.int64)
        # usearch defines this property's setter apart from its getter, so mypy takes it as read-only
        self._ann.expansion_search = max(self.ef_search, fetch)  # type: ignore[misc]
        found = self._ann.search(q, min(fetch, len(self._ann)))
        return np.fromiter((self._slot[int(k)] for k in found.keys if int(k) in self._slot),
                           dtype=np.int64)

    def _sync_ann(self) -> None:
        """Build the graph on first use; fold the tail in once it has grown past ``fold_every``."""
        from usearch.index import Index

        tail = np.flatnonzero(self._alive[: self._n] & ~self._in_ann[: self._n])
        if self._ann is not None and tail.size < self.fold_every:
            return
        first_build = self._ann is None
        if first_build:
            self._ann = Index(ndim=self.dim, metric="ip", dtype="f32",
                              connectivity=self.connectivity,
                              expansion_add=self.ef_construction,
                              expansion_search=self.ef_search)
        assert self._ann is not None  # it existed, or was just built
        if tail.size:
            self._ann.add(self._keys[tail], self._vecs[tail], threads=0)
            self._in_ann[tail] = True
        if first_build:  # later folds are covered by the live audits, not 64 more exact scans
            self.build_sample_recall = self._measure_recall()
            self._check_recall(self.build_sample_recall, "build-sample")

    def _measure_recall(self, sample: int = 64, k: int = 10) -> float:
        """recall@k of the graph against the exact scan, using stored vectors as queries.

        Each query's own row is dropped from both answers: finding itself is free, and counting
        it would overstate the recall a fresh query gets.
        """
        in_ann = np.flatnonzero(self._in_ann[: self._n])
        if in_ann.size <= k + 1:
            return 1.0
        rng = np.random.default_rng(in_ann.size)
        picks = rng.choice(in_ann, size=min(sample, in_ann.size), replace=False)
        mask = self._in_ann[: self._n].copy()
        assert self._ann is not None  # rows are marked in the graph only while it exists
        self._ann.expansion_search = self.ef_search  # type: ignore[misc]  # usearch's setter: see _ann_candidates
        hits = 0
        for slot in picks:
            q, own = self._vecs[slot], int(self._keys[slot])
            exact = [int(x) for x in self._exact(q, k + 1, mask)[0] if int(x) != own][:k]
            approx = [int(x) for x in self._ann.search(q, k + 1).keys if int(x) != own][:k]
            hits += len(set(exact) & set(approx))
        return hits / (len(picks) * k)
