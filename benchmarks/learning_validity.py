"""Does memory help? Memory learner vs no-memory learner, random, best fixed and oracle over seeds.

Each seed trains every policy on its own market (three assets, ``--bars`` bars each) and scores
accuracy (share of decisions that picked the hindsight-best strategy), win rate and Sharpe
(annualised by 252 / 10-bar trades). Prints one JSON object; ``memory_minus_nomemory`` is the
mean per-seed accuracy difference with a 95% t-interval (scipy-free: t quantiles from a table).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scenarios.base import market_decisions, run_policy  # noqa: E402
from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy  # noqa: E402
from swarm.learning.policies import (  # noqa: E402
    ContextFreeBandit,
    FixedPolicy,
    HindsightOracle,
    RandomPolicy,
    best_fixed_strategy,
)
from swarm.learning.summary import Scoring, summarise  # noqa: E402

# two-sided 95% Student-t quantiles by degrees of freedom (1..30); beyond 30 the normal 1.96
# is within 2% - a table, because scipy would be a whole dependency for one number
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042]


def mean_ci(values: list[float]) -> dict[str, float]:
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "n": int(x.size)}
    half = (_T95[x.size - 2] if x.size - 1 <= 30 else 1.96) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": int(x.size)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=100, help="held-out seeds: never used in tuning")
    ap.add_argument("--bars", type=int, default=4000)
    args = ap.parse_args(argv)
    if args.seeds < 2:
        print("learning_validity: --seeds must be >= 2 for a confidence interval", file=sys.stderr)
        return 2
    scoring = Scoring()
    per: dict[str, dict[str, list[float]]] = {}
    t0 = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        decisions = market_decisions(seed, args.bars)
        memory = MemoryPolicy.open(":memory:", MemoryConfig(seed=seed))
        policies = [memory, ContextFreeBandit(seed=seed), RandomPolicy(seed),
                    FixedPolicy(best_fixed_strategy(decisions), name="best-fixed"), HindsightOracle(decisions)]
        for p in policies:
            s = summarise(run_policy(p, decisions), scoring)
            row = per.setdefault(p.name, {"accuracy": [], "win_rate": [], "sharpe_ratio": []})
            for key in row:
                row[key].append(s[key] if s[key] is not None else float("nan"))
        memory.close()
    diff = [a - b for a, b in zip(per["memory"]["accuracy"], per["no-memory"]["accuracy"])]
    out = {
        "benchmark": "learning_validity",
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "bars_per_asset": args.bars,
        "decisions_per_seed": len(decisions),
        "policies": {name: {k: float(np.nanmean(v)) for k, v in row.items()} for name, row in per.items()},
        "memory_minus_nomemory": mean_ci(diff),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
