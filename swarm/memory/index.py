"""The in-memory vector index that mirrors the pattern table, for cosine top-k search.

Two paths, chosen by ``mode``:

* ``exact`` — one float32 matrix-vector product over every live row (numpy; memory-bandwidth
  bound: ~6 ms for 100k x 1024 on the reference 2-core machine).
* ``ann`` — an HNSW graph from usearch, chosen by measurement over hnswlib and faiss-cpu
  (README, "Choice of ANN library"): at 100k x 1024 clustered data, ef=64 gave 0.36 ms p50 with
  recall@10 0.993, and usearch, unlike faiss' HNSW, deletes by key — the index must follow
  deletions from consolidation.
* ``auto`` (default) — exact below ``ann_threshold`` live rows; above it, the graph only if a
  recall sample on the data says it will find the neighbours. HNSW does badly on unclustered data
  (recall@10 0.05 on 100k random 1024-d vectors, 0.15 on 160k random 128-d), and building the full
  graph to find that out took 379 s at 1M x 128. So before building, a graph is built over a
  seeded random sample of the rows (``pilot_size / 4``, then ``pilot_size``), its recall@10 is
  measured on held-out rows against the exact scan of the sample, and the trend is projected to
  the full row count (recall falls as a graph grows). Below ``min_recall`` the exact scan serves
  and the full graph is never built; otherwise the sample graph grows into the full one (nothing
  built is thrown away). :meth:`VectorIndex.stats` says which index serves and why.

New rows first land in an exact-searched *tail* and are folded into the graph in batches, so
an insert never waits on graph construction. Whatever the path, returned similarities are
recomputed exactly from the stored vectors; only candidate membership is approximate, and the
ANN's recall is measured, never assumed: every ``audit_every``-th ANN query is kept (the query
vector and its filter, at most ``audit_batch`` of them), and :meth:`VectorIndex.audit` answers
them again by the graph and exactly, in one blocked pass, folding the overlap into
``measured_recall``. Audits run off the query path: at each fold of the tail into the graph, and
whenever the recall or :meth:`VectorIndex.stats` is read.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal
from collections.abc import Sequence

import numpy as np

if TYPE_CHECKING:
    from usearch.index import Index

IndexMode = Literal["exact", "ann", "auto"]

KIND_CODES = {"strategy": 0, "lesson": 1}
#: The index's per-slot arrays: what growing and compacting copy
_COLUMNS = ("_vecs", "_keys", "_alive", "_in_ann", "_domain", "_kind", "_conf", "_action", "_reward")

#: Below this many bytes of vectors the index's arrays grow 4x at a time, above it 2x (see ``_grow``).
GROW_4X_BELOW = 256 * 1024 * 1024

#: recall@k is measured at this k (the pilot, build samples and audits)
RECALL_K = 10


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


@dataclass(frozen=True, slots=True)
class Pilot:
    """The recall sample that decided, before the full graph, whether HNSW serves ``auto`` mode."""

    rows: int  # live rows when the decision was taken
    sizes: tuple[int, ...]  # sample sizes the graph was measured at
    recalls: tuple[float, ...]  # recall@10 of the sample graph at each size, on held-out rows
    queries: int  # held-out rows used as queries
    projected: float  # recall@10 projected at ``rows``
    build: bool  # whether the graph was kept and grown to every row
    seconds: float  # wall time of the sample (building, measuring)

    def describe(self, min_recall: float) -> str:
        """One line: the sample's figures and the decision they led to."""
        measured = ", ".join(f"{r:.3f} at {s:,}" for s, r in zip(self.sizes, self.recalls))
        cmp = ">=" if self.build else "<"
        verdict = "hnsw graph built" if self.build else "exact scan serves, full graph never built"
        return (f"sample recall@10 {measured} rows ({self.queries} held-out queries); projected "
                f"{self.projected:.3f} at {self.rows:,} rows {cmp} {min_recall}: {verdict}")


def projected_recall(sizes: Sequence[int], recalls: Sequence[float], rows: int) -> float:
    """recall@10 expected of a graph over ``rows`` rows, from its recall measured at sample
    ``sizes``: recall falls as a graph grows, so the loss per doubling between the first and last
    sample is carried on to ``rows`` (never a gain: one sample size gives its own recall)."""
    if len(sizes) < 2 or rows <= sizes[-1]:
        return float(recalls[-1])
    per_doubling = max(0.0, recalls[0] - recalls[-1]) / math.log2(sizes[-1] / sizes[0])
    return float(recalls[-1] - per_doubling * math.log2(rows / sizes[-1]))


def _at_least_kth(values: np.ndarray, k: int, exact: bool = True) -> np.ndarray:
    """Positions of every value >= the ``k``-th largest of ``values`` (``0 < k < values.size``): the
    top ``k`` and any ties with the last of them. A threshold from a strided sample usually
    leaves ~4k candidates in one vectorised compare, much cheaper than a selection over all
    values (numpy's argpartition took ~115 us over 10k values, 3x the similarity product);
    when the sample's threshold lets fewer than ``k`` through, the exact selection decides.
    With ``exact=False`` the sample's candidates (at least ``k``, the top ``k`` and their ties
    among them) are returned as they are, for a caller that sorts them anyway."""
    n = values.size
    if n > 64 * k:
        # ndarray methods rather than np.partition / np.flatnonzero: the same work without their
        # Python wrappers (a decision runs this once, right after its scan has emptied the cache)
        sample = values[:: n // (16 * k)].copy()  # ~16k values, evenly spread
        rank = max(1, (4 * k * sample.size) // n)  # its rank-th largest lets ~4k values through
        sample.partition(sample.size - rank)
        found = (values >= sample[sample.size - rank]).nonzero()[0]
        if found.size >= k and not exact:
            return found
        if found.size >= k:
            sub = values[found]
            return found[sub >= np.partition(sub, sub.size - k)[sub.size - k]]
    return np.flatnonzero(values >= np.partition(values, n - k)[n - k])


def _codes(codes: dict[str, int], values: Sequence[str]) -> list[int]:
    """Each value's small-integer code in ``codes``, new values numbered on in order of arrival."""
    return [codes.setdefault(v, len(codes)) for v in values]


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
        pilot_size: int = 10_000,
        pilot_queries: int = 200,
        audit_batch: int = 32,
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
        self.pilot_size = pilot_size
        self.pilot_queries = pilot_queries
        cap = 64
        self._vecs = np.zeros((cap, dim), dtype=np.float32)
        self._keys = np.zeros(cap, dtype=np.int64)
        self._alive = np.zeros(cap, dtype=bool)
        self._in_ann = np.zeros(cap, dtype=bool)
        self._domain = np.zeros(cap, dtype=np.int32)
        self._kind = np.zeros(cap, dtype=np.int8)
        self._conf = np.zeros(cap, dtype=np.float32)
        # what a learner weighs besides similarity, so a decision reads no row (search_columns)
        self._action = np.zeros(cap, dtype=np.int32)  # codes into _action_names
        self._reward = np.full(cap, np.nan)  # the source reward; NaN: none
        self._action_names: list[str] = [""]
        self._action_codes: dict[str, int] = {"": 0}
        self._n = 0  # slots used (live or dead)
        # every slot's key is larger than the one before it (a store adds rows in rowid order): a
        # stable sort by similarity of slots in order then breaks ties by smaller key (_ranked)
        self._keys_ascending = True
        self._live = 0
        self._n_in_ann = 0  # live rows in the graph; the rest of the live rows are the tail
        self._slot: dict[int, int] = {}
        self._domain_codes: dict[str, int] = {}
        self._ann: Index | None = None  # built on first ANN use
        self._ann_ef = -1  # the graph's expansion_search as last set
        self.audit_every = audit_every
        self.audit_batch = audit_batch
        self.min_recall = min_recall
        #: why ``auto`` mode gave up the graph for the exact scan (recall below ``min_recall``)
        self.ann_disabled: str | None = None
        #: the recall sample ``auto`` mode decided by (None until it ran, or when it had too few rows)
        self.pilot: Pilot | None = None
        #: vectors ever added to a graph, the pilot's included: what building has cost
        self.graph_rows_built = 0
        self._ann_queries = 0
        self._audit_hits = 0
        self._audit_total = 0
        self._audited_queries = 0
        self._pending: deque[tuple[np.ndarray, int, Filter]] = deque(maxlen=audit_batch)
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

    @property
    def graph(self) -> Index | None:
        """The usearch HNSW graph while one serves (benchmarks search it directly, as a reference)."""
        return self._ann

    def _drop_graph(self, reason: str) -> None:
        """In ``auto`` mode, give up the graph for the exact scan, and say why."""
        self.ann_disabled = reason
        self._ann = None
        self._in_ann[:] = False
        self._n_in_ann = 0
        self._pending.clear()

    def _check_recall(self, recall: float | None, what: str) -> None:
        """In ``auto`` mode, a graph that misses too many neighbours is dropped for the exact scan."""
        if self.mode == "auto" and recall is not None and recall < self.min_recall:
            self._drop_graph(f"{what} recall@10 {recall:.3f} < {self.min_recall}")

    def _grow(self, need: int) -> None:
        cap = self._vecs.shape[0]
        if need <= cap:
            return
        # each growth copies every row into fresh memory (its page faults cost more than the copy):
        # filled in 10k-row batches to 100k x 1024, doubling copied 600 MB, quadrupling 200 MB. The
        # capacity not yet used is zeros never touched, which take no memory, only address space:
        # quadruple while the vectors take less than GROW_4X_BELOW bytes, double after
        new = max(need, cap * (4 if cap * self.dim * 4 < GROW_4X_BELOW else 2))
        for name in _COLUMNS:
            old = getattr(self, name)
            arr = np.zeros((new,) + old.shape[1:], dtype=old.dtype)
            arr[:self._n] = old[:self._n]  # slots past _n were never used: zeros already
            setattr(self, name, arr)

    # ---- writes ------------------------------------------------------------------------

    def upsert(
        self,
        keys: Sequence[int],
        vecs: np.ndarray,
        domains: Sequence[str],
        kinds: Sequence[str],
        confidences: Sequence[float],
        actions: Sequence[str] | None = None,
        rewards: Sequence[float | None] | None = None,
    ) -> None:
        """Add rows, or replace rows whose key is already present; ``actions`` and ``rewards`` (the
        source reward, None: none) are kept for :meth:`search_columns` (omitted: ``""`` and none)."""
        vecs = np.asarray(vecs, dtype=np.float32).reshape(len(keys), self.dim)
        norms = np.sqrt(np.einsum("ij,ij->i", vecs, vecs))[:, None]  # a quarter of linalg.norm's time
        np.maximum(norms, 1e-12, out=norms)
        new_keys = [k for k in keys if k not in self._slot]
        self._grow(self._n + len(new_keys))
        before = self._n
        if len(new_keys) == len(keys) and len(set(keys)) == len(keys):  # new rows only: the next slots, in order
            slots = np.arange(self._n, self._n + len(keys), dtype=np.int64)
            self._slot.update(zip(keys, range(self._n, self._n + len(keys))))
            self._n += len(keys)
            self._live += len(keys)
            placed: Sequence[int] = ()
        else:
            slots = np.empty(len(keys), dtype=np.int64)
            placed = keys
        for i, key in enumerate(placed):
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
                self._n_in_ann -= 1
            slots[i] = slot
        first = int(slots[0]) if slots.size else 0
        if slots.size and int(slots[-1]) - first == slots.size - 1 and bool(np.all(np.diff(slots) == 1)):
            np.divide(vecs, norms, out=self._vecs[first:first + slots.size])  # new rows: no temporary
        else:
            self._vecs[slots] = vecs / norms
        self._keys[slots] = np.asarray(keys, dtype=np.int64)
        if self._keys_ascending and self._n > before:  # new slots at the end; a replaced row keeps its key
            added = self._keys[max(before - 1, 0): self._n]
            self._keys_ascending = bool(np.all(added[1:] > added[:-1]))
        self._alive[slots] = True
        self._domain[slots] = _codes(self._domain_codes, domains)
        self._kind[slots] = [KIND_CODES[k] for k in kinds]
        self._conf[slots] = np.asarray(confidences, dtype=np.float32)
        if actions is not None:
            self._action[slots] = _codes(self._action_codes, actions)
            if len(self._action_names) != len(self._action_codes):
                self._action_names = list(self._action_codes)  # code -> name, for search_columns
        else:
            self._action[slots] = 0
        self._reward[slots] = np.nan if rewards is None else [np.nan if r is None else r for r in rewards]

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
                self._n_in_ann -= 1
        if self._n > 1024 and self._live < self._n // 2:
            self._compact()

    def _compact(self) -> None:
        """Drop dead slots so the exact scan does not pay for deleted rows."""
        live = np.flatnonzero(self._alive[: self._n])
        for name in _COLUMNS:
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

    def _top(self, slots: np.ndarray, sims: np.ndarray, k: int,
             ascending: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Slots and similarities of the top ``k`` of candidates, ordered by similarity, ties by
        smaller key (also at the k-th place: which of several equally similar rows make the cut
        does not depend on the order the candidates came in). ``ascending``: see :meth:`_ranked`."""
        if slots.size > k:
            keep = _at_least_kth(sims, k)
            slots, sims = slots[keep], sims[keep]
        return self._ranked(slots, sims, k, ascending)

    def _ranked(self, slots: np.ndarray, sims: np.ndarray, k: int,
                ascending: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Slots and similarities of the first ``k`` candidates by similarity, ties by smaller key
        (the candidates must include the top ``k`` and every tie with the last of them).
        ``ascending``: the slots are in increasing order."""
        if ascending and self._keys_ascending:  # so are their keys: a stable sort keeps ties by key
            order = (-sims).argsort(kind="stable")[:k]
        else:
            order = np.lexsort((self._keys[slots], -sims))[:k]
        return slots[order], sims[order]

    def _passes_all(self, flt: Filter) -> bool:
        """True when every slot is live and passes ``flt`` without looking at a row: no dead slots,
        and the filter at most names the one domain every row ever stored has (a swarm's memory
        holds one domain, and computing a mask over every row cost a decision ~6 us)."""
        if self._live != self._n or flt.kind is not None or flt.min_confidence is not None:
            return False
        return flt.domain is None or (len(self._domain_codes) == 1 and flt.domain in self._domain_codes)

    def _exact_all(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_exact` when every slot passes: the same rows, in the same order (by similarity,
        ties by smaller key), with fewer passes over the candidates."""
        sims = self._vecs[: self._n] @ q
        if self._n <= k:
            return self._top(np.arange(self._n), sims, k, ascending=True)
        slots = _at_least_kth(sims, k, exact=False)  # >= k candidates, the top k among them, in order
        return self._ranked(slots, sims[slots], k, ascending=True)

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_ok = int(mask.sum())
        if n_ok == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if n_ok * 4 < self._n:
            slots = np.flatnonzero(mask)
            return self._top(slots, self._vecs[slots] @ q, k, ascending=True)  # gather the small subset
        sims = self._vecs[: self._n] @ q  # one pass over memory; excluded rows drop out below
        if n_ok < self._n:
            sims[~mask] = -np.inf
        slots = _at_least_kth(sims, k) if n_ok > k else np.arange(self._n)
        sims = sims[slots]
        keep = np.isfinite(sims)
        return self._top(slots[keep], sims[keep], k, ascending=True)

    def _exact_many(self, qs: np.ndarray, k: int, masks: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        """Exact top-``k`` keys of several queries (None: no filter) in one blocked pass over the
        vectors: what audits and recall samples compare the graph against, at a fraction of one
        scan per query."""
        b = qs.shape[0]
        best_s = np.zeros((b, 0), np.float32)
        best_i = np.zeros((b, 0), np.int64)
        step = max(4096, (1 << 22) // max(b, 1))  # a block of similarities stays ~16 MB
        for start in range(0, self._n, step):
            stop = min(start + step, self._n)
            sims = qs @ self._vecs[start:stop].T
            sims[:, ~self._alive[start:stop]] = -np.inf
            for i, m in enumerate(masks):
                if m is not None:
                    sims[i, ~m[start:stop]] = -np.inf
            cat_s = np.concatenate([best_s, sims], axis=1)
            cat_i = np.concatenate([best_i, np.broadcast_to(np.arange(start, stop), sims.shape)], axis=1)
            kk = min(k, cat_s.shape[1])
            part = np.argpartition(-cat_s, kk - 1, axis=1)[:, :kk]
            best_s = np.take_along_axis(cat_s, part, axis=1)
            best_i = np.take_along_axis(cat_i, part, axis=1)
        out = []
        for i in range(b):
            keep = np.isfinite(best_s[i])
            out.append(self._keys[self._top(best_i[i][keep], best_s[i][keep], k)[0]])
        return out

    def _unit_query(self, query: np.ndarray) -> np.ndarray:
        """The query as a unit float32 vector; refuses a wrong dimension, zeros and non-finite values."""
        q = query if (type(query) is np.ndarray and query.dtype == np.float32 and query.ndim == 1
                      and query.flags.c_contiguous) else np.ascontiguousarray(query, dtype=np.float32).ravel()
        if q.shape[0] != self.dim:
            raise ValueError(f"query has dimension {q.shape[0]}, the index holds {self.dim}")
        norm = math.sqrt(float(q @ q))
        if norm == 0 or not math.isfinite(norm):
            raise ValueError("query vector must be finite and non-zero")
        return q / norm  # a Python float divides a float32 array as np.float32(norm) does (NEP 50)

    def search(self, query: np.ndarray, k: int, flt: Filter = NO_FILTER) -> tuple[np.ndarray, np.ndarray]:
        """Keys and exact cosine similarities of the (approximately, in ANN mode) top ``k`` rows."""
        slots, sims = self._search(query, k, flt)
        return self._keys[slots], sims

    def search_columns(self, query: np.ndarray, k: int,
                       flt: Filter = NO_FILTER) -> tuple[list[int], list[float], list[str], list[float]]:
        """:meth:`search` with each row's action and source reward (NaN: none), as lists: what a
        learner weighs besides similarity, without reading or decoding a row."""
        slots, sims = self._search(query, k, flt)
        names = self._action_names
        return (self._keys[slots].tolist(), sims.tolist(), [names[c] for c in self._action[slots].tolist()],
                self._reward[slots].tolist())

    def _search(self, query: np.ndarray, k: int, flt: Filter) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` by slot."""
        if k <= 0 or self._live == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = self._unit_query(query)
        if not self.uses_ann:
            return self._exact_all(q, k) if self._passes_all(flt) else self._exact(q, k, self._mask(flt))
        mask: np.ndarray | None = None
        selectivity = 1.0
        if not flt.empty:
            mask = self._mask(flt)
            selectivity = int(mask.sum()) / self._live
            if selectivity < 0.05:
                return self._exact(q, k, mask)  # few rows pass: scanning them beats the graph
        self._sync_ann()
        if not self.uses_ann:  # the recall sample (or the build's) found the graph's recall too low
            return self._exact(q, k, self._mask(flt) if mask is None else mask)
        found = self._ann_search(q, k, mask, selectivity)
        if found is None:
            return self._exact(q, k, self._mask(flt) if mask is None else mask)
        self._ann_queries += 1
        if self.audit_every and (self._ann_queries - 1) % self.audit_every == 0:  # the 1st, then every audit_every-th
            self._pending.append((q, k, flt))  # answered again, and exactly, by audit()
        return found

    def _ann_search(self, q: np.ndarray, k: int, mask: np.ndarray | None,
                    selectivity: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Top ``k`` through the graph plus the exact-scanned tail; None when too few candidates pass
        ``mask`` (None: no filter) even after widening the graph search to every row."""
        fetch = k if mask is None else math.ceil(k / selectivity * 1.5)
        tail = (np.flatnonzero(self._alive[: self._n] & ~self._in_ann[: self._n])
                if self._n_in_ann < self._live else None)
        while True:
            slots = self._ann_candidates(q, fetch)
            if tail is not None:
                slots = np.concatenate([slots, tail])
            if mask is not None:  # unfiltered, every candidate is live: the graph holds only live rows
                slots = slots[mask[slots]]
            if slots.size >= k or fetch >= self._live:
                break
            fetch *= 4
        if slots.size < k:
            return None
        return self._top(slots, self._vecs[slots] @ q, k)

    def audit(self) -> float | None:
        """Answer the kept live queries again by the graph and by the exact scan, in one blocked
        pass, and fold the overlap into :attr:`measured_recall` (off the query path); returns it.
        In ``auto`` mode a graph whose audited recall falls below ``min_recall`` is dropped."""
        if not self._pending:
            return self.recall_so_far
        pending = list(self._pending)
        self._pending.clear()
        if self._ann is None:  # the graph was dropped since: nothing left to audit
            return self.recall_so_far
        masks = [None if flt.empty else self._mask(flt) for _, _, flt in pending]
        truths = self._exact_many(np.stack([q for q, _, _ in pending]), max(k for _, k, _ in pending), masks)
        for (q, k, _), mask, truth in zip(pending, masks, truths):
            sel = 1.0 if mask is None else max(int(mask.sum()), 1) / max(self._live, 1)
            found = self._ann_search(q, k, mask, sel)
            if found is None:  # too few candidates now pass: the search would fall back to the exact scan
                continue
            self._audit_hits += len(set(truth[:k].tolist()) & set(self._keys[found[0]].tolist()))
            self._audit_total += len(truth[:k])
            self._audited_queries += 1
        if self._audit_total >= 5 * RECALL_K:
            self._check_recall(self.recall_so_far, "audited")
        return self.recall_so_far

    @property
    def recall_so_far(self) -> float | None:
        """:attr:`measured_recall` without running the kept audits first."""
        return self._audit_hits / self._audit_total if self._audit_total else None

    @property
    def measured_recall(self) -> float | None:
        """Recall of ANN answers on real queries: every ``audit_every``-th ANN query, answered again
        exactly and compared (runs the audits still kept first). None until the first audit."""
        return self.audit()

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

    # ---- which index serves, and why -------------------------------------------------

    @property
    def index_reason(self) -> str:
        """Why the index that serves searches is the one it is (one line)."""
        if self.mode == "exact":
            return "index_mode='exact': the exact scan serves"
        if self.mode == "ann":
            built = "" if self.build_sample_recall is None else f"; build-sample recall@10 {self.build_sample_recall:.3f}"
            return f"index_mode='ann': the hnsw graph serves whatever its recall{built}"
        if self.ann_disabled is not None:
            return self.ann_disabled
        if self._live < self.ann_threshold:
            return f"{self._live:,} rows < ann_threshold {self.ann_threshold:,}: the exact scan serves"
        if self.pilot is not None:
            return self.pilot.describe(self.min_recall)
        if self._ann is not None:
            return f"{self._live:,} rows: graph built whole (too few rows for a sample)"
        return f"{self._live:,} rows >= ann_threshold: a recall sample decides at the first search"

    def stats(self) -> dict[str, Any]:
        """Which index serves (``exact``, ``hnsw``, or ``pending`` until ``auto`` mode decides) and
        why, with the recall figures behind it (runs the kept audits first)."""
        audited = self.audit()
        if not self.uses_ann:
            serving = "exact"
        elif self._ann is None and self.mode == "auto":
            serving = "pending"
        else:
            serving = "hnsw"
        return {
            "index": serving,
            "index_reason": self.index_reason,
            "index_rows": self._live,
            "graph_rows": 0 if self._ann is None else len(self._ann),
            "graph_rows_built": self.graph_rows_built,
            "index_pilot": None if self.pilot is None else asdict(self.pilot),
            "ann_recall_build_sample": self.build_sample_recall,
            "ann_recall_audited": audited,
            "ann_audited_queries": self._audited_queries,
            "ann_disabled": self.ann_disabled,
        }

    # ---- the ANN graph -----------------------------------------------------------------

    def _new_graph(self) -> Index:
        from usearch.index import Index

        self._ann_ef = self.ef_search
        return Index(ndim=self.dim, metric="ip", dtype="f32", connectivity=self.connectivity,
                     expansion_add=self.ef_construction, expansion_search=self.ef_search)

    def _add_to_graph(self, graph: Index, slots: np.ndarray, threads: int = 0) -> None:
        """Add rows to a graph (``threads=0``: every core) and count what building has cost."""
        graph.add(self._keys[slots], self._vecs[slots], threads=threads)
        self.graph_rows_built += int(slots.size)

    def _ann_candidates(self, q: np.ndarray, fetch: int) -> np.ndarray:
        ann = self._ann
        if ann is None or len(ann) == 0:
            return np.zeros(0, np.int64)
        ef = max(self.ef_search, fetch)
        if ef != self._ann_ef:
            # usearch defines this property's setter apart from its getter, so mypy takes it as read-only
            ann.expansion_search = ef  # type: ignore[misc]
            self._ann_ef = ef
        found = ann.search(q, min(fetch, len(ann)))
        slot = self._slot
        return np.array([slot[k] for k in found.keys.tolist() if k in slot], dtype=np.int64)

    def _sync_ann(self) -> None:
        """Build the graph on first use (in ``auto`` mode only if the recall sample says so); fold
        the tail in once it has grown past ``fold_every``, auditing the kept queries first."""
        if self._ann is not None:
            if self._live - self._n_in_ann < self.fold_every:
                return
            self.audit()  # the graph is about to change: audit it as it served; this may drop it
            if self._ann is None:
                return
        first_build = self._ann is None
        if first_build:
            if self.mode == "auto" and self.pilot is None:
                graph = self._pilot()
                if graph is None:
                    return  # the sample said no: the exact scan serves, no full graph was built
                self._ann = graph
            else:
                self._ann = self._new_graph()
        assert self._ann is not None  # it existed, or was just built
        tail = np.flatnonzero(self._alive[: self._n] & ~self._in_ann[: self._n])
        if tail.size:
            self._add_to_graph(self._ann, tail)
            self._in_ann[tail] = True
            self._n_in_ann += int(tail.size)
        if first_build:  # later folds are covered by the live audits
            self.build_sample_recall = self._measure_recall()
            self._check_recall(self.build_sample_recall, "build-sample")

    def _pilot(self) -> Index | None:
        """Build a graph over a seeded random sample of the live rows, growing it from
        ``pilot_size / 4`` to ``pilot_size`` rows, and measure its recall@10 at each size on
        held-out rows (against the exact top 10 of the sample); project the trend to every row.
        Returns the sample graph to grow into the full one, or None (the exact scan serves).
        Built on one thread, so the same rows give the same graph and the same decision every run
        (usearch's multi-threaded inserts vary: 0.887-0.894 over four builds of one sample)."""
        t0 = time.perf_counter()
        live = np.flatnonzero(self._alive[: self._n])
        n = int(live.size)
        big = min(self.pilot_size, n // 2)
        if big < 40 * RECALL_K:  # too few rows to sample: the whole graph is cheap, and measured after
            return self._new_graph()
        perm = np.random.default_rng(n).permutation(live)
        sample, held_out = perm[:big], perm[big:big + self.pilot_queries]
        queries = self._vecs[held_out]
        graph = self._new_graph()
        sizes: list[int] = []
        recalls: list[float] = []
        done = 0
        for size in (big // 4, big):
            self._add_to_graph(graph, sample[done:size], threads=1)  # one thread: the same graph every run
            done = size
            sims = queries @ self._vecs[sample[:size]].T
            truth = self._keys[sample[:size]][np.argpartition(-sims, RECALL_K - 1, axis=1)[:, :RECALL_K]]
            got = np.reshape(graph.search(queries, RECALL_K, threads=1).keys, (len(queries), -1))
            hits = sum(len(set(t.tolist()) & set(g.tolist())) for t, g in zip(truth, got))
            sizes.append(size)
            recalls.append(hits / truth.size)
            if recalls[-1] < self.min_recall:
                break  # already too low on the sample: a bigger graph only does worse
        projected = projected_recall(sizes, recalls, n)
        build = projected >= self.min_recall
        self.pilot = Pilot(rows=n, sizes=tuple(sizes), recalls=tuple(round(r, 4) for r in recalls),
                           queries=int(held_out.size), projected=round(projected, 4), build=build,
                           seconds=round(time.perf_counter() - t0, 3))
        if not build:
            self.ann_disabled = self.pilot.describe(self.min_recall)
            return None
        self._in_ann[sample] = True
        self._n_in_ann += int(sample.size)
        return graph

    def _measure_recall(self, sample: int = 64, k: int = RECALL_K) -> float:
        """recall@k of the graph against the exact scan, using stored vectors as queries.

        Each query's own row is dropped from both answers: finding itself is free, and counting
        it would overstate the recall a fresh query gets.
        """
        in_ann = np.flatnonzero(self._in_ann[: self._n])
        if in_ann.size <= k + 1:
            return 1.0
        rng = np.random.default_rng(in_ann.size)
        picks = rng.choice(in_ann, size=min(sample, in_ann.size), replace=False)
        assert self._ann is not None  # rows are marked in the graph only while it exists
        self._ann.expansion_search = self.ef_search  # type: ignore[misc]  # usearch's setter: see _ann_candidates
        self._ann_ef = self.ef_search
        mask = None if self._n_in_ann == self._live else self._in_ann[: self._n].copy()
        exact = self._exact_many(self._vecs[picks], k + 1, [mask] * len(picks))
        approx = np.reshape(self._ann.search(self._vecs[picks], k + 1, threads=0).keys, (len(picks), -1))
        hits = 0
        for slot, truth, got in zip(picks, exact, approx):
            own = int(self._keys[slot])
            exact_k = [int(x) for x in truth.tolist() if x != own][:k]
            approx_k = [int(x) for x in got.tolist() if x != own][:k]
            hits += len(set(exact_k) & set(approx_k))
        return hits / (len(picks) * k)
