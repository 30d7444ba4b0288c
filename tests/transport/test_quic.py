"""The gossip bus over real QUIC on loopback sockets, on asyncio and on trio, on both QUIC stacks
(aioquic, the default, and qh3 when it is installed: ``pip install reasoningbank-swarm[qh3]``)."""

from __future__ import annotations

import anyio
import pytest

from swarm.gossip import GossipConfig, GossipNode
from swarm.gossip.codec import HEADER, PING, VERSION, Limits, Message, encode
from swarm.kernel import AnyioKernel
from swarm.transport import GossipBus
from swarm.transport.quic import NodeCredentials, QuicEndpoint, SwarmCA, node_of, qh3_available, quic_backend
from tests.identities import ident
from tests.transport.support import DIM, patterns, wait_until

QH3 = pytest.mark.skipif(not qh3_available(), reason="qh3 is not installed (optional: the [qh3] extra)")
STACKS = ["aioquic", pytest.param("qh3", marks=QH3)]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    """The QUIC stack under test."""
    return request.param


@pytest.mark.anyio
async def test_two_nodes_replicate_a_batch_both_ways_over_quic(stack):
    ca = SwarmCA.generate()
    k = AnyioKernel()
    directory: dict = {}
    cfg = GossipConfig(dim=DIM, gossip_interval=0.1, probe_interval=0.2, ack_timeout=0.1)
    async with QuicEndpoint(ca.issue("a"), directory=directory, backend=stack) as ea, \
            QuicEndpoint(ca.issue("b"), directory=directory, backend=stack) as eb:
        a, b = GossipNode("a", cfg, now=k.now(), identity=ident("a")), GossipNode("b", cfg, now=k.now(), identity=ident("b"))
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
        # one connection carries both ways: whoever dialled first, the other answers on it
        assert ea.stats.connections_dialled + eb.stats.connections_dialled <= 2


@pytest.mark.anyio
async def test_a_peer_with_another_ca_is_refused_and_the_node_keeps_serving(stack):
    ca, rogue = SwarmCA.generate(), SwarmCA.generate("rogue")
    forged = rogue.issue("evil")
    # the attacker trusts the swarm CA (its certificate is public) but cannot get it to sign its own
    evil_creds = NodeCredentials("evil", forged.certificate, forged.private_key, ca.pem, forged.write_key)
    directory: dict = {}
    async with QuicEndpoint(ca.issue("a"), directory=directory, backend=stack) as a, \
            QuicEndpoint(ca.issue("b"), directory=directory, backend=stack) as b, \
            QuicEndpoint(evil_creds, directory=directory, backend=stack) as evil:
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
async def test_malformed_frames_close_only_that_connection(junk, stack):
    ca = SwarmCA.generate()
    directory: dict = {}
    async with QuicEndpoint(ca.issue("a"), directory=directory, limits=Limits(max_frame=10_000),
                            backend=stack) as a, \
            QuicEndpoint(ca.issue("bad"), directory=directory, backend=stack) as bad, \
            QuicEndpoint(ca.issue("good"), directory=directory, backend=stack) as good:
        ok = encode(Message(PING, "bad", probe=1))
        data = {"garbage": b"\x00\xffnot a frame at all" * 3,
                "truncated": ok[:-4],
                "oversized": HEADER.pack(b"SG", VERSION, PING, 50_000) + b"x" * 100}[junk]
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
    runs = [("quic", "aioquic"), ("tcp+tls", None)] + ([("quic", "qh3")] if qh3_available() else [])
    for transport, stack in runs:
        row = bench["replicate"](transport, 3, patterns=60, timeout=60.0, quic_backend=stack)
        assert row["complete"] and row["copies_delivered"] == 120, row
        assert row["sync_p50_ms"] is not None and row["bytes_sent"] > 60 * 1000
        assert row["quic_backend"] == stack


# ---- mutual authentication, both ways and on both stacks ------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("impostor", ["other CA", "other node"])
async def test_a_node_refuses_to_send_to_a_server_that_is_not_the_peer_it_dialled(stack, impostor):
    """The dialling side checks the server too: a listener at b's address with a certificate from
    another CA, or the swarm's certificate of another node, gets nothing."""
    ca = SwarmCA.generate()
    forged = SwarmCA.generate("rogue").issue("b") if impostor == "other CA" else ca.issue("c")
    directory: dict = {}
    async with QuicEndpoint(ca.issue("a"), directory=directory, backend=stack) as a, \
            QuicEndpoint(NodeCredentials("b", forged.certificate, forged.private_key, ca.pem, forged.write_key), directory={},
                         backend=stack) as fake_b:
        directory["b"] = fake_b.address  # b's entry points at the impostor
        a.send_nowait("b", encode(Message(PING, "a", probe=1)))
        await wait_until(lambda: a.stats.refused >= 1)
        await anyio.sleep(0.2)
        assert fake_b.stats.frames_received == 0 and a.stats.frames_to.get("b", 0) == 0


@pytest.mark.anyio
async def test_a_client_showing_a_members_certificate_without_its_key_is_never_read(stack):
    """Certificates are public: a client presenting b's (the swarm's, naming b) but holding another
    key fails the proof of possession (TLS CertificateVerify on aioquic, the signed challenge on
    qh3), and nothing it sends is read."""
    ca = SwarmCA.generate()
    real_b, other = ca.issue("b"), SwarmCA.generate("rogue").issue("x")
    thief = NodeCredentials("b", real_b.certificate, other.private_key, ca.pem, other.write_key)
    directory: dict = {}
    async with QuicEndpoint(ca.issue("a"), directory=directory, backend=stack) as a, \
            QuicEndpoint(thief, directory=dict(directory), backend=stack) as t, \
            QuicEndpoint(ca.issue("good"), directory=directory, backend=stack) as good:
        t.directory["a"] = a.address
        t.send_nowait("a", encode(Message(PING, "b", probe=1)))
        await anyio.sleep(0.5)
        good.send_nowait("a", encode(Message(PING, "good", probe=2)))
        with anyio.fail_after(5):
            sender, _ = await a.recv()
        assert sender == "good"
        await anyio.sleep(0.3)
        assert a.stats.frames_received == 1  # the thief's frame was never read


def _signed_answer(creds: NodeCredentials, nonce: bytes, server: str) -> bytes:
    from cryptography.hazmat.primitives import serialization

    from swarm.transport import auth, quic
    cert = creds.certificate.public_bytes(serialization.Encoding.DER)
    sig = auth.sign(creds.private_key, auth.transcript(quic.AUTH_CONTEXT, nonce, server.encode(), creds.node.encode()))
    return quic.AUTH_RESPONSE + len(cert).to_bytes(2, "big") + cert + sig


class _StubQuic:
    closed_with: int | None = None

    def close(self, error_code: int = 0, reason_phrase: str = "") -> None:
        self.closed_with = error_code


@pytest.mark.parametrize("case", ["good", "for another server", "another nonce", "rogue CA", "bad signature"])
def test_the_in_connection_client_authentication_binds_nonce_server_and_client(case):
    """qh3's TLS carries no client certificate, so the client signs the server's nonce with both
    node names: an answer made for another server (a member relaying it) or another connection is
    refused, as is a certificate the swarm CA did not sign. (The method under test is the
    endpoint's own; no qh3 needed.)"""
    from swarm.transport.quic import ERROR_REFUSED, _Conn
    ca = SwarmCA.generate()
    server = QuicEndpoint(ca.issue("srv"))
    client = ca.issue("cli")
    nonce = b"n" * 32
    answer = {"good": lambda: _signed_answer(client, nonce, "srv"),
              "for another server": lambda: _signed_answer(client, nonce, "other"),
              "another nonce": lambda: _signed_answer(client, b"m" * 32, "srv"),
              "rogue CA": lambda: _signed_answer(SwarmCA.generate("rogue").issue("cli"), nonce, "srv"),
              "bad signature": lambda: _signed_answer(client, nonce, "srv")[:-8] + b"\x00" * 8}[case]()
    conn = _Conn(_StubQuic(), ("127.0.0.1", 1), outbound=False, nonce=nonce)
    server._inbox_send = type("Inbox", (), {"send_nowait": lambda self, item: None})()
    server._auth_response(conn, answer)
    if case == "good":
        assert conn.ready and conn.peer == "cli" and server.stats.refused == 0
    else:
        assert not conn.ready and conn.closed and conn.quic.closed_with == ERROR_REFUSED
        assert server.stats.refused == 1


def test_the_quic_stack_is_chosen_by_argument_or_environment(monkeypatch):
    ca = SwarmCA.generate()
    assert QuicEndpoint(ca.issue("a")).backend.name == "aioquic"
    monkeypatch.setenv("SWARM_QUIC_BACKEND", "no-such-stack")
    with pytest.raises(ValueError, match="unknown QUIC backend"):
        QuicEndpoint(ca.issue("a"))
    assert QuicEndpoint(ca.issue("a"), backend="aioquic").backend.name == "aioquic"
    if qh3_available():
        monkeypatch.setenv("SWARM_QUIC_BACKEND", "qh3")
        assert QuicEndpoint(ca.issue("a")).backend.name == quic_backend("qh3").name == "qh3"


@pytest.mark.anyio
async def test_the_timer_heap_is_compacted_in_place():
    """The timer task holds the heap list: dropping stale entries must not replace it."""
    from swarm.transport.quic import _Conn

    class Ticking(_StubQuic):
        t = 0.0

        def datagrams_to_send(self, now: float) -> list:
            return []

        def get_timer(self) -> float:
            Ticking.t += 1.0
            return Ticking.t

    ep = QuicEndpoint(SwarmCA.generate().issue("a"))
    heap = ep._timers
    conns = [_Conn(Ticking(), ("127.0.0.1", i), outbound=True) for i in range(3)]
    ep._conns = list(conns)
    for _ in range(100):  # each round re-arms every timer: stale entries pile up, then are dropped
        ep._dirty.update(conns)
        ep._transmit()
    assert ep._timers is heap and len(heap) <= 64 + 4 * len(conns)
    assert sorted(at for at, _, _ in heap)[-3:] == sorted(c.timer_at for c in conns)


@pytest.mark.anyio
async def test_frames_arriving_at_a_killed_endpoint_are_dropped_without_crashing_it(stack):
    """A crashed hub: its endpoint is killed (inbox closed) while its tasks still read the socket
    and a peer keeps sending; nothing may raise out of either endpoint."""
    ca = SwarmCA.generate()
    directory: dict = {}
    async with QuicEndpoint(ca.issue("hub"), directory=directory, backend=stack) as hub, \
            QuicEndpoint(ca.issue("leaf"), directory=directory, backend=stack) as leaf:
        leaf.send_nowait("hub", encode(Message(PING, "leaf", probe=0)))
        with anyio.fail_after(5):
            await hub.recv()
        hub.kill()
        for i in range(1, 40):
            leaf.send_nowait("hub", encode(Message(PING, "leaf", probe=i)))
            await anyio.sleep(0.01)
        await wait_until(lambda: hub.stats.frames_after_close > 0)
        assert hub.stats.frames_received == 1


async def _ping_until(ep: QuicEndpoint, dest: str, until, timeout: float = 10.0) -> None:
    """Send ``dest`` a PING every 50 ms until ``until()`` (or fail after ``timeout`` s)."""
    with anyio.fail_after(timeout):
        i = 1000
        while not until():
            ep.send_nowait(dest, encode(Message(PING, ep.node, probe=i)))
            i += 1
            await anyio.sleep(0.05)


@pytest.mark.anyio
async def test_a_revoked_members_open_connection_is_closed_and_it_is_refused_from_then_on(stack):
    ca, directory = SwarmCA.generate(), {}
    async with QuicEndpoint(ca.issue("a"), directory=directory, backend=stack) as a, \
            QuicEndpoint(ca.issue("r"), directory=directory, backend=stack) as r, \
            QuicEndpoint(ca.issue("good"), directory=directory, backend=stack) as good:
        r.send_nowait("a", encode(Message(PING, "r", probe=1)))
        with anyio.fail_after(5):
            assert (await a.recv())[0] == "r"
        a.revoke("r")
        await _ping_until(r, "a", lambda: a.stats.refused >= 1)  # its connection closed, its redial refused
        good.send_nowait("a", encode(Message(PING, "good", probe=2)))
        with anyio.fail_after(5):
            assert (await a.recv())[0] == "good"
        await anyio.sleep(0.2)
        assert a.stats.frames_received == 2  # nothing more of r's


@pytest.mark.anyio
async def test_a_restarted_node_refuses_the_handshakes_of_a_member_it_revoked_before(tmp_path, stack):
    """The store keeps the revocation list; a node restarted on it hands its endpoint the revoked
    members at once (it used to learn them only from a list arriving again), so their handshakes
    are refused."""
    from swarm.gossip import Identity, KeyRing, Signer
    from swarm.memory import PatternStore

    ca, directory = SwarmCA.generate(), {}
    creds = {n: ca.issue(n, write_key=Signer.derive(n, b"restart").key) for n in ("a", "m")}
    ring = KeyRing(ca.certificate)
    for c in creds.values():
        ring.admit(c.certificate)
    store = PatternStore(tmp_path / "a.db", dim=DIM)
    GossipNode("a", GossipConfig(dim=DIM), identity=Identity(creds["a"].signer, ring), store=store).revoke(
        ca.revocation_list([creds["m"].certificate], 1), 0.0)
    store.close()
    k = AnyioKernel()
    again = GossipNode("a", GossipConfig(dim=DIM), identity=Identity(creds["a"].signer, ring), boot=1,
                       store=PatternStore(tmp_path / "a.db", dim=DIM))  # a new process: nothing in memory
    async with QuicEndpoint(creds["a"], directory=directory, backend=stack) as a, \
            QuicEndpoint(creds["m"], directory=directory, backend=stack) as m:
        GossipBus(k, again, a)
        await _ping_until(m, "a", lambda: a.stats.refused >= 1)
        assert a.stats.frames_received == 0
    again.log.store.close()
