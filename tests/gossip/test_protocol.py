"""The gossip protocol, driven by hand (no network, no clock): replication, membership, codec."""

from __future__ import annotations

import base64
from dataclasses import replace

import numpy as np
import pytest

from swarm.gossip import (
    ALIVE, DEAD, LEFT, SUSPECT, GossipConfig, GossipNode, MemberChanged, Message, PatternsReceived, ProtocolError,
    decode, encode,
)
from swarm.gossip.codec import DIGEST, HEADER, PING, VERSION, FrameReader, Limits, Update
from swarm.memory.models import Pattern, apply_outcome, make_pattern_id
from tests.identities import ident, signed_entry

DIM = 8


def pattern(i: int, origin: str = "a") -> Pattern:
    emb = np.zeros(DIM, dtype=np.float32)
    emb[i % DIM] = 1.0
    emb[(i + 1) % DIM] = 0.5
    return Pattern(id=make_pattern_id(origin, f"p{i}"), title=f"p{i}", description="", content="", domain="d",
                   kind="strategy", action="momentum", embedding=emb / np.linalg.norm(emb), confidence=0.6,
                   created_at=float(i))


class Net:
    """Delivers every frame instantly and ticks all nodes in lockstep; records events."""

    def __init__(self, nodes: dict[str, GossipNode], drop: set[str] = frozenset()) -> None:
        self.nodes, self.down, self.now = nodes, set(drop), 0.0
        self.events: dict[str, list] = {n: [] for n in nodes}
        self.partitioned: set[frozenset[str]] = set()

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for name, node in self.nodes.items():
                if name in self.down:
                    node.outgoing()
                    continue
                self.events[name] += node.events()
                for dest, frame in node.outgoing():
                    if dest in self.down or frozenset((name, dest)) in self.partitioned:
                        continue
                    self.nodes[dest].receive(frame, self.now, sender=name)
                    moved = True

    def run(self, until: float, step: float = 0.1) -> None:
        while self.now < until:
            self.now = round(self.now + step, 10)
            for name, node in self.nodes.items():
                if name not in self.down:
                    node.tick(self.now)
            self.pump()


def cluster(n: int, **cfg) -> Net:
    config = GossipConfig(dim=DIM, **cfg)
    nodes = {f"n{i}": GossipNode(f"n{i}", config, seed=7, identity=ident(f"n{i}")) for i in range(n)}
    net = Net(nodes)
    for name, node in nodes.items():
        if name != "n0":
            node.join(["n0"], 0.0)
    net.pump()
    return net


def test_two_nodes_replicate_a_batch_both_ways():
    net = cluster(2)
    a, b = net.nodes["n0"], net.nodes["n1"]
    a.publish([pattern(i, "a") for i in range(300)], 0.0)
    b.publish([pattern(i, "b") for i in range(200)], 0.0)
    net.run(5.0)
    assert len(a.patterns) == len(b.patterns) == 500
    assert a.digest() == b.digest() == {"n0": 300, "n1": 200}
    got = [e for e in net.events["n1"] if isinstance(e, PatternsReceived)]
    assert sum(len(e.ids) for e in got) == 300


def test_concurrent_outcomes_on_one_pattern_all_count_everywhere():
    """Two members record outcomes on a third's pattern at once, while its author records one of
    its own: each is kept (as a contribution, or the author's new version), and every copy ends
    with all three (a last-writer-wins copy kept one of the two members' outcomes)."""
    net = cluster(3)
    base = replace(pattern(1), author="n0")
    net.nodes["n0"].publish([base], 0.0)
    net.run(3.0)
    for name, ok, reward in (("n1", True, 0.25), ("n2", False, -0.5), ("n0", True, 1.0)):
        store = net.nodes[name].log.store
        store.record_outcomes([(base.id, ok, reward)], 1.0, by=name)
        changed, top = store.changed_since(0, unlogged=True)
        net.nodes[name].publish(changed, 1.0, contributions=store.own_contributions(name, 0, top))
    net.run(6.0)
    copies = {n: node.patterns[base.id] for n, node in net.nodes.items()}
    assert {(p.version, p.updated_by, p.uses, p.successes, p.failures, p.total_reward)
            for p in copies.values()} == {(base.version + 1, "n0", 3, 2, 1, 0.75)}
    assert {c.contributor: c.uses for c in net.nodes["n0"].log.store.contributions(base.id)} == {"n1": 1, "n2": 1}


def _versions(p: Pattern, n: int, by: str) -> list[Pattern]:
    out = []
    for i in range(n):
        p = apply_outcome(p, i % 3 != 0, 0.01 * (i - 2), now=float(i), by=by)
        out.append(p)
    return out


def _replicate_versions(revisions: bool) -> tuple[Net, list[Pattern], int]:
    """20 patterns replicated to 3 nodes, then used 5 times each at n0 (one write per use):
    the net, the latest versions, and the bytes the updates cost."""
    net = cluster(3, revisions=revisions)
    a = net.nodes["n0"]
    originals = [pattern(i) for i in range(20)]
    a.publish(originals, 0.0)
    net.run(3.0)
    before = sum(n.stats.bytes_sent for n in net.nodes.values())
    latest = []
    for p in originals:
        versions = _versions(p, 5, by="n0")
        for v in versions:
            a.publish([v], net.now)
        latest.append(versions[-1])
    net.run(net.now + 6.0)
    return net, latest, sum(n.stats.bytes_sent for n in net.nodes.values()) - before


def test_new_versions_of_a_held_pattern_travel_as_revisions():
    results = {r: _replicate_versions(r) for r in (True, False)}
    for revisions, (net, latest, _) in results.items():
        for node in net.nodes.values():  # every replica holds exactly the latest version
            for want in latest:
                got = node.patterns[want.id]
                assert (got.version, got.uses, got.confidence, got.total_reward) == \
                    (want.version, want.uses, want.confidence, want.total_reward)
                assert got.digest() == want.digest() and np.array_equal(got.embedding, want.embedding)
        assert len({tuple(sorted(n.digest().items())) for n in net.nodes.values()}) == 1
        revised = sum(n.stats.revisions_sent for n in net.nodes.values())
        assert revised >= 2 * 100 * 0.9 if revisions else revised == 0  # 100 writes, 2 peers
        assert all(n.stats.revisions_unresolved == 0 for n in net.nodes.values())
    assert results[True][2] < 0.7 * results[False][2]


def test_a_revision_over_a_body_not_held_is_dropped_until_the_whole_pattern_comes():
    config = GossipConfig(dim=DIM)
    sender, fresh = GossipNode("s", config, seed=1, identity=ident("s")), GossipNode("f", config, seed=1, identity=ident("f"))
    p = pattern(3)
    v2 = _versions(p, 1, by="s")[0]
    sender.publish([p, v2], 0.0)
    told_it_holds_p = sender.log.missing_for({"s": 1}, 10)  # a digest claiming the first write
    assert [type(e.pattern).__name__ for e in told_it_holds_p] == ["Revision"]
    fresh.receive(encode(Message(DIGEST, "s", entries=tuple(told_it_holds_p))), 0.0, sender="s")
    assert fresh.stats.revisions_unresolved == 1 and fresh.digest() == {} and not fresh.patterns
    fresh.receive(encode(Message(DIGEST, "s", entries=tuple(sender.log.missing_for({}, 10)))), 0.1, sender="s")
    assert fresh.digest() == {"s": 2} and fresh.patterns[p.id].version == v2.version


def test_membership_join_spreads_to_everyone():
    net = cluster(5)
    net.run(4.0)
    for name, node in net.nodes.items():
        assert sorted(node.live_members()) == sorted(n for n in net.nodes if n != name)


def test_a_crashed_node_is_suspected_then_declared_dead_everywhere():
    net = cluster(5, suspect_timeout=3.0)
    net.run(3.0)
    net.down.add("n3")
    net.run(15.0)
    for name, node in net.nodes.items():
        if name != "n3":
            assert node.membership.status("n3") == DEAD
            changes = [e.status for e in net.events[name] if isinstance(e, MemberChanged) and e.node == "n3"]
            assert DEAD in changes


def _split_then_heal(**cfg) -> Net:
    """Two halves cut off long enough to declare each other dead, then the cut heals; each half
    keeps writing, so only talking again can bring the digests together."""
    net = cluster(4, suspect_timeout=2.0, **cfg)
    net.run(2.0)
    left, right = ("n0", "n1"), ("n2", "n3")
    net.partitioned |= {frozenset((a, b)) for a in left for b in right}
    for i, name in enumerate(("n0", "n2")):
        net.nodes[name].publish([pattern(i, origin=name)], net.now)
    net.run(20.0)
    assert net.nodes["n0"].membership.status("n2") == DEAD and net.nodes["n2"].membership.status("n0") == DEAD
    net.partitioned.clear()
    net.run(60.0)
    return net


def test_halves_declared_dead_by_a_partition_find_each_other_again():
    net = _split_then_heal()
    for node in net.nodes.values():
        assert sorted(node.live_members()) == sorted(n for n in net.nodes if n != node.id)
    digests = {tuple(sorted(n.digest().items())) for n in net.nodes.values()}
    assert len(digests) == 1 and len(next(iter(digests))) == 2  # both halves' writes everywhere


def test_without_reconnecting_a_healed_partition_stays_split():
    net = _split_then_heal(reconnect_interval=0)
    assert net.nodes["n0"].membership.status("n2") == DEAD  # what the reconnect pings repair


def test_indirect_probes_save_a_node_behind_one_broken_link():
    net = cluster(4)
    net.run(3.0)
    net.partitioned.add(frozenset(("n0", "n1")))  # n0 cannot reach n1 directly, others can
    net.run(20.0)
    assert net.nodes["n0"].membership.status("n1") == ALIVE


def test_a_suspected_node_refutes_with_a_higher_incarnation():
    net = cluster(3)
    net.run(2.0)
    n1 = net.nodes["n1"]
    before = n1.membership.incarnation
    net.nodes["n0"].receive(encode(Message(PING, "n2", (Update("n1", SUSPECT, before),), probe=99)), net.now)
    assert net.nodes["n0"].membership.status("n1") == SUSPECT
    net.run(net.now + 3.0)  # the rumour reaches n1, which refutes it
    assert n1.membership.incarnation == before + 1
    assert net.nodes["n0"].membership.status("n1") == ALIVE
    assert net.nodes["n0"].membership.members["n1"].incarnation == before + 1


def test_leave_is_announced():
    net = cluster(3)
    net.run(2.0)
    net.nodes["n2"].leave(net.now)
    net.pump()
    net.down.add("n2")
    net.run(net.now + 3.0)
    assert net.nodes["n0"].membership.status("n2") == LEFT and net.nodes["n1"].membership.status("n2") == LEFT


def test_a_restarted_node_catches_up_and_resends_what_it_had():
    net = cluster(3)
    net.nodes["n0"].publish([pattern(i) for i in range(50)], 0.0)
    net.run(3.0)
    net.down.add("n2")
    net.nodes["n1"].publish([pattern(100 + i, "b") for i in range(20)], net.now)
    net.run(net.now + 12.0)
    assert net.nodes["n0"].membership.status("n2") == DEAD
    kept = list(net.nodes["n2"].patterns.values())[:10]  # what its own store had committed
    reborn = GossipNode("n2", net.nodes["n0"].config, seed=7, now=net.now, boot=1, identity=ident("n2"))
    reborn.publish(kept, net.now)
    net.nodes["n2"] = reborn
    net.events["n2"] = []
    net.down.discard("n2")
    reborn.join(["n0"], net.now)
    net.pump()
    net.run(net.now + 10.0)
    assert len(reborn.patterns) == 70
    assert net.nodes["n0"].membership.status("n2") == ALIVE


def test_topology_limits_whom_a_node_contacts():
    config = GossipConfig(dim=DIM)
    hub_only = lambda me, live: [m for m in live if m == "hub"] if me != "hub" else live  # noqa: E731
    nodes = {n: GossipNode(n, config, seed=1, contacts=hub_only, identity=ident(n)) for n in ("hub", "s1", "s2", "s3")}
    net = Net(nodes)
    for n in ("s1", "s2", "s3"):
        nodes[n].join(["hub"], 0.0)
    net.pump()
    nodes["s1"].publish([pattern(5)], 0.0)
    sent_to: set[tuple[str, str]] = set()
    orig = {n: node.outgoing for n, node in nodes.items()}
    for n, node in nodes.items():
        def wrapped(n=n, f=orig[n]):
            out = f()
            sent_to.update((n, d) for d, _ in out)
            return out
        node.outgoing = wrapped  # type: ignore[method-assign]
    net.run(6.0)
    assert all(pattern(5).id in node.patterns for node in nodes.values())
    assert all("hub" in pair for pair in sent_to)  # spokes never talk to each other


# ---- codec -------------------------------------------------------------------------------------

def test_codec_round_trip():
    entry = signed_entry("n1", 4, pattern(3))
    msg = Message(DIGEST, "n1", (Update("n2", ALIVE, 3),), digest={"n1": 4}, entries=(entry,), reply=True)
    back = decode(encode(msg), DIM)
    assert back.sender == "n1" and back.digest == {"n1": 4} and back.reply
    assert (back.entries[0].sig, back.entries[0].version_sig) == (entry.sig, entry.version_sig)
    assert back.updates == msg.updates and back.entries[0].pattern.id == pattern(3).id
    assert np.array_equal(back.entries[0].pattern.embedding, pattern(3).embedding)


SIG = base64.b64encode(bytes(64))  # a signature's shape (its worth is the replica's to check)


def _frame(kind: int, body: bytes, version: int = VERSION, magic: bytes = b"SG") -> bytes:
    return HEADER.pack(magic, version, kind, len(body)) + body


@pytest.mark.parametrize("data, why", [
    (b"", "truncated"),
    (b"SG\x01", "truncated"),
    (_frame(PING, b'{"from":"x","probe":1}', magic=b"XX"), "magic"),
    (_frame(PING, b'{"from":"x","probe":1}', version=9), "version"),
    (_frame(42, b"{}"), "unknown message kind"),
    (_frame(PING, b'{"from":"x","probe":1}')[:-3], "truncated"),
    (_frame(PING, b"not json"), "not JSON"),
    (_frame(PING, b"[1,2]"), "JSON object"),
    (_frame(PING, b'{"from":"","probe":1}'), "node id"),
    (_frame(PING, b'{"from":"x","probe":-1}'), "non-negative"),
    (_frame(PING, b'{"from":"x","probe":1,"u":[["y","zombie",1]]}'), "membership update"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,"' + SIG + b'",{"kind":"strategy"},"' + SIG + b'"]]}'), "entry"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,{"kind":"strategy"}]]}'), "entry must be"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,"' + SIG + b'",["p",0.5,1,1,0,0.1,2.0,2,"x"],"' + b"0" * 32
            + b'"]]}'), r"goes with \[body, version signature\]"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,"' + SIG + b'",["p",0.5,1,1,0,0.1,2.0,2,"x"],["not-a-digest","'
            + SIG + b'"]]]}'), "body"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,"' + SIG + b'",["p",0.5,-1,1,0,0.1,2.0,2,"x"],["' + b"0" * 32
            + b'","' + SIG + b'"]]]}'), "uses"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,"' + SIG + b'","c",["p",2,1,0,0.1,2.0]]]}'), "adding up to uses"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,"' + SIG + b'","c",["p",1,1,0,1e999,2.0]]]}'), "total_reward"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,"' + SIG + b'",{"id":"p"},"' + b"0" * 32 + b'"]]}'),
     "'kind' must be"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,"' + SIG + b'",["p"],["' + b"0" * 32 + b'","' + SIG + b'"]]]}'),
     "revision must list"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,"' + SIG + b'",["p"],"' + b"0" * 32 + b'",5]]}'), "entry must be"),
    (_frame(DIGEST, b'{"from":"x","entries":[["x",1,"c2ln",null,["p",1,"x"]]]}'), "signature"),
    (_frame(PING, b'{"from":"x","probe":1}') + b"extra", "does not match"),
])
def test_malformed_frames_raise_one_protocol_error(data, why):
    with pytest.raises(ProtocolError, match=why):
        decode(data, DIM)


def test_oversized_frames_are_refused_before_reading_them():
    big = _frame(PING, b'{"from":"x","probe":1,"pad":"' + b"a" * 5000 + b'"}')
    with pytest.raises(ProtocolError, match="exceeds"):
        decode(big, DIM, Limits(max_frame=1000))
    reader = FrameReader(DIM, Limits(max_frame=1000))
    with pytest.raises(ProtocolError, match="exceeds"):
        list(reader.feed(big[:20]))  # the header alone gives it away


def test_stream_reader_reassembles_split_frames():
    frames = [encode(Message(PING, "a", probe=i)) for i in range(3)]
    blob = b"".join(frames)
    reader = FrameReader(DIM)
    got = []
    for i in range(0, len(blob), 7):
        got += [m.probe for m in reader.feed(blob[i:i + 7])]
    assert got == [0, 1, 2] and reader.pending == 0


def test_a_node_survives_garbage_and_keeps_working():
    net = cluster(2)
    a = net.nodes["n0"]
    before = (dict(a.digest()), dict(a.membership.members))
    for junk in (b"\x00" * 30, b"SG\x01\x01\xff\xff\xff\xff", _frame(PING, b"{}")):
        with pytest.raises(ProtocolError):
            a.receive(junk, 1.0)
    assert (a.digest(), a.membership.members) == before and a.stats.rejected == 3
    net.nodes["n1"].publish([pattern(1)], 1.0)
    net.run(4.0)
    assert pattern(1).id in a.patterns


def test_spoofed_sender_and_foreign_embedding_space_are_refused():
    a = GossipNode("a", GossipConfig(dim=DIM, space="ctx-1"), identity=ident("a"))
    with pytest.raises(ProtocolError, match="claims"):
        a.receive(encode(Message(PING, "b", probe=1)), 0.0, sender="c")
    from swarm.gossip.codec import JOIN
    with pytest.raises(ProtocolError, match="space"):
        a.receive(encode(Message(JOIN, "b", space="ctx-2")), 0.0)
    assert not a.membership.members
