"""Memory engine benchmark: durable inserts, search latency and recall. Prints one JSON object per configuration.

    python benchmarks/memory_bench.py                 # 100k x 1024, clustered+random, exact+ann+auto
    python benchmarks/memory_bench.py --n 10000 --dim 256 --data clustered --index ann

Figures (all measured in this run, on this machine; medians of ``--repeats`` interleaved repeats):
  insert_batched_per_s   patterns/s through PatternStore.add_many, 10k per transaction, committed
                         with synchronous=FULL (fsync) and mirrored into the index
  plain_sqlite_insert_per_s  reference: sqlite3 executemany of the same rows (read back from the
                         store's file) into the same table, 10k per transaction, same PRAGMAs
  insert_vs_plain_sqlite plain seconds / store seconds, per repeat, median (bar: >= 0.8)
  insert_single_p50_ms   one pattern per transaction
  first_search_s         the first search: in ann mode it builds the graph; in auto mode the recall
                         sample decides first (index_build_s: the same, when a graph was built)
  serves, index_reason   which index serves, and why (VectorIndex.stats())
  search_p50_ms/p99_ms   top-10 through PatternStore.search, every row read from SQLite and decoded
                         (the store's row cache emptied before each query, untimed)
  search_cached_rows_p50_ms  the same queries again with their rows in the row cache (what repeated
                         and nearby searches cost: an agent's decisions retrieve overlapping rows)
  index_search_p50_ms    top-10 from the vector index alone
  raw_index_search_p50_ms  reference: the raw index with the same queries: the store's own usearch
                         graph searched through usearch's API (same ef), or numpy over the same
                         matrix when the exact scan serves
  search_vs_raw_index    search p50 / raw index p50, per repeat, median (bar: <= 1.3; rows from
                         SQLite); search_cached_rows_vs_raw_index: the same with cached rows;
                         index_vs_raw_index: the same for the vector index alone
  recall_at_10           against exact float64 cosine over the whole data set
  ann_recall_build_sample / ann_recall_audited   the index's own recall figures (build-time sample
                         of stored vectors; audits of live queries), to compare with recall_at_10
  index_pilot            auto mode: the recall sample taken before building (sizes, recalls, projection)
  bytes_per_pattern      database file size after a WAL checkpoint, divided by n
  exact_scan_gb_per_s    exact scan serving: bytes of vectors scanned per second by one numpy query
  memory_read_gb_per_s   reference: numpy streaming the same matrix once (a reduction over it)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.memory import Pattern, PatternStore  # noqa: E402
from swarm.memory.index import IndexMode  # noqa: E402


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


def _schema(path: Path) -> list[str]:
    """The CREATE statements of a store's file (tables and indexes), to give the plain write the same table."""
    db = sqlite3.connect(path)
    try:
        return [r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name != 'sqlite_sequence'"
                                         " ORDER BY rowid")]
    finally:
        db.close()


def _stored_rows(path: Path) -> tuple[list[str], list[tuple]]:
    """The pattern rows exactly as the store wrote them (every column but the rowid), in insertion order."""
    db = sqlite3.connect(path)
    try:
        cols = [r[1] for r in db.execute("PRAGMA table_info(patterns)") if r[1] != "rowid"]
        return cols, db.execute(f"SELECT {', '.join(cols)} FROM patterns ORDER BY rowid").fetchall()
    finally:
        db.close()


def plain_sqlite_insert(path: Path, schema: list[str], cols: list[str], rows: list[tuple], batch: int) -> float:
    """Seconds for sqlite3 alone to write ``rows`` into the store's table, ``batch`` per transaction, with
    the store's PRAGMAs (64 KiB pages, WAL, synchronous=FULL): the reference for durable inserts."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA page_size = 65536")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")
    for sql in schema:
        db.execute(sql)
    insert = f"INSERT INTO patterns ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    t0 = time.perf_counter()
    for start in range(0, len(rows), batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, rows[start:start + batch])
        db.execute("COMMIT")
    seconds = time.perf_counter() - t0
    db.close()
    return seconds


def store_insert(path: Path, dim: int, index: IndexMode, patterns: list[Pattern], batch: int) -> tuple[PatternStore, float]:
    """A fresh store at ``path`` and the seconds its batched durable inserts of ``patterns`` took."""
    store = PatternStore(path, dim=dim, index_mode=index, synchronous="FULL")
    t0 = time.perf_counter()
    for start in range(0, len(patterns), batch):
        store.add_many(patterns[start:start + batch])
    return store, time.perf_counter() - t0


def _drop(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def raw_searcher(store: PatternStore, x: np.ndarray) -> tuple[str, Callable[[np.ndarray], object]]:
    """The raw index a search is set against: the store's own usearch graph searched directly through
    usearch's API (same graph, same ef), or, when the exact scan serves, numpy over the same matrix."""
    idx = store.index
    assert idx is not None
    graph = idx.graph if idx.uses_ann else None
    if graph is not None:
        graph.expansion_search = idx.ef_search  # type: ignore[misc]  # usearch defines the setter apart from the getter
        return "usearch", lambda qv: graph.search(qv, 10).keys

    def scan(qv: np.ndarray) -> np.ndarray:
        sims = x @ qv
        top = np.argpartition(-sims, 9)[:10]
        return top[np.argsort(-sims[top])]
    return "numpy", scan


def run(n: int, dim: int, data: str, index: IndexMode, queries: int, seed: int, workdir: Path, repeats: int) -> dict:
    x, q = make_data(n, dim, data, seed, queries)
    patterns = [Pattern(id=f"p{i:08d}", title="benchmark pattern", content="content", embedding=x[i])
                for i in range(n)]
    batch = 10_000
    # durable inserts against sqlite3 alone writing the same rows, interleaved, alternating which goes first
    path = workdir / f"bench-{data}-{index}-{n}-{dim}.db"
    store, first = store_insert(path, dim, index, patterns, batch)
    schema = _schema(path)
    cols, rows = _stored_rows(path)
    store_s, plain_s = [first], []
    for r in range(repeats):
        plain = workdir / f"plain-{r}.db"
        if r == 0:
            plain_s.append(plain_sqlite_insert(plain, schema, cols, rows, batch))
        else:
            other = workdir / f"again-{r}.db"
            if r % 2:
                plain_s.append(plain_sqlite_insert(plain, schema, cols, rows, batch))
            again, seconds = store_insert(other, dim, index, patterns, batch)
            again.close()
            _drop(other)
            store_s.append(seconds)
            if not r % 2:
                plain_s.append(plain_sqlite_insert(plain, schema, cols, rows, batch))
        _drop(plain)
    del rows
    insert_ratio = float(np.median([p / s for p, s in zip(plain_s, store_s)]))

    rng = np.random.default_rng(seed + 1)
    single = []
    for i in range(100):
        p = Pattern(id=f"single{i}", title="t", content="c", embedding=rng.standard_normal(dim))
        t = time.perf_counter()
        store.add(p)
        single.append(time.perf_counter() - t)
    store.delete_many([f"single{i}" for i in range(100)])

    t = time.perf_counter()
    store.search(q[0], 10)  # in ann mode builds the graph; in auto mode the recall sample decides first
    first_search_s = time.perf_counter() - t
    idx = store.index
    assert idx is not None
    raw_kind, raw_search = raw_searcher(store, x)

    rowid_to_i = {rid: int(pid[1:]) for pid, rid in store.rowid_of([p.id for p in patterns]).items()}
    truth = exact_truth(x, q, 10)
    found_by_query: list[list] = []
    keys_by_query: list[np.ndarray] = []

    def api_search(qv: np.ndarray) -> None:
        found_by_query.append(store.search(qv, 10))

    def api_cached(qv: np.ndarray) -> None:
        store.search(qv, 10)

    for qv in q:  # every query's rows in the row cache once, for the cached-rows path
        store.search(qv, 10)

    def index_search(qv: np.ndarray) -> None:
        keys_by_query.append(idx.search(qv, 10)[0])

    # each repeat runs the queries through the three paths in turn, whole passes in a rotating order: a
    # query answered by one path must not warm the caches of the next path answering the same query
    # ("api": every row read from SQLite, the row cache emptied before each query, untimed;
    # "cached": the same queries answered again with their rows in the row cache)
    paths = {"api": api_search, "cached": api_cached, "index": index_search, "raw": raw_search}
    p50s: dict[str, list[float]] = {name: [] for name in paths}
    api_all: list[float] = []
    for rep in range(repeats):
        names = list(paths)[rep % len(paths):] + list(paths)[:rep % len(paths)]
        for name in names:
            times = []
            for qv in q:
                if name == "api":
                    store.clear_row_cache()
                t = time.perf_counter()
                paths[name](qv)
                times.append(time.perf_counter() - t)
            if name == "api":  # leave the cache as the cached path expects it
                for qv in q:
                    store.search(qv, 10)
            p50s[name].append(float(np.median(times)))
            if name == "api":
                api_all += times
    hits = 0
    for qi in range(len(q)):  # the first repeat's answers
        found, keys = found_by_query[qi], keys_by_query[qi]
        hits += len({int(p.id[1:]) for p, _ in found} & truth[qi])
        assert {rowid_to_i[int(k)] for k in keys} == {int(p.id[1:]) for p, _ in found}
    api_p50, index_p50, raw_p50 = p50s["api"], p50s["index"], p50s["raw"]

    stats = idx.stats()  # runs the audits kept from the searches above (off the query path)
    store.checkpoint()
    size = os.path.getsize(path)
    t = time.perf_counter()
    reps = 5
    for _ in range(reps):
        np.bitwise_xor.reduce(x.view(np.uint64).ravel())
    read_gbps = reps * x.nbytes / (time.perf_counter() - t) / 1e9
    store.close()
    _drop(path)
    return {
        "n": n, "dim": dim, "data": data, "index": index,
        "serves": stats["index"],
        "index_reason": stats["index_reason"],
        "insert_batched_per_s": round(n / float(np.median(store_s))),
        "plain_sqlite_insert_per_s": round(n / float(np.median(plain_s))),
        "insert_vs_plain_sqlite": round(insert_ratio, 3),
        "insert_single_p50_ms": pct(single, 50),
        "first_search_s": round(first_search_s, 3),
        "index_build_s": round(first_search_s, 3) if stats["graph_rows"] else None,
        "graph_rows_built": stats["graph_rows_built"],
        "search_p50_ms": round(float(np.median(api_p50)) * 1e3, 4),
        "search_p99_ms": pct(api_all, 99),
        "index_search_p50_ms": round(float(np.median(index_p50)) * 1e3, 4),
        "raw_index": raw_kind,
        "raw_index_search_p50_ms": round(float(np.median(raw_p50)) * 1e3, 4),
        "search_vs_raw_index": round(float(np.median([a / r for a, r in zip(api_p50, raw_p50)])), 3),
        "search_cached_rows_p50_ms": round(float(np.median(p50s["cached"])) * 1e3, 4),
        "search_cached_rows_vs_raw_index": round(float(np.median([a / r for a, r in zip(p50s["cached"], raw_p50)])), 3),
        "index_vs_raw_index": round(float(np.median([i / r for i, r in zip(index_p50, raw_p50)])), 3),
        "recall_at_10": round(hits / (10 * len(q)), 4),
        "ann_recall_build_sample": stats["ann_recall_build_sample"],
        "ann_recall_audited": stats["ann_recall_audited"],
        "index_pilot": stats["index_pilot"],
        "bytes_per_pattern": round(size / n, 1),
        "exact_scan_gb_per_s": round(x.nbytes / float(np.median(raw_p50)) / 1e9, 2) if raw_kind == "numpy" else None,
        "memory_read_gb_per_s": round(read_gbps, 2),
        "queries": len(q),
        "repeats": repeats,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100_000])
    ap.add_argument("--dim", type=int, nargs="+", default=[1024])
    ap.add_argument("--data", choices=["clustered", "random"], nargs="+", default=["clustered", "random"])
    ap.add_argument("--index", choices=["exact", "ann", "auto"], nargs="+", default=["exact", "ann", "auto"])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats behind each median and ratio")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as tmp:
        for n in args.n:
            for dim in args.dim:
                for data in args.data:
                    for index in args.index:
                        print(json.dumps(run(n, dim, data, index, args.queries, args.seed, Path(tmp), args.repeats)),
                              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
