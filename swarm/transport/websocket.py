"""The gossip bus over WebSocket, authenticated at the application layer: the transport for agents
in E2B sandboxes, which accept inbound traffic only as HTTPS/WebSocket through E2B's proxy. The
proxy terminates TLS, and there is no UDP: neither QUIC nor mutual TLS reaches end to end. So the
endpoint speaks plain ``ws://`` (the proxy adds TLS on the internet leg) or ``wss://``, and each
side proves inside the connection that it holds the key its swarm-CA certificate names.

* Handshake, three binary messages before any gossip frame (fields joined by :func:`auth.pack`):

  1. dialler -> listener, HELLO: its certificate, a fresh nonce, a fresh X25519 key, the node it
     means to reach;
  2. listener -> dialler, CHALLENGE: its certificate, nonce and X25519 key, and its signature;
  3. dialler -> listener, PROOF: its signature.

  Each signature is made with the TLS key (EC P-256) the signer's certificate names, over a
  transcript of its role, both node names, both nonces, both certificates' SHA-256 and both
  X25519 keys. Each side first checks the other's certificate (signed by the swarm CA, in its
  validity window, naming a node, not revoked; the dialler also that it names the node dialled).
  A recorded handshake is worthless (the other side's nonce is new each time), and so is a
  member's own certificate for anyone else's name (the transcript names both ends).
* Frames: one gossip frame per binary message, sealed with AES-GCM under per-direction keys from
  the X25519 exchange (HKDF over the transcript) and a message counter as nonce. Nobody on the
  path, the TLS-terminating proxy included, can read, forge, alter, replay or reorder one; the
  sender of every frame is the node the handshake authenticated. A message that does not open,
  or holds anything but whole frames within :class:`~swarm.gossip.codec.Limits`, closes that one
  connection.
* One connection per peer pair when one side dials first (the other answers on it), a bounded
  send queue per peer (``send_nowait`` never blocks; overflow drops the oldest frames, counted),
  redial with backoff, and the QUIC endpoint's fault hooks (``blocked``, ``loss``, ``kill``).
  Counters are :class:`~swarm.transport.quic.QuicStats`, a "datagram" being one message here.
* Runs on asyncio only: websockets' asyncio API (``websockets.asyncio``). The real-bus runtimes
  (in-process agents on ``--transport``, agent processes, E2B sandboxes) run on asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import ssl
from collections import deque
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Any

import anyio
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.frames import CloseCode

from ..gossip.codec import HEADER, FrameSplitter, Limits, ProtocolError
from . import auth
from .base import Inbox
from .quic import HANDSHAKE_TIMEOUT, MAX_CONNECTIONS, MAX_HALF_OPEN, NodeCredentials, QuicStats, deliver

log = logging.getLogger(__name__)

HELLO, CHALLENGE, PROOF = b"SWH1", b"SWC1", b"SWP1"
CONTEXT = b"swarm-gossip/1 websocket\x00"  # + the role ("dialler", "listener") or "keys"
NONCE = 32
TAG = 16  # AES-GCM's tag on every sealed message
BACKOFF_MIN, BACKOFF_MAX = 0.05, 5.0  # redial delays, doubled after each failure
CLOSE_TIMEOUT = 2.0  # how long a close waits for the peer's close frame


class Refused(Exception):
    """The peer failed the handshake (a check it did not pass, or a malformed message)."""


@dataclass(slots=True, eq=False)
class Session:
    """What an authenticated handshake leaves: the peer it proved to be, and the keys that seal
    each direction's messages (AES-GCM, a message counter as nonce: a message that was forged,
    altered, replayed or reordered does not open). Shared by the gossip endpoint and the
    runtimes' control channel (:mod:`swarm.runtime.channel`)."""

    peer: str
    sealer: AESGCM
    opener: AESGCM
    sent: int = 0  # messages sealed (the next one's nonce)
    received: int = 0  # messages opened

    def seal(self, message: bytes) -> bytes:
        nonce, self.sent = self.sent.to_bytes(12, "big"), self.sent + 1
        return self.sealer.encrypt(nonce, message, None)

    def open(self, message: bytes) -> bytes:
        """The message ``message`` seals; ``InvalidTag`` if it was forged, altered, replayed or reordered."""
        nonce, self.received = self.received.to_bytes(12, "big"), self.received + 1
        return self.opener.decrypt(nonce, message, None)


@dataclass(slots=True, eq=False)  # hashed by identity: the endpoint keeps sets of them
class _Link:
    """An authenticated connection: its peer, and the session that seals its messages."""

    ws: Connection
    peer: str
    outbound: bool
    home: tuple[str, int] | None  # the peer's directory address when this became its link
    session: Session
    closed: bool = False  # nothing more is read from or written to it

    def seal(self, frame: bytes) -> bytes:
        return self.session.seal(frame)

    def open(self, message: bytes) -> bytes:
        return self.session.open(message)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _sealing_keys(secret: bytes, fields: list[bytes], context: bytes = CONTEXT) -> tuple[AESGCM, AESGCM]:
    """The dialler's and the listener's sending keys, from the X25519 secret and the transcript."""
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=None,
               info=auth.transcript(context + b"keys", *fields)).derive(secret)
    return AESGCM(okm[:32]), AESGCM(okm[32:])


def _fields(message: Any, magic: bytes, count: int) -> list[bytes]:
    """The fields of a handshake message of kind ``magic``; :class:`Refused` if it is not one."""
    if not isinstance(message, bytes) or not message.startswith(magic):
        raise Refused(f"expected a {magic.decode()} message")
    try:
        return auth.unpack(message[len(magic):], count)
    except ValueError as e:
        raise Refused(f"malformed {magic.decode()} message: {e}") from None


def _frames(data: bytes, limits: Limits) -> list[bytes]:
    """The whole frames a message holds (at least one, nothing else); ProtocolError otherwise."""
    splitter = FrameSplitter(limits)
    frames = splitter.feed(data)
    if splitter.pending or not frames:
        raise ProtocolError(f"a message of {len(data)} bytes does not hold whole frames")
    return frames


class Handshake:
    """The three handshake messages of one connection (see the module docstring), sans-IO: the
    caller moves the bytes. A dialler calls :meth:`hello` then :meth:`proof`; a listener
    :meth:`challenge` then :meth:`accept`. Each raises :class:`Refused` for a peer that fails a
    check; both end with the :class:`Session` that seals the connection's messages.

    ``context`` names the protocol in every signature and key derivation, so a handshake made
    for one use (gossip) proves nothing for another (an agent's control channel)."""

    def __init__(self, credentials: NodeCredentials, ca: x509.Certificate, revoked: Collection[str] = (),
                 context: bytes = CONTEXT) -> None:
        self.credentials = credentials
        self.ca = ca
        self.revoked = revoked
        self.context = context
        self._der = _der(credentials.certificate)
        self._nonce = os.urandom(NONCE)
        self._ephemeral = X25519PrivateKey.generate()
        self._mine = self._ephemeral.public_key().public_bytes_raw()
        self._dest: str | None = None
        self._peer: tuple[x509.Certificate, str] | None = None
        self._fields: list[bytes] = []
        self._secret = b""

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The certificate the other side showed (once it has shown one that checks out)."""
        return None if self._peer is None else self._peer[0]

    # the dialler's side

    def hello(self, dest: str) -> bytes:
        """HELLO to the node ``dest``."""
        self._dest = dest
        return HELLO + auth.pack(self._der, self._nonce, self._mine, dest.encode())

    def proof(self, challenge: Any) -> tuple[bytes, Session]:
        """The PROOF answering ``challenge``, and the session (once it is sent, the link is up)."""
        assert self._dest is not None, "hello first"
        their_der, their_nonce, theirs, signature = _fields(challenge, CHALLENGE, 4)
        cert, _ = self._certificate(their_der, expect=self._dest)
        fields = _transcript(self._dest, self.credentials.node, self._nonce, their_nonce, their_der, self._der,
                             self._mine, theirs)
        problem = auth.verify(cert, signature, auth.transcript(self.context + b"listener", *fields))
        if problem is not None:
            raise Refused(problem)
        proof = PROOF + auth.pack(auth.sign(self.credentials.private_key, auth.transcript(self.context + b"dialler", *fields)))
        sealer, opener = _sealing_keys(_exchange(self._ephemeral, theirs), fields, self.context)
        return proof, Session(self._dest, sealer, opener)

    # the listener's side

    def challenge(self, hello: Any) -> bytes:
        """The CHALLENGE answering ``hello``."""
        their_der, their_nonce, theirs, wanted = _fields(hello, HELLO, 4)
        if wanted != self.credentials.node.encode():
            raise Refused(f"it dialled {wanted[:64]!r}, not this node")
        cert, peer = self._certificate(their_der)
        self._peer = (cert, peer)
        self._fields = _transcript(self.credentials.node, peer, their_nonce, self._nonce, self._der, their_der,
                                   theirs, self._mine)
        self._secret = _exchange(self._ephemeral, theirs)
        signature = auth.sign(self.credentials.private_key, auth.transcript(self.context + b"listener", *self._fields))
        return CHALLENGE + auth.pack(self._der, self._nonce, self._mine, signature)

    def accept(self, proof: Any) -> Session:
        """The session, if ``proof`` proves the dialler holds its certificate's key."""
        assert self._peer is not None, "challenge first"
        (signature,) = _fields(proof, PROOF, 1)
        problem = auth.verify(self._peer[0], signature, auth.transcript(self.context + b"dialler", *self._fields))
        if problem is not None:
            raise Refused(problem)
        opener, sealer = _sealing_keys(self._secret, self._fields, self.context)
        return Session(self._peer[1], sealer, opener)

    def _certificate(self, der: bytes, expect: str | None = None) -> tuple[x509.Certificate, str]:
        """The peer's certificate and the node it names, if it is a member's (and names ``expect``);
        else :class:`Refused`."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise Refused("malformed certificate") from None
        peer, problem = auth.check_certificate(cert, self.ca, self.revoked)
        if peer is None:
            raise Refused(problem or "no peer")
        if expect is not None and peer != expect:
            raise Refused(f"its certificate names {peer!r}, not {expect!r}")
        return cert, peer


def _transcript(listener: str, dialler: str, dialler_nonce: bytes, listener_nonce: bytes, listener_der: bytes,
                dialler_der: bytes, dialler_key: bytes, listener_key: bytes) -> list[bytes]:
    """What both signatures cover, and the sealing keys derive from."""
    if len(dialler_nonce) != NONCE or len(listener_nonce) != NONCE:
        raise Refused("a nonce of the wrong size")
    return [listener.encode(), dialler.encode(), dialler_nonce, listener_nonce,
            hashlib.sha256(listener_der).digest(), hashlib.sha256(dialler_der).digest(), dialler_key, listener_key]


def _exchange(ephemeral: X25519PrivateKey, theirs: bytes) -> bytes:
    try:
        return ephemeral.exchange(X25519PublicKey.from_public_bytes(theirs))
    except ValueError:  # not 32 bytes, or a low-order point (an all-zero secret)
        raise Refused("a bad X25519 key") from None


class WebSocketEndpoint:
    """One node's WebSocket endpoint, with the interface of the QUIC endpoint:
    ``send_nowait(dest, frame)``, ``await recv()`` -> ``(peer, frame)``.

    Use as ``async with WebSocketEndpoint(credentials, directory=...) as ep:`` (binds and listens
    on ``host``: ``0.0.0.0`` in a sandbox); ``directory`` maps node ids to ``(host, port)`` and is
    read at dial time. ``scheme`` is ``wss`` to dial through TLS (E2B's proxy: port 443), with
    ``ssl_context`` the client's TLS context (default: the system's)."""

    def __init__(self, credentials: NodeCredentials, *, host: str = "127.0.0.1", port: int = 0,
                 directory: dict[str, tuple[str, int]] | None = None, limits: Limits = Limits(),
                 max_queue_bytes: int = 16 * 1024 * 1024, scheme: str = "ws", ssl_context: ssl.SSLContext | None = None,
                 close_grace: float = 0.5, handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        if scheme not in ("ws", "wss"):
            raise ValueError(f"scheme must be ws or wss, not {scheme!r}")
        self.node = credentials.node
        self.credentials = credentials
        self._ca = x509.load_pem_x509_certificate(credentials.ca_pem)
        self.host, self.port = host, port
        self.directory = directory if directory is not None else {}
        self.limits = limits
        self.max_queue_bytes = max_queue_bytes
        self.scheme, self.ssl_context = scheme, ssl_context
        self.close_grace = close_grace
        self.handshake_timeout = handshake_timeout
        self.stats = QuicStats()
        self.address: tuple[str, int] | None = None
        self.revoked: set[str] = set()  # peers the swarm CA revoked: refused (see revoke)
        self.blocked: set[str] = set()  # fault injection: peers whose frames are dropped here, both ways
        self.loss = 0.0  # fault injection: share of outgoing frames dropped
        self._loss_rng = random.Random(f"loss:{credentials.node}")
        self._queues: dict[str, deque[bytes]] = {}
        self._queued: dict[str, int] = {}  # their bytes
        self._wake: dict[str, anyio.Event] = {}  # set when a peer's queue or link changes
        self._links: dict[str, _Link] = {}  # the connection each peer's frames go on
        self._conns: set[_Link] = set()  # every authenticated connection not yet closed
        self._sockets: set[Connection] = set()  # every connection open, authenticated or not
        self._half_open = 0  # accepted connections still in their handshake
        self._tg: Any = None
        self._inbox = Inbox()  # opened in __aenter__, inside the event loop
        self._closing = False
        self._killed = False

    # ---- lifecycle ----

    async def __aenter__(self) -> WebSocketEndpoint:
        self._cm = self._lifecycle()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._cm.__aexit__(*exc)

    def _options(self) -> dict[str, Any]:
        """What both ends of a connection are made with: messages up to one frame (sealed), no
        compression (sealed bytes do not compress), websockets' keepalive to find dead peers."""
        return {"max_size": HEADER.size + self.limits.max_frame + TAG, "compression": None,
                "close_timeout": CLOSE_TIMEOUT, "open_timeout": self.handshake_timeout}

    @contextlib.asynccontextmanager
    async def _lifecycle(self) -> AsyncIterator[WebSocketEndpoint]:
        """Listen, and dial from a task group while the block runs; then send what is queued (up
        to ``close_grace``) and close every connection. A killed endpoint aborts them instead (no
        goodbye: that is what a crash looks like to its peers)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("WebSocketEndpoint runs on asyncio only (websockets' asyncio API)") from None
        self._inbox.open()
        server: Server = await serve(self._serve, self.host, self.port, server_header=None, **self._options())
        self.address = server.sockets[0].getsockname()[:2]
        self.directory[self.node] = self.address  # a restarted node announces its new port
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for dest in self._queues:  # frames queued before the endpoint opened
                    tg.start_soon(self._sender, dest)
                try:
                    yield self
                finally:
                    self._closing = True
                    if not self._killed:
                        with anyio.CancelScope(shield=True), anyio.move_on_after(self.close_grace):
                            while any(self._queues.get(p) for p in self._links):
                                await anyio.sleep(0.01)
                    tg.cancel_scope.cancel()
        finally:
            self._tg = None
            self._inbox.close()
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT + 1.0):
                server.close(close_connections=False)
                async with anyio.create_task_group() as closing:
                    for ws in list(self._sockets):
                        if self._killed:
                            ws.transport.abort()
                        else:
                            closing.start_soon(self._close_ws, ws, CloseCode.GOING_AWAY, "shutting down")
                await server.wait_closed()

    # ---- the Endpoint interface ----

    def send_nowait(self, dest: str, data: bytes) -> None:
        q = self._queues.get(dest)
        if q is None:
            q = self._queues[dest] = deque()
            self._queued[dest] = 0
            self._wake[dest] = anyio.Event()
            if self._tg is not None:
                self._tg.start_soon(self._sender, dest)
        q.append(data)
        size = self._queued[dest] + len(data)
        while size > self.max_queue_bytes and len(q) > 1:
            size -= len(q.popleft())
            self.stats.frames_dropped += 1
        self._queued[dest] = size
        self._wake[dest].set()

    async def recv(self) -> tuple[str, bytes]:
        return await self._inbox.get()

    def reject(self, peer: str, reason: str) -> None:
        """Close every connection with ``peer`` (it sent a malformed frame)."""
        for link in [c for c in self._conns if c.peer == peer]:
            self._malformed(link, reason)

    def revoke(self, peer: str) -> None:
        """The swarm CA revoked ``peer``: close its connections and refuse it from now on."""
        self.revoked.add(peer)
        for link in [c for c in self._conns if c.peer == peer]:
            self._shut(link, CloseCode.POLICY_VIOLATION, "revoked")

    def close(self) -> None:
        self._inbox.close()

    def kill(self) -> None:
        """Die abruptly (fault injection): no flush, no goodbye; the connections are aborted when
        the endpoint's block ends, and frames arriving until then are counted and dropped."""
        self._killed = True
        self.close()

    # ---- sending ----

    def _link_to(self, dest: str) -> _Link | None:
        """The live connection to ``dest``, if any (one to an address it has moved from is closed)."""
        link = self._links.get(dest)
        if link is None or link.closed:
            return None
        if link.home is not None and self.directory.get(dest, link.home) != link.home:
            self._shut(link, CloseCode.GOING_AWAY, "peer moved")  # it restarted elsewhere
            return None
        return link

    async def _sender(self, dest: str) -> None:
        """Write ``dest``'s queue as it fills, on its link, dialling one when there is none; after
        a failed dial or handshake, wait longer each time before the next."""
        delay = BACKOFF_MIN
        while True:
            q = self._queues[dest]
            if not q:
                await self._wake[dest].wait()
                self._wake[dest] = anyio.Event()
                continue
            if dest in self.blocked:  # partitioned away: nothing crosses, not even a handshake
                self.stats.datagrams_blocked += len(q)
                q.clear()
                self._queued[dest] = 0
                continue
            link = self._link_to(dest)
            if link is None:
                if dest not in self.directory:
                    await anyio.sleep(BACKOFF_MIN)
                    continue
                try:
                    link = await self._dial(dest)
                except (Refused, OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as e:
                    if isinstance(e, Refused):
                        self._refused(f"the connection to {dest}", str(e))
                    else:
                        log.info("%s: connection to %s failed (%r); redialling in %.2f s", self.node, dest, e, delay)
                    await anyio.sleep(delay)
                    delay = min(BACKOFF_MAX, delay * 2)
                    continue
                delay = BACKOFF_MIN
            await self._write(link, dest)

    async def _write(self, link: _Link, dest: str) -> None:
        """Send ``dest``'s queue on ``link``, a frame per message, until it is empty or the link
        fails (the unsent frames stay queued for the next connection)."""
        q, st = self._queues[dest], self.stats
        while q and not link.closed:
            frame = q.popleft()
            self._queued[dest] -= len(frame)
            if dest in self.blocked:
                st.datagrams_blocked += 1
                continue
            if self.loss and self._loss_rng.random() < self.loss:
                st.datagrams_lost += 1
                continue
            try:
                await link.ws.send(link.seal(frame))
            except (ConnectionClosed, OSError):
                q.appendleft(frame)
                self._queued[dest] += len(frame)
                self._drop(link)
                return
            st.frames_sent += 1
            st.datagrams_sent += 1
            st.bytes_sent += len(frame)
            st.frames_to[dest] = st.frames_to.get(dest, 0) + 1
            st.bytes_to[dest] = st.bytes_to.get(dest, 0) + len(frame)

    def _uri(self, address: tuple[str, int]) -> str:
        host, port = address
        return f"{self.scheme}://{f'[{host}]' if ':' in host else host}:{port}/"

    async def _dial(self, dest: str) -> _Link:
        """Connect to ``dest`` and authenticate both ways; reading starts in the task group."""
        home = self.directory[dest]
        extra: dict[str, Any] = {"ssl": self.ssl_context} if self.scheme == "wss" and self.ssl_context else {}
        # proxy=None: no HTTP proxy from the environment; members dial each other (or E2B's proxy) directly
        ws = await connect(self._uri(home), proxy=None, user_agent_header=None, **self._options(), **extra)
        self._sockets.add(ws)
        self.stats.connections_dialled += 1
        try:
            with anyio.fail_after(self.handshake_timeout):
                link = await self._dialler_handshake(ws, dest, home)
        except BaseException:
            ws.transport.abort()
            self._sockets.discard(ws)
            raise
        self._register(link)
        self._tg.start_soon(self._read, link)
        return link

    # ---- the handshake ----

    async def _dialler_handshake(self, ws: Connection, dest: str, home: tuple[str, int]) -> _Link:
        hs = Handshake(self.credentials, self._ca, self.revoked)
        await ws.send(hs.hello(dest))
        proof, session = hs.proof(await ws.recv())
        await ws.send(proof)
        return _Link(ws, dest, outbound=True, home=home, session=session)

    async def _listener_handshake(self, ws: Connection) -> _Link:
        hs = Handshake(self.credentials, self._ca, self.revoked)
        await ws.send(hs.challenge(await ws.recv()))
        session = hs.accept(await ws.recv())
        return _Link(ws, session.peer, outbound=False, home=self.directory.get(session.peer), session=session)

    # ---- receiving ----

    async def _serve(self, ws: ServerConnection) -> None:
        """An accepted connection (in a task of websockets' server, which closes the connection
        when this returns): authenticate the dialler, then read its frames."""
        if self._closing or self._killed:
            return
        st = self.stats
        if self._half_open >= MAX_HALF_OPEN or len(self._conns) >= MAX_CONNECTIONS:
            st.initials_refused += 1
            return
        self._sockets.add(ws)
        self._half_open += 1
        try:
            async with asyncio.timeout(self.handshake_timeout):
                link = await self._listener_handshake(ws)
        except Refused as e:
            self._refused(f"the connection from {ws.remote_address}", str(e))
            await self._close_ws(ws, CloseCode.POLICY_VIOLATION, "refused")
            return
        except TimeoutError:
            st.handshakes_timed_out += 1
            self._sockets.discard(ws)
            return
        except ConnectionClosed as e:
            if e.sent is not None and e.sent.code == CloseCode.MESSAGE_TOO_BIG:
                self._refused(f"the connection from {ws.remote_address}", "a handshake message over the size limit")
            self._sockets.discard(ws)
            return
        except OSError:
            self._sockets.discard(ws)
            return
        finally:
            self._half_open -= 1
        st.connections_accepted += 1
        self._register(link)
        await self._read(link)

    def _register(self, link: _Link) -> None:
        """An authenticated connection: frames to its peer go on it unless another is live (a
        connection carries both ways: the side dialled answers on it rather than dial back)."""
        self._conns.add(link)
        if link.outbound or self._link_to(link.peer) is None:
            self._links[link.peer] = link
        wake = self._wake.get(link.peer)
        if wake is not None:
            wake.set()

    async def _read(self, link: _Link) -> None:
        """Open and deliver each message ``link`` carries until it closes; a message that does
        not open or split into frames closes it. Nothing a peer does raises out of here."""
        st = self.stats
        try:
            while not link.closed:
                message = await link.ws.recv()
                if link.closed:
                    break
                st.datagrams_received += 1
                if link.peer in self.revoked:
                    self._refused(f"a frame from {link.peer}", "revoked")
                    self._shut(link, CloseCode.POLICY_VIOLATION, "revoked")
                    break
                if not isinstance(message, bytes):
                    self._malformed(link, "a text message")
                    break
                try:
                    data = link.open(message)
                except InvalidTag:
                    self._malformed(link, "a message that does not authenticate")
                    break
                if link.peer in self.blocked:
                    st.datagrams_blocked += 1
                    continue
                try:
                    frames = _frames(data, self.limits)
                except ProtocolError as e:
                    self._malformed(link, str(e))
                    break
                self._deliver(link.peer, frames)
        except ConnectionClosed as e:
            if e.sent is not None and e.sent.code == CloseCode.MESSAGE_TOO_BIG:  # over Limits.max_frame
                st.closed_malformed += 1
                log.warning("%s: closed the connection with %s: a message over the size limit", self.node, link.peer)
        except OSError as e:
            log.info("%s: connection with %s failed: %r", self.node, link.peer, e)
        except Exception as e:  # a bug here ends that connection, not the endpoint (nor a server task)
            log.error("%s: dropping the connection with %s after %r", self.node, link.peer, e, exc_info=True)
            self._shut(link, CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            self._drop(link)

    def _deliver(self, peer: str, frames: list[bytes]) -> None:
        deliver(self._inbox, self.stats, peer, frames)

    # ---- closing connections ----

    def _refused(self, what: str, reason: str) -> None:
        self.stats.refused += 1
        log.warning("%s: refused %s: %s", self.node, what, reason)

    def _malformed(self, link: _Link, reason: str) -> None:
        self.stats.closed_malformed += 1
        log.warning("%s: closing the connection with %s: %s", self.node, link.peer, reason)
        self._shut(link, CloseCode.INVALID_DATA, "malformed")

    def _drop(self, link: _Link) -> None:
        """``link`` is closed: forget it, and wake its peer's sender (it redials if frames wait)."""
        link.closed = True
        self._conns.discard(link)
        self._sockets.discard(link.ws)
        if self._links.get(link.peer) is link:
            del self._links[link.peer]
        wake = self._wake.get(link.peer)
        if wake is not None:
            wake.set()

    def _shut(self, link: _Link, code: int, reason: str) -> None:
        """Close ``link`` now: nothing more is read from it; its close runs in the task group."""
        self._drop(link)
        if self._tg is not None:
            self._tg.start_soon(self._close_ws, link.ws, code, reason)
        else:
            link.ws.transport.abort()

    async def _close_ws(self, ws: Connection, code: int, reason: str) -> None:
        try:
            await ws.close(code, reason)
        except Exception as e:  # already gone: nothing to close
            log.debug("%s: closing a connection: %r", self.node, e)
        finally:
            self._sockets.discard(ws)
