"""SWIM membership state: who is alive, suspect, dead or left, and the rumours to spread.

Precedence of a rumour about a node currently at ``(status, i)`` (Das, Gupta & Motivala, SWIM,
2002, with the Lifeguard/memberlist rule that a higher incarnation brings a dead node back):

* ``alive j`` wins if ``j > i``;
* ``suspect j`` wins over alive if ``j >= i``, over suspect, dead or left if ``j > i``;
* ``dead j`` / ``left j`` win over alive or suspect if ``j >= i``, over dead or left if ``j > i``.

A rumour that this node is suspect or dead is refuted: it raises its own incarnation above the
rumour's and spreads ``alive``. Each rumour is piggybacked on about ``retransmit * log2(N + 1)``
outgoing messages, then dropped.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from .codec import Update

ALIVE, SUSPECT, DEAD, LEFT = "alive", "suspect", "dead", "left"


@dataclass(slots=True)
class Member:
    node: str
    status: str
    incarnation: int
    since: float  # when the status last changed (this node's clock)


@dataclass(frozen=True, slots=True)
class MemberChanged:
    """Event: ``node`` went from ``before`` (None if unknown) to ``status``."""

    node: str
    before: str | None
    status: str
    incarnation: int


def _wins(new: Update, cur: Member) -> bool:
    j, i = new.incarnation, cur.incarnation
    if new.status == ALIVE:
        return j > i
    if new.status == SUSPECT:
        return j >= i if cur.status == ALIVE else j > i
    # dead or left
    return j >= i if cur.status in (ALIVE, SUSPECT) else (j > i)


class Membership:
    """The member table of one node (itself excluded) and its queue of rumours to spread."""

    def __init__(self, me: str, incarnation: int = 0, retransmit: int = 3) -> None:
        self.me = me
        self.incarnation = incarnation
        self.members: dict[str, Member] = {}
        self.retransmit = retransmit
        self._rumours: dict[str, tuple[Update, int]] = {}  # node -> (rumour, sends left)
        self._suspects: dict[str, Member] = {}  # the members now suspect (timers run over these only)

    def status(self, node: str) -> str | None:
        m = self.members.get(node)
        return m.status if m else None

    def suspects(self) -> list[Member]:
        """The members now suspect, in join order (as a scan of the table would find them)."""
        if len(self._suspects) < 2:
            return list(self._suspects.values())
        order = {node: i for i, node in enumerate(self.members)}
        return sorted(self._suspects.values(), key=lambda m: order[m.node])

    def live(self) -> list[str]:
        """Members believed alive or suspect (still worth talking to), in join order."""
        return [n for n, m in self.members.items() if m.status in (ALIVE, SUSPECT)]

    def apply(self, update: Update, now: float) -> MemberChanged | None:
        """Apply a rumour; return the change it made (None if it lost or changed nothing)."""
        if update.node == self.me:
            if update.status in (SUSPECT, DEAD) and update.incarnation >= self.incarnation:
                self.incarnation = update.incarnation + 1
                self.spread(Update(self.me, ALIVE, self.incarnation))
            return None
        cur = self.members.get(update.node)
        if cur is not None and not _wins(update, cur):
            return None
        before = cur.status if cur else None
        if cur is None:
            cur = self.members[update.node] = Member(update.node, update.status, update.incarnation, now)
        else:
            if cur.status != update.status:
                cur.since = now
            cur.status, cur.incarnation = update.status, update.incarnation
        if cur.status == SUSPECT:
            self._suspects.setdefault(cur.node, cur)
        else:
            self._suspects.pop(cur.node, None)
        self.spread(update)
        if before == update.status:
            return None
        return MemberChanged(update.node, before, update.status, update.incarnation)

    def add(self, node: str, now: float) -> None:
        """Know ``node`` as alive at incarnation 0 without spreading a rumour (a static member list)."""
        self.members.setdefault(node, Member(node, ALIVE, 0, now))

    def spread(self, update: Update) -> None:
        """Queue a rumour for piggybacking (replacing an older one about the same node)."""
        n = len(self.members) + 1
        self._rumours[update.node] = (update, max(1, math.ceil(self.retransmit * math.log2(n + 1))))

    def piggyback(self, limit: int) -> tuple[Update, ...]:
        """Up to ``limit`` rumours for one outgoing message, least-sent first."""
        if not self._rumours or limit <= 0:
            return ()
        chosen = heapq.nlargest(limit, self._rumours.items(), key=lambda kv: kv[1][1])
        out = []
        for node, (update, left) in chosen:
            out.append(update)
            if left <= 1:
                del self._rumours[node]
            else:
                self._rumours[node] = (update, left - 1)
        return tuple(out)

    def snapshot(self) -> tuple[Update, ...]:
        """Every member's state and this node's own, for a joiner."""
        own = Update(self.me, ALIVE, self.incarnation)
        return (own, *(Update(m.node, m.status, m.incarnation) for m in self.members.values()))
