"""Decision benchmark: one memory-policy decision at 10k patterns against Vowpal Wabbit's contextual
bandit deciding on the same contexts, in the same run.

    python benchmarks/decision_bench.py                  # 10,000 patterns, 500 timed contexts
    python benchmarks/decision_bench.py --patterns 2000 --contexts 200 --repeats 5

Both learners first learn from the same stream of market decisions (the memory policy until its
store holds ``--patterns`` patterns; the bandit on exactly the same decisions, with bandit
feedback). Then each decides (``choose``: for the memory, retrieve and weigh the nearest patterns;
for VW, predict its exploration distribution and draw) on the same held-out contexts, in passes
that alternate which learner goes first; a pass times every context once. Prints one JSON object
with the median per-pass p50 of each in microseconds and their ratio (memory / bandit). A
decision weighs the similarity, strategy and reward of its 32 nearest patterns from the vector
index's columns, and reads from the store only the rows of the patterns it names as informers
(``update_top``, 2), which the store's row cache keeps, as it does while an agent decides;
``memory_decide_us_p50_rows_from_sqlite`` times a pass with that cache emptied before every
decision (those rows read from SQLite and decoded). Both decide on one BLAS thread,
as a swarm's agents do; ``memory_decide_us_p50_default_blas_threads`` times the memory with
numpy's default threads (OpenBLAS's spin on a busy machine).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from threadpoolctl import threadpool_limits  # noqa: E402

from scenarios.base import bars_for, market_decisions  # noqa: E402
from swarm.learning import bandit  # noqa: E402
from swarm.learning.episodes import Outcome  # noqa: E402
from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy  # noqa: E402
from swarm.market import STRATEGIES  # noqa: E402


def outcome_of(decision: Any, choice: Any) -> Outcome:
    """The outcome of ``choice`` on ``decision`` (bandit feedback: the chosen strategy's P&L only)."""
    return Outcome(decision.context, choice.strategy, float(decision.pnl[STRATEGIES.index(choice.strategy)]),
                   informed_by=tuple(getattr(choice, "informed_by", ())))


def p50_us(decide: Any, contexts: list[Any]) -> float:
    times = []
    for c in contexts:
        t = time.perf_counter()
        decide(c)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patterns", type=int, default=10_000)
    ap.add_argument("--contexts", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.patterns < 1 or args.contexts < 1 or args.repeats < 1:
        print("decision_bench: --patterns, --contexts and --repeats must be >= 1", file=sys.stderr)
        return 2
    if not bandit.available():
        print("decision_bench: vowpalwabbit is not installed (the dev extra)", file=sys.stderr)
        return 2
    stream = market_decisions(args.seed, bars_for(2 * args.patterns + args.contexts))
    held_out = [d.context for d in market_decisions(args.seed + 10_000, bars_for(args.contexts))][:args.contexts]
    with tempfile.TemporaryDirectory() as tmp:
        memory = MemoryPolicy.open(Path(tmp) / "bench.db", MemoryConfig(seed=args.seed), name="bench")
        vw = bandit.ContextualBandit(seed=args.seed)
        t0 = time.perf_counter()
        learned = 0
        for d in stream:  # the same decisions for both; the memory writes about one pattern each
            if len(memory.bank.store) >= args.patterns:
                break
            for policy in (memory, vw):
                choice = policy.choose(d.context)
                policy.update(outcome_of(d, choice))
            learned += 1
        train_s = time.perf_counter() - t0
        patterns = len(memory.bank.store)
        mem_p50, vw_p50 = [], []
        with threadpool_limits(limits=1, user_api="blas"):  # as a swarm's agents decide (see Swarm.run)
            for r in range(args.repeats):  # alternate who goes first, so warm caches favour neither
                order = [("memory", memory), ("bandit", vw)] if r % 2 == 0 else [("bandit", vw), ("memory", memory)]
                for name, policy in order:
                    (mem_p50 if name == "memory" else vw_p50).append(p50_us(policy.choose, held_out))
        # numpy's default BLAS threads (a library user's process that does not limit them): on a
        # busy 2-core machine OpenBLAS's threads spin on the 10k x 64 product (see the README)
        mem_default = [p50_us(memory.choose, held_out) for _ in range(args.repeats)]
        store = memory.bank.store

        def cold_choose(context: Any) -> None:  # the informers' rows read from SQLite again
            store.clear_row_cache()
            t = time.perf_counter()
            memory.choose(context)
            cold_times.append(time.perf_counter() - t)
        cold_times: list[float] = []
        with threadpool_limits(limits=1, user_api="blas"):
            for c in held_out:
                cold_choose(c)
        cold = statistics.median(cold_times) * 1e6
        vw.finish()
        memory.close()
    mem, band, default = statistics.median(mem_p50), statistics.median(vw_p50), statistics.median(mem_default)
    print(json.dumps({"patterns": patterns, "decisions_learned": learned, "contexts": len(held_out),
                      "repeats": args.repeats, "memory_decide_us_p50": round(mem, 1),
                      "bandit_decide_us_p50": round(band, 1), "ratio": round(mem / band, 2),
                      "memory_decide_us_p50_default_blas_threads": round(default, 1),
                      "ratio_default_blas_threads": round(default / band, 2),
                      "memory_decide_us_p50_rows_from_sqlite": round(cold, 1),
                      "ratio_rows_from_sqlite": round(cold / band, 2),
                      "train_seconds": round(train_s, 1), "vw_args": bandit.VW_ARGS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
