"""The transport interface the gossip bus runs on: the simulated network and QUIC both fit it."""

from __future__ import annotations

from typing import Any, Protocol


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
