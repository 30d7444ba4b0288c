"""The gossip bus over TCP + TLS 1.3 (anyio streams): the baseline the QUIC transport is
benchmarked against (``benchmarks/bus_bench.py``), with the same swarm CA and mutual
authentication, one connection per peer pair direction, frames written back to back.

It has none of the QUIC endpoint's fault injection; it exists to compare like with like.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import tempfile
from pathlib import Path
from typing import Any, cast
from collections.abc import AsyncIterator

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSListener, TLSStream
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..gossip.codec import FrameSplitter, Limits, ProtocolError
from .base import Inbox
from .quic import NodeCredentials, QuicStats, node_of

log = logging.getLogger(__name__)


def _contexts(creds: NodeCredentials) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client contexts: TLS 1.3, this node's certificate, peers verified by the CA."""
    with tempfile.TemporaryDirectory() as d:  # ssl loads a certificate chain only from files
        cert, key = Path(d) / "node.pem", Path(d) / "node.key"
        cert.write_bytes(creds.certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(creds.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
        out = []
        for purpose in (ssl.Purpose.CLIENT_AUTH, ssl.Purpose.SERVER_AUTH):
            ctx = ssl.create_default_context(purpose, cadata=creds.ca_pem.decode())
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.load_cert_chain(cert, key)
            ctx.verify_mode = ssl.CERT_REQUIRED  # the server asks for, and checks, client certificates
            out.append(ctx)
    return out[0], out[1]


class TlsEndpoint:
    """One node's TCP+TLS endpoint, with the same interface as the QUIC endpoint."""

    def __init__(self, credentials: NodeCredentials, *, host: str = "127.0.0.1",
                 directory: dict[str, tuple[str, int]] | None = None, limits: Limits = Limits()) -> None:
        self.node = credentials.node
        self.credentials = credentials
        self.host = host
        self.directory = directory if directory is not None else {}
        self.limits = limits
        self.stats = QuicStats()
        self.address: tuple[str, int] | None = None
        self.revoked: set[str] = set()
        self._server_ctx, self._client_ctx = _contexts(credentials)
        self._queues: dict[str, list[bytes]] = {}
        self._wake: dict[str, anyio.Event] = {}
        self._tg: Any = None
        self._inbox = Inbox()  # opened in __aenter__, inside the event loop

    async def __aenter__(self) -> TlsEndpoint:
        self._cm = self._lifecycle()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._cm.__aexit__(*exc)

    @contextlib.asynccontextmanager
    async def _lifecycle(self) -> AsyncIterator[TlsEndpoint]:
        self._inbox.open()
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=0)
        # a TCP listener's address is a tuple, (host, port) or (host, port, flowinfo, scope_id) for
        # IPv6; anyio types it as a union with the str of a UNIX socket
        address = cast(tuple[str, int], listener.extra(anyio.abc.SocketAttribute.local_address)[:2])
        self.address = address
        self.directory[self.node] = address
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(TLSListener(listener, self._server_ctx, standard_compatible=False).serve, self._serve)
                try:
                    yield self
                finally:
                    tg.cancel_scope.cancel()
        finally:
            self._inbox.close()

    def send_nowait(self, dest: str, data: bytes) -> None:
        if dest not in self._queues:
            self._queues[dest], self._wake[dest] = [], anyio.Event()
            self._tg.start_soon(self._sender, dest)
        self._queues[dest].append(data)
        self._wake[dest].set()

    async def recv(self) -> tuple[str, bytes]:
        return await self._inbox.get()

    def reject(self, peer: str, reason: str) -> None:
        log.warning("%s: malformed frame from %s: %s", self.node, peer, reason)

    def revoke(self, peer: str) -> None:
        """The swarm CA revoked ``peer``: its connections are refused from now on (the baseline
        closes an open one at its next frame)."""
        self.revoked.add(peer)

    def close(self) -> None:
        self._inbox.close()

    async def _sender(self, dest: str) -> None:
        """Dial ``dest`` and write its queue as it fills; on a failed dial or a broken connection,
        dial again after a growing pause (frames in a failed write are lost: anti-entropy resends)."""
        delay = 0.05
        while True:
            while dest not in self.directory:
                await anyio.sleep(0.05)
            host, port = self.directory[dest]
            try:
                stream = await anyio.connect_tcp(host, port, ssl_context=self._client_ctx,
                                                 tls_hostname=f"{dest}.swarm", tls_standard_compatible=False)
                self.stats.connections_dialled += 1
                delay = 0.05
                async with stream:
                    while True:
                        await self._wake[dest].wait()
                        self._wake[dest] = anyio.Event()
                        batch, self._queues[dest] = self._queues[dest], []
                        if batch:
                            data = b"".join(batch)
                            await stream.send(data)
                            self.stats.frames_sent += len(batch)
                            self.stats.bytes_sent += len(data)
            except (OSError, ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream) as e:
                log.info("%s: connection to %s failed (%s); redialling in %.2f s", self.node, dest, e, delay)
                await anyio.sleep(delay)
                delay = min(5.0, delay * 2)

    async def _serve(self, stream: TLSStream) -> None:
        der = stream.extra(TLSAttribute.peer_certificate_binary, None)
        peer = node_of(x509.load_der_x509_certificate(der)) if der else None
        if peer is None or peer in self.revoked:  # the handshake already required a CA-signed certificate
            self.stats.refused += 1
            await stream.aclose()
            return
        self.stats.connections_accepted += 1
        splitter = FrameSplitter(self.limits)
        async with stream:
            try:
                async for chunk in stream:
                    if peer in self.revoked:
                        self.stats.refused += 1
                        break
                    for f in splitter.feed(chunk):
                        self.stats.frames_received += 1
                        self.stats.bytes_received += len(f)
                        self._inbox.put(peer, f)
            except ProtocolError as e:
                self.stats.closed_malformed += 1
                log.warning("%s: closing the connection with %s: %s", self.node, peer, e)
            except (anyio.BrokenResourceError, anyio.EndOfStream, anyio.ClosedResourceError):
                pass
