"""The gossip bus: thin glue that runs a sans-IO :class:`GossipNode` on a kernel and an endpoint.

Two tasks per node, owned by one task group: a receiver that feeds frames to the node, and a
timer that ticks it when ``next_timer()`` is due. After each call the bus sends the node's
outgoing frames and hands its events to ``on_event``. A malformed frame is counted and logged;
it never stops the node, and neither does any other error raised while a frame is applied (counted
apart, as ``frames_failed``: a hole in the checks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterable

from ..gossip import Event, GossipNode, ProtocolError, Revoked
from ..kernel import EndOfChannel, Kernel
from .base import Endpoint

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BusStats:
    frames_in: int = 0
    frames_rejected: int = 0  # malformed: refused by the codec or the node's checks
    frames_failed: int = 0  # raised something else while applied (a bug or a hole in the checks)
    ticks: int = 0


class GossipBus:
    """Runs one node until cancelled (or until its endpoint closes)."""

    def __init__(self, kernel: Kernel, node: GossipNode, endpoint: Endpoint,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.kernel = kernel
        self.node = node
        self.endpoint = endpoint
        self.on_event = on_event
        self.stats = BusStats()
        self._refuse(sorted(node.identity.revoked.agents))  # revoked before a restart (the store keeps the list)

    def _refuse(self, agents: Iterable[str]) -> None:
        """Tell a connection-oriented endpoint to drop and refuse these revoked agents for good."""
        revoke = getattr(self.endpoint, "revoke", None)
        if revoke is not None:
            for agent in agents:
                revoke(agent)

    def flush(self) -> None:
        """Send what the node queued and deliver its events."""
        for dest, frame in self.node.outgoing():
            self.endpoint.send_nowait(dest, frame)
        events = self.node.events()
        for ev in events:
            if isinstance(ev, Revoked):
                self._refuse(ev.agents)
        if self.on_event is not None:
            for ev in events:
                self.on_event(ev)

    async def run(self) -> None:
        async with self.kernel.task_group() as tg:
            tg.start_soon(self._receive, tg)
            tg.start_soon(self._timers)

    async def _receive(self, tg: Any) -> None:
        k = self.kernel
        while True:
            try:
                sender, frame = await self.endpoint.recv()
            except EndOfChannel:
                tg.cancel()  # the endpoint is gone (crash or shutdown): stop the timers too
                return
            self.stats.frames_in += 1
            try:
                self.node.receive(frame, k.now(), sender=sender)
            except ProtocolError as e:
                self.stats.frames_rejected += 1
                log.warning("%s: dropped a malformed frame from %s: %s", self.node.id, sender, e)
                self._reject(sender, str(e))
            except Exception as e:  # no frame may stop the node: a peer sent it
                self.stats.frames_failed += 1
                log.error("%s: a frame from %s failed (%s: %s); closed that connection",
                          self.node.id, sender, type(e).__name__, e)
                self._reject(sender, f"frame failed: {type(e).__name__}")
            self.flush()

    def _reject(self, sender: str, reason: str) -> None:
        reject = getattr(self.endpoint, "reject", None)
        if reject is not None:  # a connection-oriented transport closes that one connection
            reject(sender, reason)

    async def _timers(self) -> None:
        k = self.kernel
        while True:
            due = self.node.next_timer()
            if due is None:
                return
            wait = due - k.now()
            if wait > 0:
                await k.sleep(wait)
            self.node.tick(k.now())
            self.stats.ticks += 1
            self.flush()
