"""Anti-entropy state: the store is the replica. Per-origin write logs, compact digests, the
deltas a peer lacks, and deletions as tombstones.

Every write a node makes (a new pattern, a new version of one, or a deletion) gets the next
sequence number of that node, its *origin*, and a row in the store's write log (origin and
sequence columns, see :class:`~swarm.memory.store.PatternStore`). A node's digest is, per origin,
the highest sequence number up to which it holds every write (a high-water mark), so a digest costs
one integer per origin however many patterns there are. Given a peer's digest,
:meth:`StoreReplica.missing_for` lists what the peer lacks.

One copy of every pattern, in the store: a write is served with its pattern's *current* version,
not the version it first carried. Versions resolve by :func:`~swarm.memory.models.merge`, a total
order, so a peer that receives the newest version under an older write ends where it would have
after receiving both. A write whose body (all but the outcome statistics) the peer's digest shows
it already holds goes as a :class:`~.codec.Revision`.

Deletions travel as :class:`~.codec.Tombstone` writes, and the deletion wins: a replica that takes
a tombstone deletes its copy whatever its version and refuses the pattern's writes for
:attr:`~.node.GossipConfig.tombstone_ttl` seconds (virtual time in a simulation). A write of a
pattern that is deleted here is served as a tombstone, so a deletion reaches every peer that
lacks any write of it, even after the tombstone has expired. Expiry only ends the refusal: a
replica cut off from its peers for longer than the TTL can bring a deleted pattern back with an
old write, as in every tombstone scheme (Cassandra's ``gc_grace_seconds``).

The high-water marks are kept in memory (integers, rebuilt from the log when the store opens).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from cachetools import LRUCache

from ..memory.models import Pattern
from ..memory.store import DeletedKey, PatternStore, ReplicaRow
from .codec import Entry, Revision, Tombstone

TOMBSTONE_BODY = ""  # the body column of a deletion's row in the write log
#: Patterns decoded to serve peers, kept by body and revision fields: a write is served to many
#: peers, and decoding a row costs more than anything else in serving it.
SERVED_CACHE = 4096


class StoreReplica:
    """A node's replica, held in its store; nothing beside the store but the high-water marks."""

    def __init__(self, store: PatternStore, node_id: str) -> None:
        self.store = store
        self.node_id = node_id
        self.unresolved = 0  # revisions whose body this store did not hold (dropped: asked for again)
        self.deleted = 0  # patterns deleted here by peers' tombstones
        self._hwm: dict[str, int] = {}
        self._above: dict[str, set[int]] = {}
        self._count = 0
        for origin, seq in sorted(store.replica_writes()):
            self._mark(origin, seq)
        self._own = max([self._hwm.get(node_id, 0), *self._above.get(node_id, ())])
        self.arrivals = store.replica_arrivals()
        self._oldest_tombstone = store.replica_oldest_tombstone()
        self._served: LRUCache[tuple[Any, ...], Pattern] = LRUCache(SERVED_CACHE)

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

    def digest(self) -> dict[str, int]:
        return dict(self._hwm)

    def holds(self, origin: str, seq: int) -> bool:
        """Whether the ``seq``-th write of ``origin`` is held here."""
        return seq <= self._hwm.get(origin, 0) or seq in self._above.get(origin, ())

    def lacks(self, digest: Mapping[str, int]) -> bool:
        """Whether a peer with ``digest`` holds writes this replica does not."""
        return any(seq > self._hwm.get(origin, 0) for origin, seq in digest.items())

    def missing_for(self, digest: Mapping[str, int], limit: int,
                    allow: Callable[[str, int], bool] | None = None, revisions: bool = True,
                    whole: Callable[[str, int], bool] | None = None,
                    origins: Callable[[str], bool] | None = None) -> list[Entry]:
        """Writes a peer with ``digest`` lacks, of the ``origins`` it may have, that ``allow``
        (given origin and sequence number) lets go now: oldest first per origin, at most
        ``limit``. Each goes with its pattern's current version, as a Revision when the peer seems
        to hold the body (its digest covers a write that carried it, or it gets one earlier in this
        batch) unless ``whole`` says otherwise, or as a tombstone when the pattern is deleted here.

        "Seems": a write is served with the server's current version, so a peer may hold a write
        under another version than the one this store logged, and lack the body. It then drops the
        revision; the node passes ``whole`` true for writes it sends a peer again, so the next
        attempt carries the whole pattern and anti-entropy cannot stall on it."""
        out: list[Entry] = []
        sent_bodies: set[str] = set()
        held: dict[str, bool] = {}  # body -> whether the peer holds it (its digest covers a carrier)
        for origin in sorted(set(self._hwm) | set(self._above)):
            have = digest.get(origin, 0)
            if self._hwm.get(origin, 0) <= have and not self._above.get(origin):
                continue
            if origins is not None and not origins(origin):
                continue
            rows = []
            for r in self.store.replica_after(origin, have, limit - len(out)):  # filtered before decoding
                again = whole is not None and whole(origin, r[1])  # asked before ``allow`` records the send
                if allow is None or allow(origin, r[1]):
                    rows.append((r, again))
            records = self.store.revision_records(list({r[2] for r, _ in rows}))
            if revisions:  # who carried which body, for the bodies a revision could go over (one query)
                asked = {records[r[2]][0] for r, again in rows if not again and r[2] in records} - held.keys()
                for body, carriers in self.store.replica_carriers(list(asked)).items():
                    held[body] = any(digest.get(o, 0) >= q for o, q in carriers.items())
            planned: list[Entry | str] = []  # an entry, or the id of a pattern that goes whole
            for (_, seq, pid, version, by, _), again in rows:
                if pid not in records:
                    planned.append(Entry(origin, seq, Tombstone(pid, version, by)))
                    continue
                body, record = records[pid]
                if revisions and not again and (body in sent_bodies or held[body]):
                    planned.append(Entry(origin, seq, Revision(body, record)))
                else:
                    planned.append(pid)
                sent_bodies.add(body)
            patterns = self._current({x: records[x] for x in planned if isinstance(x, str)})
            for ((_, seq, _, _, _, _), _), x in zip(rows, planned):
                out.append(x if isinstance(x, Entry) else Entry(origin, seq, patterns[x]))
            if len(out) >= limit:
                break
        return out

    def _current(self, records: Mapping[str, tuple[str, dict[str, Any]]]) -> dict[str, Pattern]:
        """The current copies of patterns known by their body digest and revision record (from
        :meth:`~swarm.memory.store.PatternStore.revision_records`): from the served cache, or read."""
        out: dict[str, Pattern] = {}
        keys = {pid: (body, *record.values()) for pid, (body, record) in records.items()}
        for pid, key in keys.items():
            p = self._served.get(key)
            if p is not None:
                out[pid] = p
        read = self.store.get_many([pid for pid in keys if pid not in out])
        for pid, p in read.items():
            self._served[keys[pid]] = p  # read in the same state as the record (nothing wrote since)
            out[pid] = p
        return out

    def recent(self, n: int, since: int = 0) -> list[Entry]:
        """Up to the last ``n`` writes this node learned of after arrival number ``since``."""
        if n <= 0:
            return []
        rows = self.store.replica_recent(since, n)
        current = self._current(self.store.revision_records(list({r[2] for _, r in rows})))
        return [Entry(o, q, current[pid] if pid in current else Tombstone(pid, v, by))
                for _, (o, q, pid, v, by, _) in rows]

    # ---- what the node writes ----

    def write_many(self, patterns: Iterable[Pattern], deleted: Iterable[DeletedKey] = (),
                   now: float = 0.0) -> list[Entry]:
        """Local writes and deletions, numbered as this node's, in one transaction. The store takes
        a pattern not yet in it (or newer than its copy); a deletion is one the store made already,
        and starts a tombstone recorded at ``now``."""
        rows: list[ReplicaRow] = []
        out: list[Entry] = []
        patterns = list(patterns)
        seen = self.store.replica_held([(p.id, p.version, p.updated_by) for p in patterns])
        for p in patterns:
            key = (p.id, p.version, p.updated_by)
            if key in seen:
                continue
            seen.add(key)
            self._own += 1
            rows.append((self.node_id, self._own, p.id, p.version, p.updated_by, p.body_digest()))
            out.append(Entry(self.node_id, self._own, p))
        written = [e.pattern for e in out if isinstance(e.pattern, Pattern)]
        tombstones = list(deleted)
        for pid, version, by in tombstones:
            self._own += 1
            rows.append((self.node_id, self._own, pid, version, by, TOMBSTONE_BODY))
            out.append(Entry(self.node_id, self._own, Tombstone(pid, version, by)))
        if rows:
            self.store.replica_log(rows, written, tombstones, now,
                                   bodies=[r[5] for r in rows[:len(written)]])
            self._took(rows, tombstones, now)
        return out

    def apply(self, entries: Iterable[Entry], now: float = 0.0) -> list[str]:
        """Take writes from a peer; return the ids whose current version changed."""
        entries = list(entries)
        rows: list[ReplicaRow] = []
        incoming: list[Pattern] = []
        incoming_bodies: list[str] = []
        revised: list[dict[str, Any]] = []
        tombstones: list[DeletedKey] = []
        taken: set[tuple[str, int]] = set()
        bodies: dict[str, Pattern] = {}  # body digest -> a pattern earlier in this batch with that body
        heads = self.store.heads(list({e.pattern.id for e in entries if isinstance(e.pattern, Revision)}))
        for e in entries:
            if self.holds(e.origin, e.seq) or (e.origin, e.seq) in taken:
                continue  # already held
            p = e.pattern
            if isinstance(p, Tombstone):
                row: ReplicaRow = (e.origin, e.seq, p.id, p.version, p.updated_by, TOMBSTONE_BODY)
                tombstones.append((p.id, p.version, p.updated_by))
            elif isinstance(p, Revision):
                version, by = int(p.fields.get("version", 0)), str(p.fields.get("updated_by", ""))
                earlier, head = bodies.get(p.body), heads.get(p.id)
                if earlier is not None and earlier.id == p.id:  # over a body earlier in this batch
                    incoming.append(replace(earlier, **{k: v for k, v in p.fields.items() if k != "id"}))
                    incoming_bodies.append(p.body)
                elif head is not None and head[2] == p.body:  # over the body held: the store applies it
                    revised.append({**p.fields, "body": p.body})
                elif not self._superseded(p.id, head, version, by):
                    self.unresolved += 1  # the sender was wrong: asked for again
                    continue
                row = (e.origin, e.seq, p.id, version, by, p.body)
            else:
                row = (e.origin, e.seq, p.id, p.version, p.updated_by, p.body_digest())
                incoming.append(p)
                incoming_bodies.append(row[5])
                bodies.setdefault(row[5], p)
            if e.origin == self.node_id:
                self._own = max(self._own, e.seq)  # our own writes from before a restart
            taken.add((e.origin, e.seq))
            rows.append(row)
        if not rows:
            return []
        changed, deleted = self.store.replica_log(rows, incoming, tombstones, now, revised, incoming_bodies)
        self.deleted += len(deleted)
        self._took(rows, tombstones, now)
        return list(dict.fromkeys(changed))

    def _superseded(self, pid: str, head: tuple[int, str, str] | None, version: int, by: str) -> bool:
        """Whether a version of ``pid`` whose body is not held here would change nothing: the
        copy here (``head``) is newer (its body changed since, say by a consolidation here), or the
        pattern was deleted here (the deletion wins). Such a write is held (the origin's
        high-water mark moves on) and applies nothing."""
        if head is None:
            return self.store.replica_knows(pid)
        return (head[0], head[1]) > (version, by)

    def expire(self, now: float, ttl: float) -> int:
        """End the tombstones older than ``ttl`` at ``now``; returns how many ended."""
        if self._oldest_tombstone is None or self._oldest_tombstone >= now - ttl:
            return 0
        n = self.store.replica_expire(now - ttl)
        self._oldest_tombstone = self.store.replica_oldest_tombstone()
        return n

    def _took(self, rows: list[ReplicaRow], tombstones: list[DeletedKey], now: float) -> None:
        """Account for rows just logged."""
        for r in rows:
            self._mark(r[0], r[1])
        self.arrivals += len(rows)
        if tombstones and self._oldest_tombstone is None:
            self._oldest_tombstone = now

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
