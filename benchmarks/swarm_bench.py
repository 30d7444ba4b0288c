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

What the security alone costs: every write, version and contribution is signed by its maker (in
batches: one Ed25519 signature per 8 messages, see ``swarm.gossip.identity``) and checked by those
that take it. ``signatures_made_per_decision`` and ``signatures_checked_per_decision`` count the
Ed25519 signatures and checks in the gossiping run (the agents of one process share a key ring,
which checks each once; agents in separate processes each check what they receive),
``ed25519_sign_us`` / ``ed25519_verify_us`` time one of each here, after the runs, and
``gossip_ratio_signatures_alone`` is the ratio gossip would have if everything in it but signing
and checking cost nothing (a floor under ``gossip_ratio``; the hashing of batch proofs is left
out of it, and counts in ``gossip_ratio``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.gossip import Signer  # noqa: E402
from swarm.orchestrator import Swarm  # noqa: E402
from swarm.specs import SwarmConfig  # noqa: E402
from topologies import mesh  # noqa: E402


@dataclass
class Run:
    """One mesh run: its wall seconds, the decisions made, the copies of each write held by peers
    other than its writer (mean over writes), and the signatures made and checked."""

    wall: float
    decisions: int
    copies: float
    signed: int
    checked: int


def one_run(agents: int, episodes: int, seed: int, gossip: bool, degree: int | None) -> Run:
    cfg = SwarmConfig(seed=seed, episodes=episodes, sync=gossip, transport="sim", runtime="in-process",
                      degree=degree)
    t0 = time.perf_counter()
    with Swarm.of(mesh.TOPOLOGY, cfg, mesh.agents(seed, agents)) as swarm:
        swarm.run()
        wall = time.perf_counter() - t0
        decisions = sum(a.cursor for a in swarm.agents.values())
        own = sum(a.node.log.digest().get(a.node.origin, 0) for a in swarm.agents.values())
        held = sum(a.node.log.writes for a in swarm.agents.values())
        signed = sum(a.node.identity.signer.signed for a in swarm.agents.values())  # no restarts in this mesh
        checked = swarm.keyring.checked
    return Run(wall, decisions, (held - own) / own if own else 0.0, signed, checked)


def ed25519_us() -> tuple[float, float]:
    """Microseconds to sign a write's message, and to check the signature, on this machine now
    (median of 5 batches of 200)."""
    signer = Signer.derive("bench", b"swarm-bench")
    key = signer.key.public_key()
    message = b"swarm-write/1\x00agent-0042\x1f1234\x1f" + b"p" * 40
    sig = signer.sign(message)
    sign, verify = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(200):
            signer.sign(message)
        t1 = time.perf_counter()
        for _ in range(200):
            key.verify(sig, message)
        sign.append((t1 - t0) / 200 * 1e6)
        verify.append((time.perf_counter() - t1) / 200 * 1e6)
    return statistics.median(sign), statistics.median(verify)


def measure(agents: int, episodes: int, seed: int, repeats: int, degree: int | None) -> dict[str, object]:
    on: list[float] = []
    off: list[float] = []
    walls: list[float] = []
    copies = 0.0
    for _ in range(repeats):
        gossiping = one_run(agents, episodes, seed, True, degree)  # the same counts every repeat
        walls.append(gossiping.wall)
        on.append(gossiping.wall * 1e3 / gossiping.decisions)
        alone = one_run(agents, episodes, seed, False, degree)
        off.append(alone.wall * 1e3 / alone.decisions)
    ms_on, ms_off = statistics.median(on), statistics.median(off)
    sign_us, verify_us = ed25519_us()
    made, checked = gossiping.signed / gossiping.decisions, gossiping.checked / gossiping.decisions
    signature_ms = (made * sign_us + checked * verify_us) / 1e3
    return {"agents": agents, "episodes": episodes, "seed": seed, "repeats": repeats,
            "degree": mesh.DEGREE if degree is None else degree, "copies_per_write": round(gossiping.copies, 2),
            "ms_per_decision_gossip": round(ms_on, 3), "ms_per_decision_no_gossip": round(ms_off, 3),
            "gossip_ratio": round(ms_on / ms_off, 2), "wall_seconds": round(statistics.median(walls), 1),
            "signatures_made_per_decision": round(made, 2), "signatures_checked_per_decision": round(checked, 2),
            "ed25519_sign_us": round(sign_us, 1), "ed25519_verify_us": round(verify_us, 1),
            "signature_ms_per_decision": round(signature_ms, 3),
            "gossip_ratio_signatures_alone": round(1 + signature_ms / ms_off, 2)}


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
