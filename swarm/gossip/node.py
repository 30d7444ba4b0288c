"""The gossip node: push-pull pattern anti-entropy plus SWIM membership, as one sans-IO object.

It never touches a socket or a clock. The driver (the simulated network, or QUIC) calls:

* ``receive(frame, now)`` for every frame that arrives (raises :class:`ProtocolError` on a
  malformed one and changes nothing),
* ``tick(now)`` when ``next_timer()`` is due,
* ``publish(patterns, now)`` for the agent's own writes,

and after each call sends what ``outgoing()`` returns and handles what ``events()`` returns
(:class:`PatternsReceived`, :class:`MemberChanged`).

Dissemination: every ``gossip_interval`` the node sends its digest (one high-water mark per
origin) to ``fanout`` random peers, piggybacking its most recent writes (push). A peer answers
with the writes the digest shows missing and, if it lacks some itself, its own digest; the first
node then sends those (pull). Membership: every ``probe_interval`` the node pings one member
(round-robin over a shuffled list); without an ack in ``ack_timeout`` it asks
``indirect_probes`` others to ping on its behalf; without any ack by the end of the period the
member becomes suspect, and dead after ``suspect_timeout`` unless it refutes. Rumours ride on
every message. A topology, if given, limits whom the node may contact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from ..memory.models import Contribution, Pattern
from ..memory.store import DeletedKey, PatternStore
from .codec import (
    ACK,
    DELTA,
    DIGEST,
    JOIN,
    LEAVE,
    PING,
    PING_REQ,
    REVOKE,
    Entry,
    Limits,
    Message,
    ProtocolError,
    Revision,
    Update,
    decode,
    encode,
    validate_entries,
)
from .identity import Identity, IdentityError
from .membership import ALIVE, DEAD, LEFT, SUSPECT, MemberChanged, Membership
from .neighbours import BOOT_MARK, Ring, origin_node, ring_of
from .replication import StoreReplica

#: ``contacts(me, candidates)`` -> the candidates this node may talk to.
Contacts = Callable[[str, Sequence[str]], Sequence[str]]
#: ``share(peer, origin)`` -> whether this node may pass ``origin``'s writes to ``peer`` (None: all).
#: By origin, not by pattern: a digest is a high-water mark per origin, so a peer that was never
#: sent some of an origin's writes would hold its later ones only above a hole, and be sent them
#: again on every ask (an origin's writes go to a peer entirely or not at all).
Share = Callable[[str, str], bool]


@dataclass(frozen=True, slots=True)
class GossipConfig:
    dim: int  # embedding dimension of the patterns carried
    fanout: int = 3
    gossip_interval: float = 1.0
    probe_interval: float = 1.0
    ack_timeout: float = 0.4
    indirect_probes: int = 3
    suspect_timeout: float = 4.0
    max_batch: int = 512  # writes per delta message
    piggyback_entries: int = 8  # recent writes pushed with every digest
    piggyback_updates: int = 8  # membership rumours per message
    retransmit: int = 3  # rumours ride on about retransmit * log2(N + 1) messages
    resend_after: float = 2.0  # gossip intervals before a write sent to a peer may be sent to it again
    # pull requests in flight at once (0: no limit). When answers take longer than a gossip
    # interval (real sockets under load), every peer asked sends the same writes; a limit stops that
    max_pulls: int = 0
    # back off when answers are slow: an unanswered ask, or writes sent to a peer again before its
    # digest showed them, doubles that wait (up to 64 times); an answer brings it back down
    backoff: bool = False
    # send a version whose body the peer holds as its statistics only (a Revision, ~1/10 the bytes)
    revisions: bool = True
    space: str = ""  # embedding-space fingerprint; a joiner from another space is refused
    # every this many seconds, ping one member believed dead (never one that left), telling it so:
    # after a partition both sides think the other dead and would never talk again (0: never)
    reconnect_interval: float = 5.0
    # how long a deletion's tombstone refuses the deleted pattern's writes (virtual seconds in a
    # simulation). It must outlast the longest time a member can be out of contact and come back
    # (partitions, restarts): a replica cut off for longer can bring a deleted pattern back with an
    # old write. 600 s outlasts every fault the suite injects (the longest: a mesh peer down and
    # the rest partitioned for 5 episodes = 50 s) and a whole default run (30 episodes = 300 s);
    # a live tombstone costs one small row (see swarm.gossip.replication)
    tombstone_ttl: float = 600.0
    # keep only the writes of this many neighbours on a hash ring of the members, and gossip only
    # with them (0: every member's): what a write costs the swarm stops growing with N. A swarm of
    # at most degree + 1 members is fully replicated either way (see swarm.gossip.neighbours)
    degree: int = 0
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.dim < 1 or self.fanout < 1 or self.max_batch < 1:
            raise ValueError("dim, fanout and max_batch must be >= 1")
        if not 0 < self.ack_timeout < self.probe_interval:
            raise ValueError("ack_timeout must be positive and shorter than probe_interval")
        if self.gossip_interval <= 0 or self.suspect_timeout <= 0:
            raise ValueError("gossip_interval and suspect_timeout must be > 0")
        if self.degree < 0 or self.degree % 2:
            raise ValueError("degree must be 0 (every member's writes) or even (half of it on each side)")


@dataclass(frozen=True, slots=True)
class PatternsReceived:
    """Event: these patterns' current copies (in the node's store) changed because of
    ``sender``'s message."""

    sender: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Revoked:
    """Event: the swarm CA revoked ``agents`` (a revocation list reached this node): their writes
    are refused from now on, their connections should be dropped, and the ``quarantined``
    patterns they authored were deleted here."""

    agents: tuple[str, ...]
    quarantined: tuple[str, ...]


Event = PatternsReceived | MemberChanged | Revoked


@dataclass(slots=True)
class _Probe:
    target: str
    started: float
    relay_for: tuple[str, int] | None = None  # pinging on behalf of (requester, their probe number)
    indirect_sent: bool = False


@dataclass(slots=True)
class NodeStats:
    sent: dict[str, int] = field(default_factory=dict)  # messages by kind
    received: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    rejected: int = 0  # malformed frames
    entries_received: int = 0  # pattern writes that came in
    entries_duplicate: int = 0  # ...of which this node already held (the price of anti-entropy)
    pulls_expired: int = 0  # asks for writes that went unanswered in time (each one doubles the wait)
    revisions_sent: int = 0  # writes sent as statistics over a body the peer holds
    revisions_unresolved: int = 0  # ...received without that body here (dropped; asked for again)
    tombstones_applied: int = 0  # patterns deleted here because a peer's tombstone said so
    entries_unwanted: int = 0  # writes of origins outside this node's neighbourhood (dropped unread)
    entries_unverified: int = 0  # writes whose signer's key is not known here yet (left: asked for again)
    entries_refused: int = 0  # signed writes that may not do what they try (held, nothing applied)
    entries_revoked: int = 0  # writes of revoked origins (refused)


class GossipNode:
    """One swarm member's gossip state machine."""

    def __init__(self, node_id: str, config: GossipConfig, *, identity: Identity, seed: int = 0, now: float = 0.0,
                 contacts: Contacts | None = None, share: Share | None = None, boot: int = 0,
                 store: PatternStore | None = None) -> None:
        """``identity`` signs this node's writes and checks its peers'; ``store`` is the replica
        this node serves (default: a store in memory)."""
        if identity.agent != node_id:
            raise ValueError(f"node {node_id!r} cannot sign as {identity.agent!r}")
        self.id = node_id
        self.config = config
        self.identity = identity
        self.origin = node_id if boot == 0 else f"{node_id}{BOOT_MARK}{boot}"  # each boot numbers its own writes
        self.log = StoreReplica(store if store is not None else PatternStore(":memory:", dim=config.dim), self.origin,
                                identity)
        kept = self.log.store.revocation_list()  # what this agent had revoked before a restart
        if kept:
            try:
                identity.revoked.take(kept)
            except IdentityError:  # not this swarm's CA's (another swarm's store): learnt again by gossip
                pass
        self.membership = Membership(node_id, retransmit=config.retransmit)
        self.contacts = contacts
        self.share = share
        self.left = False
        self.stats = NodeStats()
        self._rng = random.Random(f"{seed}:{node_id}:{boot}")
        self._out: list[tuple[str, bytes]] = []
        self._events: list[Event] = []
        self._probes: dict[int, _Probe] = {}
        self._probe_no = 0
        self._probe_order: list[str] = []
        self._pushed = 0  # log arrival number up to which writes were pushed
        self._sent: dict[str, dict[tuple[str, int], float]] = {}  # peer -> write -> when sent (in flight)
        self._pulls: dict[str, float] = {}  # peer asked for writes -> when (while max_pulls limits them)
        # how long an ask, or writes sent to a peer, count as in flight (before any backoff)
        self._base_wait = config.resend_after * config.gossip_interval
        self._pull_wait = self._base_wait  # how long an ask stays in flight now
        self._resend_wait: dict[str, float] = {}  # peer -> how long writes sent to it count as in flight
        self._known: dict[str, dict[str, int]] = {}  # peer -> the last digest it sent
        self._now = now
        # start the periodic timers at a random phase so nodes do not move in lockstep
        self._next_gossip = now + self._rng.uniform(0, config.gossip_interval)
        self._next_probe = now + self._rng.uniform(0, config.probe_interval)
        self._next_reconnect = now + config.reconnect_interval
        self._ring: Ring | None = None
        self._ring_size = -1  # members known when the ring was drawn

    # ---- the driver's calls ------------------------------------------------------------------

    def join(self, seeds: Iterable[str], now: float) -> None:
        """Announce this node to ``seeds``; they answer with the member list and their digest."""
        for s in seeds:
            if s != self.id:
                self._learn(Update(s, ALIVE, 0), now)
                self._send(s, Message(JOIN, self.id, incarnation=self.membership.incarnation,
                                      space=self.config.space))

    def bootstrap(self, members: Iterable[str], now: float) -> None:
        """Know ``members`` as alive from configuration (a static member list), without messages."""
        for m in members:
            if m != self.id and m not in self.membership.members:
                self.membership.add(m, now)  # configuration, not news: nothing to spread

    def leave(self, now: float) -> None:
        """Leave gracefully: tell some peers (the rumour spreads), then go quiet."""
        me = Update(self.id, LEFT, self.membership.incarnation)
        self.membership.spread(me)
        for peer in self._pick(self._contactable(), self.config.fanout):
            self._send(peer, Message(LEAVE, self.id))
        self.left = True

    def publish(self, patterns: Iterable[Pattern], now: float, deleted: Iterable[DeletedKey] = (),
                contributions: Iterable[Contribution] = ()) -> int:
        """Local writes, deletions and this agent's contributions (already made in the store) to
        replicate; returns how many writes this node's replica took as its own."""
        return len(self.log.write_many(patterns, deleted, now, contributions))

    def receive(self, data: bytes, now: float, sender: str | None = None) -> None:
        """Handle one frame. Malformed input raises :class:`ProtocolError` and changes nothing."""
        try:
            msg = decode(data, self.config.dim, self.config.limits, lazy=True)
            if sender is not None and msg.sender != sender:
                raise ProtocolError(f"frame claims to be from {msg.sender!r} but came from {sender!r}")
            if msg.sender == self.id:
                raise ProtocolError("frame claims to come from this node")
            if msg.sender in self.identity.revoked:
                raise ProtocolError(f"{msg.sender} is revoked")
            if msg.kind == JOIN and self.config.space and msg.space and msg.space != self.config.space:
                raise ProtocolError(f"{msg.sender} embeds in space {msg.space!r}, this swarm in {self.config.space!r}")
            arrived, unwanted = len(msg.raw), 0
            if msg.raw:  # validate only the writes this node lacks, all of them before anything changes
                fresh = [r for r in msg.raw if not self.log.holds(r.origin, r.seq)]
                if not self._replicates_all():
                    wanted = [r for r in fresh if self.wants(r.origin)]
                    fresh, unwanted = wanted, len(fresh) - len(wanted)
                msg = replace(msg, raw=(), entries=validate_entries(fresh, self.config.dim, msg.kind_name,
                                                                     self.config.limits))
        except ProtocolError:
            self.stats.rejected += 1
            raise
        if self.left:
            return
        self.stats.received[msg.kind_name] = self.stats.received.get(msg.kind_name, 0) + 1
        self.stats.bytes_received += len(data)
        self.stats.entries_received += arrived
        self.stats.entries_unwanted += unwanted
        self.stats.entries_duplicate += arrived - unwanted - len(msg.entries)
        if msg.kind == JOIN:
            self._learn(Update(msg.sender, ALIVE, msg.incarnation), now)
        elif msg.sender not in self.membership.members:
            self._learn(Update(msg.sender, ALIVE, 0), now)  # a message is proof of life of a stranger
        for u in msg.updates:
            self._learn(u, now)
        handler = self._handlers[msg.kind]
        handler(self, msg, now)

    def revoke(self, revocation_list: bytes, now: float) -> tuple[str, ...]:
        """Take the swarm CA's revocation list (DER): refuse the agents it names from now on,
        quarantine the patterns they authored, and pass the list on (to ``fanout`` peers now; to
        any peer whose digest shows an older list, later). Returns the agents newly revoked.
        Raises :class:`ProtocolError` if the CA did not sign it."""
        try:
            fresh = self.identity.revoked.take(revocation_list)
        except IdentityError as e:
            raise ProtocolError(f"revoke: {e}") from None
        if fresh is None:
            return ()
        agents = tuple(sorted(fresh))
        self.log.store.keep_revocation_list(revocation_list)
        quarantined = self.log.quarantine(agents)
        self._events.append(Revoked(agents, tuple(quarantined)))
        for peer in self._pick(self._contactable(), self.config.fanout):
            self._send(peer, Message(REVOKE, self.id, revocation_list=revocation_list))
        return agents

    def tick(self, now: float) -> None:
        """Run the timers that are due."""
        if self.left:
            return
        c = self.config
        self._now = now
        if now >= self._next_gossip:
            self.log.expire(now, c.tombstone_ttl)
            self._gossip_round()
            while self._next_gossip <= now:
                self._next_gossip += c.gossip_interval
        if now >= self._next_probe:
            self._start_probe(now)
            while self._next_probe <= now:
                self._next_probe += c.probe_interval
        if c.reconnect_interval > 0 and now >= self._next_reconnect:
            self._reconnect()
            while self._next_reconnect <= now:
                self._next_reconnect += c.reconnect_interval
        for no, p in list(self._probes.items()):
            if p.relay_for is None and not p.indirect_sent and now >= p.started + c.ack_timeout:
                p.indirect_sent = True
                helpers = [m for m in self._contactable() if m != p.target]
                for h in self._pick(helpers, c.indirect_probes):
                    self._send(h, Message(PING_REQ, self.id, probe=no, target=p.target))
            if now >= p.started + c.probe_interval:
                del self._probes[no]
                m = self.membership.members.get(p.target)
                if p.relay_for is None and m is not None and m.status == ALIVE:
                    self._learn(Update(p.target, SUSPECT, m.incarnation), now)
        for m in self.membership.suspects():
            if now >= m.since + c.suspect_timeout:
                self._learn(Update(m.node, DEAD, m.incarnation), now)

    def next_timer(self) -> float | None:
        """When ``tick`` must next run (None once the node has left)."""
        if self.left:
            return None
        c = self.config
        times = [self._next_gossip, self._next_probe]
        if c.reconnect_interval > 0:
            times.append(self._next_reconnect)
        for p in self._probes.values():
            if p.relay_for is None and not p.indirect_sent:
                times.append(p.started + c.ack_timeout)
            times.append(p.started + c.probe_interval)
        times += [m.since + c.suspect_timeout for m in self.membership.suspects()]
        return min(times)

    def outgoing(self) -> list[tuple[str, bytes]]:
        """Frames to send, as ``(destination node, frame)``; drains the queue."""
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    # ---- views ---------------------------------------------------------------------------------

    @property
    def patterns(self) -> dict[str, Pattern]:
        return self.log.patterns

    def digest(self) -> dict[str, int]:
        return self.log.digest()

    def live_members(self) -> list[str]:
        return self.membership.live()

    def wants(self, origin: str) -> bool:
        """Whether this node keeps ``origin``'s writes (its own, or a neighbour's; see ``degree``)."""
        return self.peer_wants(self.id, origin)

    def peer_wants(self, peer: str, origin: str) -> bool:
        """Whether ``peer`` keeps ``origin``'s writes, on this node's view of the members."""
        ring = self._members_ring()
        if ring is None or ring.full:
            return True
        node = origin_node(origin)
        return node == peer or node in ring.neighbours(peer)

    def _members_ring(self) -> Ring | None:
        """The hash ring of the members this node knows (None: ``degree`` 0, no ring)."""
        if not self.config.degree:
            return None
        if self._ring_size != len(self.membership.members):
            self._ring = ring_of(frozenset([*self.membership.members, self.id]), self.config.degree)
            self._ring_size = len(self.membership.members)
        return self._ring

    def _replicates_all(self) -> bool:
        ring = self._members_ring()
        return ring is None or ring.full

    def _wanted(self, digest: dict[str, int]) -> dict[str, int]:
        """The part of a peer's digest about origins this node keeps."""
        return digest if self._replicates_all() else {o: s for o, s in digest.items() if self.wants(o)}

    # ---- internals -------------------------------------------------------------------------------

    def _learn(self, update: Update, now: float) -> None:
        change = self.membership.apply(update, now)
        if change is not None:
            self._events.append(change)

    def _contactable(self) -> list[str]:
        ring = self._members_ring()
        if ring is not None and not ring.full:  # the neighbours alive, in ring order (not a scan of all)
            members = self.membership.members
            live = [m for m in ring.neighbour_list(self.id) if members[m].status in (ALIVE, SUSPECT)]
        else:
            live = self.membership.live()
        if self.identity.revoked.agents:
            live = [m for m in live if m not in self.identity.revoked]
        return list(self.contacts(self.id, live)) if self.contacts is not None else live

    def _pick(self, candidates: Sequence[str], k: int) -> list[str]:
        return list(candidates) if len(candidates) <= k else self._rng.sample(list(candidates), k)

    def _send(self, dest: str, msg: Message) -> None:
        if msg.kind in (DIGEST, DELTA) and self.identity.revoked.number >= 0:
            msg = replace(msg, revocations=self.identity.revoked.number)
        if not msg.updates:
            updates = self.membership.piggyback(self.config.piggyback_updates)
            if updates:
                msg = replace(msg, updates=updates)
        frame = encode(msg)
        self._out.append((dest, frame))
        self.stats.sent[msg.kind_name] = self.stats.sent.get(msg.kind_name, 0) + 1
        self.stats.bytes_sent += len(frame)

    def _gossip_round(self) -> None:
        # push what is new since the last round (pull repairs whatever the push misses)
        entries = tuple(self.log.recent(self.config.piggyback_entries, since=self._pushed))
        self._pushed = self.log.arrivals
        for peer in self._pick(self._contactable(), self.config.fanout):
            pushed = tuple(e for e in entries if self._passes(peer, e.origin))
            known = self._known.get(peer)
            ask = self._may_pull(peer)  # reply=True asks the peer for what this node lacks
            if ask and self.config.max_pulls and known is not None and self.log.lacks(self._wanted(known)):
                self._pulls[peer] = self._now
            self._send(peer, Message(DIGEST, self.id, digest=self.log.digest(), entries=pushed, reply=ask))

    def _start_probe(self, now: float) -> None:
        candidates = self._contactable()
        allowed = set(candidates)
        self._probe_order = [m for m in self._probe_order if m in allowed]
        if not self._probe_order:
            self._probe_order = list(candidates)
            self._rng.shuffle(self._probe_order)
        if not self._probe_order:
            return
        target = self._probe_order.pop()
        self._probe_no += 1
        self._probes[self._probe_no] = _Probe(target, now)
        self._send(target, Message(PING, self.id, probe=self._probe_no))

    def _allow(self, peer: str) -> Callable[[str, int], bool]:
        """Which writes ``(origin, seq)`` may go to ``peer`` now: not those sent to it less than
        ``resend_after`` gossip intervals ago (still in flight: sending them again only duplicates
        them; after that they count as lost and go again)."""
        c = self.config
        sent = self._sent.setdefault(peer, {})
        base = self._base_wait
        wait = self._resend_wait.get(peer, base)
        fresh_after = self._now - wait

        def allow(origin: str, seq: int) -> bool:
            at = sent.get((origin, seq))
            if at is not None and at > fresh_after:
                return False
            if at is not None and c.backoff:  # sent before and still not in its digest: slower next time
                self._resend_wait[peer] = min(2 * wait, 64 * base)
            sent[(origin, seq)] = self._now
            return True

        return allow

    def _may_pull(self, peer: str) -> bool:
        """Whether asking ``peer`` for writes now stays within ``max_pulls``. An unanswered ask
        expires after ``resend_after`` gossip intervals; with ``backoff`` that wait doubles with
        each expiry and falls back with each answer, as TCP's retransmission timer does: when
        answers are slow because the network is loaded, asking more peers only adds duplicate
        answers to the load."""
        c = self.config
        if not c.max_pulls:
            return True
        expired = [p for p, at in self._pulls.items() if at <= self._now - self._pull_wait]
        for p in expired:
            del self._pulls[p]
        if expired:
            self.stats.pulls_expired += len(expired)
            if c.backoff:
                self._pull_wait = min(2 * self._pull_wait, 64 * self._base_wait)
        return peer not in self._pulls and len(self._pulls) < c.max_pulls

    def _answered(self, peer: str, now: float) -> None:
        """``peer`` sent writes: an ask to it is answered; the wait follows how long that took."""
        asked = self._pulls.pop(peer, None)
        if asked is not None and self.config.backoff:
            self._pull_wait = min(max(self._base_wait, 2 * (now - asked)), self._pull_wait)

    def _forget_acknowledged(self, peer: str, digest: dict[str, int] | None) -> None:
        """Drop in-flight records the peer's digest shows it now holds."""
        sent = self._sent.get(peer)
        if sent and digest is not None:
            acked = [k for k in sent if k[1] <= digest.get(k[0], 0)]
            if acked and self.config.backoff and peer in self._resend_wait:
                took = self._now - min(sent[k] for k in acked)  # the peer confirmed: wait about twice that
                self._resend_wait[peer] = min(self._resend_wait[peer], max(self._base_wait, 2 * took))
            for key in acked:
                del sent[key]

    def _missing(self, peer: str, digest: dict[str, int]) -> list[Entry]:
        """What to send ``peer``, whose digest is ``digest``: one batch of the writes it lacks."""
        sent = self._sent.get(peer, {})
        every = self.share is None and self._replicates_all()
        out = self.log.missing_for(digest, self.config.max_batch, self._allow(peer), self.config.revisions,
                                   whole=lambda origin, seq: (origin, seq) in sent,  # a resend goes whole
                                   origins=None if every else lambda origin: self._passes(peer, origin))
        self.stats.revisions_sent += sum(isinstance(e.pattern, Revision) for e in out)
        return out

    def _passes(self, peer: str, origin: str) -> bool:
        """Whether ``origin``'s writes go to ``peer``: the topology shares them and the peer keeps them."""
        return (self.share is None or self.share(peer, origin)) and self.peer_wants(peer, origin)

    def _accept(self, sender: str, entries: Sequence[Entry]) -> None:
        log = self.log
        held, unresolved, deleted = log.writes, log.unresolved, log.deleted
        unverified, refused, revoked = log.unverified, log.refused, log.revoked
        changed = log.apply(entries, self._now)
        self.stats.tombstones_applied += log.deleted - deleted
        self.stats.revisions_unresolved += log.unresolved - unresolved
        self.stats.entries_unverified += log.unverified - unverified
        self.stats.entries_refused += log.refused - refused
        self.stats.entries_revoked += log.revoked - revoked
        # held already (dropped unvalidated on arrival, or repeated within the frame)
        self.stats.entries_duplicate += (len(entries) - (log.writes - held) - (log.unresolved - unresolved)
                                         - (log.unverified - unverified) - (log.revoked - revoked))
        if changed:
            self._events.append(PatternsReceived(sender, tuple(changed)))

    # handlers, one per message kind

    def _reconnect(self) -> None:
        """Ping one member believed dead with that rumour and this node's own state: if it is
        alive (a healed partition), it refutes and answers, and both sides take each other back."""
        ring = self._members_ring()
        members = self.membership.members
        near = members if ring is None or ring.full else ring.neighbour_list(self.id)  # not a scan of all
        dead = [n for n in near if members[n].status == DEAD]
        if self.contacts is not None:
            dead = list(self.contacts(self.id, dead))
        if not dead:
            return
        target = dead[self._rng.randrange(len(dead))]
        m = self.membership.members[target]
        told = (Update(target, DEAD, m.incarnation), Update(self.id, ALIVE, self.membership.incarnation))
        self._send(target, Message(PING, self.id, told, probe=0))

    def _on_ping(self, msg: Message, now: float) -> None:
        m = self.membership.members.get(msg.sender)
        if m is not None and m.status == DEAD:  # tell it, so it refutes and this node takes it back
            told = (Update(msg.sender, DEAD, m.incarnation), Update(self.id, ALIVE, self.membership.incarnation))
            self._send(msg.sender, Message(ACK, self.id, told, probe=msg.probe))
            return
        self._send(msg.sender, Message(ACK, self.id, probe=msg.probe))

    def _on_ack(self, msg: Message, now: float) -> None:
        p = self._probes.pop(msg.probe, None)
        if p is not None and p.relay_for is not None:
            requester, their_no = p.relay_for
            self._send(requester, Message(ACK, self.id, probe=their_no))

    def _on_ping_req(self, msg: Message, now: float) -> None:
        if self.contacts is not None and msg.target not in self.contacts(self.id, [msg.target]):
            return  # the topology forbids talking to the target (a star's spokes never talk directly)
        self._probe_no += 1
        self._probes[self._probe_no] = _Probe(msg.target, now, relay_for=(msg.sender, msg.probe))
        self._send(msg.target, Message(PING, self.id, probe=self._probe_no))

    def _on_join(self, msg: Message, now: float) -> None:
        snapshot = self.membership.snapshot()[: self.config.limits.max_updates]
        self._send(msg.sender, Message(DIGEST, self.id, snapshot, digest=self.log.digest(), reply=True))

    def _revocations_behind(self, msg: Message) -> None:
        """A peer whose digest shows an older revocation list than this node's gets this one."""
        if msg.revocations < self.identity.revoked.number:
            self._send(msg.sender, Message(REVOKE, self.id, revocation_list=self.identity.revoked.der))

    def _on_revoke(self, msg: Message, now: float) -> None:
        self.revoke(msg.revocation_list, now)

    def _on_digest(self, msg: Message, now: float) -> None:
        self._now = now
        self._revocations_behind(msg)
        self._forget_acknowledged(msg.sender, msg.digest)
        self._accept(msg.sender, msg.entries)
        if msg.digest is None:
            return
        self._known[msg.sender] = msg.digest
        want = self.log.lacks(self._wanted(msg.digest)) and self._may_pull(msg.sender)
        if want and self.config.max_pulls:
            self._pulls[msg.sender] = now
        # reply=False: the sender is at its pull limit and wants nothing sent; it may still be asked
        missing = self._missing(msg.sender, msg.digest) if msg.reply else []
        if missing or want:
            self._send(msg.sender, Message(DELTA, self.id, digest=self.log.digest() if want else None,
                                           entries=tuple(missing), reply=want))

    def _on_delta(self, msg: Message, now: float) -> None:
        self._now = now
        self._revocations_behind(msg)
        self._forget_acknowledged(msg.sender, msg.digest)
        if msg.entries:
            self._answered(msg.sender, now)  # the answer to an ask (or news anyway): ask again
        if msg.digest is not None:
            self._known[msg.sender] = msg.digest
        self._accept(msg.sender, msg.entries)
        if msg.reply and msg.digest is not None:
            missing = self._missing(msg.sender, msg.digest)
            if missing:
                self._send(msg.sender, Message(DELTA, self.id, entries=tuple(missing)))

    def _on_leave(self, msg: Message, now: float) -> None:
        m = self.membership.members.get(msg.sender)
        if m is not None:
            self._learn(Update(msg.sender, LEFT, m.incarnation), now)

    _handlers: ClassVar[dict[int, Callable[[GossipNode, Message, float], None]]] = {
        PING: _on_ping, ACK: _on_ack, PING_REQ: _on_ping_req, JOIN: _on_join,
        DIGEST: _on_digest, DELTA: _on_delta, LEAVE: _on_leave, REVOKE: _on_revoke,
    }
