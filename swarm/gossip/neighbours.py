"""Bounded replication: which members' writes a node keeps, when a swarm is too big for every
node to keep every write.

With full replication every write is copied to every member, so what gossip costs a decision
grows with the swarm (measured: 2x a decision at 5 agents, 32x at 200). With a *degree* ``d``
(even) a node keeps only its own writes and those of its ``d`` neighbours on a hash ring of the
members, the ``d / 2`` nearest on each side, and gossips only with them: each write costs ``d``
copies whatever N. A swarm of at most ``d + 1`` members is fully replicated, as without a degree.

A node draws the ring over the members it knows. A swarm gives every agent the whole member list
at start; a node that joined through a seed and knows only part of the list yet keeps more writes
than it will need (harmless: it never keeps fewer). Every member computes the same ring from the
same member list (ids hashed with BLAKE2b, not Python's salted ``hash``), so neighbourhoods are
symmetric and every node can tell which writes a peer wants.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable

#: An origin is a node id, or ``node~boot`` for the writes of a restarted node.
BOOT_MARK = "~"


def origin_node(origin: str) -> str:
    """The node an origin (a writer of replicated writes) belongs to."""
    return origin.split(BOOT_MARK, 1)[0]


def _position(node: str) -> bytes:
    return hashlib.blake2b(node.encode(), digest_size=8).digest()


class Ring:
    """The members in ring order, and each one's ``degree`` neighbours."""

    def __init__(self, members: Iterable[str], degree: int) -> None:
        if degree < 0 or degree % 2:
            raise ValueError(f"a ring's degree is 0 or even (half of it on each side), not {degree}")
        self.degree = degree
        self.order = sorted(set(members), key=lambda m: (_position(m), m))
        self._index = {m: i for i, m in enumerate(self.order)}
        self._cache: dict[str, frozenset[str]] = {}

    @property
    def full(self) -> bool:
        """Whether every member is every other's neighbour (at most ``degree + 1`` members)."""
        return self.degree <= 0 or len(self.order) <= self.degree + 1

    def neighbours(self, node: str) -> frozenset[str]:
        """``node``'s neighbours (empty for a node not on the ring)."""
        out = self._cache.get(node)
        if out is None:
            out = self._cache[node] = frozenset(self.neighbour_list(node))
        return out

    def neighbour_list(self, node: str) -> list[str]:
        """``node``'s neighbours in ring order from it: a deterministic order (a set's is not)."""
        i, n = self._index.get(node), len(self.order)
        if i is None:
            return []
        if self.full:
            return self.order[i + 1:] + self.order[:i]
        half = self.degree // 2
        return [self.order[(i + k) % n] for k in (*range(1, half + 1), *range(-half, 0))]


@functools.lru_cache(maxsize=16)
def ring_of(members: frozenset[str], degree: int) -> Ring:
    """The ring of ``members`` (shared by every node that knows the same members)."""
    return Ring(members, degree)
