"""The gossip bus over WebSocket on loopback sockets (asyncio): frames between nodes, a gossip pair
replicating over it, and the application-layer authentication that stands in for mutual TLS
behind E2B's proxy: refused certificates and keys, replayed handshakes, tampered messages."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from swarm.gossip import GossipConfig, GossipNode
from swarm.gossip.codec import HEADER, PING, VERSION, Limits, Message, decode, encode
from swarm.kernel import AnyioKernel
from swarm.transport import GossipBus, auth
from swarm.transport.quic import NodeCredentials, SwarmCA
from swarm.transport.websocket import CHALLENGE, HELLO, WebSocketEndpoint
from tests.identities import ident
from tests.transport.support import DIM, patterns, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets' asyncio API


def ping(sender: str, probe: int) -> bytes:
    return encode(Message(PING, sender, probe=probe))


def probe_of(frame: bytes) -> int:
    return decode(frame, DIM).probe


async def keep_sending(ep: WebSocketEndpoint, dest: str, until: Callable[[], bool]) -> None:
    """Send ``dest`` a frame every 50 ms until ``until()`` (or fail after 10 s)."""
    with anyio.fail_after(10):
        i = 1000
        while not until():
            ep.send_nowait(dest, ping(ep.node, i))
            i += 1
            await anyio.sleep(0.05)


async def next_from(ep: WebSocketEndpoint, timeout: float = 5.0) -> tuple[str, int]:
    """The next frame ``ep`` receives: its authenticated sender, and its probe number."""
    with anyio.fail_after(timeout):
        sender, frame = await ep.recv()
    return sender, probe_of(frame)


def foreign(node: str, ca: SwarmCA, cert: x509.Certificate, key_of: NodeCredentials) -> NodeCredentials:
    """Credentials for ``node`` made of ``cert`` and ``key_of``'s keys, trusting ``ca`` (the swarm
    CA's certificate is public): what an attacker can put together."""
    return NodeCredentials(node, cert, key_of.private_key, ca.pem, key_of.write_key)


def expired(ca: SwarmCA, node: str) -> NodeCredentials:
    """A certificate the swarm CA signed for ``node`` that expired yesterday, with its key."""
    creds = ca.issue(node)
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(creds.certificate.subject).issuer_name(ca.certificate.subject)
               .public_key(creds.private_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=10)).not_valid_after(now - dt.timedelta(days=1)))
    for ext in creds.certificate.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    return foreign(node, ca, builder.sign(ca.key, hashes.SHA256()), creds)


class Relay:
    """A man in the middle, where E2B's TLS-terminating proxy sits: forwards each WebSocket message
    between a dialler and ``target``, records what the dialler sent (per connection), and lets a
    test rewrite the dialler's ``i``-th message into the messages it returns."""

    def __init__(self, target: tuple[str, int],
                 tamper: Callable[[int, bytes], list[bytes]] = lambda i, m: [m]) -> None:
        self.target, self.tamper = target, tamper
        self.sent: list[list[bytes]] = []
        self.address: tuple[str, int] | None = None

    async def _handle(self, client: ServerConnection) -> None:
        record: list[bytes] = []
        self.sent.append(record)
        async with connect(f"ws://{self.target[0]}:{self.target[1]}/", proxy=None, compression=None,
                           max_size=None) as upstream:
            async def up() -> None:
                async for m in client:
                    assert isinstance(m, bytes)
                    record.append(m)
                    for out in self.tamper(len(record) - 1, m):
                        await upstream.send(out)
                await upstream.close()

            async def down() -> None:
                async for m in upstream:
                    await client.send(m)
                await client.close()

            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(up())
                    tg.create_task(down())
            except* ConnectionClosed:
                pass

    def serve(self):  # an async context manager that listens on self.address
        return _Serving(self)


class _Serving:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def __aenter__(self) -> Relay:
        self.server = await serve(self.relay._handle, "127.0.0.1", 0, compression=None, max_size=None)
        self.relay.address = self.server.sockets[0].getsockname()[:2]
        return self.relay

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()


# ---- frames between nodes ---------------------------------------------------------------------------


async def test_two_nodes_exchange_frames_both_ways_on_one_connection():
    ca, directory = SwarmCA.generate(), {}
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a, \
            WebSocketEndpoint(ca.issue("b"), directory=directory) as b:
        for i in range(5):
            a.send_nowait("b", ping("a", i))
        assert [await next_from(b) for _ in range(5)] == [("a", i) for i in range(5)]  # in order
        b.send_nowait("a", ping("b", 99))
        assert await next_from(a) == ("b", 99)
        # b answered on the connection a dialled
        assert (a.stats.connections_dialled, b.stats.connections_dialled) == (1, 0)
        assert b.stats.connections_accepted == 1 and a.stats.refused == b.stats.refused == 0
        assert a.stats.frames_to == {"b": 5} and b.stats.frames_received == 5


async def test_three_nodes_each_hear_the_other_two_under_their_own_names():
    ca, directory = SwarmCA.generate(), {}
    names = ["a", "b", "c"]
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a, \
            WebSocketEndpoint(ca.issue("b"), directory=directory) as b, \
            WebSocketEndpoint(ca.issue("c"), directory=directory) as c:
        eps = dict(zip(names, [a, b, c]))
        for i, (src, ep) in enumerate(eps.items()):
            for dest in names:
                if dest != src:
                    ep.send_nowait(dest, ping(src, i))
        for n, ep in eps.items():
            got = sorted([await next_from(ep) for _ in range(2)])
            assert got == [(s, i) for i, s in enumerate(names) if s != n]


async def test_two_gossip_nodes_replicate_a_batch_both_ways_over_websocket():
    ca, directory = SwarmCA.generate(), {}
    k = AnyioKernel()
    cfg = GossipConfig(dim=DIM, gossip_interval=0.1, probe_interval=0.2, ack_timeout=0.1)
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as ea, \
            WebSocketEndpoint(ca.issue("b"), directory=directory) as eb:
        a = GossipNode("a", cfg, now=k.now(), identity=ident("a"))
        b = GossipNode("b", cfg, now=k.now(), identity=ident("b"))
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
        assert ea.stats.refused == eb.stats.refused == ea.stats.closed_malformed == eb.stats.closed_malformed == 0


async def test_a_restarted_peer_is_dialled_at_its_new_address():
    ca, directory = SwarmCA.generate(), {}
    b_creds = ca.issue("b")
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a:
        async with WebSocketEndpoint(b_creds, directory=directory) as b:
            a.send_nowait("b", ping("a", 1))
            assert await next_from(b) == ("a", 1)
        async with WebSocketEndpoint(b_creds, directory=directory) as b2:
            assert directory["b"] == b2.address
            a.send_nowait("b", ping("a", 2))
            assert await next_from(b2) == ("a", 2)


async def test_injected_partition_and_loss_drop_frames_at_the_transport():
    ca, directory = SwarmCA.generate(), {}
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a, \
            WebSocketEndpoint(ca.issue("b"), directory=directory) as b:
        a.blocked = {"b"}
        a.send_nowait("b", ping("a", 1))
        await wait_until(lambda: a.stats.datagrams_blocked == 1)
        b.send_nowait("a", ping("b", 2))  # dropped where it arrives
        await wait_until(lambda: a.stats.datagrams_blocked == 2)
        a.blocked, a.loss = set(), 1.0
        a.send_nowait("b", ping("a", 3))
        await wait_until(lambda: a.stats.datagrams_lost == 1)
        a.loss = 0.0
        a.send_nowait("b", ping("a", 4))
        assert await next_from(b) == ("a", 4)  # nothing before it got through
        b.send_nowait("a", ping("b", 5))
        assert await next_from(a) == ("b", 5)


def test_the_endpoint_refuses_to_run_off_asyncio():
    ca = SwarmCA.generate()

    async def start() -> None:
        async with WebSocketEndpoint(ca.issue("a")):
            pass

    with pytest.raises(RuntimeError, match="asyncio"):
        anyio.run(start, backend="trio")


# ---- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize("attacker", ["foreign CA", "expired", "stolen certificate", "revoked"])
async def test_a_peer_failing_authentication_is_refused_and_a_member_keeps_working(attacker):
    """A certificate from another CA, an expired one, a member's certificate shown without its key,
    and a revoked member: each refused before any frame of it is read; the node serves on."""
    ca, directory = SwarmCA.generate(), {}
    b = ca.issue("b")
    creds = {"foreign CA": lambda: (lambda r: foreign("b", ca, r.certificate, r))(SwarmCA.generate("rogue").issue("b")),
             "expired": lambda: expired(ca, "b"),
             "stolen certificate": lambda: foreign("b", ca, b.certificate, SwarmCA.generate("rogue").issue("x")),
             "revoked": lambda: b}[attacker]()
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a, \
            WebSocketEndpoint(creds, directory=dict(directory)) as bad, \
            WebSocketEndpoint(ca.issue("good"), directory=directory) as good:
        if attacker == "revoked":
            a.revoke("b")
        bad.directory["a"] = a.address
        bad.send_nowait("a", ping("b", 1))
        await wait_until(lambda: a.stats.refused >= 1)
        good.send_nowait("a", ping("good", 2))
        assert await next_from(a) == ("good", 2)
        bad.send_nowait("a", ping("b", 3))  # it redials (backing off) and is refused again
        await wait_until(lambda: a.stats.refused >= 2)
        assert a.stats.frames_received == 1 and a.stats.connections_accepted == 1  # only good got in


@pytest.mark.parametrize("impostor", ["other CA", "other node"])
async def test_a_node_sends_nothing_to_a_listener_that_is_not_the_peer_it_dialled(impostor):
    ca, directory = SwarmCA.generate(), {}
    forged = SwarmCA.generate("rogue").issue("b") if impostor == "other CA" else ca.issue("c")
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a, \
            WebSocketEndpoint(foreign("b", ca, forged.certificate, forged), directory={}) as fake_b:
        directory["b"] = fake_b.address  # b's entry points at the impostor
        a.send_nowait("b", ping("a", 1))
        await wait_until(lambda: a.stats.refused >= 1)
        await anyio.sleep(0.2)
        assert fake_b.stats.frames_received == 0 and a.stats.frames_to.get("b", 0) == 0


async def test_a_member_is_heard_under_its_certificates_name_whatever_it_claims():
    """m holds a valid certificate (its own): its frames arrive as m's, whatever name they carry;
    an endpoint calling itself b with m's certificate cannot even authenticate (the transcript
    names the node each certificate names)."""
    ca, directory = SwarmCA.generate(), {}
    m = ca.issue("m")
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a, \
            WebSocketEndpoint(m, directory=directory) as member, \
            WebSocketEndpoint(foreign("b", ca, m.certificate, m), directory=dict(directory)) as liar:
        member.send_nowait("a", ping("b", 1))
        with anyio.fail_after(5):
            sender, frame = await a.recv()
        assert sender == "m" and decode(frame, DIM).sender == "b"  # the claim inside stays a claim
        liar.send_nowait("a", ping("b", 2))
        await wait_until(lambda: liar.stats.refused + a.stats.refused >= 1)
        await anyio.sleep(0.2)
        assert a.stats.frames_received == 1


async def test_a_revoked_members_open_connection_is_closed_and_it_is_refused_from_then_on():
    ca, directory = SwarmCA.generate(), {}
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a, \
            WebSocketEndpoint(ca.issue("r"), directory=directory) as r, \
            WebSocketEndpoint(ca.issue("good"), directory=directory) as good:
        r.send_nowait("a", ping("r", 1))
        assert await next_from(a) == ("r", 1)
        a.revoke("r")
        await keep_sending(r, "a", lambda: a.stats.refused >= 1)  # its redial is refused
        a.send_nowait("r", ping("a", 3))  # nor does a dial it
        await wait_until(lambda: a.stats.refused >= 2)
        good.send_nowait("a", ping("good", 4))
        assert await next_from(a) == ("good", 4)
        await anyio.sleep(0.2)
        assert a.stats.frames_received == 2 and r.stats.frames_received == 0


async def test_a_recorded_handshake_replayed_with_the_members_certificate_is_refused():
    """The relay records b's handshake with a; replaying b's HELLO and PROOF on a new connection
    fails: a's new nonce makes the recorded proof worthless."""
    ca, directory = SwarmCA.generate(), {}
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a, \
            Relay(a.address).serve() as relay, \
            WebSocketEndpoint(ca.issue("b"), directory={"a": relay.address}) as b:
        b.send_nowait("a", ping("b", 1))
        assert await next_from(a) == ("b", 1)  # through the relay, as through E2B's proxy
        hello, proof, sealed = relay.sent[0][:3]
        assert hello.startswith(HELLO)
        async with connect(f"ws://{a.address[0]}:{a.address[1]}/", proxy=None, compression=None) as ws:
            await ws.send(hello)
            with anyio.fail_after(5):
                challenge = await ws.recv()
            assert isinstance(challenge, bytes) and challenge.startswith(CHALLENGE)
            await ws.send(proof)
            await ws.send(sealed)
            with pytest.raises(ConnectionClosed) as closed, anyio.fail_after(5):
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert a.stats.refused == 1 and a.stats.frames_received == 1


@pytest.mark.parametrize("tamper", ["replayed frame", "altered frame", "frame dropped"])
async def test_a_tampered_message_on_the_path_closes_that_connection_only(tamper):
    """What the relay does to b's fourth message (its second frame): sends it twice, flips a byte
    of it, or drops it (then the next one does not open). Nothing after it is delivered."""
    ca, directory = SwarmCA.generate(), {}

    def rewrite(i: int, m: bytes) -> list[bytes]:
        if i != 3:
            return [m]
        return {"replayed frame": [m, m], "altered frame": [m[:-1] + bytes([m[-1] ^ 1])],
                "frame dropped": []}[tamper]

    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a, \
            Relay(a.address, rewrite).serve() as relay, \
            WebSocketEndpoint(ca.issue("b"), directory={"a": relay.address}) as b, \
            WebSocketEndpoint(ca.issue("good"), directory=directory) as good:
        b.send_nowait("a", ping("b", 1))
        assert await next_from(a) == ("b", 1)
        b.send_nowait("a", ping("b", 2))  # message 3: tampered
        if tamper == "frame dropped":
            b.send_nowait("a", ping("b", 3))
        await wait_until(lambda: a.stats.closed_malformed == 1)
        good.send_nowait("a", ping("good", 4))
        sender, probe = await next_from(a)
        if tamper == "replayed frame":  # the original went through; its copy did not
            assert (sender, probe) == ("b", 2)
            sender, probe = await next_from(a)
        assert (sender, probe) == ("good", 4)


@pytest.mark.parametrize("first", ["garbage", "text", "truncated hello", "huge"])
async def test_a_malformed_first_message_closes_only_that_connection(first):
    ca, directory = SwarmCA.generate(), {}
    async with WebSocketEndpoint(ca.issue("a"), directory=directory, limits=Limits(max_frame=10_000)) as a, \
            WebSocketEndpoint(ca.issue("good"), directory=directory) as good:
        good.send_nowait("a", ping("good", 1))
        assert await next_from(a) == ("good", 1)
        message: bytes | str = {"garbage": b"\x00\xffnot a hello",
                                "text": "hello",
                                "truncated hello": HELLO + auth.pack(b"x" * 40)[:-3],
                                "huge": HELLO + b"x" * 20_000}[first]
        async with connect(f"ws://{a.address[0]}:{a.address[1]}/", proxy=None, compression=None) as ws:
            await ws.send(message)
            with pytest.raises(ConnectionClosed) as closed, anyio.fail_after(5):
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code in (1008, 1009)
        good.send_nowait("a", ping("good", 2))
        assert await next_from(a) == ("good", 2)
        assert a.stats.refused == 1
        assert a.stats.connections_accepted == 1


@pytest.mark.parametrize("junk", ["garbage", "truncated", "oversized"])
async def test_malformed_frames_from_a_member_close_only_that_connection(junk):
    ca, directory = SwarmCA.generate(), {}
    async with WebSocketEndpoint(ca.issue("a"), directory=directory, limits=Limits(max_frame=10_000)) as a, \
            WebSocketEndpoint(ca.issue("bad"), directory=directory) as bad, \
            WebSocketEndpoint(ca.issue("good"), directory=directory) as good:
        ok = ping("bad", 1)
        data = {"garbage": b"\x00\xffnot a frame at all" * 3,
                "truncated": ok[:-4],
                "oversized": HEADER.pack(b"SG", VERSION, PING, 50_000) + b"x" * 50_000}[junk]
        bad.send_nowait("a", data)
        await wait_until(lambda: a.stats.closed_malformed == 1)
        good.send_nowait("a", ping("good", 7))
        assert await next_from(a) == ("good", 7)
        assert a.stats.frames_received == 1 and a.stats.closed_malformed == 1


# ---- crashes ------------------------------------------------------------------------------------------


async def test_frames_arriving_at_a_killed_endpoint_are_dropped_without_crashing_it():
    """A crashed hub: its endpoint is killed (inbox closed) while its connections are still up and a
    peer keeps sending; nothing may raise out of either endpoint."""
    ca, directory = SwarmCA.generate(), {}
    async with WebSocketEndpoint(ca.issue("hub"), directory=directory) as hub, \
            WebSocketEndpoint(ca.issue("leaf"), directory=directory) as leaf:
        leaf.send_nowait("hub", ping("leaf", 0))
        assert await next_from(hub) == ("leaf", 0)
        hub.kill()
        for i in range(1, 40):
            leaf.send_nowait("hub", ping("leaf", i))
            await anyio.sleep(0.01)
        await wait_until(lambda: hub.stats.frames_after_close > 0)
        assert hub.stats.frames_received == 1


async def test_a_crashed_peer_does_not_break_the_others():
    """b dies (connections aborted, no goodbye) while a sends to it: a keeps redialling quietly
    and goes on exchanging frames with c."""
    ca, directory = SwarmCA.generate(), {}
    async with WebSocketEndpoint(ca.issue("a"), directory=directory) as a, \
            WebSocketEndpoint(ca.issue("c"), directory=directory) as c:
        async with WebSocketEndpoint(ca.issue("b"), directory=directory) as b:
            a.send_nowait("b", ping("a", 1))
            assert await next_from(b) == ("a", 1)
            b.kill()
        dialled = a.stats.connections_dialled
        for i in range(2, 6):
            a.send_nowait("b", ping("a", i))  # to the dead peer: its port is closed
            a.send_nowait("c", ping("a", i))
            assert await next_from(c) == ("a", i)
            c.send_nowait("a", ping("c", i))
            assert await next_from(a) == ("c", i)
        assert a.stats.connections_dialled == dialled + 1  # c only: every dial to b failed
        assert a.stats.refused == 0 and a.stats.frames_to["b"] == 1


# ---- a swarm on it ----------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["in-process", "process"])
def test_a_small_swarm_learns_and_replicates_over_websocket(runtime):
    """``SwarmConfig(transport="websocket")`` puts the swarm on WebSocket endpoints: in-process
    agents get them from the network, agent processes bind their own."""
    from swarm.orchestrator import Swarm
    from swarm.specs import AgentSpec, SwarmConfig
    specs = [AgentSpec(f"p{i}", market_seed=100 + i) for i in range(3)]
    cfg = SwarmConfig(episodes=3, transport="websocket", runtime=runtime, time_scale=0.05)
    with Swarm(cfg, specs) as swarm:
        swarm.run()
        assert swarm.replication_consistency() == 1.0
        assert all(len(a.log.correct) == 30 for a in swarm.agents.values())
        assert swarm.sync_latency_ms()["clock"] == "wall"
        assert swarm.traffic()["refused"] == 0 and swarm.traffic()["messages"] > 0
        if runtime == "in-process":
            assert all(isinstance(ep, WebSocketEndpoint) for ep in swarm.net.endpoints.values())
        else:  # what each process reported: one message per frame (QUIC packs frames into datagrams,
            # and answers every new connection with a Retry first)
            stats = list(swarm.net.traffic.values())
            assert stats and all(s.datagrams_sent == s.frames_sent > 0 and s.retries_sent == 0 for s in stats)


def test_the_websocket_transport_needs_asyncio():
    from swarm.specs import SwarmConfig
    with pytest.raises(ValueError, match="asyncio"):
        SwarmConfig(transport="websocket", backend="trio")
