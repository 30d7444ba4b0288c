"""Memory engine benchmark: durable inserts, search latency and recall. Prints one JSON object per configuration.

    python benchmarks/memory_bench.py                       # 100k x 1024, clustered+random, exact+ann
    python benchmarks/memory_bench.py --n 10000 --dim 256 --data clustered --index ann

Figures (all measured in this run, on this machine):
  insert_batched_per_s   patterns/s through PatternStore.add_many, 10k per transaction, committed
                         with synchronous=FULL (fsync) and mirrored into the index
  insert_single_p50_ms   one pattern per transaction
  index_build_s          ANN only: building the HNSW graph (triggered by the first search)
  search_p50_ms/p99_ms   top-10 through PatternStore.search (index + fetching the rows from SQLite)
  index_search_p50_ms    top-10 from the vector index alone
  recall_at_10           against exact float64 cosine over the whole data set
  ann_recall_build_sample / ann_recall_audited   the index's own recall figures (build-time sample
                         of stored vectors; audits of live queries), to compare with recall_at_10
  bytes_per_pattern      database file size after a WAL checkpoint, divided by n
  exact_scan_gb_per_s    exact mode: bytes of vectors scanned per second by one query
  memory_read_gb_per_s   reference: numpy streaming the same matrix once (a reduction over it)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.memory import Pattern, PatternStore  # noqa: E402


def make_data(n: int, dim: int, kind: str, seed: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "clustered":
        centers = rng.standard_normal((200, dim)).astype(np.float32)

        def draw(m: int) -> np.ndarray:
            return centers[rng.integers(0, len(centers), m)] + 0.6 * rng.standard_normal((m, dim)).astype(np.float32)
    else:
        def draw(m: int) -> np.ndarray:
            return rng.standard_normal((m, dim)).astype(np.float32)
    x, q = draw(n), draw(queries)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q


def exact_truth(x: np.ndarray, q: np.ndarray, k: int) -> list[set[int]]:
    out = []
    x64 = x.astype(np.float64)
    for start in range(0, len(q), 50):
        sims = q[start:start + 50].astype(np.float64) @ x64.T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        out += [set(row.tolist()) for row in top]
    return out


def pct(values: list[float], p: float) -> float:
    return round(float(np.percentile(values, p)) * 1e3, 4)


def run(n: int, dim: int, data: str, index: str, queries: int, seed: int, workdir: Path) -> dict:
    x, q = make_data(n, dim, data, seed, queries)
    patterns = [Pattern(id=f"p{i:08d}", title="benchmark pattern", content="content", embedding=x[i])
                for i in range(n)]
    path = workdir / f"bench-{data}-{index}-{n}-{dim}.db"
    store = PatternStore(path, dim=dim, index_mode=index, synchronous="FULL")
    t0 = time.perf_counter()
    for start in range(0, n, 10_000):
        store.add_many(patterns[start:start + 10_000])
    insert_s = time.perf_counter() - t0

    rng = np.random.default_rng(seed + 1)
    single = []
    for i in range(100):
        p = Pattern(id=f"single{i}", title="t", content="c", embedding=rng.standard_normal(dim))
        t = time.perf_counter()
        store.add(p)
        single.append(time.perf_counter() - t)
    store.delete_many([f"single{i}" for i in range(100)])

    t = time.perf_counter()
    store.search(q[0], 10)  # builds the ANN graph in ann mode
    build_s = time.perf_counter() - t

    rowid_to_i = {rid: int(pid[1:]) for pid, rid in store.rowid_of([p.id for p in patterns]).items()}
    truth = exact_truth(x, q, 10)
    api, raw, hits = [], [], 0
    for qi, qv in enumerate(q):
        t = time.perf_counter()
        found = store.search(qv, 10)
        api.append(time.perf_counter() - t)
        t = time.perf_counter()
        keys, _ = store.index.search(qv, 10)
        raw.append(time.perf_counter() - t)
        hits += len({int(p.id[1:]) for p, _ in found} & truth[qi])
        assert {rowid_to_i[int(k)] for k in keys} == {int(p.id[1:]) for p, _ in found}

    recall_sampled = store.index.build_sample_recall
    recall_audited = store.index.measured_recall
    store.checkpoint()
    size = os.path.getsize(path)
    t = time.perf_counter()
    reps = 5
    for _ in range(reps):
        np.bitwise_xor.reduce(x.view(np.uint64).ravel())
    read_gbps = reps * x.nbytes / (time.perf_counter() - t) / 1e9
    store.close()
    out = {
        "n": n, "dim": dim, "data": data, "index": index,
        "insert_batched_per_s": round(n / insert_s),
        "insert_single_p50_ms": pct(single, 50),
        "index_build_s": round(build_s, 3) if index == "ann" else None,
        "search_p50_ms": pct(api, 50),
        "search_p99_ms": pct(api, 99),
        "index_search_p50_ms": pct(raw, 50),
        "recall_at_10": round(hits / (10 * len(q)), 4),
        "ann_recall_build_sample": recall_sampled,
        "ann_recall_audited": recall_audited,
        "bytes_per_pattern": round(size / n, 1),
        "exact_scan_gb_per_s": round(x.nbytes / float(np.median(raw)) / 1e9, 2) if index == "exact" else None,
        "memory_read_gb_per_s": round(read_gbps, 2),
        "queries": len(q),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
    }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100_000])
    ap.add_argument("--dim", type=int, nargs="+", default=[1024])
    ap.add_argument("--data", choices=["clustered", "random"], nargs="+", default=["clustered", "random"])
    ap.add_argument("--index", choices=["exact", "ann"], nargs="+", default=["exact", "ann"])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as tmp:
        for n in args.n:
            for dim in args.dim:
                for data in args.data:
                    for index in args.index:
                        print(json.dumps(run(n, dim, data, index, args.queries, args.seed, Path(tmp))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
