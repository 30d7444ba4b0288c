"""Replica benchmark: what keeping patterns replicated costs each agent of a learning mesh.

    python benchmarks/replica_bench.py                    # 5 agents, 30 episodes, seed 0
    python benchmarks/replica_bench.py --agents 5 10 --episodes 30 --seed 0

One JSON line per swarm size: per agent (mean over agents), the SQLite store's bytes (after a
checkpoint; they include the replica's write log) and patterns; the write log's rows; versions kept
in memory beside the store (none: the store is the replica); writes the node published as its own
that were copies it had received (echoes); its deletions published as tombstones; and, for the
swarm, frames and bytes on the wire, entries received and how many of those the receiver already
held, revisions sent and those a receiver could not rebuild (sent again whole), and patterns
deleted by a peer's tombstone. Virtual time on the simulated network:
the figures are deterministic for a seed. The README has the figures from before and after the
store became the only replica.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.orchestrator import Swarm  # noqa: E402
from swarm.specs import SwarmConfig  # noqa: E402
from topologies import mesh  # noqa: E402


def measure(agents: int, episodes: int, seed: int) -> dict[str, object]:
    cfg = SwarmConfig(seed=seed, episodes=episodes, transport="sim", runtime="in-process")
    with Swarm.of(mesh.TOPOLOGY, cfg, mesh.agents(seed, agents)) as swarm:
        swarm.run()
        rows = []
        for a in swarm.agents.values():
            a.store.checkpoint()
            log = a.node.log
            own = a.store.replica_after(a.node.origin, 0, log.writes + 1)
            rows.append({
                "store_bytes": a.store.size_bytes() - a.store.wal_bytes(),
                "store_patterns": len(a.store),
                "replica_log_rows": log.writes,  # one row per write held, in the store
                "replica_versions_in_memory": 0,  # the store is the replica: no version is kept beside it
                "echoes": sum(1 for _, _, _, _, by, body, _ in own if body and by != a.id),
                "tombstones_published": sum(1 for _, _, _, _, _, body, _ in own if not body),
            })
        stats = [a.node.stats for a in swarm.agents.values()]
        traffic = swarm.traffic()
    mean = {k: round(sum(r[k] for r in rows) / len(rows), 1) for k in rows[0]}
    return {"agents": agents, "episodes": episodes, "seed": seed, "per_agent": mean,
            "frames": traffic.get("messages", 0), "bytes": traffic.get("bytes", 0),
            "entries_received": sum(s.entries_received for s in stats),
            "entries_already_held": sum(s.entries_duplicate for s in stats),
            "revisions_sent": sum(s.revisions_sent for s in stats),
            "revisions_unresolved": sum(s.revisions_unresolved for s in stats),
            "tombstones_applied": sum(s.tombstones_applied for s in stats)}


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
