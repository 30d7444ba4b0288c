"""Bus benchmark: the gossip bus on loopback, over QUIC and over TCP+TLS in the same run.

    python benchmarks/bus_bench.py                       # N = 5, 20, 50; 1,000 patterns
    python benchmarks/bus_bench.py --nodes 5 --patterns 200

Per N and transport, one JSON line: one node publishes a batch of ``--patterns`` patterns (64-d
embeddings, ~1.3 KB each on the wire) to a full mesh of N nodes; measured are the seconds until
every node holds all of them, pattern copies delivered per second (``patterns x (N - 1)`` over
that time), sync latency p50/p99 (publication to arrival at each other node, wall ms), CPU
seconds of this process per delivered copy (all N endpoints share one event loop and core), and
frames and bytes sent. A last line per N gives QUIC's figures over TCP+TLS's. Same gossip
settings as the swarm on real sockets (fanout 3, 0.1 s interval, one pull in flight).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.gossip import GossipConfig, GossipNode, PatternsReceived  # noqa: E402
from swarm.kernel import AnyioKernel  # noqa: E402
from swarm.memory.models import Pattern, make_pattern_id  # noqa: E402
from swarm.orchestrator import QUIC_GOSSIP  # noqa: E402
from swarm.transport import GossipBus  # noqa: E402
from swarm.transport.quic import QuicEndpoint, SwarmCA  # noqa: E402
from swarm.transport.tls import TlsEndpoint  # noqa: E402

DIM = 64


def batch(n: int, seed: int = 0) -> list[Pattern]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        v = rng.standard_normal(DIM).astype(np.float32)
        out.append(Pattern(id=make_pattern_id("bench", str(i)), title=f"pattern {i}", description="momentum in a trend",
                           content="buy the breakout, exit on reversal", domain="trading", kind="strategy",
                           action="momentum", embedding=v / np.linalg.norm(v), created_at=float(i)))
    return out


async def _replicate(transport: str, n: int, patterns: int, timeout: float) -> dict[str, Any]:
    ca = SwarmCA.generate()
    directory: dict[str, tuple[str, int]] = {}
    kernel = AnyioKernel()
    cfg = GossipConfig(dim=DIM, fanout=3, gossip_interval=0.1, **{**QUIC_GOSSIP, "probe_interval": 0.5,
                                                                   "ack_timeout": 0.25, "suspect_timeout": 5.0})
    names = [f"n{i}" for i in range(n)]
    make = QuicEndpoint if transport == "quic" else TlsEndpoint
    endpoints = [make(ca.issue(name), directory=directory) for name in names]
    arrivals: list[float] = []
    held = {name: 0 for name in names}
    done = anyio.Event()
    t0 = 0.0

    def on_event(name: str):
        def handle(ev: Any) -> None:
            if isinstance(ev, PatternsReceived):
                now = time.perf_counter()
                arrivals.extend([now - t0] * len(ev.patterns))
                held[name] += len(ev.patterns)
                if all(v >= patterns for k, v in held.items() if k != "n0"):
                    done.set()
        return handle

    async with contextlib.AsyncExitStack() as stack:
        for ep in endpoints:
            await stack.enter_async_context(ep)
        nodes = [GossipNode(name, cfg, seed=1, now=kernel.now()) for name in names]
        for node in nodes:
            node.bootstrap(names, kernel.now())
        buses = [GossipBus(kernel, node, ep, on_event(node.id)) for node, ep in zip(nodes, endpoints)]
        cpu0, t0 = time.process_time(), time.perf_counter()
        nodes[0].publish(batch(patterns), kernel.now())
        async with anyio.create_task_group() as tg:
            for bus in buses:
                tg.start_soon(bus.run)
            with anyio.move_on_after(timeout):
                await done.wait()
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            tg.cancel_scope.cancel()
    copies = patterns * (n - 1)
    complete = done.is_set()
    lat = np.array(arrivals) * 1e3
    return {"bench": "bus", "transport": transport, "nodes": n, "patterns": patterns, "complete": complete,
            "seconds_to_full_replication": round(elapsed, 3) if complete else None,
            "copies_delivered": int(sum(held.values())), "patterns_per_s": round(sum(held.values()) / elapsed, 1),
            "sync_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "sync_p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
            "cpu_us_per_pattern": round(cpu / max(1, copies) * 1e6, 1),
            "frames_sent": sum(ep.stats.frames_sent for ep in endpoints),
            "bytes_sent": sum(ep.stats.bytes_sent for ep in endpoints),
            "duplicate_entries": sum(node.stats.entries_duplicate for node in nodes)}


def replicate(transport: str, n: int, patterns: int = 1000, timeout: float = 300.0,
              backend: str = "asyncio") -> dict[str, Any]:
    return anyio.run(_replicate, transport, n, patterns, timeout, backend=backend)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[5, 20, 50])
    ap.add_argument("--patterns", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--backend", default="asyncio", choices=("asyncio", "trio"))
    args = ap.parse_args(argv)
    for n in args.nodes:
        rows = {t: replicate(t, n, args.patterns, args.timeout, args.backend) for t in ("quic", "tcp+tls")}
        for row in rows.values():
            print(json.dumps(row), flush=True)
        q, t = rows["quic"], rows["tcp+tls"]
        ratio = {k: (round(q[k] / t[k], 3) if q[k] and t[k] else None)
                 for k in ("seconds_to_full_replication", "patterns_per_s", "sync_p50_ms", "sync_p99_ms",
                           "cpu_us_per_pattern", "bytes_sent")}
        print(json.dumps({"bench": "bus", "nodes": n, "quic_over_tcp_tls": ratio}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
