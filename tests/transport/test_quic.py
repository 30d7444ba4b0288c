"""The gossip bus over real QUIC on loopback sockets, on asyncio and on trio."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from swarm.gossip import GossipConfig, GossipNode
from swarm.gossip.codec import HEADER, PING, Limits, Message, encode
from swarm.kernel import AnyioKernel
from swarm.memory.models import Pattern, make_pattern_id
from swarm.transport import GossipBus
from swarm.transport.quic import QuicEndpoint, SwarmCA, node_of

DIM = 16


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


def patterns(origin: str, n: int) -> list[Pattern]:
    rng = np.random.default_rng(abs(hash(origin)) % 2**32)
    out = []
    for i in range(n):
        v = rng.standard_normal(DIM).astype(np.float32)
        out.append(Pattern(id=make_pattern_id(origin, str(i)), title=f"{origin}{i}", description="", content="",
                           domain="d", kind="strategy", action="momentum", embedding=v / np.linalg.norm(v),
                           created_at=float(i)))
    return out


async def wait_until(predicate, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


@pytest.mark.anyio
async def test_two_nodes_replicate_a_batch_both_ways_over_quic():
    ca = SwarmCA.generate()
    k = AnyioKernel()
    directory: dict = {}
    cfg = GossipConfig(dim=DIM, gossip_interval=0.1, probe_interval=0.2, ack_timeout=0.1)
    async with QuicEndpoint(ca.issue("a"), directory=directory) as ea, \
            QuicEndpoint(ca.issue("b"), directory=directory) as eb:
        a, b = GossipNode("a", cfg, now=k.now()), GossipNode("b", cfg, now=k.now())
        a.bootstrap(["b"], k.now())
        b.bootstrap(["a"], k.now())
        a.publish(patterns("a", 300), k.now())
        b.publish(patterns("b", 200), k.now())
        async with anyio.create_task_group() as tg:
            tg.start_soon(GossipBus(k, a, ea).run)
            tg.start_soon(GossipBus(k, b, eb).run)
            await wait_until(lambda: len(a.patterns) == len(b.patterns) == 500)
            tg.cancel_scope.cancel()
        assert a.digest() == b.digest() == {"a": 300, "b": 200}
        assert ea.stats.refused == eb.stats.refused == 0 and eb.stats.frames_received > 0


@pytest.mark.anyio
async def test_a_peer_with_another_ca_is_refused_and_the_node_keeps_serving():
    from swarm.transport.quic import NodeCredentials
    ca, rogue = SwarmCA.generate(), SwarmCA.generate("rogue")
    forged = rogue.issue("evil")
    # the attacker trusts the swarm CA (its certificate is public) but cannot get it to sign its own
    evil_creds = NodeCredentials("evil", forged.certificate, forged.private_key, ca.pem)
    directory: dict = {}
    async with QuicEndpoint(ca.issue("a"), directory=directory) as a, \
            QuicEndpoint(ca.issue("b"), directory=directory) as b, \
            QuicEndpoint(evil_creds, directory=directory) as evil:
        evil.send_nowait("a", encode(Message(PING, "evil", probe=1)))
        await wait_until(lambda: a.stats.refused >= 1)
        b.send_nowait("a", encode(Message(PING, "b", probe=2)))
        with anyio.fail_after(5):
            sender, _ = await a.recv()
        assert sender == "b"
        await anyio.sleep(0.3)
        assert a.stats.frames_received == 1  # nothing evil sent was ever read


@pytest.mark.anyio
@pytest.mark.parametrize("junk", ["garbage", "truncated", "oversized"])
async def test_malformed_frames_close_only_that_connection(junk):
    ca = SwarmCA.generate()
    directory: dict = {}
    async with QuicEndpoint(ca.issue("a"), directory=directory, limits=Limits(max_frame=10_000)) as a, \
            QuicEndpoint(ca.issue("bad"), directory=directory) as bad, \
            QuicEndpoint(ca.issue("good"), directory=directory) as good:
        ok = encode(Message(PING, "bad", probe=1))
        data = {"garbage": b"\x00\xffnot a frame at all" * 3,
                "truncated": ok[:-4],
                "oversized": HEADER.pack(b"SG", 1, PING, 50_000) + b"x" * 100}[junk]
        bad.send_nowait("a", data)
        await wait_until(lambda: a.stats.closed_malformed == 1)
        good.send_nowait("a", encode(Message(PING, "good", probe=7)))
        with anyio.fail_after(5):
            sender, _ = await a.recv()
        assert sender == "good" and a.stats.closed_malformed == 1


def test_certificates_name_their_node():
    ca = SwarmCA.generate()
    creds = ca.issue("peer-3")
    assert node_of(creds.certificate) == "peer-3"
    assert creds.certificate.issuer == ca.certificate.subject


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_small_swarm_learns_and_replicates_over_real_quic(backend):
    from swarm.orchestrator import Swarm
    from swarm.specs import AgentSpec, SwarmConfig
    specs = [AgentSpec(f"p{i}", market_seed=100 + i) for i in range(3)]
    cfg = SwarmConfig(episodes=3, transport="quic", backend=backend, time_scale=0.05)
    with Swarm(cfg, specs) as swarm:
        swarm.run()
        assert swarm.replication_consistency() == 1.0
        assert all(len(a.log.correct) == 30 for a in swarm.agents.values())
        latency = swarm.sync_latency_ms()
        assert latency["clock"] == "wall" and latency["samples"] > 0
        assert swarm.traffic()["refused"] == 0 and swarm.traffic()["messages"] > 0


def test_bus_bench_replicates_a_batch_over_quic_and_tcp_tls():
    import runpy
    bench = runpy.run_path("benchmarks/bus_bench.py")
    for transport in ("quic", "tcp+tls"):
        row = bench["replicate"](transport, 3, patterns=60, timeout=60.0)
        assert row["complete"] and row["copies_delivered"] == 120, row
        assert row["sync_p50_ms"] is not None and row["bytes_sent"] > 60 * 1000
