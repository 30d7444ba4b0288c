"""Pattern packs: the exported memory of a real earlier run, for warm starts.

``python -m scenarios.packs OUT.jsonl --seed S`` trains a cold memory learner on a seeded
market and exports its bank; scenarios call :func:`generate_pack` the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from swarm.learning.memory_policy import MemoryConfig, MemoryPolicy

from .base import market_decisions, run_policy

#: Packs are trained on markets this far from the scenario seed, so they never see its data.
PACK_SEED_OFFSET = 1_000


def train_memory(seed: int, n_bars: int, config: MemoryConfig = MemoryConfig(), *,
                 path: str = ":memory:", name: str = "source") -> MemoryPolicy:
    """A memory learner trained on the seeded market (the caller closes it)."""
    policy = MemoryPolicy.open(path, replace(config, seed=seed), name=name)
    run_policy(policy, market_decisions(seed, n_bars))
    return policy


def generate_pack(path: str | os.PathLike[str], seed: int, n_bars: int = 4000,
                  config: MemoryConfig = MemoryConfig()) -> int:
    """Train on market ``seed`` and export the bank to ``path``; returns the pattern count."""
    policy = train_memory(seed, n_bars, config, name=f"pack-{seed}")
    try:
        return policy.bank.export(path)
    finally:
        policy.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=PACK_SEED_OFFSET)
    ap.add_argument("--bars", type=int, default=4000)
    args = ap.parse_args(argv)
    n = generate_pack(args.out, args.seed, args.bars)
    print(f"wrote {n} patterns to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
