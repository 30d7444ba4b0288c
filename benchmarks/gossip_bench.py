"""Gossip benchmark: rounds to full replication in the simulated mesh, beside push-gossip theory.

    python benchmarks/gossip_bench.py                      # N = 10, 100, 1000
    python benchmarks/gossip_bench.py --nodes 10 100 --loss 0.2 --crash 0.1

Per N and condition, one JSON line: rounds (gossip intervals) until every live node holds a
pattern that one live node published, and until every live node holds all the patterns that
``--writers`` live nodes published at once; the bound ``log2 N + ln N`` beside them; whether any
pattern was lost among live nodes; frames and bytes on the wire; wall seconds. The faulty
condition drops ``--loss`` of all frames and crashes ``--crash`` of the nodes (not the writers)
just before the writes. Every node knows the member list from configuration (no join storm),
fanout 3, gossip interval 1 s of virtual time, links 5-10 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.gossip import GossipConfig, GossipNode, PatternsReceived, derived_identities  # noqa: E402
from swarm.kernel import VirtualKernel  # noqa: E402
from swarm.memory.models import Pattern, make_pattern_id  # noqa: E402
from swarm.transport import GossipBus, LinkProfile, SimNetwork  # noqa: E402

DIM = 16


def _pattern(i: int, rng: np.random.Generator) -> Pattern:
    v = rng.standard_normal(DIM).astype(np.float32)
    return Pattern(id=make_pattern_id("bench", str(i)), title=f"p{i}", description="", content="", domain="bench",
                   kind="strategy", action="a", embedding=v / np.linalg.norm(v), confidence=0.5, created_at=0.0)


def replicate(n: int, *, loss: float = 0.0, crash: float = 0.0, writers: int = 1, seed: int = 0,
              warmup: float = 3.0, horizon: float = 120.0, fanout: int = 3) -> dict:
    """Run the scenario once in virtual time and return its figures."""
    k = VirtualKernel()
    net = SimNetwork(k, seed, LinkProfile(latency=0.005, jitter=0.005))
    config = GossipConfig(dim=DIM, fanout=fanout, gossip_interval=1.0, probe_interval=1.0, suspect_timeout=5.0)
    ids = [f"n{i}" for i in range(n)]
    rng = random.Random(seed)
    writer_ids = rng.sample(ids, min(writers, n))
    others = [i for i in ids if i not in writer_ids]
    crashed = set(rng.sample(others, min(len(others), int(round(crash * n))))) if crash else set()
    live = [i for i in ids if i not in crashed]
    prng = np.random.default_rng(seed)
    patterns = [_pattern(j, prng) for j in range(len(writer_ids))]
    want = {p.id for p in patterns}
    held: dict[str, set[str]] = {i: set() for i in ids}
    first_done: dict[str, float] = {}
    t_write = warmup
    done_one: list[float] = []
    done_all: list[float] = []

    def watcher(node_id: str):  # type: ignore[no-untyped-def]
        def on_event(ev) -> None:  # type: ignore[no-untyped-def]
            if isinstance(ev, PatternsReceived):
                held[node_id].update(pid for pid in ev.ids if pid in want)
                if patterns[0].id in held[node_id] and node_id not in first_done:
                    first_done[node_id] = k.now()
                    if len(first_done) == len(live) and not done_one:
                        done_one.append(k.now())
                if len(held[node_id]) == len(want) and all(len(held[x]) == len(want) for x in live) and not done_all:
                    done_all.append(k.now())
        return on_event

    identities = derived_identities(ids, f"bench-{seed}")
    nodes = {i: GossipNode(i, config, seed=seed, identity=identities[i]) for i in ids}
    buses = {i: GossipBus(k, nodes[i], net.endpoint(i), watcher(i)) for i in ids}
    for i in ids:
        nodes[i].bootstrap(ids, 0.0)

    async def main() -> None:
        async with k.task_group() as tg:
            for i in ids:
                tg.start_soon(buses[i].run)
            await k.sleep(warmup)
            for c in crashed:
                net.crash(c)
            if loss:
                net.set_default(LinkProfile(latency=0.005, jitter=0.005, loss=loss))
            for w, p in zip(writer_ids, patterns):
                nodes[w].publish([p], k.now())
                held[w].add(p.id)
                if p is patterns[0]:
                    first_done[w] = k.now()
            while k.now() < t_write + horizon and not (done_one and done_all):
                await k.sleep(0.5)
            tg.cancel()

    t0 = time.perf_counter()
    k.run(main)
    wall = time.perf_counter() - t0
    lost = sum(1 for x in live for pid in want if pid not in held[x] and pid not in nodes[x].patterns)
    tot = net.totals()
    return {
        "nodes": n, "loss": loss, "crashed": len(crashed), "writers": len(writer_ids), "fanout": fanout,
        "rounds_one_pattern": round(done_one[0] - t_write, 2) if done_one else None,
        "rounds_all_patterns": round(done_all[0] - t_write, 2) if done_all else None,
        "bound_log2n_plus_lnn": round(math.log2(n) + math.log(n), 2),
        "patterns_missing_on_live_nodes": lost,
        "frames": tot.get("messages", 0), "bytes": tot.get("bytes", 0), "frames_lost": tot.get("lost", 0),
        "virtual_seconds": round(k.now(), 2), "wall_s": round(wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--loss", type=float, default=0.2, help="message loss of the faulty condition")
    ap.add_argument("--crash", type=float, default=0.1, help="share of nodes crashed in the faulty condition")
    ap.add_argument("--writers", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for n in args.nodes:
        for loss, crash in ((0.0, 0.0), (args.loss, args.crash)):
            r = replicate(n, loss=loss, crash=crash, writers=min(args.writers, max(1, n // 2)), seed=args.seed)
            print(json.dumps({"benchmark": "gossip", **r}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
