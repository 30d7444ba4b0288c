"""Anti-entropy state: per-origin write logs, compact digests, and the deltas a peer lacks.

Every write a node makes (a new pattern, or a new version of one) gets the next sequence number of
that node, its *origin*. A node's digest is, per origin, the highest sequence number up to which it
holds every write (a high-water mark), so a digest costs one integer per origin however many
patterns there are. Given a peer's digest, :meth:`ReplicaLog.missing_for` lists what the peer
lacks. A write whose body (all but the outcome statistics) the peer's digest shows it already
holds, from an earlier write of that pattern, goes as a :class:`~.codec.Revision`, and
:meth:`ReplicaLog.apply` rebuilds the pattern from the body it holds. Concurrent versions of one
pattern resolve by :func:`swarm.memory.models.merge`, a total order, so replicas that saw the same
writes agree whatever order they arrived in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Protocol

from ..memory.models import Pattern, merge
from ..memory.transfer import revision_to_record
from .codec import Entry, Revision


class Replica(Protocol):
    """What a gossip node needs of the replica it serves: numbered writes, high-water-mark
    digests, the writes a digest lacks, and applying a peer's writes. :class:`ReplicaLog` keeps
    it in memory; :class:`~.store_replica.StoreReplica` in the agent's own store."""

    unresolved: int
    arrivals: int

    def __len__(self) -> int: ...
    @property
    def writes(self) -> int: ...
    @property
    def patterns(self) -> dict[str, Pattern]: ...
    def write_many(self, patterns: Iterable[Pattern]) -> list[Entry]: ...
    def restore_own_sequence(self, seq: int) -> None: ...
    def digest(self) -> dict[str, int]: ...
    def lacks(self, digest: Mapping[str, int]) -> bool: ...
    def missing_for(self, digest: Mapping[str, int], limit: int,
                    allow: Callable[[Entry], bool] | None = None, revisions: bool = True) -> list[Entry]: ...
    def recent(self, n: int, since: int = 0) -> list[Entry]: ...
    def apply(self, entries: Iterable[Entry]) -> list[Pattern]: ...


class ReplicaLog:
    """The replicated writes one node holds, and the merged current copy of every pattern."""

    def __init__(self, node_id: str, recent: int = 64) -> None:
        self.node_id = node_id
        self.patterns: dict[str, Pattern] = {}
        self._log: dict[str, dict[int, tuple[Pattern, str]]] = {}  # origin -> seq -> (pattern, body digest)
        self._bodies: dict[str, Pattern] = {}  # body digest -> a held pattern with that body
        self._carriers: dict[str, dict[str, int]] = {}  # body digest -> origin -> its first write carrying it
        self.unresolved = 0  # revisions whose body this log did not hold (dropped: asked for again)
        self._hwm: dict[str, int] = {}
        self._above: dict[str, set[int]] = {}  # sequence numbers held above the high-water mark
        self._own = 0
        self.arrivals = 0  # entries stored so far; marks "what is new since" for pushing
        self._recent: deque[tuple[int, Entry]] = deque(maxlen=recent)

    def __len__(self) -> int:
        return len(self.patterns)

    def versions(self) -> list[tuple[str, Pattern]]:
        """Every write held, as ``(origin, the version it carried)``: the copies kept beside the store."""
        return [(origin, p) for origin, log in self._log.items() for p, _ in log.values()]

    @property
    def writes(self) -> int:
        """Entries held, over all origins."""
        return sum(len(v) for v in self._log.values())

    def write(self, pattern: Pattern) -> Entry | None:
        """A local write; None when it changes nothing (an older or identical copy)."""
        cur = self.patterns.get(pattern.id)
        if cur is not None and merge(cur, pattern) is cur:
            return None
        self._own += 1
        entry = Entry(self.node_id, self._own, pattern)
        self._store(entry)
        return entry

    def write_many(self, patterns: Iterable[Pattern]) -> list[Entry]:
        """:meth:`write` for each pattern; the writes that changed something."""
        return [e for e in (self.write(p) for p in patterns) if e is not None]

    def restore_own_sequence(self, seq: int) -> None:
        """After a restart: continue numbering own writes after ``seq`` (learned from peers)."""
        self._own = max(self._own, seq)

    def digest(self) -> dict[str, int]:
        return dict(self._hwm)

    def lacks(self, digest: Mapping[str, int]) -> bool:
        """Whether a peer with ``digest`` holds writes this log does not."""
        return any(seq > self._hwm.get(origin, 0) for origin, seq in digest.items())

    def missing_for(self, digest: Mapping[str, int], limit: int,
                    allow: Callable[[Entry], bool] | None = None, revisions: bool = True) -> list[Entry]:
        """Writes a peer with ``digest`` lacks (and ``allow`` lets it have), oldest first per
        origin, at most ``limit``. With ``revisions``, a write whose body the peer holds (its
        digest covers a write that carried it) or gets earlier in this batch goes as a Revision."""
        out: list[Entry] = []
        sent_bodies: set[str] = set()
        for origin in sorted(self._log):
            have = digest.get(origin, 0)
            log = self._log[origin]
            if self._hwm.get(origin, 0) <= have and not self._above.get(origin):
                continue
            for seq in sorted(s for s in log if s > have):
                pattern, body = log[seq]
                entry = Entry(origin, seq, pattern)
                if allow is not None and not allow(entry):
                    continue
                if revisions and (body in sent_bodies or self._holds(digest, body)):
                    entry = Entry(origin, seq, Revision(body, revision_to_record(pattern)))
                sent_bodies.add(body)
                out.append(entry)
                if len(out) >= limit:
                    return out
        return out

    def _holds(self, digest: Mapping[str, int], body: str) -> bool:
        """Whether a peer with ``digest`` holds a write carrying ``body`` (so holds the body: a
        log keeps every write it took, and takes a revision only over a body it holds)."""
        return any(digest.get(origin, 0) >= seq for origin, seq in self._carriers.get(body, {}).items())

    def recent(self, n: int, since: int = 0) -> list[Entry]:
        """Up to the last ``n`` writes this node learned of (local or not) after arrival number
        ``since``, to push with a digest."""
        if n <= 0:
            return []
        return [e for no, e in list(self._recent)[-n:] if no > since]

    def apply(self, entries: Iterable[Entry]) -> list[Pattern]:
        """Take writes from a peer; return the patterns whose current copy changed."""
        changed: dict[str, Pattern] = {}
        for e in entries:
            if e.seq <= self._hwm.get(e.origin, 0) or e.seq in self._above.get(e.origin, ()):
                continue  # already held
            if isinstance(e.pattern, Revision):
                base = self._bodies.get(e.pattern.body)
                if base is None or base.id != e.pattern.id:  # the sender was wrong (or this node restarted)
                    self.unresolved += 1
                    continue
                fields = {k: v for k, v in e.pattern.fields.items() if k != "id"}
                body: str | None = e.pattern.body
                e = Entry(e.origin, e.seq, replace(base, **fields))
            else:
                body = None
            if e.origin == self.node_id:
                self._own = max(self._own, e.seq)  # our own writes from before a restart
            before = self.patterns.get(e.pattern.id)
            self._store(e, body)
            after = self.patterns[e.pattern.id]
            if after is not before:
                changed[after.id] = after
        return list(changed.values())

    def _store(self, e: Entry, body: str | None = None) -> None:
        """Keep a write; ``body`` is its pattern's body digest when already known."""
        assert isinstance(e.pattern, Pattern)  # revisions are rebuilt before they are stored
        body = body or e.pattern.body_digest()
        self._log.setdefault(e.origin, {})[e.seq] = (e.pattern, body)
        self._bodies.setdefault(body, e.pattern)
        carriers = self._carriers.setdefault(body, {})
        carriers[e.origin] = min(carriers.get(e.origin, e.seq), e.seq)
        hwm = self._hwm.get(e.origin, 0)
        above = self._above.setdefault(e.origin, set())
        if e.seq == hwm + 1:
            hwm += 1
            while hwm + 1 in above:
                hwm += 1
                above.discard(hwm)
            self._hwm[e.origin] = hwm
        else:
            above.add(e.seq)
        cur = self.patterns.get(e.pattern.id)
        self.patterns[e.pattern.id] = e.pattern if cur is None else merge(cur, e.pattern)
        self.arrivals += 1
        self._recent.append((self.arrivals, e))
