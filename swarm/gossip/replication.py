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

Every write is signed by its origin (the log row keeps the signature, and every replica serves
it on), and every version of a pattern by its author, or by a curator for a version it made (see
:mod:`swarm.gossip.identity`). A replica takes a write only when its origin's key verifies it,
and a version only when its author's (or that curator's) does: a member cannot forge another's
writes, change another's pattern or make up its figures, and a forged write closes the
connection it came on. What a write may do is checked too: a pattern keeps its first author
(another member's claim is held, so that its origin's stream goes on, and changes nothing); only
its author (or a curator) deletes it; a version may not run more than :data:`MAX_VERSION_STEP`
ahead of the copy held.

What other agents record on a pattern (uses, successes, failures, rewards) is theirs: each
agent's cumulative :class:`~swarm.memory.models.Contribution`, written and signed by it alone
and served as written (a contribution's write is its record: one signature for both). A replica
keeps, per contributor, the record with the most uses, and a pattern's figures are its
author's plus every contributor's: no member can erase or overwrite another's share.

A revoked agent's writes are refused, and what it wrote quarantined: the patterns it authored
deleted here (not published again) and its contributions to others' patterns dropped.

The high-water marks are kept in memory (integers, rebuilt from the log when the store opens).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from cachetools import LRUCache

from ..memory.models import REVISION_FIELDS, Contribution, Pattern, revision_digest, revision_of
from ..memory.store import DeletedKey, PatternStore, ReplicaRow
from .codec import Entry, ProtocolError, Revision, Tombstone
from .identity import Identity, contribution_message, deletion_message, version_message, write_message
from .neighbours import origin_node

TOMBSTONE_BODY = ""  # the body column of a deletion's row in the write log
#: The body column of a contribution's row in the write log starts with this, followed by the
#: record's figures as JSON (a record is served as written: the log row holds it).
CONTRIBUTION_BODY = "+"
#: Patterns decoded to serve peers, kept by body and revision fields: a write is served to many
#: peers, and decoding a row costs more than anything else in serving it.
SERVED_CACHE = 4096
#: How far a version may run ahead of the copy a replica holds (or of none): a member cannot make
#: its copy win every merge by numbering it 2**63 - 1.
MAX_VERSION_STEP = 1 << 20


def _contribution_body(c: Contribution) -> str:
    """A contribution's log row body: the marker, then its figures."""
    return CONTRIBUTION_BODY + json.dumps(c.values(), separators=(",", ":"))


def _contribution_entry(origin: str, seq: int, pid: str, body: str, sig: bytes) -> Entry:
    """A contribution's write as logged."""
    uses, successes, failures, total, last = json.loads(body[len(CONTRIBUTION_BODY):])
    return Entry(origin, seq, Contribution(pid, origin_node(origin), uses, successes, failures, float(total),
                                           None if last is None else float(last)), sig)


class StoreReplica:
    """A node's replica, held in its store; nothing beside the store but the high-water marks."""

    def __init__(self, store: PatternStore, node_id: str, identity: Identity) -> None:
        self.store = store
        self.node_id = node_id
        self.identity = identity
        self.agent = identity.agent
        self.unresolved = 0  # revisions whose body this store did not hold (dropped: asked for again)
        self.deleted = 0  # patterns deleted here by peers' tombstones
        self.unverified = 0  # writes whose origin's (or body's author's) key is not known here yet
        self.refused = 0  # signed writes that may not do what they try (held, nothing applied)
        self.revoked = 0  # writes of revoked origins (refused; patterns revoked agents authored count as refused)
        self.unpublished = 0  # local changes to another author's body (not published: unsigned)
        self.unservable = 0  # writes this replica holds but cannot prove (unsigned), so does not serve
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
        """Per origin, the high-water mark (revoked origins left out: nobody serves their writes)."""
        revoked = self.identity.revoked
        if not revoked.agents:
            return dict(self._hwm)
        return {o: q for o, q in self._hwm.items() if origin_node(o) not in revoked}

    def holds(self, origin: str, seq: int) -> bool:
        """Whether the ``seq``-th write of ``origin`` is held here."""
        return seq <= self._hwm.get(origin, 0) or seq in self._above.get(origin, ())

    def lacks(self, digest: Mapping[str, int]) -> bool:
        """Whether a peer with ``digest`` holds writes this replica does not."""
        revoked = self.identity.revoked
        return any(seq > self._hwm.get(origin, 0) and origin_node(origin) not in revoked
                   for origin, seq in digest.items())

    def missing_for(self, digest: Mapping[str, int], limit: int,
                    allow: Callable[[str, int], bool] | None = None, revisions: bool = True,
                    whole: Callable[[str, int], bool] | None = None,
                    origins: Callable[[str], bool] | None = None) -> list[Entry]:
        """Writes a peer with ``digest`` lacks, of the ``origins`` it may have, that ``allow``
        (given origin and sequence number) lets go now: oldest first per origin, at most
        ``limit``. Each goes with its pattern's current version, as a Revision when the peer seems
        to hold the body (its digest covers a write that carried it, or it gets one earlier in this
        batch) unless ``whole`` says otherwise, or as a tombstone when the pattern is deleted here;
        a contribution goes as written.

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
            if (origins is not None and not origins(origin)) or origin_node(origin) in self.identity.revoked:
                continue
            rows = []
            for r in self.store.replica_after(origin, have, limit - len(out)):  # filtered before decoding
                again = whole is not None and whole(origin, r[1])  # asked before ``allow`` records the send
                if allow is None or allow(origin, r[1]):
                    rows.append((r, again))
            versions = [(r, again) for r, again in rows if not r[5].startswith(CONTRIBUTION_BODY)]
            records = self.store.revision_records(list({r[2] for r, _ in versions}))
            if revisions:  # who carried which body, for the bodies a revision could go over (one query)
                asked = {records[r[2]][0] for r, again in versions if not again and r[2] in records} - held.keys()
                for body, carriers in self.store.replica_carriers(list(asked)).items():
                    held[body] = any(digest.get(o, 0) >= q for o, q in carriers.items())
            # per row: an entry, the id of a pattern that goes whole, or None (nothing to serve)
            planned: list[Entry | str | None] = []
            gone = self.store.deletion_proofs([r[2] for r, _ in versions if r[2] not in records])
            for (_, seq, pid, version, by, body_col, sig), again in rows:
                if body_col.startswith(CONTRIBUTION_BODY):
                    planned.append(None if sig is None else _contribution_entry(origin, seq, pid, body_col, sig))
                    continue
                if pid not in records:  # deleted here: its deletion's proof, if it has one
                    proof = gone.get(pid)
                    planned.append(None if proof is None else Entry(origin, seq, Tombstone(pid, version, by, *proof)))
                    continue
                body, record = records[pid]
                if revisions and not again and (body in sent_bodies or held[body]):
                    planned.append(Entry(origin, seq, Revision(body, record)))
                else:
                    planned.append(pid)
                sent_bodies.add(body)
            revised = self._version_sigs({x.pattern.id: records[x.pattern.id] for x in planned
                                          if isinstance(x, Entry) and isinstance(x.pattern, Revision)})
            sendable = self._signed_current({x: records[x] for x in planned if isinstance(x, str)})
            sigs = self._write_sigs([r for r, _ in rows])
            for (row, _), x in zip(rows, planned):
                sig = sigs.get((row[0], row[1]))
                if isinstance(x, Entry) and isinstance(x.pattern, Revision):
                    signed = revised.get(x.pattern.id)
                    x = None if signed is None else Entry(x.origin, x.seq, x.pattern, x.sig, signed[1])
                if sig is None or x is None or (isinstance(x, str) and x not in sendable):
                    self.unservable += 1  # unproven: the peer asks again, and gets it from another
                    continue
                if isinstance(x, Entry):
                    out.append(Entry(x.origin, x.seq, x.pattern, sig, x.version_sig))
                else:
                    out.append(Entry(origin, row[1], sendable[x][0], sig, sendable[x][1]))
            if len(out) >= limit:
                break
        return out

    def _write_sigs(self, rows: Iterable[ReplicaRow]) -> dict[tuple[str, int], bytes]:
        """The origins' signatures of these writes: as logged, or (for this agent's own writes
        logged before writes were signed) signed now and logged. A foreign write logged unsigned
        has none."""
        out: dict[tuple[str, int], bytes] = {}
        late: list[tuple[str, int, bytes]] = []
        for origin, seq, pid, _, _, body, sig in rows:
            if sig is None and origin_node(origin) == self.agent and not body.startswith(CONTRIBUTION_BODY):
                sig = self.identity.signer.sign(write_message(origin, seq, pid))
                late.append((origin, seq, sig))
            if sig is not None:
                out[(origin, seq)] = sig
        self.store.replica_sign(late)
        return out

    def _signed_current(self, records: Mapping[str, tuple[str, dict[str, Any]]]) -> dict[str, tuple[Pattern, bytes]]:
        """The current copies of these patterns (see :meth:`_current`: their authors' figures)
        with the signatures of their versions. A version this agent must sign (of a pattern it
        authors, or nobody has claimed yet: it becomes this agent's; or one it made as a curator)
        is signed now if it is not yet; another's unsigned version (a local edit it never
        published) is left out."""
        if not records:
            return {}
        signed = self._version_sigs(records)
        current = self._current({pid: records[pid] for pid in signed})
        return {pid: (p if p.author == signed[pid][0] else replace(p, author=signed[pid][0]), signed[pid][1])
                for pid, p in current.items()}

    def _version_sigs(self, records: Mapping[str, tuple[str, dict[str, Any]]]) -> dict[str, tuple[str, bytes]]:
        """Per pattern whose current version (``records``, as in :meth:`_current`) is signed: its
        author and the signature (signed now if this agent is the one to sign it; see
        :meth:`_signed_current`)."""
        if not records:
            return {}
        out: dict[str, tuple[str, bytes]] = {}
        late: list[tuple[str, str, str, bytes]] = []
        for pid, (author, _, digest, sig) in self.store.version_signatures(list(records)).items():
            by = str(records[pid][1]["updated_by"])
            if sig is None and self.identity.ring.version_signer(author or self.agent, by) == self.agent:
                author = author or self.agent
                sig = self.identity.signer.sign(version_message(pid, author, digest))
                late.append((pid, author, digest, sig))
            if sig is not None:
                out[pid] = (author, sig)
        self.store.sign_versions(late)
        return out

    def _current(self, records: Mapping[str, tuple[str, dict[str, Any]]]) -> dict[str, Pattern]:
        """The current copies (their authors' figures) of patterns known by their body digest and
        revision record (from :meth:`~swarm.memory.store.PatternStore.revision_records`): from
        the served cache, or read."""
        out: dict[str, Pattern] = {}
        keys = {pid: (body, *record.values()) for pid, (body, record) in records.items()}
        for pid, key in keys.items():
            p = self._served.get(key)
            if p is not None:
                out[pid] = p
        read = self.store.get_many([pid for pid in keys if pid not in out], base=True)
        for pid, p in read.items():
            self._served[keys[pid]] = p  # read in the same state as the record (nothing wrote since)
            out[pid] = p
        return out

    def recent(self, n: int, since: int = 0) -> list[Entry]:
        """Up to the last ``n`` writes this node learned of after arrival number ``since``."""
        if n <= 0:
            return []
        rows = [r for _, r in self.store.replica_recent(since, n)]
        revoked = self.identity.revoked
        rows = [r for r in rows if origin_node(r[0]) not in revoked]
        versions = [r for r in rows if not r[5].startswith(CONTRIBUTION_BODY)]
        records = self.store.revision_records(list({r[2] for r in versions}))
        whole = self._signed_current(records)
        gone = self.store.deletion_proofs([r[2] for r in versions if r[2] not in records])
        sigs = self._write_sigs(rows)
        out = []
        for o, q, pid, v, by, body, _ in rows:
            sig = sigs.get((o, q))
            if sig is not None and body.startswith(CONTRIBUTION_BODY):
                out.append(_contribution_entry(o, q, pid, body, sig))
            elif sig is None or (pid not in whole and pid not in gone):
                continue  # unproven: not pushed (a pull of it counts it unservable)
            else:
                out.append(Entry(o, q, whole[pid][0], sig, whole[pid][1]) if pid in whole
                           else Entry(o, q, Tombstone(pid, v, by, *gone[pid]), sig))  # deleted here since
        return out

    # ---- what the node writes ----

    def write_many(self, patterns: Iterable[Pattern], deleted: Iterable[DeletedKey] = (),
                   now: float = 0.0, contributions: Iterable[Contribution] = ()) -> list[Entry]:
        """Local writes, deletions and contributions, numbered as this node's and signed, in one
        transaction. The store takes a pattern not yet in it (or newer than its copy); patterns
        carry their authors' figures (see :meth:`~swarm.memory.store.PatternStore.changed_since`);
        a deletion is one the store made already, and starts a tombstone recorded at ``now``; a
        contribution is this agent's record on another's pattern, as the store holds it. A
        pattern nobody authors yet becomes this agent's; a version this agent may not sign (a
        change to another author's pattern) is not published (peers would refuse it), nor is
        anything once this agent is revoked."""
        if self.agent in self.identity.revoked:
            return []
        # what each write needs signed is gathered first and signed as one batch at the end
        # (Signer.sign_many): ``messages[i]``'s proof is ``signed_now[i]``
        messages: list[bytes] = []

        def to_sign(message: bytes) -> int:
            messages.append(message)
            return len(messages) - 1

        # (seq, payload, its write's message, its version's signature held or message to sign, body)
        planned: list[tuple[int, Pattern | Tombstone | Contribution, int, bytes | int | None, str]] = []
        patterns = list(patterns)
        seen = self.store.replica_held([(p.id, p.version, p.updated_by) for p in patterns])
        held = self.store.version_signatures([p.id for p in patterns])
        ring = self.identity.ring
        signing: list[tuple[str, str, str, int]] = []  # versions signed now: (id, author, digest, message)
        for p in patterns:
            key = (p.id, p.version, p.updated_by)
            if key in seen:
                continue
            seen.add(key)
            body = p.body_digest()
            author, _, digest, version_sig = held.get(p.id) or (p.author, body, "", None)
            author = author or self.agent
            mine = revision_digest(body, revision_of(p))
            version: bytes | int | None = version_sig
            if version_sig is None or digest != mine:  # a new version: this agent's to sign, if it may
                if ring.version_signer(author, p.updated_by) != self.agent:
                    self.unpublished += 1
                    continue
                version = to_sign(version_message(p.id, author, mine))
                signing.append((p.id, author, mine, version))
            self._own += 1
            planned.append((self._own, p if p.author == author else replace(p, author=author),
                            to_sign(write_message(self.node_id, self._own, p.id)), version, body))
        tombstones: list[DeletedKey] = []
        proofs: list[tuple[str, str, bytes]] = []
        deleted = list(deleted)
        authors = self.store.deleted_authors([pid for pid, _, _ in deleted])
        for pid, version_no, by in deleted:
            author = authors.get(pid, "")
            if author and not ring.may_change(self.agent, author):
                self.unpublished += 1  # another author's pattern: deleted here only
                continue
            proof = self.identity.signer.sign(deletion_message(pid, self.agent))  # kept whole by its tombstone
            self._own += 1
            planned.append((self._own, Tombstone(pid, version_no, by, self.agent, proof),
                            to_sign(write_message(self.node_id, self._own, pid)), None, TOMBSTONE_BODY))
            tombstones.append((pid, version_no, by))
            proofs.append(("*" if self.agent in ring.curators else self.agent, self.agent, proof))
        contributions = list(contributions)
        logged = self.store.replica_held([(c.pattern_id, c.uses, c.contributor) for c in contributions])
        for c in contributions:
            if c.contributor != self.agent:
                raise ValueError(f"{self.agent} cannot publish {c.contributor!r}'s contribution")
            if (c.pattern_id, c.uses, c.contributor) in logged:
                continue  # written already (a rejoin announces every record it holds)
            self._own += 1
            planned.append((self._own, c, to_sign(contribution_message(self.node_id, self._own, c.pattern_id,
                                                                       c.values())), None, _contribution_body(c)))
        signed_now = self.identity.signer.sign_many(messages)

        def proof_of(x: bytes | int | None) -> bytes | None:
            return signed_now[x] if isinstance(x, int) else x

        rows: list[ReplicaRow] = []
        out: list[Entry] = []
        for seq, payload, write, version, body in planned:
            sig = signed_now[write]
            if isinstance(payload, Contribution):
                rows.append((self.node_id, seq, payload.pattern_id, payload.uses, payload.contributor, body, sig))
            else:
                rows.append((self.node_id, seq, payload.id, payload.version, payload.updated_by, body, sig))
            out.append(Entry(self.node_id, seq, payload, sig, proof_of(version)))
        signed = [(pid, author, digest, signed_now[i]) for pid, author, digest, i in signing]
        written = [e.pattern for e in out if isinstance(e.pattern, Pattern)]
        if rows:
            self.store.replica_log(rows, written, tombstones, now,
                                   bodies=[r[5] for r in rows[:len(written)]],
                                   version_sigs=[e.version_sig for e in out[:len(written)]], proofs=proofs)
            self.store.sign_versions(signed)  # for patterns the store held already (not rewritten)
            self._took(rows, tombstones, now)
        return out

    def apply(self, entries: Iterable[Entry], now: float = 0.0) -> list[str]:
        """Take writes from a peer; return the ids whose figures changed. A write whose signature
        (or whose version's signature) does not verify raises :class:`~.codec.ProtocolError`
        (nothing is taken); one whose signer's key is not known here yet is left (asked for again
        later)."""
        fresh = self._verified(entries)
        rows: list[ReplicaRow] = []
        incoming: list[Pattern] = []
        incoming_bodies: list[str] = []
        incoming_sigs: list[bytes | None] = []
        revised: list[dict[str, Any]] = []
        tombstones: list[DeletedKey] = []
        proofs: list[tuple[str, str, bytes]] = []
        contributions: list[Contribution] = []
        bodies: dict[str, Pattern] = {}  # body digest -> a pattern earlier in this batch with that body
        heads = self.store.heads(list({e.pattern.id for e in fresh}))
        revoked, ring = self.identity.revoked, self.identity.ring
        for e in fresh:
            p = e.pattern
            head = heads.get(p.id)
            if isinstance(p, Contribution):
                row: ReplicaRow = (e.origin, e.seq, p.id, p.uses, p.contributor, _contribution_body(p), e.sig)
                contributions.append(p)
            elif isinstance(p, Tombstone):
                row = (e.origin, e.seq, p.id, p.version, p.updated_by, TOMBSTONE_BODY, e.sig)
                ok = ring.verify(p.deleter, deletion_message(p.id, p.deleter), p.proof)
                if ok is None:
                    self.unverified += 1  # the deleter's key is not known here yet: asked for again
                    continue
                if not ok:
                    raise ProtocolError(f"deletion of {p.id!r}: its proof is not {p.deleter!r}'s")
                if p.deleter in revoked or (head is not None and head[3] and not ring.may_change(p.deleter, head[3])):
                    self.refused += 1  # only a pattern's author (or a curator) deletes it: held, nothing applied
                else:
                    tombstones.append((p.id, p.version, p.updated_by))
                    proofs.append(("*" if p.deleter in ring.curators else p.deleter, p.deleter, p.proof))
            elif isinstance(p, Revision):
                version, by = int(p.fields.get("version", 0)), str(p.fields.get("updated_by", ""))
                row = (e.origin, e.seq, p.id, version, by, p.body, e.sig)
                earlier = bodies.get(p.body)
                author = head[3] if head is not None and head[2] == p.body else (
                    earlier.author if earlier is not None and earlier.id == p.id else None)
                if head is not None and version > head[0] + MAX_VERSION_STEP:
                    self.refused += 1
                elif author is None:  # over a body not held here
                    if not self._superseded(p.id, head, version, by):
                        self.unresolved += 1  # the sender was wrong: asked for again
                        continue
                elif head is not None and earlier is None and (version, by) <= (head[0], head[1]):
                    pass  # not newer than the copy held: held, nothing to apply
                else:
                    fields = [p.fields[k] for k in REVISION_FIELDS]
                    if not self._version_proven(p.id, author, by, revision_digest(p.body, fields), e.version_sig):
                        self.unverified += 1  # the signer's key is not known here yet: asked for again
                        continue
                    if earlier is not None and earlier.id == p.id:  # over a body earlier in this batch
                        incoming.append(replace(earlier, **{k: v for k, v in p.fields.items() if k != "id"}))
                        incoming_bodies.append(p.body)
                        incoming_sigs.append(e.version_sig)
                    else:  # over the body held: the store applies it
                        revised.append({**p.fields, "body": p.body, "sig": e.version_sig})
            else:
                body = p.body_digest()
                row = (e.origin, e.seq, p.id, p.version, p.updated_by, body, e.sig)
                if p.author in revoked:
                    self.refused += 1
                elif (head is not None and head[3] not in ("", p.author) and p.author not in ring.curators) or p.version > (
                        head[0] if head is not None else 0) + MAX_VERSION_STEP:
                    self.refused += 1  # another author's pattern id, or a version out of reach
                elif head is not None and (p.version, p.updated_by) <= (head[0], head[1]) and head[2] == body:
                    pass  # this body at no newer a version: held, nothing to apply
                elif not self._version_proven(p.id, p.author, p.updated_by, revision_digest(body, revision_of(p)),
                                              e.version_sig):
                    self.unverified += 1  # the signer's key is not known here yet: asked for again
                    continue
                else:
                    incoming.append(p)
                    incoming_bodies.append(body)
                    incoming_sigs.append(e.version_sig)
                    bodies.setdefault(body, p)
            if e.origin == self.node_id:
                self._own = max(self._own, e.seq)  # our own writes from before a restart
            rows.append(row)
        if not rows:
            return []
        changed, deleted = self.store.replica_log(rows, incoming, tombstones, now, revised, incoming_bodies,
                                                  incoming_sigs, proofs, contributions)
        self.deleted += len(deleted)
        self._took(rows, tombstones, now)
        return list(dict.fromkeys(changed))

    def _verified(self, entries: Iterable[Entry]) -> list[Entry]:
        """The entries not held yet whose origins signed them (one each: a batch may repeat one).
        Those of revoked origins, and of origins whose key is not known here, are left out."""
        out: list[Entry] = []
        taken: set[tuple[str, int]] = set()
        ring, revoked = self.identity.ring, self.identity.revoked
        for e in entries:
            if self.holds(e.origin, e.seq) or (e.origin, e.seq) in taken:
                continue
            agent = origin_node(e.origin)
            if agent in revoked:
                self.revoked += 1
                continue
            p = e.pattern
            message = (contribution_message(e.origin, e.seq, p.id, p.values()) if isinstance(p, Contribution)
                       else write_message(e.origin, e.seq, p.id))
            ok = ring.verify(agent, message, e.sig)
            if ok is None:
                self.unverified += 1
                continue
            if not ok:
                raise ProtocolError(f"write {e.seq} of {e.origin!r} does not carry {agent!r}'s signature")
            taken.add((e.origin, e.seq))
            out.append(e)
        return out

    def _version_proven(self, pid: str, author: str, updated_by: str, digest: str, sig: bytes | None) -> bool:
        """Whether the version of ``author``'s pattern ``pid`` with revision ``digest`` carries
        its signer's signature (its author's, or the curator's that made it): False when the
        signer's key is not known here; raises :class:`~.codec.ProtocolError` when it does not."""
        signer = self.identity.ring.version_signer(author, updated_by) if author else ""
        ok = None if not signer else self.identity.ring.verify(signer, version_message(pid, author, digest), sig or b"")
        if ok is False or not signer:
            raise ProtocolError(f"pattern {pid!r}: version {updated_by!r} made is not signed by {signer or 'its author'!r}")
        return bool(ok)

    def _superseded(self, pid: str, head: tuple[int, str, str, str] | None, version: int, by: str) -> bool:
        """Whether a version of ``pid`` whose body is not held here would change nothing: the
        copy here (``head``) is newer (its body changed since, say by a consolidation here), or the
        pattern was deleted here (the deletion wins). Such a write is held (the origin's
        high-water mark moves on) and applies nothing."""
        if head is None:
            return self.store.replica_knows(pid)
        return (head[0], head[1]) > (version, by)

    def quarantine(self, agents: Iterable[str]) -> list[str]:
        """Delete here the patterns revoked ``agents`` authored; returns their ids. Their later
        writes, and copies of their patterns from others, are refused from now on."""
        out: list[str] = []
        for agent in sorted(agents):
            out += self.store.quarantine(agent)
        self._served.clear()
        return out

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
