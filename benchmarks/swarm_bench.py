"""Swarm benchmark: the cost of one agent-decision in a simulated learning mesh, gossip on and off.

    python benchmarks/swarm_bench.py                                  # N = 5, 50, 200, 1000
    python benchmarks/swarm_bench.py --agents 5 50 --episodes 5 --repeats 3
    python benchmarks/swarm_bench.py --agents 50 --degree 0             # full replication, for comparison

Per N, one JSON object: wall milliseconds per agent-decision (a decision: retrieve, choose, trade,
judge, distill, store, record outcomes) with gossip on and with gossip off (the same swarm, seed
and market, ``sync=False``), their ratio, and the wall seconds of the gossiping run. With
``--repeats`` > 1 the on and off runs alternate and each figure is the median, so that load on this
shared machine falls on both alike. Virtual time on the simulated network: the learning is
deterministic for a seed, only the wall time varies. Gossip's settle time after the last trade
counts (it is part of what gossip costs). The mesh keeps each peer to the writes of its ``degree``
ring neighbours (``topologies.mesh.DEGREE``; ``--degree 0``: every peer's); ``copies_per_write``
is the measured number of peers that ended up holding each write, beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.orchestrator import Swarm  # noqa: E402
from swarm.specs import SwarmConfig  # noqa: E402
from topologies import mesh  # noqa: E402


def one_run(agents: int, episodes: int, seed: int, gossip: bool, degree: int | None) -> tuple[float, int, float]:
    """Wall seconds of one mesh run, the decisions it made, and the copies of each write held
    by peers other than its writer (mean over writes)."""
    cfg = SwarmConfig(seed=seed, episodes=episodes, sync=gossip, transport="sim", runtime="in-process",
                      degree=degree)
    t0 = time.perf_counter()
    with Swarm.of(mesh.TOPOLOGY, cfg, mesh.agents(seed, agents)) as swarm:
        swarm.run()
        wall = time.perf_counter() - t0
        decisions = sum(a.cursor for a in swarm.agents.values())
        own = sum(a.node.log.digest().get(a.node.origin, 0) for a in swarm.agents.values())
        held = sum(a.node.log.writes for a in swarm.agents.values())
    return wall, decisions, (held - own) / own if own else 0.0


def measure(agents: int, episodes: int, seed: int, repeats: int, degree: int | None) -> dict[str, object]:
    on: list[float] = []
    off: list[float] = []
    walls: list[float] = []
    copies = 0.0
    for _ in range(repeats):
        wall, decisions, copies = one_run(agents, episodes, seed, True, degree)
        walls.append(wall)
        on.append(wall * 1e3 / decisions)
        wall, decisions, _ = one_run(agents, episodes, seed, False, degree)
        off.append(wall * 1e3 / decisions)
    ms_on, ms_off = statistics.median(on), statistics.median(off)
    return {"agents": agents, "episodes": episodes, "seed": seed, "repeats": repeats,
            "degree": mesh.DEGREE if degree is None else degree, "copies_per_write": round(copies, 2),
            "ms_per_decision_gossip": round(ms_on, 3), "ms_per_decision_no_gossip": round(ms_off, 3),
            "gossip_ratio": round(ms_on / ms_off, 2), "wall_seconds": round(statistics.median(walls), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[5, 50, 200, 1000])
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--degree", type=int, default=None, help="ring neighbours kept (0: all; default: the mesh's)")
    args = ap.parse_args(argv)
    if min(args.agents) < 1 or args.episodes < 1 or args.repeats < 1:
        print("swarm_bench: --agents, --episodes and --repeats must be >= 1", file=sys.stderr)
        return 2
    if args.degree is not None and (args.degree < 0 or args.degree % 2):
        print("swarm_bench: --degree must be 0 or even", file=sys.stderr)
        return 2
    for n in args.agents:
        print(json.dumps(measure(n, args.episodes, args.seed, args.repeats, args.degree)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
