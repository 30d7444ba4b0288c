"""The store as the gossip replica: anti-entropy over the store's write log, no copy kept beside it."""

from __future__ import annotations

from dataclasses import replace

from swarm.gossip import GossipConfig, GossipNode, ReplicaLog, StoreReplica
from swarm.gossip.codec import Entry, Revision
from swarm.memory.models import apply_outcome
from swarm.memory.store import PatternStore
from swarm.memory.transfer import revision_to_record

from .test_protocol import DIM, Net, pattern


def node(name: str, store: PatternStore) -> GossipNode:
    return GossipNode(name, GossipConfig(dim=DIM, fanout=2), seed=1, replica=lambda origin: StoreReplica(store, origin))


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
    assert net.nodes["b"].log.versions() == []  # nothing kept in memory beside the store
    b.close()
    reopened = PatternStore(tmp_path / "b.db", dim=DIM)
    assert StoreReplica(reopened, "b").digest() == {"a": 20}  # a restart keeps the replica


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
    own = apply_outcome(received[0], True, 0.01, 6.0, by="b")  # b using a pattern is b's write
    b.put_many([own])
    assert net.nodes["b"].publish(b.changed_since(0)[0], 6.0) == 1
    net.run(10.0)
    assert a.get(own.id).version == own.version and net.nodes["a"].digest()["b"] == 1


def test_an_old_write_is_served_with_the_current_version(tmp_path):
    store = PatternStore(tmp_path / "a.db", dim=DIM)
    r = StoreReplica(store, "a")
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
    r = StoreReplica(store, "b")
    p1 = pattern(1)
    assert [p.id for p in r.apply([Entry("a", 1, p1)])] == [p1.id]
    p2 = apply_outcome(p1, True, 0.02, 3.0, by="a")
    rev = Revision(p1.body_digest(), revision_to_record(p2))
    [got] = r.apply([Entry("a", 2, rev)])
    assert got.version == p2.version and store.get(p1.id).uses == p2.uses
    stranger = Revision(pattern(7).body_digest(), revision_to_record(pattern(7)))
    assert r.apply([Entry("a", 3, stranger)]) == [] and r.unresolved == 1
    assert r.digest() == {"a": 2}  # the unresolved write is asked for again


def test_the_store_replica_and_the_memory_replica_agree(tmp_path):
    """The same writes and deliveries leave both replicas with the same digest and patterns."""
    store = PatternStore(tmp_path / "s.db", dim=DIM)
    on_disk, in_memory = StoreReplica(store, "n"), ReplicaLog("n")
    versions = [pattern(i, origin="o") for i in range(6)]
    versions += [apply_outcome(versions[0], i % 2 == 0, 0.01 * i, float(i), by="o") for i in range(1, 4)]
    entries = [Entry("o", i + 1, p) for i, p in enumerate(versions)]
    order = [entries[i] for i in (3, 0, 8, 1, 2, 5, 4, 7, 6)]  # out of order, newest first for one id
    for batch in (order[:4], order[4:], order[2:6]):  # with repeats
        on_disk.apply(batch)
        in_memory.apply(batch)
    assert on_disk.digest() == in_memory.digest() == {"o": 9}
    assert on_disk.patterns.keys() == in_memory.patterns.keys()
    for pid, p in in_memory.patterns.items():
        q = on_disk.patterns[pid]
        assert (q.version, q.updated_by, q.uses, q.digest()) == (p.version, p.updated_by, p.uses, p.digest())
    assert on_disk.writes == in_memory.writes == 9
    assert replace(versions[0]).id in on_disk.patterns


def test_a_tombstone_crosses_the_wire_and_a_malformed_one_is_refused():
    import json

    import pytest

    from swarm.gossip import Message, ProtocolError, Tombstone, decode, encode
    from swarm.gossip.codec import DELTA, HEADER, MAGIC, VERSION

    t = Tombstone("pattern-1", 4, "leader")
    msg = Message(DELTA, "a", entries=(Entry("a", 7, t),), reply=False)
    [got] = decode(encode(msg), DIM).entries
    assert got == Entry("a", 7, t)
    for bad in ([["a", 7, None, ["pattern-1", -1, "x"]]], [["a", 7, None, ["", 1, "x"]]],
                [["a", 7, None, ["p", 1]]], [["a", 7, None, "p"]]):
        payload = json.dumps({"from": "a", "entries": bad, "reply": False}).encode()
        with pytest.raises(ProtocolError):
            decode(HEADER.pack(MAGIC, VERSION, DELTA, len(payload)) + payload, DIM)
