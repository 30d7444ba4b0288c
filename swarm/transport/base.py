"""The transport interface the gossip bus runs on: the simulated network and QUIC both fit it."""

from __future__ import annotations

from typing import Any, Protocol

import anyio

from ..kernel import EndOfChannel


class Endpoint(Protocol):
    """One node's attachment to a network: frames out by node id, ``(sender, frame)`` in.

    ``send_nowait`` never blocks (a transport queues or drops, and counts); ``recv`` raises
    :class:`swarm.kernel.EndOfChannel` once the endpoint is closed.
    """

    node: str

    def send_nowait(self, dest: str, data: bytes) -> None: ...
    async def recv(self) -> tuple[str, bytes]: ...
    def close(self) -> None: ...
    async def __aenter__(self) -> Any: ...  # binds (a real socket) or attaches (the simulated network)
    async def __aexit__(self, *exc: Any) -> bool | None: ...


class Inbox:
    """The frames a real-socket endpoint received and ``recv`` has not taken yet: an unbounded
    anyio memory stream, opened inside the event loop (where anyio makes its streams) and closed
    with the endpoint, after which ``get`` raises :class:`~swarm.kernel.EndOfChannel` and ``put``
    raises anyio's ``ClosedResourceError``."""

    def __init__(self) -> None:
        self._send: Any = None
        self._receive: Any = None

    def open(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[tuple[str, bytes]](float("inf"))

    def put(self, peer: str, frame: bytes) -> None:
        self._send.send_nowait((peer, frame))

    async def get(self) -> tuple[str, bytes]:
        if self._receive is None:
            raise EndOfChannel("endpoint not open")
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise EndOfChannel("endpoint closed") from None

    def close(self) -> None:
        if self._send is not None:
            self._send.close()
