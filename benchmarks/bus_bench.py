"""Bus benchmark: the gossip bus on loopback, over QUIC and over TCP+TLS in the same run.

    python benchmarks/bus_bench.py                       # N = 5, 20, 50; 1,000 patterns
    python benchmarks/bus_bench.py --nodes 5 --patterns 200 --workers 1
    python benchmarks/bus_bench.py --quic-backend aioquic qh3 --repeats 3   # both QUIC stacks, medians

Per N and transport, one JSON line: one node publishes a batch of ``--patterns`` patterns (64-d
embeddings, ~1.3 KB each on the wire) to a full mesh of N nodes; measured are the seconds until
every node holds all of them, pattern copies delivered per second (``patterns x (N - 1)`` over
that time), sync latency p50/p99 (publication to arrival at each other node, wall ms), CPU
seconds per delivered copy (summed over the worker processes, from publication to the end), and
frames and bytes sent. A last line per N (and QUIC backend) gives QUIC's figures over TCP+TLS's;
with ``--repeats R`` the runs of each transport are interleaved and the ratios are of medians.

The N nodes are spread over ``--workers`` OS processes (default: one per core), each running its
share of endpoints on one event loop, as agents on one machine would; every node talks to every
other over real loopback sockets. Gossip settings are the swarm's on real sockets (its fanout,
its gossip interval in wall time, one pull in flight).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import anyio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.gossip import GossipConfig, GossipNode, PatternsReceived, Signer, derived_identities  # noqa: E402
from swarm.gossip.membership import DEAD  # noqa: E402
from swarm.kernel import AnyioKernel  # noqa: E402
from swarm.memory.models import Pattern, make_pattern_id  # noqa: E402
from swarm.agent import QUIC_GOSSIP  # noqa: E402
from swarm.specs import SwarmConfig  # noqa: E402
from swarm.transport import GossipBus  # noqa: E402
from swarm.transport.quic import SwarmCA  # noqa: E402

DIM = 64
PUBLISHER = "n0"
KEY_SECRET = b"bus-bench"  # every worker draws the same write keys from it (each node's certificate holds its key)


def batch(n: int, seed: int = 0) -> list[Pattern]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        v = rng.standard_normal(DIM).astype(np.float32)
        out.append(Pattern(id=make_pattern_id("bench", str(i)), title=f"pattern {i}", description="momentum in a trend",
                           content="buy the breakout, exit on reversal", domain="trading", kind="strategy",
                           action="momentum", embedding=v / np.linalg.norm(v), created_at=float(i)))
    return out


def gossip_config() -> GossipConfig:
    """The swarm's gossip on real sockets, with its interval in wall seconds."""
    swarm = SwarmConfig()
    # membership timers in wall seconds, generous: dozens of pure-Python endpoints share a core here
    return GossipConfig(dim=DIM, fanout=swarm.fanout, gossip_interval=swarm.gossip_interval * swarm.time_scale,
                        **{**QUIC_GOSSIP, "probe_interval": 1.0, "ack_timeout": 0.5, "suspect_timeout": 10.0})


# ---- a worker process: some of the nodes, on one event loop ---------------------------------------


async def _worker(conn: Connection, job: dict[str, Any]) -> None:
    """Bind this worker's endpoints, report their addresses, take the directory, then at the
    shared start time gossip until told to stop; report figures."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from swarm.transport.quic import NodeCredentials, QuicEndpoint
    from swarm.transport.tls import TlsEndpoint

    names, everyone, patterns = job["names"], job["everyone"], job["patterns"]
    directory: dict[str, tuple[str, int]] = {}

    def make(creds: NodeCredentials) -> Any:
        if job["transport"] == "quic":
            return QuicEndpoint(creds, directory=directory, backend=job["quic_backend"])
        return TlsEndpoint(creds, directory=directory)

    identities = derived_identities(everyone, KEY_SECRET)
    endpoints = [make(NodeCredentials(name, x509.load_pem_x509_certificate(cert),
                                      serialization.load_pem_private_key(key, None),  # type: ignore[arg-type]
                                      job["ca_pem"], identities[name].signer.key))
                 for name, cert, key in job["credentials"]]
    arrivals: list[float] = []
    held = {name: 0 for name in names}
    t0 = 0.0
    done_sent = False

    def on_event(name: str) -> Any:
        def handle(ev: Any) -> None:
            nonlocal done_sent
            if isinstance(ev, PatternsReceived):
                arrivals.extend([time.time() - t0] * len(ev.ids))
                held[name] += len(ev.ids)
                if not done_sent and all(v >= patterns for k, v in held.items() if k != PUBLISHER):
                    done_sent = True
                    conn.send(("done", time.time() - t0))
        return handle

    async with AsyncExitStack() as stack:
        for ep in endpoints:
            await stack.enter_async_context(ep)
        conn.send(("addresses", {ep.node: ep.address for ep in endpoints}))
        directory.update(conn.recv())
        t0 = conn.recv()  # the shared start (time.time)
        kernel = AnyioKernel()
        cfg = gossip_config()
        nodes = [GossipNode(name, cfg, seed=1, now=kernel.now(), identity=identities[name]) for name in names]
        for node in nodes:
            node.bootstrap(everyone, kernel.now())
        buses = [GossipBus(kernel, node, ep, on_event(node.id)) for node, ep in zip(nodes, endpoints)]
        await anyio.sleep(max(0.0, t0 - time.time()))
        cpu0 = time.process_time()
        if not held or all(v >= patterns for k, v in held.items() if k != PUBLISHER):
            done_sent = True
            conn.send(("done", 0.0))  # only the publisher here: nothing to wait for
        for node in nodes:
            if node.id == PUBLISHER:
                node.publish(batch(patterns), kernel.now())
        async with anyio.create_task_group() as tg:
            for bus in buses:
                tg.start_soon(bus.run)
            await anyio.to_thread.run_sync(conn.recv)  # "stop"
            cpu = time.process_time() - cpu0
            tg.cancel_scope.cancel()
    conn.send(("figures", {"arrivals": arrivals, "held": held, "cpu": cpu,
                           "frames_sent": sum(ep.stats.frames_sent for ep in endpoints),
                           "bytes_sent": sum(ep.stats.bytes_sent for ep in endpoints),
                           "datagrams_sent": sum(getattr(ep.stats, "datagrams_sent", 0) for ep in endpoints),
                           "duplicate_entries": sum(node.stats.entries_duplicate for node in nodes),
                           "pulls_expired": sum(node.stats.pulls_expired for node in nodes),
                           "false_deaths": sum(1 for node in nodes for m in node.membership.members.values()
                                               if m.status == DEAD)}))


def worker_main(fd: int) -> None:
    conn = Connection(fd)
    job = conn.recv()
    if not job.get("profile"):
        anyio.run(_worker, conn, job, backend=job["backend"])
        return
    import cProfile  # --profile DIR: one cProfile dump per worker, for `python -m pstats`
    prof = cProfile.Profile()
    prof.enable()
    try:
        anyio.run(_worker, conn, job, backend=job["backend"])
    finally:
        prof.disable()
    prof.dump_stats(Path(job["profile"]) / f"{job['transport']}-n{len(job['everyone'])}-{job['names'][0]}.prof")


# ---- the orchestrating process --------------------------------------------------------------------


def _spawn_worker() -> tuple[subprocess.Popen[bytes], Connection]:
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen([sys.executable, __file__, "--worker", str(theirs.fileno())], pass_fds=[theirs.fileno()])
    theirs.close()
    return proc, Connection(ours.detach())


def replicate(transport: str, n: int, patterns: int = 1000, timeout: float = 300.0,
              workers: int | None = None, backend: str = "asyncio", profile: str | None = None,
              quic_backend: str | None = None) -> dict[str, Any]:
    """Replicate a batch of ``patterns`` from one node to N - 1 others; one result row.
    ``transport`` is "quic" (on ``quic_backend``: aioquic unless $SWARM_QUIC_BACKEND says) or "tcp+tls"."""
    from cryptography.hazmat.primitives import serialization

    from swarm.transport.quic import quic_backend as resolve
    quic_backend = resolve(quic_backend).name if transport == "quic" else None

    workers = max(1, min(n, workers or os.cpu_count() or 1))
    ca = SwarmCA.generate()
    names = [f"n{i}" for i in range(n)]
    shares = [names[w::workers] for w in range(workers)]  # the publisher n0 sits in worker 0
    procs = [_spawn_worker() for _ in range(workers)]
    try:
        for (_, conn), share in zip(procs, shares):
            creds = [ca.issue(name, write_key=Signer.derive(name, KEY_SECRET).key) for name in share]
            conn.send({"names": share, "everyone": names, "patterns": patterns, "transport": transport,
                       "backend": backend, "ca_pem": ca.pem, "profile": profile, "quic_backend": quic_backend,
                       "credentials": [(c.node, c.certificate.public_bytes(serialization.Encoding.PEM),
                                        c.private_key.private_bytes(serialization.Encoding.PEM,
                                                                    serialization.PrivateFormat.PKCS8,
                                                                    serialization.NoEncryption()))
                                       for c in creds]})
        directory: dict[str, tuple[str, int]] = {}
        for _, conn in procs:
            kind, addresses = conn.recv()
            directory.update(addresses)
        t0 = time.time() + 0.5
        for _, conn in procs:
            conn.send(directory)
            conn.send(t0)
        finished: list[float] = []
        deadline = t0 + timeout
        waiting = [conn for _, conn in procs]
        while waiting and time.time() < deadline:
            for conn in waiting[:]:
                if conn.poll(max(0.0, min(0.05, deadline - time.time()))):
                    kind, at = conn.recv()
                    finished.append(at)
                    waiting.remove(conn)
        elapsed = min(time.time() - t0, timeout) if waiting else max(finished)
        for _, conn in procs:
            conn.send("stop")
        figures = []
        for _, conn in procs:
            while (msg := conn.recv())[0] != "figures":  # a late "done" may come first
                pass
            figures.append(msg[1])
        for proc, _ in procs:
            proc.wait(30)
    finally:
        for proc, conn in procs:
            conn.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    complete = not waiting
    copies = patterns * (n - 1)
    delivered = sum(v for f in figures for k, v in f["held"].items())
    lat = np.array([a for f in figures for a in f["arrivals"]]) * 1e3
    cpu = sum(f["cpu"] for f in figures)
    return {"bench": "bus", "transport": transport, "quic_backend": quic_backend, "nodes": n, "workers": workers,
            "patterns": patterns,
            "complete": complete, "seconds_to_full_replication": round(elapsed, 3) if complete else None,
            "copies_delivered": int(delivered), "patterns_per_s": round(delivered / max(elapsed, 1e-9), 1),
            "sync_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "sync_p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
            "cpu_us_per_pattern": round(cpu / max(1, copies) * 1e6, 1),
            "frames_sent": sum(f["frames_sent"] for f in figures),
            "bytes_sent": sum(f["bytes_sent"] for f in figures),
            "datagrams_sent": sum(f["datagrams_sent"] for f in figures),
            "duplicate_entries": sum(f["duplicate_entries"] for f in figures),
            "pulls_expired": sum(f["pulls_expired"] for f in figures),
            "members_marked_dead": sum(f["false_deaths"] for f in figures)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[5, 20, 50])
    ap.add_argument("--patterns", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--workers", type=int, default=None, help="processes to spread the nodes over (default: cores)")
    ap.add_argument("--backend", default="asyncio", choices=("asyncio", "trio"))
    ap.add_argument("--quic-backend", nargs="+", default=["aioquic"], choices=("aioquic", "qh3"),
                    help="QUIC stack(s) to measure, each against the same TCP+TLS runs")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved runs per transport; ratios of medians")
    ap.add_argument("--profile", default=None, metavar="DIR", help="write a cProfile dump per worker into DIR")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # internal: FD of a worker
    args = ap.parse_args(argv)
    if args.worker is not None:
        worker_main(args.worker)
        return 0
    keys = ("seconds_to_full_replication", "patterns_per_s", "sync_p50_ms", "sync_p99_ms", "cpu_us_per_pattern",
            "bytes_sent")
    runs = [("quic", b) for b in args.quic_backend] + [("tcp+tls", None)]
    for n in args.nodes:
        rows: dict[tuple[str, str | None], list[dict[str, Any]]] = {r: [] for r in runs}
        for _ in range(args.repeats):
            for t, b in runs:
                row = replicate(t, n, args.patterns, args.timeout, args.workers, args.backend, args.profile, b)
                rows[(t, b)].append(row)
                print(json.dumps(row), flush=True)
        tcp = rows[("tcp+tls", None)]
        for t, b in runs[:-1]:
            ratio = {}
            for k in keys:
                q_vals = [r[k] for r in rows[(t, b)]]
                t_vals = [r[k] for r in tcp]
                # a run that did not finish has no time: a median over it is unknown, not the finished ones'
                q_med = None if None in q_vals else float(np.median(q_vals))
                t_med = None if None in t_vals else float(np.median(t_vals))
                ratio[k] = round(q_med / t_med, 3) if q_med and t_med else None
            print(json.dumps({"bench": "bus", "nodes": n, "quic_backend": b, "repeats": args.repeats,
                              "quic_complete": sum(r["complete"] for r in rows[(t, b)]),
                              "quic_over_tcp_tls": ratio}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
