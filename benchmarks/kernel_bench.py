"""Kernel benchmark: one message-passing workload on our virtual-time kernel and on SimPy.

    python benchmarks/kernel_bench.py                 # N = 1,000 agents
    python benchmarks/kernel_bench.py --agents 100 1000 10000 --time 200

Workload (identical on both): N agents, each with an inbox. One message per agent circulates.
An agent takes a message from its inbox, holds it for a random latency (uniform 1-10 ms of
virtual time), and puts it into the inbox of a random peer; the run lasts ``--time`` virtual
seconds. Both draw latencies and peers from ``random.Random(seed)`` in the same order of calls.
Printed per N: messages delivered, wall seconds and messages/s for each, and the ratio
kernel / SimPy (>= 1.0 means our kernel is at least as fast). Both run in this process, one
after the other, best of ``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simpy  # noqa: E402

from swarm.kernel import VirtualKernel  # noqa: E402


def run_kernel(n: int, horizon: float, seed: int) -> int:
    k = VirtualKernel()
    rng = random.Random(seed)
    inboxes = [k.channel() for _ in range(n)]
    delivered = 0

    async def agent(inbox) -> None:  # type: ignore[no-untyped-def]
        nonlocal delivered
        recv, sleep, uniform, randrange = inbox.recv, k.sleep, rng.uniform, rng.randrange
        while True:
            msg = await recv()
            await sleep(uniform(0.001, 0.01))
            inboxes[randrange(n)].send_nowait(msg)
            delivered += 1

    async def main() -> None:
        async with k.task_group() as tg:
            for i, box in enumerate(inboxes):
                box.send_nowait(i)
                tg.start_soon(agent, box)

    k.run(main, until=horizon)
    return delivered


def run_simpy(n: int, horizon: float, seed: int) -> int:
    env = simpy.Environment()
    rng = random.Random(seed)
    stores = [simpy.Store(env) for _ in range(n)]
    delivered = 0

    def agent(store):  # type: ignore[no-untyped-def]
        nonlocal delivered
        get, timeout, uniform, randrange = store.get, env.timeout, rng.uniform, rng.randrange
        while True:
            msg = yield get()
            yield timeout(uniform(0.001, 0.01))
            stores[randrange(n)].put(msg)
            delivered += 1

    for i, store in enumerate(stores):
        store.put(i)
        env.process(agent(store))
    env.run(until=horizon)
    return delivered


def best_of(fn, repeat: int, *args):  # type: ignore[no-untyped-def]
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = fn(*args)
        dt = time.perf_counter() - t0
        if best is None or dt < best[1]:
            best = (count, dt)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[1000])
    ap.add_argument("--time", type=float, default=None, help="virtual seconds (default: 200k messages' worth)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for n in args.agents:
        horizon = args.time if args.time is not None else 200_000 / n * 0.0055
        ours = best_of(run_kernel, args.repeat, n, horizon, args.seed)
        theirs = best_of(run_simpy, args.repeat, n, horizon, args.seed)
        print(json.dumps({
            "benchmark": "kernel", "agents": n, "virtual_seconds": round(horizon, 3),
            "kernel": {"messages": ours[0], "wall_s": round(ours[1], 4), "messages_per_s": round(ours[0] / ours[1])},
            "simpy": {"messages": theirs[0], "wall_s": round(theirs[1], 4),
                      "messages_per_s": round(theirs[0] / theirs[1]), "version": simpy.__version__},
            "ratio_kernel_over_simpy": round((ours[0] / ours[1]) / (theirs[0] / theirs[1]), 3),
            "python": platform.python_version(),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
