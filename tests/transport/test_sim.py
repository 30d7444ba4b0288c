"""The simulated network and the gossip bus on it."""

from __future__ import annotations

import runpy

import pytest

from swarm.kernel import VirtualKernel
from swarm.transport import LinkProfile, SimNetwork
from tests.identities import ident


def run_traffic(profile: LinkProfile, n: int = 200, seed: int = 1):
    k = VirtualKernel()
    net = SimNetwork(k, seed, profile)
    a, b = net.endpoint("a"), net.endpoint("b")
    got: list[tuple[float, bytes]] = []

    async def main():
        async def reader():
            while True:
                sender, data = await b.recv()
                assert sender == "a"
                got.append((k.now(), data))

        async with k.task_group() as tg:
            tg.start_soon(reader)
            for i in range(n):
                a.send_nowait("b", i.to_bytes(4, "big") + b"x" * 96)
            await k.sleep(60)
            tg.cancel()

    k.run(main)
    return net, got


def test_latency_and_counting():
    net, got = run_traffic(LinkProfile(latency=0.01, jitter=0.0))
    assert len(got) == 200 and all(abs(t - 0.01) < 1e-9 for t, _ in got)
    st = net.link_stats()[("a", "b")]
    assert (st.messages, st.bytes, st.delivered) == (200, 200 * 100, 200)


def test_loss_duplication_and_reordering_happen_at_their_rates():
    net, got = run_traffic(LinkProfile(loss=0.2, duplicate=0.1, reorder=0.3, reorder_delay=0.5), n=2000)
    st = net.link_stats()[("a", "b")]
    assert 300 < st.lost < 500 and 100 < st.duplicated < 230
    order = [int.from_bytes(d[:4], "big") for _, d in got]
    assert order != sorted(order)  # reordered
    assert len(got) == st.delivered == 2000 - st.lost + st.duplicated


def test_bandwidth_queues_frames():
    net, got = run_traffic(LinkProfile(latency=0.0, jitter=0.0, bandwidth=1000.0), n=10)
    times = [t for t, _ in got]
    assert times == pytest.approx([0.1 * (i + 1) for i in range(10)])  # 100 bytes at 1000 B/s each


def test_partition_and_crash_block_traffic_until_healed():
    k = VirtualKernel()
    net = SimNetwork(k, 0, LinkProfile(latency=0.001, jitter=0.0))
    eps = {n: net.endpoint(n) for n in "abc"}
    got = []

    async def main():
        async def reader(n):
            while True:
                s, d = await eps[n].recv()
                got.append((s, n, d))

        async with k.task_group() as tg:
            for n in "abc":
                tg.start_soon(reader, n)
            net.partition({"a"}, {"b", "c"})
            eps["a"].send_nowait("b", b"1")
            eps["b"].send_nowait("c", b"2")
            await k.sleep(1)
            net.heal()
            eps["a"].send_nowait("b", b"3")
            await k.sleep(1)
            tg.cancel()

    k.run(main)
    assert got == [("b", "c", b"2"), ("a", "b", b"3")]
    assert net.link_stats()[("a", "b")].blocked == 1


def test_a_thousand_node_mesh_replicates_within_the_gossip_bound_even_with_loss_and_crashes():
    bench = runpy.run_path("benchmarks/gossip_bench.py")
    for n in (10, 100):
        clean = bench["replicate"](n, writers=5)
        faulty = bench["replicate"](n, loss=0.2, crash=0.1, writers=5)
        for r in (clean, faulty):
            assert r["patterns_missing_on_live_nodes"] == 0
            assert r["rounds_all_patterns"] is not None and r["rounds_all_patterns"] <= r["bound_log2n_plus_lnn"]
        assert faulty["frames_lost"] > 0 and faulty["crashed"] == round(0.1 * n)
    big = bench["replicate"](1000, writers=3, horizon=20.0)
    assert big["patterns_missing_on_live_nodes"] == 0 and big["rounds_all_patterns"] <= big["bound_log2n_plus_lnn"]


def test_bus_drops_a_malformed_frame_and_keeps_replicating():
    import numpy as np

    from swarm.gossip import GossipConfig, GossipNode
    from swarm.memory.models import Pattern
    from swarm.transport import GossipBus

    k = VirtualKernel()
    net = SimNetwork(k, 0)
    cfg = GossipConfig(dim=4)
    nodes = {n: GossipNode(n, cfg, seed=3, identity=ident(n)) for n in ("a", "b")}
    buses = {n: GossipBus(k, nodes[n], net.endpoint(n)) for n in nodes}
    evil = net.endpoint("evil")
    for node in nodes.values():
        node.bootstrap(nodes, 0.0)
    p = Pattern(id="p1", title="t", description="", content="", domain="d", kind="strategy", action="x",
                embedding=np.array([1, 0, 0, 0], np.float32), created_at=0.0)

    async def main():
        async with k.task_group() as tg:
            for bus in buses.values():
                tg.start_soon(bus.run)
            evil.send_nowait("b", b"SG\x01\x01\x00\x00\x00\x05{bad}")
            nodes["a"].publish([p], k.now())
            await k.sleep(5)
            tg.cancel()

    k.run(main)
    assert buses["b"].stats.frames_rejected == 1 and nodes["b"].stats.rejected == 1
    assert "p1" in nodes["b"].patterns


def test_lognormal_latency_has_a_long_tail_and_bad_profiles_are_refused():
    import random
    p = LinkProfile(latency=0.001, jitter=0.01, distribution="lognormal", sigma=1.0)
    rng = random.Random(0)
    xs = sorted(p.sample(rng) for _ in range(5000))
    median, p99 = xs[2500], xs[4950]
    assert abs(median - 0.011) < 0.001 and p99 > 5 * median  # median latency + jitter; a long tail
    for bad in (dict(loss=1.5), dict(latency=-1), dict(distribution="pareto"), dict(bandwidth=0)):
        with pytest.raises(ValueError):
            LinkProfile(**bad)


def _replicate(link: LinkProfile, cfg, nodes: int, patterns: int, seconds: float):  # type: ignore[no-untyped-def]
    """``nodes`` gossip nodes on ``link``; n0 writes ``patterns`` patterns; run ``seconds``.
    Returns the nodes."""
    import numpy as np

    from swarm.gossip import GossipNode
    from swarm.memory.models import Pattern
    from swarm.transport import GossipBus

    k = VirtualKernel()
    net = SimNetwork(k, 5, link)
    group = {f"n{i}": GossipNode(f"n{i}", cfg, seed=3, identity=ident(f"n{i}")) for i in range(nodes)}
    for node in group.values():
        node.bootstrap(group, 0.0)
    group["n0"].publish([Pattern(id=f"p{i}", title="t", description="", content="", domain="d", kind="strategy",
                                 action="x", embedding=np.array([1, 0, 0, 0], np.float32), created_at=float(i))
                         for i in range(patterns)], 0.0)

    async def main():
        async with k.task_group() as tg:
            for n, node in group.items():
                tg.start_soon(GossipBus(k, node, net.endpoint(n)).run)
            await k.sleep(seconds)
            tg.cancel()

    k.run(main)
    return list(group.values())


def _slow_link_replication(max_pulls: int) -> tuple[list[int], int]:
    """Six nodes on links slower than the gossip interval; one writes 400 patterns. Returns each
    node's pattern count and the duplicate writes received over all nodes."""
    from swarm.gossip import GossipConfig

    cfg = GossipConfig(dim=4, fanout=2, resend_after=10.0, max_pulls=max_pulls, probe_interval=10.0,
                       ack_timeout=8.0, suspect_timeout=100.0)
    nodes = _replicate(LinkProfile(latency=3.0, jitter=0.5), cfg, 6, 400, 80)
    return [len(n.patterns) for n in nodes], sum(n.stats.entries_duplicate for n in nodes)


def test_on_slow_links_one_pull_at_a_time_replicates_everything_with_fewer_duplicates():
    counts, dup_limited = _slow_link_replication(max_pulls=1)
    assert counts == [400] * 6
    _, dup_free = _slow_link_replication(max_pulls=0)
    assert dup_limited * 2 < dup_free, (dup_limited, dup_free)


def _very_slow_link(backoff: bool) -> tuple[list[int], int, int]:
    """Two nodes whose answers take 12 s while an ask expires after 5 s; one writes 300 patterns.
    Returns pattern counts, expired asks and duplicate writes received."""
    from swarm.gossip import GossipConfig

    cfg = GossipConfig(dim=4, fanout=1, resend_after=5.0, max_pulls=1, backoff=backoff, max_batch=64,
                       piggyback_entries=0, probe_interval=30.0, ack_timeout=20.0, suspect_timeout=500.0)
    nodes = _replicate(LinkProfile(latency=6.0, jitter=0.0), cfg, 2, 300, 200)
    return ([len(n.patterns) for n in nodes], sum(n.stats.pulls_expired for n in nodes),
            sum(n.stats.entries_duplicate for n in nodes))


def test_when_answers_are_slower_than_the_wait_backoff_stops_asking_and_resending_again_and_again():
    counts, expired, dup = _very_slow_link(backoff=True)
    assert counts == [300, 300] and expired >= 1  # everything arrives, though answers outlast the wait
    _, _, dup_fixed = _very_slow_link(backoff=False)
    assert dup * 1.3 < dup_fixed, (dup, dup_fixed)  # measured: 300 vs 428


def test_replica_bench_reports_what_replication_costs_each_agent(capsys):
    import json
    import runpy
    bench = runpy.run_path("benchmarks/replica_bench.py")
    assert bench["main"](["--agents", "3", "--episodes", "3"]) == 0
    row = json.loads(capsys.readouterr().out)
    per = row["per_agent"]
    assert row["agents"] == 3 and per["store_patterns"] > 0 and per["store_bytes"] > 0
    assert row["entries_received"] > 0 and 0 <= row["entries_already_held"] <= row["entries_received"]
    assert per["echoes"] == 0  # a copy received from a peer is never published again as this node's own
