"""The store as the replica: anti-entropy over the write log a :class:`~swarm.memory.store.PatternStore`
keeps beside its patterns (origin and sequence columns), with no second copy of any version.

Same contract as :class:`~.replication.ReplicaLog` (the in-memory replica the protocol tests and
benchmarks use): a write gets the next sequence number of its origin; the digest is, per origin,
the high-water mark up to which every write is held; :meth:`missing_for` lists what a peer's
digest lacks. One difference makes the single copy possible: a write is served with its
pattern's *current* version, not the version it first carried. Versions resolve by
:func:`~swarm.memory.models.merge`, a total order, so a peer that receives the newest version
under an older write ends where it would have after receiving both. The high-water marks are
kept in memory (integers, rebuilt from the log when the store opens); every pattern lives only
in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from ..memory.models import Pattern
from ..memory.store import PatternStore, ReplicaRow
from ..memory.transfer import revision_to_record
from .codec import Entry, Revision


class StoreReplica:
    """A node's replica, held in its store."""

    def __init__(self, store: PatternStore, node_id: str) -> None:
        self.store = store
        self.node_id = node_id
        self.unresolved = 0  # revisions whose body this store did not hold (dropped: asked for again)
        self._hwm: dict[str, int] = {}
        self._above: dict[str, set[int]] = {}
        self._count = 0
        for origin, seq in sorted(store.replica_writes()):
            self._mark(origin, seq)
        self._own = max([self._hwm.get(node_id, 0), *self._above.get(node_id, ())])
        self.arrivals = store.replica_arrivals()

    # ---- what the node reads ----

    def __len__(self) -> int:
        return len(self.store)

    @property
    def writes(self) -> int:
        """Writes held, over all origins."""
        return self._count

    @property
    def patterns(self) -> dict[str, Pattern]:
        """The current version of every pattern (read from the store: a view, not a copy kept)."""
        return {p.id: p for p in self.store.iter_patterns()}

    def versions(self) -> list[tuple[str, Pattern]]:
        """Versions kept in memory beside the store: none."""
        return []

    def digest(self) -> dict[str, int]:
        return dict(self._hwm)

    def lacks(self, digest: Mapping[str, int]) -> bool:
        """Whether a peer with ``digest`` holds writes this replica does not."""
        return any(seq > self._hwm.get(origin, 0) for origin, seq in digest.items())

    def missing_for(self, digest: Mapping[str, int], limit: int,
                    allow: Callable[[Entry], bool] | None = None, revisions: bool = True) -> list[Entry]:
        """Writes a peer with ``digest`` lacks (and ``allow`` lets it have), oldest first per
        origin, at most ``limit``, each with its pattern's current version; a write whose body the
        peer holds (its digest covers a write that carried it) or gets earlier in this batch goes
        as a Revision."""
        out: list[Entry] = []
        sent_bodies: set[str] = set()
        for origin in sorted(set(self._hwm) | set(self._above)):
            have = digest.get(origin, 0)
            if self._hwm.get(origin, 0) <= have and not self._above.get(origin):
                continue
            rows = self.store.replica_after(origin, have, limit - len(out))
            current = self.store.get_many(list({r[2] for r in rows}))
            for _, seq, pid, _, _, _ in rows:
                pattern = current.get(pid)
                if pattern is None:  # deleted here since (deletions do not travel yet)
                    continue
                entry = Entry(origin, seq, pattern)
                if allow is not None and not allow(entry):
                    continue
                body = pattern.body_digest()
                if revisions and (body in sent_bodies or self._holds(digest, body)):
                    entry = Entry(origin, seq, Revision(body, revision_to_record(pattern)))
                sent_bodies.add(body)
                out.append(entry)
                if len(out) >= limit:
                    return out
        return out

    def _holds(self, digest: Mapping[str, int], body: str) -> bool:
        return any(digest.get(origin, 0) >= seq for origin, seq in self.store.replica_carriers(body).items())

    def recent(self, n: int, since: int = 0) -> list[Entry]:
        """Up to the last ``n`` writes this node learned of after arrival number ``since``."""
        if n <= 0:
            return []
        rows = self.store.replica_recent(since, n)
        current = self.store.get_many(list({r[2] for _, r in rows}))
        return [Entry(r[0], r[1], current[r[2]]) for _, r in rows if r[2] in current]

    # ---- what the node writes ----

    def write(self, pattern: Pattern) -> Entry | None:
        """A local write; None when the store's log already holds this version (an own earlier
        write, or a copy received from a peer: it is never published again as this node's)."""
        entries = self.write_many([pattern])
        return entries[0] if entries else None

    def write_many(self, patterns: Iterable[Pattern]) -> list[Entry]:
        """:meth:`write` for a batch, in one transaction."""
        rows: list[ReplicaRow] = []
        out: list[Entry] = []
        seen: set[tuple[str, int, str]] = set()
        for p in patterns:
            key = (p.id, p.version, p.updated_by)
            if key in seen or self.store.replica_holds(*key):
                continue
            seen.add(key)
            self._own += 1
            rows.append((self.node_id, self._own, p.id, p.version, p.updated_by, p.body_digest()))
            out.append(Entry(self.node_id, self._own, p))
        if rows:
            self.store.replica_log(rows)
            for r in rows:
                self._mark(r[0], r[1])
            self.arrivals += len(rows)
        return out

    def restore_own_sequence(self, seq: int) -> None:
        """After a restart: continue numbering own writes after ``seq`` (learned from peers)."""
        self._own = max(self._own, seq)

    def apply(self, entries: Iterable[Entry]) -> list[Pattern]:
        """Take writes from a peer; return the patterns whose current version changed."""
        rows: list[ReplicaRow] = []
        incoming: list[Pattern] = []
        taken: set[tuple[str, int]] = set()
        for e in entries:
            if (e.seq <= self._hwm.get(e.origin, 0) or e.seq in self._above.get(e.origin, ())
                    or (e.origin, e.seq) in taken):
                continue  # already held
            if isinstance(e.pattern, Revision):
                pattern = self._rebuild(e.pattern)
                if pattern is None:
                    if self.store.replica_knows(e.pattern.id) and self.store.get(e.pattern.id) is None:
                        # this node deleted the pattern (consolidation, eviction): the write is taken
                        # as held and dropped, so the origin's high-water mark moves on
                        taken.add((e.origin, e.seq))
                        rows.append((e.origin, e.seq, e.pattern.id, int(e.pattern.fields.get("version", 0)),
                                     str(e.pattern.fields.get("updated_by", "")), e.pattern.body))
                        continue
                    self.unresolved += 1  # the sender was wrong: asked for again
                    continue
                body = e.pattern.body
            else:
                pattern, body = e.pattern, e.pattern.body_digest()
            if e.origin == self.node_id:
                self._own = max(self._own, e.seq)  # our own writes from before a restart
            taken.add((e.origin, e.seq))
            rows.append((e.origin, e.seq, pattern.id, pattern.version, pattern.updated_by, body))
            incoming.append(pattern)
        if not rows:
            return []
        changed = self.store.replica_log(rows, incoming)
        for r in rows:
            self._mark(r[0], r[1])
        self.arrivals += len(rows)
        return changed

    def _rebuild(self, revision: Revision) -> Pattern | None:
        """The pattern a revision describes, over a body this store holds (None if it does not)."""
        pid = revision.id
        base = self.store.get(pid) if pid else None
        if base is None or base.body_digest() != revision.body:
            return None
        return replace(base, **{k: v for k, v in revision.fields.items() if k != "id"})

    def _mark(self, origin: str, seq: int) -> None:
        """Count a held write and move the origin's high-water mark."""
        self._count += 1
        hwm = self._hwm.get(origin, 0)
        above = self._above.setdefault(origin, set())
        if seq == hwm + 1:
            hwm += 1
            while hwm + 1 in above:
                hwm += 1
                above.discard(hwm)
            self._hwm[origin] = hwm
        else:
            above.add(seq)

