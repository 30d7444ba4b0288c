"""What checking each row as it is loaded costs a store (issue 16): open and cold reads, with the
check and without it. Prints one JSON object per ``--dim``.

    python benchmarks/row_check_bench.py                      # 20k patterns, dims 64 and 1024
    python benchmarks/row_check_bench.py --n 50000 --dim 64 --repeats 5

Every row a store loads (at open and refresh, into the vector index) or decodes from SQLite (a
search's or a get's rows not in the row cache) is checked: value types and ranges, the body digest
over its content and embedding, the row digest over its figures (``_row_damage`` in
``swarm/memory/store.py``). The reference is the same work with that one function replaced by a
no-op in this process: the store's own code path, minus the check. Figures (medians of
interleaved repeats, both measured in this run):

  open_s_checked / open_s_unchecked      open an existing file of ``n`` patterns (load + index)
  open_check_share                       1 - unchecked / checked
  cold_get_us_per_row_checked / _unchecked   ``get_many`` of 2,000 random ids, 20 at a time, row cache emptied first
  cold_get_check_share                   1 - unchecked / checked
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.memory import store as store_module
from swarm.memory.models import Pattern, make_pattern_id
from swarm.memory.store import PatternStore

# the check, and the no-op that stands in for it in the reference runs (a benchmark may swap a
# module's function; nothing else in the process runs meanwhile)
CHECK = store_module._row_damage


def _no_check(row: Any, embedding_bytes: int) -> None:
    return None


def _patterns(n: int, dim: int, rng: np.random.Generator) -> list[Pattern]:
    embs = rng.standard_normal((n, dim)).astype(np.float32)
    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
    return [Pattern(id=make_pattern_id("bench", f"p{i}"), title=f"pattern {i}", description="a benchmark pattern",
                    content="momentum when the trend is up", domain="bench", kind="strategy", action="momentum",
                    embedding=embs[i], confidence=0.6, uses=i % 7, successes=i % 7, created_at=float(i))
            for i in range(n)]


def _open_seconds(path: Path) -> float:
    t = time.perf_counter()
    store = PatternStore(path)  # loads and checks every row into the vector index
    seconds = time.perf_counter() - t
    store.close()
    return seconds


def _cold_get_us_per_row(path: Path, ids: list[str]) -> float:
    store = PatternStore(path)
    times = []
    for chunk in range(0, len(ids), 20):
        store.clear_row_cache()
        t = time.perf_counter()
        store.get_many(ids[chunk:chunk + 20])
        times.append((time.perf_counter() - t) / 20)
    store.close()
    return statistics.median(times) * 1e6


def measure(n: int, dim: int, repeats: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = PatternStore(path, dim=dim)
        pats = _patterns(n, dim, rng)
        for i in range(0, n, 10_000):
            store.add_many(pats[i:i + 10_000])
        store.close()
        ids = [pats[int(i)].id for i in rng.choice(n, 2_000, replace=False)]
        runs: dict[str, list[float]] = {k: [] for k in ("open_c", "open_u", "get_c", "get_u")}
        for _ in range(repeats):
            for checked in (True, False):
                store_module._row_damage = CHECK if checked else _no_check  # type: ignore[assignment]
                try:
                    runs["open_c" if checked else "open_u"].append(_open_seconds(path))
                    runs["get_c" if checked else "get_u"].append(_cold_get_us_per_row(path, ids))
                finally:
                    store_module._row_damage = CHECK
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {"n": n, "dim": dim, "repeats": repeats,
            "open_s_checked": round(med["open_c"], 4), "open_s_unchecked": round(med["open_u"], 4),
            "open_check_share": round(1 - med["open_u"] / med["open_c"], 3),
            "cold_get_us_per_row_checked": round(med["get_c"], 2),
            "cold_get_us_per_row_unchecked": round(med["get_u"], 2),
            "cold_get_check_share": round(1 - med["get_u"] / med["get_c"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, nargs="+", default=[64, 1024])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for dim in args.dim:
        print(json.dumps(measure(args.n, dim, args.repeats, args.seed)), flush=True)


if __name__ == "__main__":
    main()
