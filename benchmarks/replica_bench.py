"""Replica benchmark: what keeping patterns replicated costs each agent of a learning mesh.

    python benchmarks/replica_bench.py                    # 5 agents, 30 episodes, seed 0
    python benchmarks/replica_bench.py --agents 5 10 --episodes 30 --seed 0

One JSON line per swarm size: per agent (mean over agents), the SQLite store's bytes (after a
checkpoint) and patterns; the gossip replica's versions held in memory beside the store and their
bytes (embedding plus the JSON body of every version held); writes the node published as its own
that were copies it had received (echoes); and, for the swarm, frames and bytes on the wire, entries
received and how many of those the receiver already held. Virtual time on the simulated network:
the figures are deterministic for a seed. The README has the figures from before and after the
store became the only replica.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.memory.transfer import pattern_to_record  # noqa: E402
from swarm.orchestrator import Swarm  # noqa: E402
from swarm.specs import SwarmConfig  # noqa: E402
from topologies import mesh  # noqa: E402


def _version_bytes(pattern: object) -> int:
    """Bytes one held version costs, roughly: its embedding plus its JSON record."""
    record = pattern_to_record(pattern)  # type: ignore[arg-type]
    return int(pattern.embedding.nbytes) + len(json.dumps({k: v for k, v in record.items() if k != "embedding"}))  # type: ignore[attr-defined]


def measure(agents: int, episodes: int, seed: int) -> dict[str, object]:
    cfg = SwarmConfig(seed=seed, episodes=episodes, transport="sim", runtime="in-process")
    with Swarm.of(mesh.TOPOLOGY, cfg, mesh.agents(seed, agents)) as swarm:
        swarm.run()
        rows = []
        for a in swarm.agents.values():
            a.store.checkpoint()
            versions = a.node.log.versions()  # type: ignore[attr-defined]
            own = [p for origin, p in versions if origin == a.node.origin]  # type: ignore[attr-defined]
            rows.append({
                "store_bytes": a.store.size_bytes() - a.store.wal_bytes(),
                "store_patterns": len(a.store),
                "replica_versions": len(versions),
                "replica_bytes": sum(_version_bytes(p) for _, p in versions),
                "echoes": sum(1 for p in own if p.updated_by and p.updated_by != a.id),
            })
        stats = [a.node.stats for a in swarm.agents.values()]  # type: ignore[attr-defined]
        traffic = swarm.traffic()
    mean = {k: round(sum(r[k] for r in rows) / len(rows), 1) for k in rows[0]}
    return {"agents": agents, "episodes": episodes, "seed": seed, "per_agent": mean,
            "frames": traffic.get("messages", 0), "bytes": traffic.get("bytes", 0),
            "entries_received": sum(s.entries_received for s in stats),
            "entries_already_held": sum(s.entries_duplicate for s in stats)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[5])
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for n in args.agents:
        print(json.dumps(measure(n, args.episodes, args.seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
