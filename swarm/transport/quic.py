"""The gossip bus over real QUIC: sans-IO QUIC connections driven from a UDP socket under anyio,
so one transport runs on asyncio and on trio.

* Two QUIC stacks with the same sans-IO API: aioquic (the default, the product's stack) and qh3
  (an aioquic fork with compiled parts, ~7x less CPU per message; ``pip install
  reasoningbank-swarm[qh3]``). Choose with ``QuicEndpoint(backend=...)`` or the environment
  variable ``SWARM_QUIC_BACKEND`` (``aioquic`` | ``qh3``); both ends of a swarm use the same one.

* One endpoint (one UDP socket) per node, dialling peers and accepting them on the same socket.
* ALPN ``swarm-gossip/1``; TLS 1.3 with a swarm certificate authority (:class:`SwarmCA`, made
  with ``cryptography`` when the swarm starts) that issues each node a certificate naming it.
* Mutual authentication: a node dials a peer only if the peer's certificate is signed by the swarm
  CA and names that peer; it accepts a connection only once the client's certificate is verified
  against the same CA (aioquic checks the client's proof of key possession but has no public
  switch to request a client certificate nor to verify it, see aiortc/aioquic#541, so this module
  does both). Frames from a connection are read only after that check. qh3's TLS never asks for a
  client certificate at all, so on qh3 the client proves itself inside the connection: the server
  sends a fresh nonce, the client answers with its certificate and a signature over the nonce and
  both node names, and the server checks both before it reads any frame (:meth:`QuicEndpoint.
  _auth_response`); a relaying member cannot reuse an answer, which names the node it was for.
* Frames travel on streams, all frames queued for a peer in one stream write per flush (a 1024-d
  embedding is 4 KiB; it does not fit a datagram). The UDP receive buffer is raised.
* A bounded send queue per peer (overflow drops the oldest frames and counts them; anti-entropy
  resends whatever matters), idle timeouts, redial with exponential backoff, and a clean close that
  waits for sent data to be acknowledged. A malformed frame closes that one connection and logs it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import itertools
import logging
import ipaddress
import math
import os
import random
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Protocol
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

import anyio
import anyio.lowlevel
from aioquic import tls
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
from aioquic.quic.packet import QuicPacketType, encode_quic_retry, pull_quic_header
from aioquic.quic.retry import QuicRetryTokenHandler
from aioquic.quic.recovery import QuicPacketPacer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from ..gossip.codec import FrameSplitter, Limits, ProtocolError
from ..gossip.identity import SAN_SUFFIX, Signer, certificate_agent, curator_extension, write_key_extension
from . import auth
from .base import Endpoint, Inbox

log = logging.getLogger(__name__)

ALPN = "swarm-gossip/1"
ERROR_REFUSED = 0x1  # application close codes
ERROR_MALFORMED = 0x2
ERROR_SHUTDOWN = 0x0
SMALLEST_DATAGRAM = 1200  # what every path carries (RFC 9000 section 14)
# Loopback carries 64 KiB datagrams; aioquic writes STREAM and long-header lengths as 2-byte varints,
# so a datagram must stay under 16,384 bytes. 13x fewer datagrams than 1,200 each: far less CPU.
LOOPBACK_DATAGRAM = 16_000
MAX_DATAGRAM = 16_383
# RFC 9002's kInitialRtt (aioquic uses 100 ms): until a path has an RTT sample, its handshake is not
# resent after 200 ms; dozens of endpoints handshaking on one busy event loop answer slower than that.
INITIAL_RTT = 0.333
#: Accepted connections still in their handshake (on qh3: their authentication), at once in all
#: and from one IP address: past these a new Initial is dropped (a real peer retransmits it), and
#: one that has not finished within HANDSHAKE_TIMEOUT seconds is closed.
MAX_HALF_OPEN, MAX_HALF_OPEN_PER_ADDRESS = 256, 32
#: Connections at once, in all and from one IP address (a swarm on one host shares 127.0.0.1).
MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS = 4096, 1024
HANDSHAKE_TIMEOUT = 10.0
BACKEND_ENV = "SWARM_QUIC_BACKEND"
BACKENDS = ("aioquic", "qh3")
# qh3's in-connection client authentication (see the module docstring): the first unidirectional
# stream each way carries it, so frames start on the second.
AUTH_CHALLENGE, AUTH_RESPONSE = b"SWCH", b"SWAU"
AUTH_CONTEXT = b"swarm-gossip/1 client authentication\x00"
AUTH_MAX = 16 * 1024
CLIENT_AUTH_STREAM, SERVER_AUTH_STREAM = 2, 3  # the first client- and server-initiated uni streams


# ---- the swarm's certificate authority -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeCredentials:
    """A member's certificate and keys: the certificate names the member, holds its TLS key (EC
    P-256: both QUIC stacks speak it) and, in an extension the CA signs with the rest, the public
    half of its Ed25519 write key (:class:`~swarm.gossip.identity.Signer`), which signs its writes."""

    node: str
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey
    ca_pem: bytes
    write_key: ed25519.Ed25519PrivateKey

    @property
    def signer(self) -> Signer:
        return Signer(self.node, self.write_key)


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

    def issue(self, node: str, days: int = 7, write_key: ed25519.Ed25519PrivateKey | None = None,
              curator: bool = False) -> NodeCredentials:
        """A certificate naming ``node`` (as DNS name ``<node>.swarm``), holding a new TLS key and
        the public half of its Ed25519 write key (``write_key``, or a new one), and naming it a
        ``curator`` if so (see :data:`swarm.gossip.identity.CURATOR_OID`), signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        write_key = write_key if write_key is not None else ed25519.Ed25519PrivateKey.generate()
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node)]))
                   .issuer_name(self.certificate.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(node + SAN_SUFFIX)]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(write_key_extension(write_key.public_key()), critical=False))
        if curator:
            builder = builder.add_extension(curator_extension(), critical=False)
        return NodeCredentials(node, builder.sign(self.key, hashes.SHA256()), key, self.pem, write_key)

    def revocation_list(self, certificates: Iterable[x509.Certificate], number: int) -> bytes:
        """A revocation list (DER, CRL number ``number``: a node takes only a newer list than the
        one it holds) revoking ``certificates``; gossip spreads it to every member."""
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.certificate.subject)
                   .last_update(now).next_update(now + dt.timedelta(days=7))
                   .add_extension(x509.CRLNumber(number), critical=False))
        for cert in certificates:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


#: The node a swarm certificate names (from its ``<node>.swarm`` DNS name), if any.
node_of = certificate_agent


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class _Unpaced(QuicPacketPacer):
    """No pacing. On loopback there is no bottleneck queue for pacing to spare, and on an event loop
    shared by dozens of endpoints each paced datagram would wait for a timer, a loop iteration, of
    its own: a batch of patterns would trickle out at one datagram per iteration."""

    def next_send_time(self, now: float) -> float | None:  # type: ignore[override]  # aioquic returns None too
        return None


class _Connection(QuicConnection):
    """aioquic's connection, reading PADDING with one C call instead of a Python loop over its bytes
    (a 16 KB handshake datagram on loopback is mostly padding; same result), and unpaced on
    loopback (congestion control still bounds what is in flight)."""

    def __init__(self, *, unpaced: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if unpaced:
            self._loss._pacer = _Unpaced(max_datagram_size=self._max_datagram_size)

    def _handle_padding_frame(self, context: Any, frame_type: int, buf: Buffer) -> None:
        pos = buf.tell()
        rest = buf.data_slice(pos, buf.capacity)
        buf.seek(pos + len(rest) - len(rest.lstrip(b"\x00")))


    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        if tls.Group.X25519 in self.tls._supported_groups:  # no public API for this in aioquic 1.x
            # both ends are this module: one key share, not four (P-256, P-384, X25519, X448), of
            # which a client makes every key and a server uses one
            self.tls._supported_groups = [tls.Group.X25519]


class _AcceptingConnection(_Connection):
    """A server-side connection that asks the client for its certificate."""

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        self.tls._request_client_certificate = True  # no public API for this in aioquic 1.x


# ---- the QUIC stacks: what differs between aioquic and qh3 ---------------------------------------


@dataclass(frozen=True, slots=True)
class _Settings:
    """What a connection is made with (the endpoint's settings, for one path)."""

    credentials: NodeCredentials
    idle_timeout: float
    max_datagram_size: int
    max_data: int
    loopback: bool


class _Aioquic:
    """aioquic: TLS asks for and carries the client's certificate (see :class:`_AcceptingConnection`)."""

    name = "aioquic"
    tls_client_auth = True
    StreamDataReceived, HandshakeCompleted, ConnectionTerminated = (
        StreamDataReceived, HandshakeCompleted, ConnectionTerminated)
    ConnectionIdIssued, ConnectionIdRetired = ConnectionIdIssued, ConnectionIdRetired

    def connection(self, s: _Settings, *, client: bool, server_name: str | None = None,
                   original_destination_connection_id: bytes | None = None,
                   retry_source_connection_id: bytes | None = None) -> Any:
        cfg = QuicConfiguration(is_client=client, alpn_protocols=[ALPN], idle_timeout=s.idle_timeout,
                                server_name=server_name, max_datagram_size=s.max_datagram_size,
                                max_data=s.max_data, max_stream_data=s.max_data, initial_rtt=INITIAL_RTT,
                                verify_mode=ssl.CERT_NONE)  # the endpoint checks the peer's certificate
        cfg.certificate = s.credentials.certificate
        cfg.private_key = s.credentials.private_key
        if client:
            return _Connection(configuration=cfg, unpaced=s.loopback)
        return _AcceptingConnection(configuration=cfg, unpaced=s.loopback,
                                    original_destination_connection_id=original_destination_connection_id,
                                    retry_source_connection_id=retry_source_connection_id)

    def peer_certificate(self, quic: Any) -> x509.Certificate | None:
        return quic.tls._peer_certificate  # no public accessor in aioquic 1.x

    def busy(self, quic: Any, now: float) -> bool:
        """Data sent and not yet acknowledged (no public gauge in aioquic 1.x)."""
        return quic._loss.bytes_in_flight > 0


class _Qh3:
    """qh3 (optional): the same sans-IO API over a compiled core; its TLS has no client
    certificates, so the client authenticates inside the connection (see the module docstring)."""

    name = "qh3"
    tls_client_auth = False

    def __init__(self) -> None:
        from qh3.quic import events  # an optional dependency: ImportError if it is not installed
        from qh3.quic.configuration import QuicConfiguration as Qh3Configuration
        from qh3.quic.connection import QuicConnection as Qh3Connection
        from qh3.tls import load_pem_private_key, load_pem_x509_certificates

        self._configuration, self._connection = Qh3Configuration, Qh3Connection
        self._load_key, self._load_certs = load_pem_private_key, load_pem_x509_certificates
        self._keys: dict[str, tuple[Any, Any, NodeCredentials]] = {}  # node -> qh3 certificate and key, from
        self.StreamDataReceived, self.HandshakeCompleted = events.StreamDataReceived, events.HandshakeCompleted
        self.ConnectionTerminated = events.ConnectionTerminated
        self.ConnectionIdIssued, self.ConnectionIdRetired = events.ConnectionIdIssued, events.ConnectionIdRetired

    def _credentials(self, c: NodeCredentials) -> tuple[Any, Any]:
        got = self._keys.get(c.node)
        if got is None or got[2] is not c:
            key = c.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
            got = self._keys[c.node] = (self._load_certs(c.certificate.public_bytes(serialization.Encoding.PEM))[0],
                                        self._load_key(key), c)
        return got[0], got[1]

    def connection(self, s: _Settings, *, client: bool, server_name: str | None = None,
                   original_destination_connection_id: bytes | None = None,
                   retry_source_connection_id: bytes | None = None) -> Any:
        cfg = self._configuration(is_client=client, alpn_protocols=[ALPN], idle_timeout=s.idle_timeout,
                                  server_name=server_name, max_datagram_size=s.max_datagram_size,
                                  max_data=s.max_data, max_stream_data=s.max_data, initial_rtt=INITIAL_RTT,
                                  verify_mode=ssl.CERT_NONE, probe_datagram_size=False)
        cfg.certificate, cfg.private_key = self._credentials(s.credentials)
        if client:
            return self._connection(configuration=cfg)
        return self._connection(configuration=cfg,
                                original_destination_connection_id=original_destination_connection_id,
                                retry_source_connection_id=retry_source_connection_id)

    def peer_certificate(self, quic: Any) -> x509.Certificate | None:
        cert = quic.get_peercert()
        return None if cert is None else x509.load_der_x509_certificate(cert.public_bytes())

    def busy(self, quic: Any, now: float) -> bool:
        try:
            return bool(quic.get_send_buffer_size() > 0 or quic.should_wait_for_ack(now))
        except Exception:  # closed by the peer meanwhile
            return False


_backends: dict[str, Any] = {}


def quic_backend(name: str | None = None) -> Any:
    """The QUIC stack ``name`` (default: ``$SWARM_QUIC_BACKEND``, else aioquic). Raises
    ``ValueError`` for an unknown name and ``ImportError`` when qh3 is asked for but not installed."""
    name = name or os.environ.get(BACKEND_ENV) or "aioquic"
    if name not in BACKENDS:
        raise ValueError(f"unknown QUIC backend {name!r}: one of {', '.join(BACKENDS)}")
    if name not in _backends:
        _backends[name] = _Aioquic() if name == "aioquic" else _Qh3()
    return _backends[name]


def qh3_available() -> bool:
    try:
        quic_backend("qh3")
    except ImportError:
        return False
    return True


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
    datagrams_sent: int = 0
    datagrams_received: int = 0
    frames_dropped: int = 0  # send-queue overflow
    frames_after_close: int = 0  # arrived once the endpoint was closed or killed: nobody reads them
    retries_sent: int = 0  # Initials without a token, answered with a Retry (no state kept)
    tokens_refused: int = 0  # Initials with a token this endpoint did not issue (or expired, or moved)
    initials_refused: int = 0  # dropped: too many connections or handshakes at once
    handshakes_timed_out: int = 0  # accepted connections closed for not finishing in time
    datagrams_ignored: int = 0  # not QUIC, or for no connection
    datagrams_blocked: int = 0  # dropped by an injected partition
    datagrams_lost: int = 0  # dropped by injected loss
    frames_to: dict[str, int] = field(default_factory=dict)
    bytes_to: dict[str, int] = field(default_factory=dict)


def deliver(inbox: Inbox, stats: QuicStats, peer: str, frames: list[bytes]) -> None:
    """Hand frames from ``peer`` to an endpoint's inbox, counted. A closed or killed endpoint's
    connections are still read until their tasks end, and a frame arriving meanwhile has nobody to
    go to: it is counted (``frames_after_close``) and must not crash the reader."""
    for i, f in enumerate(frames):
        try:
            inbox.put(peer, f)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            stats.frames_after_close += len(frames) - i
            return
        stats.frames_received += 1
        stats.bytes_received += len(f)


@dataclass(slots=True, eq=False)  # hashed by identity: the endpoint keeps sets of them
class _Conn:
    quic: Any  # a backend's QuicConnection
    addr: tuple[str, int]
    outbound: bool
    peer: str | None = None  # verified node id
    ready: bool = False
    closed: bool = False  # we closed it, or it is closing: nothing more is read from it
    gone: bool = False  # terminated: its timer and datagrams are no longer wanted
    timer_at: float | None = None  # its armed timer (the heap may hold older, stale entries)
    home: tuple[str, int] | None = None  # the peer's directory address when this became its link
    splitters: dict[int, FrameSplitter] = field(default_factory=dict)
    held: list[bytes] = field(default_factory=list)  # frames in before the peer was authenticated
    nonce: bytes | None = None  # qh3, server side: the challenge the client must sign
    auth: bytearray | None = None  # qh3: the authentication stream so far
    backed_off: bool = False  # its failure has delayed the next dial to its peer
    opened_at: float = 0.0


class QuicEndpoint:
    """One node's QUIC endpoint: ``send_nowait(dest, frame)``, ``await recv()`` -> ``(peer, frame)``.

    Use as ``async with QuicEndpoint(credentials, directory=...) as ep:``; ``directory`` maps node
    ids to ``(host, port)`` and may be filled in later (it is read at dial time).

    The glue around the sans-IO connections costs O(1) per datagram, whatever the number of
    connections: a non-blocking UDP socket is drained in batches when it is readable, the
    connections a batch touched are asked for their datagrams once at its end, and those are sent
    at once (``sendto`` on a non-blocking socket; only a full send buffer makes them wait). Timers
    live in one heap per endpoint, and only a connection that changed is asked for its timer again.
    """

    def __init__(self, credentials: NodeCredentials, *, host: str = "127.0.0.1", port: int = 0,
                 directory: dict[str, tuple[str, int]] | None = None, idle_timeout: float = 30.0,
                 limits: Limits = Limits(), max_queue_bytes: int = 16 * 1024 * 1024,
                 receive_buffer: int = 4 * 1024 * 1024, close_grace: float = 0.5,
                 max_datagram_size: int | None = None, max_data: int = 16 * 1024 * 1024,
                 backend: str | None = None, retry: bool = True) -> None:
        self.node = credentials.node
        self.backend = quic_backend(backend)  # aioquic unless asked (or $SWARM_QUIC_BACKEND) for qh3
        self.credentials = credentials
        self._ca = x509.load_pem_x509_certificate(credentials.ca_pem)
        self.host, self.port = host, port
        self.directory = directory if directory is not None else {}
        self.idle_timeout = idle_timeout
        self.limits = limits
        self.max_queue_bytes = max_queue_bytes
        self.receive_buffer = receive_buffer
        self.close_grace = close_grace
        self.max_datagram_size = max_datagram_size  # None: by path, see _settings
        self.max_data = max_data  # flow-control window, per connection and per stream
        self.stats = QuicStats()
        # address validation: a client proves it receives at its address (RFC 9000 8.1) before
        # this endpoint keeps any state for it, so a flood of (spoofable) Initials costs nothing
        self._retry = QuicRetryTokenHandler() if retry else None
        self.address: tuple[str, int] | None = None
        self._by_cid: dict[bytes, _Conn] = {}
        # the connection frames for a peer go on: the one we dialled, or one the peer dialled once
        # its certificate is verified (a connection carries both ways: half the handshakes)
        self._links: dict[str, _Conn] = {}
        self._queues: dict[str, list[bytes]] = {}  # frames waiting for a peer's connection (non-empty lists)
        self._queued: dict[str, int] = {}  # their bytes
        self._backoff: dict[str, tuple[float, float]] = {}  # peer -> (next attempt at, delay)
        self._inbox = Inbox()  # opened in __aenter__, inside the event loop
        self._wake: Any = None
        self._sock: socket.socket | None = None
        self._closing = False
        self._conns: list[_Conn] = []  # every connection not yet terminated (closing ones still send)
        self._outbox: list[tuple[bytes, tuple[str, int]]] = []  # datagrams the socket could not take yet
        # connections with something new to send (a datagram in, a timer, data queued, a close):
        # only these are asked for datagrams, so a datagram in costs O(1), not O(connections)
        self._dirty: set[_Conn] = set()
        self._timers: list[tuple[float, int, _Conn]] = []  # heap of (when, tie-break, connection)
        self._seq = itertools.count()
        self._wake_at = -math.inf  # when the timer task wakes by itself; -inf while it runs
        self._handshakes_due = math.inf  # when the oldest accepted handshake in progress runs out of time
        self.blocked: set[str] = set()  # fault injection: peers whose traffic is dropped here
        self.loss = 0.0  # fault injection: share of outgoing datagrams dropped
        self._loss_rng = random.Random(f"loss:{credentials.node}")
        self._killed = False
        self.revoked: set[str] = set()  # peers the swarm CA revoked: refused (see revoke)

    # ---- lifecycle ----

    async def __aenter__(self) -> QuicEndpoint:
        self._cm = self._lifecycle()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._cm.__aexit__(*exc)

    def _bind(self) -> socket.socket:
        family, kind, proto, _, where = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            for option, size in ((socket.SO_RCVBUF, self.receive_buffer), (socket.SO_SNDBUF, 1024 * 1024)):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, size)
                except OSError:  # the OS may cap it; a smaller buffer still works
                    log.info("%s: could not raise the UDP socket buffer (%s)", self.node, option)
            sock.bind(where)
        except BaseException:
            sock.close()
            raise
        return sock

    @contextlib.asynccontextmanager
    async def _lifecycle(self) -> AsyncIterator[QuicEndpoint]:
        """Bind, serve in a task group while the block runs; then send what is queued, wait (up to
        ``close_grace``) for it to be acknowledged, say goodbye and close. A killed endpoint skips
        the goodbye (that is what a crash looks like to its peers)."""
        self._inbox.open()
        self._wake = anyio.Event()
        self._sock = sock = self._bind()
        self.address = sock.getsockname()[:2]
        self.directory[self.node] = self.address  # a restarted node announces its new port
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._receive_loop, sock)
                tg.start_soon(self._timer_loop)
                try:
                    yield self
                finally:
                    self._closing = True
                    if not self._killed:
                        with anyio.CancelScope(shield=True), anyio.move_on_after(self.close_grace):
                            self._kick()
                            while self._queues or any(self.backend.busy(c.quic, anyio.current_time())
                                                      for c in self._live()):
                                await anyio.sleep(0.01)
                    tg.cancel_scope.cancel()
            if not self._killed:  # the tasks have stopped: this is the only sender now
                for c in self._live():
                    self._close(c, ERROR_SHUTDOWN, "shutting down")
                self._dirty.update(self._conns)
                self._transmit()
        finally:
            self._inbox.close()
            self._sock = None
            sock.close()

    # ---- the Endpoint interface ----

    def send_nowait(self, dest: str, data: bytes) -> None:
        q = self._queues.get(dest)
        if q is None:
            q = self._queues[dest] = []
            self._queued[dest] = 0
        q.append(data)
        size = self._queued[dest] + len(data)
        while size > self.max_queue_bytes and len(q) > 1:
            size -= len(q.pop(0))
            self.stats.frames_dropped += 1
        self._queued[dest] = size
        self._kick()

    async def recv(self) -> tuple[str, bytes]:
        return await self._inbox.get()

    def reject(self, peer: str, reason: str) -> None:
        """Close every connection with ``peer`` (it sent a malformed frame)."""
        for c in self._live():
            if c.peer == peer:
                self._close_malformed(c, reason)
        self._kick()

    def revoke(self, peer: str) -> None:
        """The swarm CA revoked ``peer``: close its connections and refuse it from now on."""
        self.revoked.add(peer)
        for c in self._live():
            if c.peer == peer:
                self._close(c, ERROR_REFUSED, "revoked")
        self._kick()

    def close(self) -> None:
        self._inbox.close()

    def kill(self) -> None:
        """Die abruptly (fault injection): no flush, no goodbye; peers find out by timeout."""
        self._killed = True
        self.close()

    # ---- internals ----

    def _live(self) -> list[_Conn]:
        return [c for c in self._conns if not c.closed]

    def _kick(self) -> None:
        """Wake the timer task (it flushes queues and sends for connections marked dirty)."""
        if self._wake is not None and self._wake_at != -math.inf:
            self._wake.set()

    def _settings(self, addr: tuple[str, int]) -> _Settings:
        """A connection's settings on the path to ``addr``: 16 KB datagrams and no pacing on
        loopback, the 1,200 bytes every path carries elsewhere (unless ``max_datagram_size``)."""
        loopback = _is_loopback(addr[0])
        size = self.max_datagram_size or (LOOPBACK_DATAGRAM if loopback else SMALLEST_DATAGRAM)
        return _Settings(self.credentials, self.idle_timeout, max(SMALLEST_DATAGRAM, min(MAX_DATAGRAM, size)),
                         self.max_data, loopback)

    def _dial(self, peer: str, now: float) -> _Conn | None:
        addr = self.directory.get(peer)
        if addr is None:
            return None
        next_at, _ = self._backoff.get(peer, (0.0, 0.0))
        if now < next_at:
            return None
        quic = self.backend.connection(self._settings(addr), client=True, server_name=peer + SAN_SUFFIX)
        quic.connect(addr, now=now)
        conn = _Conn(quic, addr, outbound=True, peer=peer, home=addr)
        self._conns.append(conn)
        self._dirty.add(conn)
        self._links[peer] = conn
        self._by_cid[quic.host_cid] = conn
        self.stats.connections_dialled += 1
        return conn

    def _flush(self, now: float) -> None:
        """One stream write per peer whose connection is up, of every frame queued for it."""
        for dest in list(self._queues):
            conn = self._links.get(dest)
            if conn is not None and not conn.closed and self.directory.get(dest) != conn.home:
                self._close(conn, ERROR_SHUTDOWN, "peer moved")  # it restarted elsewhere
            if conn is None or conn.closed:
                conn = self._dial(dest, now)
                if conn is None:
                    continue
            if not conn.ready:
                continue
            batch = b"".join(self._queues[dest])
            # unidirectional: the stream is finished once our FIN arrives, so the peer grants new ones
            if not self._send_stream(conn, batch):
                continue  # it is closing: the frames stay queued for the next connection
            q = self._queues.pop(dest)
            del self._queued[dest]
            st = self.stats
            st.frames_sent += len(q)
            st.bytes_sent += len(batch)
            st.frames_to[dest] = st.frames_to.get(dest, 0) + len(q)
            st.bytes_to[dest] = st.bytes_to.get(dest, 0) + len(batch)

    def _send_stream(self, conn: _Conn, data: bytes) -> bool:
        """``data`` on a new unidirectional stream of ``conn``; False if the connection is already
        closing (the peer closed it, and the event saying so is not read yet: qh3 raises)."""
        try:
            sid = conn.quic.get_next_available_stream_id(is_unidirectional=True)
            conn.quic.send_stream_data(sid, data, end_stream=True)
        except Exception as e:  # each stack has its own error type for a closed connection
            log.info("%s: connection with %s is closing (%s)", self.node, conn.peer or conn.addr, e)
            conn.closed = True
            return False
        finally:
            self._dirty.add(conn)
        return True

    def _transmit(self) -> None:
        """Send the datagrams of every connection with something new (closing ones too), then
        re-arm the timer of each of them (aioquic's timer is only valid after datagrams_to_send)."""
        if not self._dirty:
            return
        now = anyio.current_time()
        dirty, self._dirty = self._dirty, set()
        for c in dirty:
            if c.gone:
                continue
            try:
                datagrams = c.quic.datagrams_to_send(now=now)
            except Exception as e:  # a stack's internal error ends that connection, not the endpoint
                self._broken(c, e)
                continue
            if datagrams:
                if c.peer in self.blocked:
                    self.stats.datagrams_blocked += len(datagrams)
                else:
                    for data, addr in datagrams:
                        if self.loss and self._loss_rng.random() < self.loss:
                            self.stats.datagrams_lost += 1
                        else:
                            self._sendto(data, addr)
            t = c.quic.get_timer()
            if t != c.timer_at:
                c.timer_at = t
                if t is not None:
                    heapq.heappush(self._timers, (t, next(self._seq), c))
                    if t < self._wake_at:  # sooner than the timer task means to wake
                        self._kick()
        if len(self._timers) > 64 + 4 * len(self._conns):  # drop the stale entries now and then (in place:
            self._timers[:] = [(c.timer_at, next(self._seq), c)  # the timer task holds this list)
                               for c in self._conns if c.timer_at is not None]
            heapq.heapify(self._timers)

    def _sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.stats.datagrams_sent += 1
        if self._outbox or self._sock is None:
            self._outbox.append((data, addr))
            return
        try:
            self._sock.sendto(data, addr)
        except BlockingIOError:  # the send buffer is full: the timer task retries shortly
            self._outbox.append((data, addr))
            self._kick()
        except OSError as e:  # e.g. the peer's port is gone; QUIC's loss recovery copes
            log.debug("%s: send to %s failed: %s", self.node, addr, e)

    def _send_outbox(self) -> None:
        out, self._outbox = self._outbox, []
        for i, (data, addr) in enumerate(out):
            if self._sock is None:
                return
            try:
                self._sock.sendto(data, addr)
            except BlockingIOError:
                self._outbox = out[i:] + self._outbox
                return
            except OSError as e:
                log.debug("%s: send to %s failed: %s", self.node, addr, e)

    async def _receive_loop(self, sock: socket.socket) -> None:
        """Wait until the socket is readable, then read every datagram waiting (up to a batch, so
        other endpoints on this loop get their turn) and answer at the end of the batch."""
        while True:
            await anyio.wait_readable(sock)
            now = anyio.current_time()
            for _ in range(256):
                try:
                    data, addr = sock.recvfrom(65536)
                except BlockingIOError:
                    break
                except OSError as e:  # e.g. an ICMP error reported on the socket
                    log.debug("%s: receive failed: %s", self.node, e)
                    continue
                self._datagram(data, addr, now)
                self.stats.datagrams_received += 1
            self._transmit()

    def _datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=8)
        except ValueError:
            self.stats.datagrams_ignored += 1
            return
        conn = self._by_cid.get(header.destination_cid)
        if conn is not None and conn.peer in self.blocked:
            self.stats.datagrams_blocked += 1
            return
        if conn is None:
            if header.packet_type != QuicPacketType.INITIAL or len(data) < 1200 or self._closing:
                self.stats.datagrams_ignored += 1
                return
            conn = self._accept(header, (addr[0], addr[1]), now)
            if conn is None:
                return
        try:
            conn.quic.receive_datagram(data, (addr[0], addr[1]), now=now)
        except Exception as e:
            return self._broken(conn, e)
        self._dirty.add(conn)
        self._events(conn)

    def _accept(self, header: Any, addr: tuple[str, int], now: float) -> _Conn | None:
        """A connection for a client's Initial, once its address is validated (a Retry first) and
        within the caps; None when it gets a Retry or is dropped."""
        st = self.stats
        original, retry_source = header.destination_cid, None
        if self._retry is not None:
            if not header.token:
                source_cid = os.urandom(8)
                token = self._retry.create_token(address=addr, original_destination_connection_id=original,
                                                 retry_source_connection_id=source_cid, now=now)
                self._sendto(encode_quic_retry(version=header.version, source_cid=source_cid,
                                               destination_cid=header.source_cid,
                                               original_destination_cid=original, retry_token=token), addr)
                st.retries_sent += 1
                return None
            try:
                original = self._retry.validate_token(address=addr, destination_cid=header.destination_cid,
                                                      token=header.token, now=now)
            except ValueError:
                st.tokens_refused += 1
                return None
            retry_source = header.destination_cid
        if not self._room_for(addr[0], now):
            st.initials_refused += 1
            return None
        quic = self.backend.connection(self._settings(addr), client=False,
                                       original_destination_connection_id=original,
                                       retry_source_connection_id=retry_source)
        conn = _Conn(quic, addr, outbound=False, opened_at=now)
        self._handshakes_due = min(self._handshakes_due, now + HANDSHAKE_TIMEOUT)
        self._conns.append(conn)
        self._by_cid[header.destination_cid] = conn
        self._by_cid[quic.host_cid] = conn
        st.connections_accepted += 1
        return conn

    def _close_late_handshakes(self, now: float) -> None:
        """Close the accepted connections that have not finished their handshake in time; note
        when the next one runs out (the timer task wakes then)."""
        due = math.inf
        for c in self._conns:
            if c.outbound or c.closed or c.ready:
                continue
            if now - c.opened_at >= HANDSHAKE_TIMEOUT:
                self.stats.handshakes_timed_out += 1
                self._close(c, ERROR_REFUSED, "handshake timed out")
            else:
                due = min(due, c.opened_at + HANDSHAKE_TIMEOUT)
        self._handshakes_due = due

    def _room_for(self, ip: str, now: float) -> bool:
        """Whether one more accepted connection from ``ip`` is within the caps, after closing the
        accepted connections that have not finished their handshake in time."""
        if now >= self._handshakes_due:
            self._close_late_handshakes(now)
        half_open = half_open_here = here = 0
        for c in self._conns:
            if c.outbound or c.closed:
                continue
            same = c.addr[0] == ip
            here += same
            if not c.ready:
                half_open += 1
                half_open_here += same
        return (half_open < MAX_HALF_OPEN and half_open_here < MAX_HALF_OPEN_PER_ADDRESS
                and len(self._conns) < MAX_CONNECTIONS and here < MAX_CONNECTIONS_PER_ADDRESS)

    async def _timer_loop(self) -> None:
        """Fire due timers, write queued frames, send; then sleep until the next timer or a kick."""
        timers = self._timers
        while True:
            self._wake_at = -math.inf  # running: nothing needs to wake this task
            now = anyio.current_time()
            while timers and timers[0][0] <= now:
                at, _, c = heapq.heappop(timers)
                if c.gone or c.timer_at != at:
                    continue  # stale: the connection re-armed (or ended) since
                c.timer_at = None
                try:
                    c.quic.handle_timer(now=now)  # ack and pacing timers fire in datagrams_to_send
                except Exception as e:
                    self._broken(c, e)
                    continue
                self._dirty.add(c)
                self._events(c)
            if now >= self._handshakes_due:
                self._close_late_handshakes(now)
            if self._queues:
                self._flush(now)
            self._transmit()
            if self._outbox:
                self._send_outbox()
            while timers and (timers[0][2].gone or timers[0][2].timer_at != timers[0][0]):
                heapq.heappop(timers)
            wake_at = min(timers[0][0] if timers else now + 1.0, self._handshakes_due)
            if self._queues:
                for at, _ in self._backoff.values():
                    if now < at < wake_at:
                        wake_at = at
            if self._outbox:
                wake_at = min(wake_at, now + 0.001)
            self._wake_at = wake_at
            if self._wake.is_set():
                self._wake = anyio.Event()
                await anyio.lowlevel.checkpoint()
                continue
            with anyio.move_on_after(max(0.0, wake_at - anyio.current_time())):
                await self._wake.wait()
            if self._wake.is_set():
                self._wake = anyio.Event()

    def _events(self, conn: _Conn) -> None:
        b = self.backend
        while (ev := conn.quic.next_event()) is not None:
            kind = type(ev)
            if kind is b.StreamDataReceived:
                if not conn.closed:
                    if conn.ready:
                        self._stream_data(conn, ev)
                    else:
                        self._stream_data_early(conn, ev)
            elif kind is b.ConnectionIdIssued:
                self._by_cid[ev.connection_id] = conn
            elif kind is b.ConnectionIdRetired:
                self._by_cid.pop(ev.connection_id, None)
            elif kind is b.HandshakeCompleted:
                self._handshake_done(conn, ev)
            elif kind is b.ConnectionTerminated:
                self._terminated(conn, ev)

    def _handshake_done(self, conn: _Conn, ev: Any) -> None:
        """Check the peer's certificate before anything is read from or written to the connection.
        TLS has checked that the peer holds the certificate's key (CertificateVerify) both ways;
        aioquic checks no client certificate at all, so this endpoint checks both sides itself.
        On qh3 the client has sent none: the server challenges it (:meth:`_auth_response`)."""
        if ev.alpn_protocol != ALPN:
            return self._refuse(conn, f"ALPN {ev.alpn_protocol!r} is not {ALPN}")
        if not conn.outbound and not self.backend.tls_client_auth:
            conn.nonce = os.urandom(32)
            self._send_stream(conn, AUTH_CHALLENGE + conn.nonce)
            return None
        peer, problem = self._check_certificate(self.backend.peer_certificate(conn.quic))
        if peer is None or (conn.outbound and peer != conn.peer):
            return self._refuse(conn, problem or f"its certificate names {peer!r}, not {conn.peer!r}")
        if conn.outbound and not self.backend.tls_client_auth:
            conn.auth = bytearray()  # the server is who it should be: wait for its challenge
            return None
        return self._authenticated(conn, peer)

    def _authenticated(self, conn: _Conn, peer: str) -> None:
        """The peer is a swarm member: frames flow both ways from now on."""
        conn.peer, conn.ready, conn.auth, conn.nonce = peer, True, None, None
        if conn.outbound:
            self._backoff.pop(peer, None)
        else:
            link = self._links.get(peer)
            if link is None or link.closed or not link.ready:  # answer on it rather than dial back
                conn.home = self.directory.get(peer, conn.addr)
                self._links[peer] = conn
        if peer in self._queues:
            self._kick()  # frames wait for this connection
        if conn.held:
            held, conn.held = conn.held, []
            self._deliver(peer, held)

    def _stream_data_early(self, conn: _Conn, ev: Any) -> None:
        """Stream data before the peer is authenticated: qh3's authentication exchange, or frames
        that overtook it (held until it completes, dropped if it fails)."""
        auth_stream = SERVER_AUTH_STREAM if conn.outbound else CLIENT_AUTH_STREAM
        if ev.stream_id != auth_stream or (conn.auth is None and conn.nonce is None):
            self._stream_data(conn, ev, hold=True)
            if sum(len(f) for f in conn.held) > self.max_queue_bytes:
                self._close_malformed(conn, "too much data before authenticating")
            return None
        if conn.auth is None:
            conn.auth = bytearray()
        conn.auth += ev.data
        if len(conn.auth) > AUTH_MAX:
            return self._refuse(conn, "authentication message too long")
        if not ev.end_stream:
            return None
        message, conn.auth = bytes(conn.auth), None
        if conn.outbound:
            return self._auth_answer(conn, message)
        return self._auth_response(conn, message)

    def _auth_message(self, nonce: bytes, server: str, client: str) -> bytes:
        return auth.transcript(AUTH_CONTEXT, nonce, server.encode(), client.encode())

    def _auth_answer(self, conn: _Conn, message: bytes) -> None:
        """Client side: sign the server's challenge (with both names: an answer is good for this
        server and this connection only) and send it with our certificate."""
        if len(message) != len(AUTH_CHALLENGE) + 32 or not message.startswith(AUTH_CHALLENGE):
            return self._refuse(conn, "malformed authentication challenge")
        nonce = message[len(AUTH_CHALLENGE):]
        signature = auth.sign(self.credentials.private_key, self._auth_message(nonce, conn.peer or "", self.node))
        cert = self.credentials.certificate.public_bytes(serialization.Encoding.DER)
        if self._send_stream(conn, AUTH_RESPONSE + len(cert).to_bytes(2, "big") + cert + signature):
            self._authenticated(conn, conn.peer or "")

    def _auth_response(self, conn: _Conn, message: bytes) -> None:
        """Server side: the client's certificate must be a swarm member's and its signature must
        cover this connection's nonce, this node's name and its own."""
        head = len(AUTH_RESPONSE) + 2
        if len(message) < head or not message.startswith(AUTH_RESPONSE) or conn.nonce is None:
            return self._refuse(conn, "malformed authentication answer")
        size = int.from_bytes(message[len(AUTH_RESPONSE):head], "big")
        try:
            cert = x509.load_der_x509_certificate(message[head:head + size])
        except ValueError:
            return self._refuse(conn, "malformed certificate in the authentication answer")
        peer, problem = self._check_certificate(cert)
        if peer is None:
            return self._refuse(conn, problem or "no peer")
        problem = auth.verify(cert, message[head + size:], self._auth_message(conn.nonce, self.node, peer))
        if problem is not None:
            return self._refuse(conn, f"authentication: {problem}")
        return self._authenticated(conn, peer)

    def _check_certificate(self, cert: x509.Certificate | None) -> tuple[str | None, str | None]:
        """``(node, None)`` if ``cert`` is an unrevoked swarm member's, else ``(None, why not)``."""
        return auth.check_certificate(cert, self._ca, self.revoked)

    def _refuse(self, conn: _Conn, reason: str) -> None:
        self.stats.refused += 1
        log.warning("%s: refused the connection %s %s: %s", self.node, "to" if conn.outbound else "from",
                    conn.peer if conn.outbound else conn.addr, reason)
        self._close(conn, ERROR_REFUSED, "refused")
        if conn.outbound and conn.peer is not None:
            self._back_off(conn)  # not the peer it should be: do not dial it again at once

    def _close(self, conn: _Conn, code: int, reason: str) -> None:
        try:
            conn.quic.close(error_code=code, reason_phrase=reason)
        except Exception as e:  # qh3 raises if the peer closed it first
            log.debug("%s: closing a closed connection: %s", self.node, e)
        conn.closed = True
        self._dirty.add(conn)

    def _broken(self, conn: _Conn, e: Exception) -> None:
        """The QUIC stack failed on this connection: drop it (its peer redials or times out)."""
        log.warning("%s: dropping the connection with %s after an error in %s: %r", self.node,
                    conn.peer or conn.addr, self.backend.name, e)
        self._terminated(conn, None)

    def _back_off(self, conn: _Conn) -> None:
        """Wait before dialling ``conn``'s peer again, longer each time (until one gets through)."""
        if conn.backed_off or conn.peer is None:
            return
        conn.backed_off = True
        _, delay = self._backoff.get(conn.peer, (0.0, 0.05))
        delay = min(5.0, delay * 2)
        self._backoff[conn.peer] = (anyio.current_time() + delay, delay)

    def _stream_data(self, conn: _Conn, ev: Any, hold: bool = False) -> None:
        splitter = conn.splitters.get(ev.stream_id)
        if splitter is None:
            splitter = conn.splitters[ev.stream_id] = FrameSplitter(self.limits)
        try:
            frames = splitter.feed(ev.data)
        except ProtocolError as e:
            return self._close_malformed(conn, str(e))
        if ev.end_stream:
            del conn.splitters[ev.stream_id]
            if splitter.pending:
                return self._close_malformed(conn, f"stream ended inside a frame ({splitter.pending} bytes)")
        if hold:
            conn.held += frames
        elif frames:
            self._deliver(conn.peer or "?", frames)
        return None

    def _deliver(self, peer: str, frames: list[bytes]) -> None:
        deliver(self._inbox, self.stats, peer, frames)

    def _close_malformed(self, conn: _Conn, reason: str) -> None:
        self.stats.closed_malformed += 1
        log.warning("%s: closing the connection with %s: %s", self.node, conn.peer or conn.addr, reason)
        self._close(conn, ERROR_MALFORMED, "malformed frame")

    def _terminated(self, conn: _Conn, ev: Any) -> None:
        conn.closed = conn.gone = True
        conn.timer_at = None
        self._dirty.discard(conn)
        if conn in self._conns:
            self._conns.remove(conn)
        for cid in [cid for cid, c in self._by_cid.items() if c is conn]:
            del self._by_cid[cid]
        if conn.peer is not None and self._links.get(conn.peer) is conn:
            del self._links[conn.peer]
            if conn.outbound and not conn.ready:  # never got through
                self._back_off(conn)


# ---- a swarm's QUIC network: one endpoint per node, and the faults the harness injects ------------


@dataclass(slots=True)
class _LinkCount:
    messages: int = 0
    bytes: int = 0


class WireEndpoint(Endpoint, Protocol):
    """An endpoint on real sockets with the fault hooks the harness drives (QUIC, WebSocket)."""

    stats: QuicStats
    address: tuple[str, int] | None  # where it listens, once bound
    blocked: set[str]  # peers whose traffic it drops
    loss: float  # share of outgoing traffic it drops

    def kill(self) -> None: ...


class QuicNetwork:
    """The orchestrator's view of real sockets: it hands out endpoints (credentials from one swarm
    CA, addresses in one directory) and injects faults at the transport: crash, partition, loss.
    QUIC endpoints unless ``endpoint_type`` says otherwise (the WebSocket endpoint has the same
    constructor and hooks)."""

    def __init__(self, ca: SwarmCA | None = None, host: str = "127.0.0.1",
                 endpoint_type: Callable[..., WireEndpoint] = QuicEndpoint) -> None:
        self.ca = ca or SwarmCA.generate()
        self.host = host
        self.endpoint_type = endpoint_type
        self.directory: dict[str, tuple[str, int]] = {}
        self.endpoints: dict[str, WireEndpoint] = {}
        self._retired: list[WireEndpoint] = []
        self._groups: dict[str, int] | None = None

    def endpoint(self, node: str, credentials: NodeCredentials | None = None) -> WireEndpoint:
        """``node``'s endpoint, with ``credentials`` (or new ones from this network's CA)."""
        old = self.endpoints.get(node)
        if old is not None:
            self._retired.append(old)
        ep = self.endpoint_type(credentials or self.ca.issue(node), host=self.host, directory=self.directory)
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
