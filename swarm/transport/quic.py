"""The gossip bus over real QUIC: aioquic's sans-IO connections driven from an anyio UDP socket,
so one transport runs on asyncio and on trio.

* One endpoint (one UDP socket) per node, dialling peers and accepting them on the same socket.
* ALPN ``swarm-gossip/1``; TLS 1.3 with a swarm certificate authority (:class:`SwarmCA`, made
  with ``cryptography`` when the swarm starts) that issues each node a certificate naming it.
* Mutual authentication: a node dials a peer only if the peer's certificate is signed by the swarm
  CA and names that peer; it accepts a connection only once the client's certificate is verified
  against the same CA (aioquic checks the client's proof of key possession but has no public
  switch to request a client certificate nor to verify it, see aiortc/aioquic#541, so this module
  does both). Frames from a connection are read only after that check.
* Frames travel on streams, all frames queued for a peer in one stream write per flush (a 1024-d
  embedding is 4 KiB; it does not fit a datagram). The UDP receive buffer is raised.
* A bounded send queue per peer (overflow drops the oldest frames and counts them; anti-entropy
  resends whatever matters), idle timeouts, redial with exponential backoff, and a clean close that
  waits for sent data to be acknowledged. A malformed frame closes that one connection and logs it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import socket
from dataclasses import dataclass, field
from typing import Any
from collections.abc import AsyncIterator, Iterable, Sequence

import anyio
from aioquic.buffer import Buffer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionIdIssued,
    ConnectionIdRetired,
    ConnectionTerminated,
    HandshakeCompleted,
    StreamDataReceived,
)
from aioquic.quic.packet import QuicPacketType, pull_quic_header
from aioquic.tls import verify_certificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..gossip.codec import FrameSplitter, Limits, ProtocolError
from ..kernel import EndOfChannel

log = logging.getLogger(__name__)

ALPN = "swarm-gossip/1"
SAN_SUFFIX = ".swarm"
ERROR_REFUSED = 0x1  # application close codes
ERROR_MALFORMED = 0x2
ERROR_SHUTDOWN = 0x0


# ---- the swarm's certificate authority -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeCredentials:
    node: str
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey
    ca_pem: bytes


class SwarmCA:
    """A certificate authority that exists for one swarm: it signs each member's certificate."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self.key = key
        self.certificate = certificate

    @classmethod
    def generate(cls, name: str = "swarm", days: int = 7) -> SwarmCA:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, node: str, days: int = 7) -> NodeCredentials:
        """A certificate naming ``node`` (as DNS name ``<node>.swarm``), signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node)]))
                .issuer_name(self.certificate.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(node + SAN_SUFFIX)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        return NodeCredentials(node, cert, key, self.pem)


def node_of(certificate: x509.Certificate) -> str | None:
    """The node a swarm certificate names (from its ``<node>.swarm`` DNS name), if any."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for name in names.get_values_for_type(x509.DNSName):
        if name.endswith(SAN_SUFFIX):
            return name[: -len(SAN_SUFFIX)]
    return None


class _AcceptingConnection(QuicConnection):
    """A server-side connection that asks the client for its certificate."""

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        self.tls._request_client_certificate = True  # no public API for this in aioquic 1.x


# ---- the endpoint ---------------------------------------------------------------------------------


@dataclass(slots=True)
class QuicStats:
    connections_dialled: int = 0
    connections_accepted: int = 0
    refused: int = 0  # peers whose certificate the swarm CA did not sign
    closed_malformed: int = 0
    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    frames_dropped: int = 0  # send-queue overflow
    datagrams_ignored: int = 0  # not QUIC, or for no connection
    datagrams_blocked: int = 0  # dropped by an injected partition
    datagrams_lost: int = 0  # dropped by injected loss
    frames_to: dict[str, int] = field(default_factory=dict)
    bytes_to: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True, eq=False)  # hashed by identity: the endpoint keeps sets of them
class _Conn:
    quic: QuicConnection
    addr: tuple[str, int]
    outbound: bool
    peer: str | None = None  # verified node id
    ready: bool = False
    closed: bool = False
    splitters: dict[int, FrameSplitter] = field(default_factory=dict)


class QuicEndpoint:
    """One node's QUIC endpoint: ``send_nowait(dest, frame)``, ``await recv()`` -> ``(peer, frame)``.

    Use as ``async with QuicEndpoint(credentials, directory=...) as ep:``; ``directory`` maps node
    ids to ``(host, port)`` and may be filled in later (it is read at dial time).
    """

    def __init__(self, credentials: NodeCredentials, *, host: str = "127.0.0.1", port: int = 0,
                 directory: dict[str, tuple[str, int]] | None = None, idle_timeout: float = 30.0,
                 limits: Limits = Limits(), max_queue_bytes: int = 16 * 1024 * 1024,
                 receive_buffer: int = 4 * 1024 * 1024, close_grace: float = 0.5) -> None:
        self.node = credentials.node
        self.credentials = credentials
        self.host, self.port = host, port
        self.directory = directory if directory is not None else {}
        self.idle_timeout = idle_timeout
        self.limits = limits
        self.max_queue_bytes = max_queue_bytes
        self.receive_buffer = receive_buffer
        self.close_grace = close_grace
        self.stats = QuicStats()
        self.address: tuple[str, int] | None = None
        self._by_cid: dict[bytes, _Conn] = {}
        self._dialled: dict[str, _Conn] = {}
        self._queues: dict[str, list[bytes]] = {}
        self._backoff: dict[str, tuple[float, float]] = {}  # peer -> (next attempt at, delay)
        self._inbox_send: Any = None  # made in __aenter__, inside the event loop
        self._inbox: Any = None
        self._wake: Any = None
        self._sock: Any = None
        self._closing = False
        self._conns: list[_Conn] = []  # every connection not yet terminated (closing ones still send)
        self._outbox: list[tuple[bytes, tuple[str, int]]] = []
        # connections with something new to send (a datagram in, a timer, data queued, a close):
        # only these are asked for datagrams, so a datagram in costs O(1), not O(connections)
        self._dirty: set[_Conn] = set()
        self.blocked: set[str] = set()  # fault injection: peers whose traffic is dropped here
        self.loss = 0.0  # fault injection: share of outgoing datagrams dropped
        self._loss_rng = random.Random(f"loss:{credentials.node}")
        self._killed = False

    # ---- lifecycle ----

    async def __aenter__(self) -> QuicEndpoint:
        self._cm = self._lifecycle()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._cm.__aexit__(*exc)

    @contextlib.asynccontextmanager
    async def _lifecycle(self) -> AsyncIterator[QuicEndpoint]:
        """Bind, serve in a task group while the block runs; then send what is queued, wait (up to
        ``close_grace``) for it to be acknowledged, say goodbye and close. A killed endpoint skips
        the goodbye (that is what a crash looks like to its peers)."""
        self._inbox_send, self._inbox = anyio.create_memory_object_stream[tuple[str, bytes]](float("inf"))
        self._wake = anyio.Event()
        self._sock = await anyio.create_udp_socket(local_host=self.host, local_port=self.port)
        raw = self._sock.extra(anyio.abc.SocketAttribute.raw_socket)
        try:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        except OSError:  # the OS may cap it; a smaller buffer still works
            log.info("%s: could not raise the UDP receive buffer", self.node)
        self.address = self._sock.extra(anyio.abc.SocketAttribute.local_address)[:2]
        self.directory[self.node] = self.address  # a restarted node announces its new port
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._receive_loop)
                tg.start_soon(self._timer_loop)
                try:
                    yield self
                finally:
                    self._closing = True
                    if not self._killed:
                        with anyio.CancelScope(shield=True), anyio.move_on_after(self.close_grace):
                            self._kick()
                            while any(self._queues.values()) or any(
                                    c.quic._loss.bytes_in_flight > 0 for c in self._live()):  # no public gauge
                                await anyio.sleep(0.01)
                    tg.cancel_scope.cancel()
            if not self._killed:  # the timer task has stopped: this is the only sender now
                for c in self._live():
                    c.quic.close(error_code=ERROR_SHUTDOWN, reason_phrase="shutting down")
                self._dirty.update(self._conns)
                self._transmit()
                with anyio.CancelScope(shield=True):
                    await self._send_out()
        finally:
            self._inbox_send.close()
            with anyio.CancelScope(shield=True):
                await self._sock.aclose()

    # ---- the Endpoint interface ----

    def send_nowait(self, dest: str, data: bytes) -> None:
        q = self._queues.setdefault(dest, [])
        q.append(data)
        size = sum(len(f) for f in q)
        while size > self.max_queue_bytes and len(q) > 1:
            size -= len(q.pop(0))
            self.stats.frames_dropped += 1
        self._kick()

    async def recv(self) -> tuple[str, bytes]:
        try:
            return await self._inbox.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise EndOfChannel("endpoint closed") from None

    def reject(self, peer: str, reason: str) -> None:
        """Close every connection with ``peer`` (it sent a malformed frame)."""
        for c in self._live():
            if c.peer == peer:
                self._close_malformed(c, reason)
        self._kick()

    def close(self) -> None:
        if self._inbox_send is not None:
            self._inbox_send.close()

    def kill(self) -> None:
        """Die abruptly (fault injection): no flush, no goodbye; peers find out by timeout."""
        self._killed = True
        self.close()

    # ---- internals ----

    def _live(self) -> list[_Conn]:
        return [c for c in self._conns if not c.closed]

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _config(self, client: bool, server_name: str | None = None) -> QuicConfiguration:
        cfg = QuicConfiguration(is_client=client, alpn_protocols=[ALPN], idle_timeout=self.idle_timeout,
                                cadata=self.credentials.ca_pem, server_name=server_name)
        cfg.certificate = self.credentials.certificate
        cfg.private_key = self.credentials.private_key
        return cfg

    def _dial(self, peer: str, now: float) -> _Conn | None:
        addr = self.directory.get(peer)
        if addr is None:
            return None
        next_at, _ = self._backoff.get(peer, (0.0, 0.0))
        if now < next_at:
            return None
        quic = QuicConnection(configuration=self._config(True, server_name=peer + SAN_SUFFIX))
        quic.connect(addr, now=now)
        conn = _Conn(quic, addr, outbound=True, peer=peer)
        self._conns.append(conn)
        self._dirty.add(conn)
        self._dialled[peer] = conn
        self._by_cid[quic.host_cid] = conn
        self.stats.connections_dialled += 1
        return conn

    def _flush(self, now: float) -> None:
        for dest, q in list(self._queues.items()):
            if not q:
                continue
            conn = self._dialled.get(dest)
            if conn is not None and not conn.closed and self.directory.get(dest) != conn.addr:
                conn.quic.close(error_code=ERROR_SHUTDOWN, reason_phrase="peer moved")  # it restarted elsewhere
                conn.closed = True
                self._dirty.add(conn)
            if conn is None or conn.closed:
                conn = self._dial(dest, now)
                if conn is None:
                    continue
            if not conn.ready:
                continue
            batch, self._queues[dest] = b"".join(q), []
            # unidirectional: the stream is finished once our FIN arrives, so the peer grants new ones
            sid = conn.quic.get_next_available_stream_id(is_unidirectional=True)
            conn.quic.send_stream_data(sid, batch, end_stream=True)
            self._dirty.add(conn)
            self.stats.frames_sent += len(q)
            self.stats.bytes_sent += len(batch)
            self.stats.frames_to[dest] = self.stats.frames_to.get(dest, 0) + len(q)
            self.stats.bytes_to[dest] = self.stats.bytes_to.get(dest, 0) + len(batch)

    def _transmit(self) -> None:
        """Collect the datagrams of every connection with something new (closing ones too) for
        the timer task to send."""
        now = anyio.current_time()
        dirty, self._dirty = self._dirty, set()
        for c in dirty:
            for data, addr in c.quic.datagrams_to_send(now=now):
                if c.peer in self.blocked:
                    self.stats.datagrams_blocked += 1
                elif self.loss and self._loss_rng.random() < self.loss:
                    self.stats.datagrams_lost += 1
                else:
                    self._outbox.append((data, addr))

    async def _send_out(self) -> None:
        out, self._outbox = self._outbox, []
        for data, addr in out:
            try:
                await self._sock.sendto(data, addr[0], addr[1])
            except OSError as e:  # e.g. the peer's port is gone; QUIC's loss recovery copes
                log.debug("%s: send to %s failed: %s", self.node, addr, e)

    async def _receive_loop(self) -> None:
        async for data, addr in self._sock:
            now = anyio.current_time()
            try:
                header = pull_quic_header(Buffer(data=data), host_cid_length=8)
            except ValueError:
                self.stats.datagrams_ignored += 1
                continue
            conn = self._by_cid.get(header.destination_cid)
            if conn is not None and conn.peer in self.blocked:
                self.stats.datagrams_blocked += 1
                continue
            if conn is None:
                if header.packet_type != QuicPacketType.INITIAL or len(data) < 1200 or self._closing:
                    self.stats.datagrams_ignored += 1
                    continue
                quic = _AcceptingConnection(configuration=self._config(False),
                                            original_destination_connection_id=header.destination_cid)
                conn = _Conn(quic, (addr[0], addr[1]), outbound=False)
                self._conns.append(conn)
                self._by_cid[header.destination_cid] = conn
                self._by_cid[quic.host_cid] = conn
                self.stats.connections_accepted += 1
            conn.quic.receive_datagram(data, (addr[0], addr[1]), now=now)
            self._dirty.add(conn)
            self._events(conn)
            self._kick()

    async def _timer_loop(self) -> None:
        while True:
            now = anyio.current_time()
            for c in list(self._conns):
                t = c.quic.get_timer()
                if t is not None and t <= now:
                    c.quic.handle_timer(now=now)  # ack and pacing timers fire in datagrams_to_send
                    self._dirty.add(c)
                    self._events(c)
            self._flush(now)
            self._transmit()
            await self._send_out()
            timers = [t for c in self._conns if (t := c.quic.get_timer()) is not None]
            if any(self._queues.values()):
                timers += [at for at, _ in self._backoff.values() if at > now]
            wait = max(0.0, min(timers) - anyio.current_time()) if timers else 1.0
            with anyio.move_on_after(wait):
                await self._wake.wait()
            self._wake = anyio.Event()

    def _events(self, conn: _Conn) -> None:
        while (ev := conn.quic.next_event()) is not None:
            if isinstance(ev, ConnectionIdIssued):
                self._by_cid[ev.connection_id] = conn
            elif isinstance(ev, ConnectionIdRetired):
                self._by_cid.pop(ev.connection_id, None)
            elif isinstance(ev, HandshakeCompleted):
                self._handshake_done(conn, ev)
            elif isinstance(ev, StreamDataReceived):
                if conn.ready and not conn.closed:
                    self._stream_data(conn, ev)
            elif isinstance(ev, ConnectionTerminated):
                self._terminated(conn, ev)

    def _handshake_done(self, conn: _Conn, ev: HandshakeCompleted) -> None:
        if ev.alpn_protocol != ALPN:
            return self._refuse(conn, f"ALPN {ev.alpn_protocol!r} is not {ALPN}")
        if conn.outbound:  # aioquic verified the server against the CA and its name
            conn.ready = True
            self._backoff.pop(conn.peer or "", None)
            return None
        tls = conn.quic.tls
        cert = tls._peer_certificate  # aioquic keeps the client's certificate but does not verify it
        if cert is None:
            return self._refuse(conn, "no client certificate")
        try:
            verify_certificate(cert, chain=list(tls._peer_certificate_chain), cadata=self.credentials.ca_pem)
        except Exception as e:  # any verification failure (aioquic raises several alert types)
            return self._refuse(conn, f"client certificate not signed by the swarm CA ({e})")
        peer = node_of(cert)
        if peer is None:
            return self._refuse(conn, "client certificate names no swarm node")
        conn.peer, conn.ready = peer, True
        return None

    def _refuse(self, conn: _Conn, reason: str) -> None:
        self.stats.refused += 1
        log.warning("%s: refused a connection from %s: %s", self.node, conn.addr, reason)
        conn.quic.close(error_code=ERROR_REFUSED, reason_phrase="refused")
        conn.closed = True
        self._dirty.add(conn)

    def _stream_data(self, conn: _Conn, ev: StreamDataReceived) -> None:
        splitter = conn.splitters.setdefault(ev.stream_id, FrameSplitter(self.limits))
        try:
            frames = splitter.feed(ev.data)
        except ProtocolError as e:
            return self._close_malformed(conn, str(e))
        if ev.end_stream:
            conn.splitters.pop(ev.stream_id, None)
            if splitter.pending:
                return self._close_malformed(conn, f"stream ended inside a frame ({splitter.pending} bytes)")
        for f in frames:
            self.stats.frames_received += 1
            self.stats.bytes_received += len(f)
            self._inbox_send.send_nowait((conn.peer or "?", f))
        return None

    def _close_malformed(self, conn: _Conn, reason: str) -> None:
        self.stats.closed_malformed += 1
        log.warning("%s: closing the connection with %s: %s", self.node, conn.peer or conn.addr, reason)
        conn.quic.close(error_code=ERROR_MALFORMED, reason_phrase="malformed frame")
        conn.closed = True
        self._dirty.add(conn)

    def _terminated(self, conn: _Conn, ev: ConnectionTerminated) -> None:
        conn.closed = True
        self._dirty.discard(conn)
        if conn in self._conns:
            self._conns.remove(conn)
        for cid in [cid for cid, c in self._by_cid.items() if c is conn]:
            del self._by_cid[cid]
        if conn.outbound and conn.peer is not None and self._dialled.get(conn.peer) is conn:
            del self._dialled[conn.peer]
            if not conn.ready:  # never got through: wait before dialling again, longer each time
                _, delay = self._backoff.get(conn.peer, (0.0, 0.05))
                delay = min(5.0, delay * 2)
                self._backoff[conn.peer] = (anyio.current_time() + delay, delay)


# ---- a swarm's QUIC network: one endpoint per node, and the faults the harness injects ------------


@dataclass(slots=True)
class _LinkCount:
    messages: int = 0
    bytes: int = 0


class QuicNetwork:
    """The orchestrator's view of real QUIC: it hands out endpoints (credentials from one swarm
    CA, addresses in one directory) and injects faults at the transport: crash, partition, loss."""

    def __init__(self, ca: SwarmCA | None = None, host: str = "127.0.0.1") -> None:
        self.ca = ca or SwarmCA.generate()
        self.host = host
        self.directory: dict[str, tuple[str, int]] = {}
        self.endpoints: dict[str, QuicEndpoint] = {}
        self._retired: list[QuicEndpoint] = []
        self._groups: dict[str, int] | None = None

    def endpoint(self, node: str) -> QuicEndpoint:
        old = self.endpoints.get(node)
        if old is not None:
            self._retired.append(old)
        ep = QuicEndpoint(self.ca.issue(node), host=self.host, directory=self.directory)
        self.endpoints[node] = ep
        self._apply_partition()
        return ep

    def crash(self, node: str) -> None:
        ep = self.endpoints.get(node)
        if ep is not None:
            ep.kill()

    def partition(self, *groups: set[str] | list[str] | tuple[str, ...]) -> None:
        self._groups = {n: i for i, g in enumerate(groups) for n in g}
        self._apply_partition()

    def heal(self) -> None:
        self._groups = None
        self._apply_partition()

    def set_default(self, profile: Any) -> None:
        """Only the loss of a link profile applies on real sockets (latency is the network's own)."""
        for ep in self.endpoints.values():
            ep.loss = float(getattr(profile, "loss", 0.0))

    def _apply_partition(self) -> None:
        g = self._groups
        for node, ep in self.endpoints.items():
            ep.blocked = set() if g is None else {o for o in self.endpoints if g.get(o, -1) != g.get(node, -1)}

    def _stats(self) -> list[tuple[str, QuicStats]]:
        return [(ep.node, ep.stats) for ep in [*self._retired, *self.endpoints.values()]]

    def link_stats(self) -> dict[tuple[str, str], _LinkCount]:
        return link_counts(self._stats())

    def totals(self) -> dict[str, int]:
        return traffic_totals([s for _, s in self._stats()])


def link_counts(stats: Iterable[tuple[str, QuicStats]]) -> dict[tuple[str, str], _LinkCount]:
    """Frames and bytes per (sender, destination), over endpoints' counters ``(node, stats)``."""
    out: dict[tuple[str, str], _LinkCount] = {}
    for node, st in stats:
        for dest, n in st.frames_to.items():
            c = out.setdefault((node, dest), _LinkCount())
            c.messages += n
            c.bytes += st.bytes_to.get(dest, 0)
    return out


def traffic_totals(stats: Sequence[QuicStats]) -> dict[str, int]:
    """A swarm's traffic figures, summed over its endpoints' counters."""
    return {"messages": sum(s.frames_sent for s in stats), "bytes": sum(s.bytes_sent for s in stats),
            "delivered": sum(s.frames_received for s in stats), "lost": sum(s.datagrams_lost for s in stats),
            "blocked": sum(s.datagrams_blocked for s in stats), "refused": sum(s.refused for s in stats)}
