"""A simulated network on the virtual-time kernel: latency, loss, duplication, reordering,
partitions and bandwidth per link, with bytes and messages counted per link.

Each node gets a :class:`SimEndpoint` (the :class:`~swarm.transport.base.Endpoint` interface the
QUIC transport also implements). ``send`` never blocks: the network decides the frame's fate with
its own seeded generator and schedules the delivery on the kernel. Links are directed; a profile
set for ``(a, b)`` applies to frames from ``a`` to ``b``.
"""

from __future__ import annotations

import functools
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field

from ..kernel import EndOfChannel, VirtualChannel, VirtualKernel


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """How a link treats frames. Latency is ``latency`` plus a random part: ``U(0, jitter)``
    (``distribution="uniform"``) or a log-normal with median ``jitter`` and shape ``sigma``
    (``"lognormal"``, the long tail of real networks)."""

    latency: float = 0.005
    jitter: float = 0.005
    distribution: str = "uniform"
    sigma: float = 0.5
    loss: float = 0.0  # probability a frame is lost
    duplicate: float = 0.0  # probability a frame arrives twice
    reorder: float = 0.0  # probability a frame is held back by up to ``reorder_delay``
    reorder_delay: float = 0.05
    bandwidth: float | None = None  # bytes per second; frames queue behind each other

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1]")
        if self.latency < 0 or self.jitter < 0 or self.reorder_delay < 0:
            raise ValueError("latency, jitter and reorder_delay must be >= 0")
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise ValueError("bandwidth must be > 0 bytes/s")
        if self.distribution not in ("uniform", "lognormal") or self.sigma < 0:
            raise ValueError("distribution must be 'uniform' or 'lognormal', with sigma >= 0")

    def sample(self, rng: random.Random) -> float:
        """One frame's latency."""
        if not self.jitter:
            return self.latency
        if self.distribution == "lognormal":
            return self.latency + self.jitter * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        return self.latency + rng.uniform(0.0, self.jitter)


@dataclass(slots=True)
class LinkStats:
    messages: int = 0
    bytes: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    blocked: int = 0  # dropped by a partition or a down node


@dataclass(slots=True)
class _Link:
    profile: LinkProfile
    stats: LinkStats = field(default_factory=LinkStats)
    busy_until: float = 0.0  # bandwidth queue


class SimNetwork:
    """The network between simulated nodes."""

    def __init__(self, kernel: VirtualKernel, seed: int = 0, default: LinkProfile = LinkProfile()) -> None:
        self.kernel = kernel
        self.default = default
        self._rng = random.Random(f"net:{seed}")
        self._links: dict[tuple[str, str], _Link] = {}
        self._inboxes: dict[str, VirtualChannel[tuple[str, bytes]]] = {}
        self._down: set[str] = set()
        self._groups: dict[str, int] | None = None  # partition: node -> group number

    # -- membership of the network --
    def endpoint(self, node: str) -> SimEndpoint:
        """The node's attachment to the network (a fresh inbox if the node restarts)."""
        old = self._inboxes.get(node)
        if old is not None:
            old.close()
        self._inboxes[node] = self.kernel.channel()
        self._down.discard(node)
        return SimEndpoint(self, node, self._inboxes[node])

    def crash(self, node: str) -> None:
        """The node stops: frames to and from it are dropped until it gets a new endpoint."""
        self._down.add(node)
        inbox = self._inboxes.pop(node, None)
        if inbox is not None:
            inbox.close()

    # -- faults --
    def set_link(self, src: str, dst: str, profile: LinkProfile, *, both_ways: bool = True) -> None:
        self._link(src, dst).profile = profile
        if both_ways:
            self._link(dst, src).profile = profile

    def set_default(self, profile: LinkProfile) -> None:
        """Change every link that has no profile of its own (and the default for new ones)."""
        old = self.default
        self.default = profile
        for link in self._links.values():
            if link.profile is old:
                link.profile = profile

    def partition(self, *groups: set[str] | list[str] | tuple[str, ...]) -> None:
        """Only nodes in the same group can talk; nodes in no group form one more group."""
        self._groups = {n: i for i, g in enumerate(groups) for n in g}

    def heal(self) -> None:
        self._groups = None

    # -- traffic --
    def send(self, src: str, dst: str, data: bytes) -> None:
        link = self._link(src, dst)
        st = link.stats
        st.messages += 1
        st.bytes += len(data)
        if src in self._down or dst in self._down or not self._connected(src, dst):
            st.blocked += 1
            return
        p, rng = link.profile, self._rng
        if p.loss and rng.random() < p.loss:
            st.lost += 1
            return
        copies = 2 if p.duplicate and rng.random() < p.duplicate else 1
        st.duplicated += copies - 1
        now = self.kernel.now()
        start = now
        if p.bandwidth is not None:
            start = max(now, link.busy_until)
            link.busy_until = start + len(data) / p.bandwidth
            start = link.busy_until
        for _ in range(copies):
            delay = p.sample(rng)
            if p.reorder and rng.random() < p.reorder:
                delay += rng.uniform(0.0, p.reorder_delay)
            self.kernel.call_at(start + delay, functools.partial(self._deliver, src, dst, data, link))

    def _deliver(self, src: str, dst: str, data: bytes, link: _Link) -> None:
        inbox = self._inboxes.get(dst)
        if inbox is None or dst in self._down or not self._connected(src, dst):
            link.stats.blocked += 1
            return
        try:
            inbox.send_nowait((src, data))
            link.stats.delivered += 1
        except EndOfChannel:
            link.stats.blocked += 1

    def _connected(self, a: str, b: str) -> bool:
        g = self._groups
        return g is None or g.get(a, -1) == g.get(b, -1)

    def _link(self, src: str, dst: str) -> _Link:
        link = self._links.get((src, dst))
        if link is None:
            link = self._links[(src, dst)] = _Link(self.default)
        return link

    # -- figures --
    def link_stats(self) -> dict[tuple[str, str], LinkStats]:
        return {k: v.stats for k, v in self._links.items()}

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for link in self._links.values():
            for name in LinkStats.__slots__:
                out[name] += getattr(link.stats, name)
        return dict(out)


class SimEndpoint:
    """One node's view of the simulated network."""

    def __init__(self, net: SimNetwork, node: str, inbox: VirtualChannel[tuple[str, bytes]]) -> None:
        self.net = net
        self.node = node
        self._inbox = inbox

    def send_nowait(self, dest: str, data: bytes) -> None:
        self.net.send(self.node, dest, data)

    async def recv(self) -> tuple[str, bytes]:
        """The next ``(sender, frame)``; raises EndOfChannel when the node is crashed or closed."""
        return await self._inbox.recv()

    def close(self) -> None:
        self._inbox.close()

    async def __aenter__(self) -> SimEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
