"""QUIC under a flood of handshakes: address validation (Retry) keeps no state for a client
until it proves it receives at its address; caps bound the handshakes one address holds open."""

from __future__ import annotations

import gc
import socket
import time

import anyio
import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from swarm.gossip import GossipConfig, GossipNode
from swarm.kernel import AnyioKernel
from swarm.transport import GossipBus
from swarm.transport import quic as quic_module
from swarm.transport.quic import ALPN, QuicEndpoint, SwarmCA
from tests.conftest import FAULT_SCALE
from tests.identities import ident

from .support import DIM, patterns, wait_until
from .test_quic import STACKS

pytestmark = pytest.mark.fault


@pytest.fixture(params=["asyncio"])
def anyio_backend(request):
    return request.param


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _initials(n: int, addr: tuple[str, int]) -> list[bytes]:
    """The first datagram of ``n`` fresh clients (what a flood of spoofed handshakes sends)."""
    out = []
    for _ in range(n):
        c = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=[ALPN]))
        c.connect(addr, now=time.monotonic())
        out += [d for d, _ in c.datagrams_to_send(now=time.monotonic())]
    return out


@pytest.mark.anyio
async def test_a_flood_of_1000_initials_keeps_no_state_and_a_peer_keeps_replicating(stack):
    ca = SwarmCA.generate()
    k = AnyioKernel()
    directory: dict = {}
    cfg = GossipConfig(dim=DIM, gossip_interval=0.1, probe_interval=1.0, ack_timeout=0.5, suspect_timeout=5.0)
    async with QuicEndpoint(ca.issue("a"), directory=directory, backend=stack) as ea, \
            QuicEndpoint(ca.issue("b"), directory=directory, backend=stack) as eb:
        a, b = GossipNode("a", cfg, now=k.now(), identity=ident("a")), GossipNode("b", cfg, now=k.now(), identity=ident("b"))
        a.bootstrap(["b"], k.now())
        b.bootstrap(["a"], k.now())
        async with anyio.create_task_group() as tg:
            tg.start_soon(GossipBus(k, a, ea).run)
            tg.start_soon(GossipBus(k, b, eb).run)
            b.publish(patterns("b", 50), k.now())
            await wait_until(lambda: len(a.patterns) == 50)
            assert ea.address is not None
            flood = _initials(1000 * FAULT_SCALE, ea.address)  # the weekly job: 20,000
            gc.collect()
            before = _rss_bytes()
            accepted = ea.stats.connections_accepted
            more = patterns("b2", 100)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for i, datagram in enumerate(flood):
                    s.sendto(datagram, ea.address)
                    if i % 20 == 19:
                        await anyio.sleep(0.002)  # the endpoint reads between bursts
                    if i == len(flood) // 2:  # the peer writes in the middle of the flood
                        b.publish(more, k.now())
                await wait_until(lambda: len(a.patterns) == 150)
            gc.collect()
            after = _rss_bytes()
            tg.cancel_scope.cancel()
        assert ea.stats.retries_sent >= 0.9 * len(flood)  # (a few may be lost to the socket buffer)
        assert ea.stats.connections_accepted == accepted  # the flood made no connection
        assert after <= 1.1 * before, (before, after)


async def _hold_open(ep: QuicEndpoint, s: socket.socket, n: int) -> list[QuicConnection]:
    """``n`` clients on socket ``s`` that each follow the endpoint's Retry (a real address), send
    its token back and then go silent, holding a handshake open; returns once the endpoint has
    accepted or refused each of them."""
    assert ep.address is not None
    st = ep.stats
    before = st.retries_sent, st.connections_accepted + st.initials_refused + st.tokens_refused
    clients = []
    for _ in range(n):
        c = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=[ALPN]))
        c.connect(ep.address, now=time.monotonic())
        for d, _ in c.datagrams_to_send(now=time.monotonic()):
            s.sendto(d, ep.address)
        clients.append(c)
    await wait_until(lambda: st.retries_sent >= before[0] + n)
    await anyio.sleep(0.1)
    retries = []
    while True:
        try:
            retries.append(s.recvfrom(65536)[0])
        except BlockingIOError:
            break
    for c, r in zip(clients, retries):  # one Retry each, in the order sent
        c.receive_datagram(r, ep.address, now=time.monotonic())
    for c in clients:  # the clients answer every Retry (with its token) to the same port
        for d, _ in c.datagrams_to_send(now=time.monotonic()):
            s.sendto(d, ep.address)
    await wait_until(lambda: st.connections_accepted + st.initials_refused + st.tokens_refused >= before[1] + n)
    return clients


def _udp(ip: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.bind((ip, 0))
    return s


@pytest.mark.anyio
async def test_handshakes_held_open_from_one_address_are_capped_and_time_out(monkeypatch):
    monkeypatch.setattr(quic_module, "HANDSHAKE_TIMEOUT", 0.5)
    ca = SwarmCA.generate()
    async with QuicEndpoint(ca.issue("a"), directory={}) as ea:
        assert ea.address is not None
        with _udp("127.0.0.1") as s:
            await _hold_open(ea, s, 60)
            assert ea.stats.connections_accepted == quic_module.MAX_HALF_OPEN_PER_ADDRESS
            assert ea.stats.initials_refused == 60 - quic_module.MAX_HALF_OPEN_PER_ADDRESS
            # past the handshake deadline they are closed, with no new Initial to prompt it
            await wait_until(lambda: ea.stats.handshakes_timed_out == quic_module.MAX_HALF_OPEN_PER_ADDRESS, 5.0)
            late = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=[ALPN]))
            late.connect(ea.address, now=time.monotonic())
            for d, _ in late.datagrams_to_send(now=time.monotonic()):
                s.sendto(d, ea.address)
            await wait_until(lambda: ea.stats.retries_sent >= 61)
            await anyio.sleep(0.05)
            while True:  # its Retry, among the server's retransmissions to the silent clients
                try:
                    late.receive_datagram(s.recvfrom(65536)[0], ea.address, now=time.monotonic())
                except BlockingIOError:
                    break
            for d, _ in late.datagrams_to_send(now=time.monotonic()):
                s.sendto(d, ea.address)
            await wait_until(lambda: ea.stats.connections_accepted == quic_module.MAX_HALF_OPEN_PER_ADDRESS + 1)
            assert ea.stats.handshakes_timed_out == quic_module.MAX_HALF_OPEN_PER_ADDRESS  # the late one is in time


@pytest.mark.anyio
@pytest.mark.parametrize("caps", [("MAX_HALF_OPEN_PER_ADDRESS", "MAX_HALF_OPEN"),
                                  ("MAX_CONNECTIONS_PER_ADDRESS", "MAX_CONNECTIONS")])
async def test_each_cap_holds_per_address_and_in_all(monkeypatch, caps):
    """Handshakes held open from two addresses (127.0.0.1 and 127.0.0.2, both loopback): the first
    address gets its per-address share, the second only what is left of the cap in all."""
    per_address, in_all = 5, 8
    for name in ("MAX_HALF_OPEN_PER_ADDRESS", "MAX_HALF_OPEN", "MAX_CONNECTIONS_PER_ADDRESS", "MAX_CONNECTIONS"):
        monkeypatch.setattr(quic_module, name, 1000)  # only the caps under test bind
    monkeypatch.setattr(quic_module, caps[0], per_address)
    monkeypatch.setattr(quic_module, caps[1], in_all)
    ca = SwarmCA.generate()
    async with QuicEndpoint(ca.issue("a"), directory={}) as ea:
        with _udp("127.0.0.1") as one, _udp("127.0.0.2") as two:
            await _hold_open(ea, one, 12)
            assert ea.stats.connections_accepted == per_address
            await _hold_open(ea, two, 12)
            assert ea.stats.connections_accepted == in_all
            assert ea.stats.initials_refused == 24 - in_all
