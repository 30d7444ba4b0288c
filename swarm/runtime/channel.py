"""The control channel of an agent in a sandbox: the orchestrator's typed messages
(:mod:`swarm.runtime.messages`) over one authenticated WebSocket, because a sandbox accepts
inbound WebSocket only. The agent listens; the orchestrator dials.

Authentication is the gossip transport's handshake (:class:`swarm.transport.websocket.Handshake`)
under its own protocol context, so a gossip handshake proves nothing here and the reverse: both
sides show swarm-CA certificates and sign a transcript of both names, nonces, certificates and
X25519 keys, and every message is then sealed with AES-GCM. The agent also *pins* the
orchestrator: it accepts only the one certificate it was given at boot (another member's
certificate, valid for gossip, does not command it). The orchestrator checks that the agent's
certificate names the agent it dialled.

Blocking (websockets' threaded API), with the interface of ``multiprocessing.connection``
(``send_bytes``, ``recv_bytes``, ``close``; ``EOFError`` once the other side is gone), so the
process runtime's request loop and the agent's control thread use it unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect
from websockets.sync.connection import Connection
from websockets.sync.server import Server, ServerConnection, serve

from ..transport.quic import NodeCredentials
from ..transport.websocket import Handshake, Refused, Session

log = logging.getLogger(__name__)

CONTEXT = b"swarm-control/1 websocket\x00"
#: Largest control message (a Setup carries the agent's decisions; a store read its patterns).
MAX_MESSAGE = 256 * 1024 * 1024
HANDSHAKE_TIMEOUT = 30.0


class ChannelError(OSError):
    """The control channel could not be opened (unreachable, refused, or a failed handshake)."""


class SealedChannel:
    """One authenticated control connection: ``send_bytes``/``recv_bytes``/``close``."""

    def __init__(self, ws: Connection, session: Session, on_close: Callable[[], None] | None = None) -> None:
        self.ws = ws
        self.session = session
        self.peer = session.peer
        self.closed = threading.Event()
        self._on_close = on_close

    def send_bytes(self, data: bytes) -> None:
        try:
            self.ws.send(self.session.seal(data))
        except ConnectionClosed:
            self._ended()
            raise EOFError("the control channel is closed") from None

    def recv_bytes(self) -> bytes:
        try:
            message = self.ws.recv()
        except ConnectionClosed:
            self._ended()
            raise EOFError("the control channel is closed") from None
        if not isinstance(message, bytes):
            self.close()
            raise OSError("a text message on the control channel")
        try:
            return self.session.open(message)
        except InvalidTag:
            self.close()
            raise OSError("a control message that does not authenticate") from None

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self._ended()

    def _ended(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            if self._on_close is not None:
                self._on_close()


def dial(url: str, credentials: NodeCredentials, agent: str, timeout: float = HANDSHAKE_TIMEOUT) -> SealedChannel:
    """The orchestrator's side: connect to ``agent``'s control listener at ``url`` (``ws://`` or
    ``wss://``) and authenticate both ways; :class:`ChannelError` if that fails."""
    ca = x509.load_pem_x509_certificate(credentials.ca_pem)
    hs = Handshake(credentials, ca, context=CONTEXT)
    try:
        # entered by hand, as `with` would: the connection outlives this call (SealedChannel closes it)
        ws = connect(url, proxy=None, user_agent_header=None, max_size=MAX_MESSAGE, compression=None,
                     open_timeout=timeout, close_timeout=2.0).__enter__()
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as e:
        raise ChannelError(f"cannot reach {agent}'s control channel at {url}: {e}") from None
    try:
        ws.send(hs.hello(agent))
        proof, session = hs.proof(ws.recv(timeout))
        ws.send(proof)
    except (Refused, ConnectionClosed, TimeoutError, OSError) as e:
        ws.close()
        raise ChannelError(f"{agent}'s control channel at {url}: handshake failed: {e}") from None
    return SealedChannel(ws, session)


class Listener:
    """The agent's side: listen on ``host:port`` until the orchestrator (the holder of
    ``orchestrator_pem``, and no one else) has dialled and authenticated; :meth:`accept` returns
    that channel. Later connections are refused. :meth:`close` stops listening."""

    def __init__(self, credentials: NodeCredentials, orchestrator_pem: bytes, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.credentials = credentials
        self._ca = x509.load_pem_x509_certificate(credentials.ca_pem)
        pinned = x509.load_pem_x509_certificate(orchestrator_pem)
        self._pinned = hashlib.sha256(pinned.public_bytes(serialization.Encoding.DER)).digest()
        self._accepted: queue.Queue[SealedChannel] = queue.Queue(maxsize=1)
        self._taken = threading.Lock()
        self._taken_by: SealedChannel | None = None
        self.server: Server = serve(self._handle, host, port, max_size=MAX_MESSAGE, compression=None,
                                    server_header=None, open_timeout=HANDSHAKE_TIMEOUT, close_timeout=2.0)
        self.port: int = self.server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="control-listener", daemon=True)
        self._thread.start()

    def accept(self, timeout: float | None = None) -> SealedChannel:
        """The orchestrator's channel, once it has connected (``queue.Empty`` after ``timeout``)."""
        return self._accepted.get(timeout=timeout)

    def _handle(self, ws: ServerConnection) -> None:
        """One connection (in its own thread; websockets closes it when this returns): only the
        pinned orchestrator passes, only once; its channel stays open until either side closes it."""
        hs = Handshake(self.credentials, self._ca, context=CONTEXT)
        try:
            challenge = hs.challenge(ws.recv(HANDSHAKE_TIMEOUT))
            cert = hs.peer_certificate
            if cert is None or hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest() != self._pinned:
                raise Refused("it is not the orchestrator this agent was started by")
            ws.send(challenge)
            session = hs.accept(ws.recv(HANDSHAKE_TIMEOUT))
        except (Refused, ConnectionClosed, TimeoutError) as e:
            log.warning("%s: refused a control connection from %s: %s", self.credentials.node, ws.remote_address, e)
            return
        with self._taken:
            if self._taken_by is not None:
                log.warning("%s: refused a second control connection", self.credentials.node)
                return
            channel = self._taken_by = SealedChannel(ws, session)
        self._accepted.put(channel)
        channel.closed.wait()  # the connection lives as long as this handler

    def close(self) -> None:
        """Stop listening and close the channel (the orchestrator sees the end of it)."""
        if self._taken_by is not None:
            self._taken_by.close()
        self.server.shutdown()
        self._thread.join(5.0)
