"""The store as the gossip replica: anti-entropy over the store's write log, no copy kept beside it."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from swarm.gossip import GossipConfig, GossipNode, StoreReplica, Tombstone
from swarm.gossip.codec import Entry, Revision
from swarm.memory.models import apply_outcome
from swarm.memory.store import PatternStore
from swarm.memory.transfer import revision_to_record
from tests.identities import ident, signed_entry

from .test_protocol import DIM, Net, pattern


def node(name: str, store: PatternStore, **cfg: float) -> GossipNode:
    return GossipNode(name, GossipConfig(dim=DIM, fanout=2, **cfg), seed=1, store=store, identity=ident(name))


def pair(tmp_path, *names: str, **cfg: float) -> tuple[Net, dict[str, PatternStore]]:
    stores = {n: PatternStore(tmp_path / f"{n}.db", dim=DIM) for n in names}
    net = Net({n: node(n, s, **cfg) for n, s in stores.items()})
    for n in net.nodes.values():
        n.bootstrap(list(names), 0.0)
    return net, stores


def publish(net: Net, name: str, store: PatternStore, since: int = 0) -> int:
    """What an agent does at an episode's end: its store's writes and deletions since ``since``."""
    changed, upto = store.changed_since(since)
    net.nodes[name].publish(changed, net.now, store.deleted_between(since, upto))
    return upto


def test_writes_replicate_between_stores_and_survive_a_reopen(tmp_path):
    a, b = PatternStore(tmp_path / "a.db", dim=DIM), PatternStore(tmp_path / "b.db", dim=DIM)
    net = Net({"a": node("a", a), "b": node("b", b)})
    for n in net.nodes.values():
        n.bootstrap(["a", "b"], 0.0)
    mine = [pattern(i) for i in range(20)]
    a.put_many(mine)
    assert net.nodes["a"].publish(a.changed_since(0)[0], 0.0) == 20
    net.run(5.0)
    assert {p.id for p in b.iter_patterns()} == {p.id for p in mine}  # straight into b's store
    assert net.nodes["b"].digest() == net.nodes["a"].digest() == {"a": 20}
    b.close()
    reopened = PatternStore(tmp_path / "b.db", dim=DIM)
    assert StoreReplica(reopened, "b", ident("b")).digest() == {"a": 20}  # a restart keeps the replica


def test_copies_received_are_never_published_again_as_own(tmp_path):
    a, b = PatternStore(tmp_path / "a.db", dim=DIM), PatternStore(tmp_path / "b.db", dim=DIM)
    net = Net({"a": node("a", a), "b": node("b", b)})
    for n in net.nodes.values():
        n.bootstrap(["a", "b"], 0.0)
    a.put_many([pattern(i) for i in range(5)])
    net.nodes["a"].publish(a.changed_since(0)[0], 0.0)
    net.run(5.0)
    received, _ = b.changed_since(0)  # the store's change feed shows the merged copies...
    assert len(received) == 5
    assert net.nodes["b"].publish(received, 5.0) == 0  # ...but they are not b's writes
    assert "b" not in net.nodes["b"].digest()
    pid = received[0].id
    [seen] = b.record_outcomes([(pid, True, 0.01)], 6.0, by="b")  # b using a's pattern: b's contribution
    assert seen.uses == received[0].uses + 1 and seen.version == received[0].version  # a's version stays
    changed, top = b.changed_since(0, unlogged=True)
    assert changed == [] and net.nodes["b"].publish(changed, 6.0, contributions=b.own_contributions("b", 0, top)) == 1
    net.run(10.0)
    assert a.get(pid).uses == seen.uses and net.nodes["a"].digest()["b"] == 1
    assert [(c.contributor, c.uses, c.total_reward) for c in a.contributions(pid)] == [("b", 1, 0.01)]


def test_an_old_write_is_served_with_the_current_version(tmp_path):
    store = PatternStore(tmp_path / "a.db", dim=DIM)
    r = StoreReplica(store, "a", ident("a"))
    p1 = pattern(1)
    store.put_many([p1])
    r.write_many([p1])
    p2 = apply_outcome(p1, True, 0.02, 3.0, by="a")
    store.put_many([p2])
    r.write_many([p2])
    sent = r.missing_for({}, 10, revisions=False)
    assert [(e.origin, e.seq) for e in sent] == [("a", 1), ("a", 2)]
    assert all(e.pattern.version == p2.version for e in sent)  # one copy: the current one
    # with revisions: the second write goes as statistics over the body the first one carried
    first, second = r.missing_for({}, 10)
    assert not isinstance(first.pattern, Revision) and isinstance(second.pattern, Revision)


def test_revisions_resolve_over_a_held_body_and_count_when_they_cannot(tmp_path):
    store = PatternStore(tmp_path / "b.db", dim=DIM)
    r = StoreReplica(store, "b", ident("b"))
    p1 = pattern(1)
    assert r.apply([signed_entry("a", 1, p1)]) == [p1.id]
    p2 = apply_outcome(p1, True, 0.02, 3.0, by="a")
    rev = Revision(p1.body_digest(), revision_to_record(p2))
    assert r.apply([signed_entry("a", 2, rev)]) == [p1.id]  # applied in the store, nothing decoded
    got = store.get(p1.id)
    assert got.version == p2.version and store.get(p1.id).uses == p2.uses
    stranger = Revision(pattern(7).body_digest(), revision_to_record(pattern(7)))
    assert r.apply([signed_entry("a", 3, stranger)]) == [] and r.unresolved == 1
    assert r.digest() == {"a": 2}  # the unresolved write is asked for again


def test_a_revision_applied_in_the_store_equals_the_version_it_describes(tmp_path):
    """The store applies a revision by updating its columns (nothing decoded): the row it leaves is
    the pattern the revision describes, field for field, and the vector index's confidence follows;
    an older revision changes nothing."""
    store = PatternStore(tmp_path / "b.db", dim=DIM)
    r = StoreReplica(store, "b", ident("b"))
    p1 = pattern(1)
    r.apply([signed_entry("a", 1, p1)])
    v = p1
    for i in range(3):
        v = apply_outcome(v, i != 1, 0.03 * (i + 1), float(i + 2), by="a")
    r.apply([signed_entry("a", 2, Revision(p1.body_digest(), revision_to_record(v)))])
    got = store.get(p1.id)
    assert got.digest() == v.digest() and got.body_digest() == p1.body_digest()
    assert store.search(v.embedding, 1, min_confidence=v.confidence - 1e-6)[0][0].id == p1.id
    assert store.search(v.embedding, 1, min_confidence=v.confidence + 1e-6) == []
    older = apply_outcome(p1, True, 0.5, 9.0, by="a")
    assert r.apply([signed_entry("a", 3, Revision(p1.body_digest(), revision_to_record(older)))]) == []
    assert store.get(p1.id).digest() == v.digest() and r.digest() == {"a": 3}


def test_a_newer_revision_before_an_older_whole_copy_in_one_batch_wins(tmp_path):
    store = PatternStore(tmp_path / "b.db", dim=DIM)
    r = StoreReplica(store, "b", ident("b"))
    p1 = pattern(1)
    r.apply([signed_entry("a", 1, p1)])
    v2 = apply_outcome(p1, True, 0.01, 2.0, by="a")
    v3 = apply_outcome(v2, False, -0.02, 3.0, by="a")
    r.apply([signed_entry("a", 3, Revision(p1.body_digest(), revision_to_record(v3))), signed_entry("a", 2, v2)])
    assert store.get(p1.id).digest() == v3.digest() and r.digest() == {"a": 3}


def test_a_deletion_travels_as_a_tombstone_and_old_writes_do_not_bring_it_back(tmp_path):
    net, st_ = pair(tmp_path, "a", "b")
    a, b = st_["a"], st_["b"]
    kept, gone = pattern(1), pattern(2)
    a.put_many([kept, gone])
    seen = publish(net, "a", a)
    net.run(3.0)
    assert {p.id for p in b.iter_patterns()} == {kept.id, gone.id}
    a.delete_many([gone.id])  # the author consolidates it away
    publish(net, "a", a, seen)
    net.run(6.0)
    assert {p.id for p in b.iter_patterns()} == {kept.id}  # the peer no longer serves it
    assert net.nodes["b"].stats.tombstones_applied == 1
    assert net.nodes["a"].digest() == net.nodes["b"].digest() == {"a": 3}
    assert b.deleted_between(0, b.sequence) == []  # b deleted on a's word: nothing of b's to publish
    # a straggler's copy of the old version (a write of c's, arriving late) is refused
    late = apply_outcome(replace(gone, author="a"), True, 0.01, 7.0, by="c")
    assert net.nodes["b"].log.apply([signed_entry("c", 1, late)], 7.0) == [] and b.get(gone.id) is None
    assert net.nodes["b"].digest()["c"] == 1  # ...but held: anti-entropy moves on


def test_a_deleted_patterns_writes_reach_a_newcomer_as_tombstones(tmp_path):
    """A peer that missed a pattern altogether learns its deletion from anyone who holds its writes,
    and the digests converge (no write is left that nobody can serve)."""
    store = PatternStore(tmp_path / "b.db", dim=DIM)
    b = StoreReplica(store, "b", ident("b"))
    p1 = pattern(1)
    b.apply([signed_entry("a", 1, p1), signed_entry("a", 2, apply_outcome(p1, True, 0.02, 1.0, by="a"))], 1.0)
    b.apply([signed_entry("a", 3, Tombstone(p1.id, 2, "a"))], 2.0)
    assert store.get(p1.id) is None
    sent = b.missing_for({}, 10)
    assert [(e.pattern.id, e.pattern.version, e.pattern.updated_by, e.pattern.deleter) for e in sent] == [
        (p1.id, 1, "", "a"), (p1.id, 2, "a", "a"), (p1.id, 2, "a", "a")]  # each with a's signed proof
    newcomer = StoreReplica(PatternStore(":memory:", dim=DIM), "c", ident("c"))
    assert newcomer.apply(sent, 3.0) == []
    assert newcomer.digest() == b.digest() == {"a": 3} and len(newcomer) == 0


def test_a_revision_over_a_body_deleted_here_is_held_not_asked_for_forever(tmp_path):
    store = PatternStore(tmp_path / "b.db", dim=DIM)
    b = StoreReplica(store, "b", ident("b"))
    p1 = pattern(1)
    b.apply([signed_entry("a", 1, p1)], 1.0)
    store.delete_many([p1.id])
    assert b.write_many([], store.deleted_between(0, store.sequence), 2.0) == []  # a's pattern: deleted here only
    assert b.unpublished == 1
    newer = apply_outcome(p1, True, 0.02, 3.0, by="a")  # a kept using it meanwhile
    assert b.apply([signed_entry("a", 2, Revision(p1.body_digest(), revision_to_record(newer)))], 3.0) == []
    assert b.unresolved == 0 and b.digest() == {"a": 2} and store.get(p1.id) is None


def test_a_tombstone_expires_after_its_ttl(tmp_path):
    net, st_ = pair(tmp_path, "a", "b", tombstone_ttl=5.0)
    a, b = st_["a"], st_["b"]
    p1 = pattern(1)
    a.put_many([p1])
    seen = publish(net, "a", a)
    net.run(2.0)
    a.delete_many([p1.id])
    publish(net, "a", a, seen)
    net.run(4.0)
    assert b.replica_guarded([(p1.id, "a")]) == {p1.id}
    net.run(4.0 + 5.0 + 1.5)  # past the TTL, at a gossip round
    assert b.replica_guarded([(p1.id, "a")]) == set() and a.replica_guarded([(p1.id, "a")]) == set()
    # expired: an old write is taken again (why the TTL must outlast any partition)
    assert net.nodes["b"].log.apply([signed_entry("c", 1, replace(p1, author="a"))], net.now) == [p1.id]


writes = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["put", "use", "delete"])), min_size=1, max_size=14)


@settings(max_examples=60, deadline=None)
@given(ops=writes, order=st.randoms(use_true_random=False), cut=st.integers(0, 14))
def test_replicas_that_took_the_same_writes_agree_whatever_the_order(ops, order, cut):
    """Two replicas given one origin's writes (puts, new versions, deletions) in different orders
    and batches end with the same digest and the same patterns at the same versions."""
    current: dict[int, object] = {}
    entries: list[Entry] = []
    for i, op in ops:
        p = current.get(i)
        if op == "delete":
            if p is None:
                continue
            entries.append(signed_entry("o", len(entries) + 1, Tombstone(p.id, p.version, p.updated_by)))
            current.pop(i)
            continue
        p = pattern(i, "o") if p is None else apply_outcome(p, True, 0.01, float(len(entries)), by="o")
        current[i] = p
        entries.append(signed_entry("o", len(entries) + 1, p))
    shuffled = list(entries)
    order.shuffle(shuffled)
    one, two = (StoreReplica(PatternStore(":memory:", dim=DIM), n, ident(n)) for n in ("x", "y"))
    one.apply(entries, 1.0)
    two.apply(shuffled[:cut], 1.0)
    two.apply(shuffled[cut:], 2.0)
    assert one.digest() == two.digest() == ({"o": len(entries)} if entries else {})
    seen = {pid: (p.version, p.updated_by, p.uses) for pid, p in one.patterns.items()}
    assert seen == {pid: (p.version, p.updated_by, p.uses) for pid, p in two.patterns.items()}


def test_a_tombstone_crosses_the_wire_and_a_malformed_one_is_refused():
    import json

    import pytest

    from swarm.gossip import Message, ProtocolError, Tombstone, decode, encode
    from swarm.gossip.codec import DELTA, HEADER, MAGIC, VERSION

    t = Tombstone("pattern-1", 4, "leader")
    msg = Message(DELTA, "a", entries=(signed_entry("a", 7, t),), reply=False)
    [got] = decode(encode(msg), DIM).entries
    assert got == signed_entry("a", 7, t)
    for bad in ([["a", 7, None, ["pattern-1", -1, "x"]]], [["a", 7, None, ["", 1, "x"]]],
                [["a", 7, None, ["p", 1]]], [["a", 7, None, "p"]]):
        payload = json.dumps({"from": "a", "entries": bad, "reply": False}).encode()
        with pytest.raises(ProtocolError):
            decode(HEADER.pack(MAGIC, VERSION, DELTA, len(payload)) + payload, DIM)


def test_a_contribution_is_written_once_however_often_it_is_announced():
    store = PatternStore(":memory:", dim=DIM)
    r = StoreReplica(store, "b", ident("b"))
    theirs = replace(pattern(1), author="a")
    r.apply([signed_entry("a", 1, theirs)])
    store.record_outcomes([(theirs.id, True, 0.5)], 2.0, by="b")
    mine = store.own_contributions("b", 0, store.sequence)
    assert [(c.uses, c.total_reward) for c in mine] == [(1, 0.5)]
    assert len(r.write_many([], contributions=mine)) == 1
    assert r.write_many([], contributions=mine) == []  # a rejoin announces it again: not a new write
    assert r.digest()["b"] == 1
