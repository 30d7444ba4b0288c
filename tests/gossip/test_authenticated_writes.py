"""Authenticated writes: a member holding a valid certificate cannot forge another's writes,
change or delete another's patterns, or jump versions out of reach; the swarm CA can revoke it.

Each attack here was taken by the replica before writes were signed (see the "Hostile members"
issue: forged entries under another origin's next sequence numbers dropped that origin's real
writes for good, and a copy of its pattern at version 10**12 titled "POISONED" replaced it
everywhere)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from swarm.gossip import GossipConfig, GossipNode, Identity, KeyRing, ProtocolError, Revoked, Signer, StoreReplica
from swarm.gossip.codec import DELTA, Entry, Message, Revision, Tombstone, encode
from swarm.gossip.identity import (
    SIGNATURE_BYTES,
    IdentityError,
    contribution_message,
    deletion_message,
    version_message,
    write_message,
)
from swarm.gossip.replication import MAX_VERSION_STEP
from swarm.memory.models import Contribution, Pattern, apply_outcome, revision_digest, revision_of
from swarm.memory.store import PatternStore
from swarm.memory.transfer import revision_to_record
from swarm.transport.quic import SwarmCA
from tests.identities import ident, signed_entry

from .test_protocol import DIM, Net, pattern


def signed_version(signer: Signer, p: Pattern) -> bytes:
    """``signer``'s signature of ``p``'s version (as its author's, whoever ``p.author`` is)."""
    return signer.sign(version_message(p.id, p.author, revision_digest(p.body_digest(), revision_of(p))))


def forged(by: str, origin: str, seq: int, payload: object, body_author: str | None = None) -> Entry:
    """An entry ``by`` makes up: claiming ``origin``'s ``seq``-th write, signed with ``by``'s own
    key (the only one it has); a whole pattern's version signed by ``body_author`` (default ``by``)."""
    signer = ident(by).signer
    sig = signer.sign(write_message(origin, seq, payload.id))  # type: ignore[attr-defined]
    if isinstance(payload, Tombstone):
        return Entry(origin, seq, replace(payload, deleter=by, proof=signer.sign(deletion_message(payload.id, by))), sig)
    if isinstance(payload, Revision):
        return Entry(origin, seq, payload, sig)
    author = body_author or by
    p = replace(payload, author=payload.author or author)  # type: ignore[type-var]
    return Entry(origin, seq, p, sig, signed_version(ident(author).signer, p))


def replica(name: str) -> StoreReplica:
    return StoreReplica(PatternStore(":memory:", dim=DIM), name, ident(name))


def test_writes_claiming_another_origin_are_refused_and_its_real_writes_still_land():
    ident("b")  # a member: the swarm knows its key
    r = replica("c")
    real = [pattern(i, "b") for i in range(3)]
    with pytest.raises(ProtocolError, match="does not carry 'b'"):
        r.apply([forged("m", "b", 1, pattern(9, "m"))])
    assert r.digest() == {} and len(r) == 0  # nothing taken, the connection is closed
    r.apply([signed_entry("b", i + 1, p) for i, p in enumerate(real)])
    assert r.digest() == {"b": 3} and {p.id for p in r.store} == {p.id for p in real}


def test_a_member_cannot_overwrite_another_members_pattern():
    r = replica("c")
    b0 = replace(pattern(0, "b"), author="b")
    r.apply([signed_entry("b", 1, b0)])
    poisoned = replace(b0, title="POISONED", version=10**12, updated_by="m")
    # under its own name, with a body it signed: held (m's stream goes on), nothing applied
    assert r.apply([forged("m", "m", 1, poisoned)]) == []
    # claiming b wrote the body (m signs it: b's key does not verify it)
    as_b = replace(poisoned, author="b", version=b0.version + 1)
    with pytest.raises(ProtocolError, match="not signed by 'b'"):
        r.apply([Entry("m", 2, as_b, ident("m").signer.sign(write_message("m", 2, b0.id)),
                       signed_version(ident("m").signer, as_b))])
    held = r.store.get(b0.id)
    assert held is not None and held.title == b0.title and held.version == b0.version and held.author == "b"
    assert r.refused == 1 and r.digest() == {"b": 1, "m": 1}


def test_versions_cannot_jump_out_of_reach():
    r = replica("c")
    b0 = replace(pattern(0, "b"), author="b")
    r.apply([signed_entry("b", 1, b0)])
    far = apply_outcome(b0, True, 0.01, 1.0, by="b")
    far = replace(far, version=b0.version + MAX_VERSION_STEP + 1)
    assert r.apply([signed_entry("b", 2, Revision(b0.body_digest(), revision_to_record(far)))]) == []
    near = replace(far, version=b0.version + 1)
    assert r.apply([signed_entry("b", 3, Revision(b0.body_digest(), revision_to_record(near)))]) == [b0.id]
    assert r.store.get(b0.id).version == b0.version + 1 and r.refused == 1  # type: ignore[union-attr]
    fresh = replace(pattern(1, "b"), author="b", version=MAX_VERSION_STEP + 5)
    assert r.apply([signed_entry("b", 4, fresh)]) == [] and r.store.get(fresh.id) is None


def test_only_a_patterns_author_or_a_curator_deletes_it():
    ring = KeyRing()
    ids = {}
    for name in ("b", "c", "m", "lead"):
        signer = Signer.derive(name, b"curation")
        ring.add(name, signer.public_bytes, curator=name == "lead")
        ids[name] = Identity(signer, ring)

    def entry(origin: str, seq: int, payload: object) -> Entry:
        s = ids[origin].signer
        sig = s.sign(write_message(origin, seq, payload.id))  # type: ignore[attr-defined]
        if isinstance(payload, Tombstone):
            return Entry(origin, seq, replace(payload, deleter=origin,
                                              proof=s.sign(deletion_message(payload.id, origin))), sig)
        p = replace(payload, author=origin)  # type: ignore[type-var]
        return Entry(origin, seq, p, sig, signed_version(s, p))

    r = StoreReplica(PatternStore(":memory:", dim=DIM), "c", ids["c"])
    b0, b1 = pattern(0, "b"), pattern(1, "b")
    r.apply([entry("b", 1, b0), entry("b", 2, b1)])
    assert r.apply([entry("m", 1, Tombstone(b0.id, 1, "m"))]) == [] and r.store.get(b0.id) is not None
    r.apply([entry("b", 3, Tombstone(b0.id, 1, "b"))])
    r.apply([entry("lead", 1, Tombstone(b1.id, 1, "lead"))])
    assert len(r.store) == 0 and r.deleted == 2 and r.refused == 1
    # a relay that serves a write as a deletion needs the author's signed proof
    r2 = StoreReplica(PatternStore(":memory:", dim=DIM), "m", ids["m"])
    r2.apply([entry("b", 1, b0)])
    turned = Entry("b", 1, Tombstone(b0.id, 1, "b", "b", ids["m"].signer.sign(deletion_message(b0.id, "b"))),
                   ids["b"].signer.sign(write_message("b", 1, b0.id)))
    r3 = StoreReplica(PatternStore(":memory:", dim=DIM), "c", Identity(ids["c"].signer, ring))
    r3.apply([entry("b", 2, b1)])
    with pytest.raises(ProtocolError, match="proof is not 'b'"):
        r3.apply([turned])


def test_writes_of_an_unknown_key_wait_until_it_is_known():
    ring = KeyRing()
    me = Signer.derive("c", b"wait")
    ring.add("c", me.public_bytes)
    r = StoreReplica(PatternStore(":memory:", dim=DIM), "c", Identity(me, ring))
    stranger = Signer.derive("s", b"wait")
    p = replace(pattern(0, "s"), author="s")
    e = Entry("s", 1, p, stranger.sign(write_message("s", 1, p.id)), signed_version(stranger, p))
    assert r.apply([e]) == [] and r.digest() == {} and r.unverified == 1  # not held: asked for again
    ring.add("s", stranger.public_bytes)
    assert r.apply([e]) == [p.id] and r.digest() == {"s": 1}


def test_another_members_body_changes_stay_local_and_the_authors_go_out_signed():
    store = PatternStore(":memory:", dim=DIM)
    r = StoreReplica(store, "c", ident("c"))
    b0 = replace(pattern(0, "b"), author="b")
    r.apply([signed_entry("b", 1, b0)])
    edited = replace(b0, title="mine now").bumped("c")
    store.put_many([edited])
    assert r.write_many([edited]) == [] and r.unpublished == 1
    own = pattern(5, "c")
    store.put_many([own])
    [e] = r.write_many([own])
    assert e.pattern.author == "c" and store.get(own.id).author == "c"  # type: ignore[union-attr]
    assert ident("c").ring.verify("c", version_message(own.id, "c", revision_digest(own.body_digest(), revision_of(own))),
                                  e.version_sig or b"")
    assert ident("c").ring.verify("c", write_message("c", 1, own.id), e.sig)


class Bus(Net):
    """The test network, refusing frames as the gossip bus does: a frame that raises
    ProtocolError is counted and dropped, and the node goes on."""

    refused = 0

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for name, node in self.nodes.items():
                self.events[name] += node.events()
                for dest, frame in node.outgoing():
                    try:
                        self.nodes[dest].receive(frame, self.now, sender=name)
                    except ProtocolError:
                        self.refused += 1
                    moved = True


def _ca_swarm(names: list[str]) -> tuple[SwarmCA, dict, dict[str, Identity]]:
    ca = SwarmCA.generate()
    ring = KeyRing(ca.certificate)
    creds = {n: ca.issue(n, write_key=Signer.derive(n, b"crl").key) for n in names}
    for c in creds.values():
        ring.admit(c.certificate)
    return ca, creds, {n: Identity(creds[n].signer, ring) for n in names}


class _CountingKey:
    """A public key that counts the signature checks it does."""

    def __init__(self, key):
        self.key, self.checks = key, 0

    def verify(self, signature, message):
        self.checks += 1
        return self.key.verify(signature, message)


def test_the_key_ring_checks_a_signature_once_and_remembers_only_successes(monkeypatch):
    signer = Signer.derive("v", b"cache")
    ring = KeyRing()
    ring.add("v", signer.public_bytes)
    key = ring._keys["v"] = _CountingKey(ring._keys["v"])
    good = signer.sign(b"m")
    assert ring.verify("v", b"m", good) and ring.verify("v", b"m", good)
    assert key.checks == 1  # the repeat came from the cache
    assert ring.verify("v", b"other", good) is False  # another message: checked, and refused
    bad = bytes([good[0] ^ 1]) + good[1:]
    assert ring.verify("v", b"m", bad) is False and ring.verify("v", b"m", bad) is False
    assert key.checks == 4  # failures are checked every time, never remembered
    assert ring.checked == 4  # what the ring counts: the checks made with a key
    assert ring.verify("w", b"m", good) is None  # an unknown agent, whatever is cached
    ring.add("u", Signer.derive("u", b"cache").public_bytes)
    assert ring.verify("u", b"m", good) is False  # v's signature, cached, is not u's
    monkeypatch.setattr("swarm.gossip.identity.VERIFIED_KEPT", 2)
    for m in (b"1", b"2", b"3"):
        assert ring.verify("v", m, signer.sign(m))
    assert len(ring._verified) == 2 and ("v", b"m", good) not in ring._verified  # the oldest went
    assert ring.verify("v", b"m", good) and key.checks == 8
    assert ring.checked == 9 and signer.signed == 4  # u's refusal was a check too; v signed m, 1, 2, 3


def test_a_batch_proof_proves_its_own_message_and_nothing_else():
    """Signed together, each message gets a proof: one signature per BATCH_MAX messages, each
    proof checks its own message only, and any change to it (a bit of its signature, place or
    path, its length, the key) makes it fail; a proof's signature is no plain signature."""
    from swarm.gossip.identity import BATCH_MAX, signature_size_ok

    signer = Signer.derive("v", b"batch")
    ring = KeyRing()
    ring.add("v", signer.public_bytes)
    ring.add("u", Signer.derive("u", b"batch").public_bytes)
    for n in (1, 2, 3, BATCH_MAX, BATCH_MAX + 1, 2 * BATCH_MAX + 3):
        messages = [b"swarm-write/1\x00v\x1f%d\x1fp%d" % (n, i) for i in range(n)]
        made, checked = signer.signed, ring.checked
        proofs = signer.sign_many(messages)
        batches = -(-n // BATCH_MAX)
        assert signer.signed - made == batches
        assert [len(p) for p in proofs[:1]] == [SIGNATURE_BYTES if n == 1 else SIGNATURE_BYTES + 4 + 32 * min(
            (n - 1).bit_length(), (BATCH_MAX - 1).bit_length())]
        assert all(ring.verify("v", m, p) for m, p in zip(messages, proofs))
        assert ring.checked - checked == batches  # one check per batch, the rest by hashing
        for i, (m, p) in enumerate(zip(messages, proofs)):
            assert ring.verify("u", m, p) is False  # another agent's key
            assert ring.verify("v", m + b"!", p) is False
            if n > 1:
                assert ring.verify("v", messages[(i + 1) % n], p) is False  # another message's proof
            for at in range(0, len(p), 7 if len(p) > SIGNATURE_BYTES else 13):
                bent = p[:at] + bytes([p[at] ^ 0x10]) + p[at + 1:]
                assert ring.verify("v", m, bent) is False, at
            assert ring.verify("v", m, p + bytes(32)) is False and ring.verify("v", m, p[:-1]) is False
            if len(p) > SIGNATURE_BYTES:
                assert ring.verify("v", m, p[:SIGNATURE_BYTES]) is False  # the root's signature alone
                depth = (len(p) - SIGNATURE_BYTES - 4) // 32
                outside = p[:SIGNATURE_BYTES] + (1 << depth).to_bytes(4, "big") + p[SIGNATURE_BYTES + 4:]
                assert ring.verify("v", m, outside) is False
    assert signature_size_ok(SIGNATURE_BYTES + 4 + 32 * 3) and not signature_size_ok(SIGNATURE_BYTES + 4 + 32 * 4)
    assert not signature_size_ok(SIGNATURE_BYTES + 4)  # a proof climbs at least one level


def test_a_frame_carries_proofs_and_refuses_a_signature_of_another_size():
    """The codec takes a signature or a batch proof by size (the key ring checks what it proves),
    and names anything else."""
    import base64

    from swarm.gossip.codec import decode

    a = ident("a")
    p = pattern(1, "a")
    proofs = a.signer.sign_many([b"one", b"two", b"three"])
    frame = encode(Message(DELTA, "a", entries=(Entry("a", 1, p, proofs[2], proofs[1]),)))
    back = decode(frame, DIM).entries[0]
    assert (back.sig, back.version_sig) == (proofs[2], proofs[1])
    rest = base64.b64encode(proofs[2][SIGNATURE_BYTES:])
    bad = frame.replace(rest, base64.b64encode(proofs[2][SIGNATURE_BYTES:] + b"x"))
    assert bad != frame
    with pytest.raises(ProtocolError, match="'signature' must be a signature"):
        decode(_reframe(bad), DIM)


def test_a_frame_lists_each_batch_signature_once_and_refuses_a_root_it_does_not_list():
    """Proofs of one batch share its root's signature: a frame carries it once and each proof
    names it by place; a place outside the list, or a listed root of another size, is refused."""
    import json

    from swarm.gossip.codec import HEADER, decode

    a, b = ident("a"), ident("b")
    first = a.signer.sign_many([b"1", b"2", b"3", b"4"])
    second = b.signer.sign_many([b"5", b"6"])
    plain = b.signer.sign(b"7")
    entries = (Entry("a", 1, pattern(1, "a"), first[0], first[1]), Entry("a", 2, pattern(2, "a"), first[2], first[3]),
               Entry("b", 1, pattern(3, "b"), second[0], second[1]), Entry("b", 2, pattern(4, "b"), plain, plain))
    frame = encode(Message(DELTA, "a", entries=entries))
    back = decode(frame, DIM).entries
    assert [(e.sig, e.version_sig) for e in back] == [(e.sig, e.version_sig) for e in entries]
    # every kind of write names its batch's root the same way, decoded at once or lazily
    c = b.signer.sign_many([b"8", b"9", b"10", b"11", b"12"])
    p = pattern(5, "b")
    kinds = (Entry("b", 3, Revision(p.body_digest(), revision_to_record(p)), c[0], c[1]),
             Entry("b", 4, Tombstone(p.id, 1, "b", "b", plain), c[2]),
             Entry("b", 5, Contribution(p.id, "b").recorded(True, 1.0, 2.0), c[3]))
    kinds_frame = encode(Message(DELTA, "b", entries=kinds))
    assert len(json.loads(kinds_frame[HEADER.size:])["roots"]) == 1
    from swarm.gossip.codec import validate_entries
    for got in (decode(kinds_frame, DIM).entries, validate_entries(decode(kinds_frame, DIM, lazy=True).raw, DIM)):
        assert [(e.sig, e.version_sig, type(e.pattern)) for e in got] == [
            (e.sig, e.version_sig, type(e.pattern)) for e in kinds]
    body = json.loads(frame[HEADER.size:])
    assert len(body["roots"]) == 2  # one per batch, however many proofs name it
    plain_size = len(encode(Message(DELTA, "a", entries=entries[3:])))
    assert len(frame) - plain_size < sum(len(encode(Message(DELTA, "a", entries=(e,)))) for e in entries[:3])

    def edited(change) -> bytes:
        b2 = json.loads(frame[HEADER.size:])
        change(b2)
        payload = json.dumps(b2, separators=(",", ":")).encode()
        return HEADER.pack(*HEADER.unpack(frame[:HEADER.size])[:3], len(payload)) + payload

    for change, what in ((lambda x: x["entries"][0][2].__setitem__(0, 2), "must name one of the frame's 2 roots"),
                         (lambda x: x["entries"][0][2].__setitem__(0, -1), "must name one of the frame's 2 roots"),
                         (lambda x: x["entries"][0][2].__setitem__(0, True), "must name one of the frame's 2 roots"),
                         (lambda x: x["entries"][0].__setitem__(2, [0]), "must name one of the frame's 2 roots"),
                         (lambda x: x["entries"][0][2].__setitem__(1, None), "'signature' must be base64"),
                         (lambda x: x["roots"].extend(x["roots"] * 4), "'roots' must be a list of at most 8"),
                         (lambda x: x.__setitem__("roots", x["roots"][:1]), "must name one of the frame's 1 roots"),
                         (lambda x: x["roots"].__setitem__(0, x["roots"][0][:-4]), "'roots' must be 64 bytes"),
                         (lambda x: x.__setitem__("roots", "x"), "'roots' must be a list")):
        with pytest.raises(ProtocolError, match=what):
            decode(edited(change), DIM)
    swapped = decode(edited(lambda x: x["roots"].reverse()), DIM).entries  # decodes; proves nothing
    assert swapped[0].sig != first[0] and not a.ring.verify("a", b"1", swapped[0].sig)


def _reframe(frame: bytes) -> bytes:
    """``frame`` with the length in its header made right again after its payload was edited."""
    from swarm.gossip.codec import HEADER

    magic, version, kind, _ = HEADER.unpack(frame[:HEADER.size])
    payload = frame[HEADER.size:]
    return HEADER.pack(magic, version, kind, len(payload)) + payload


def test_certificates_name_the_agent_and_carry_its_write_key():
    ca, creds, ids = _ca_swarm(["a"])
    assert ids["a"].ring.verify("a", b"x", creds["a"].signer.sign(b"x"))
    rogue = SwarmCA.generate("rogue").issue("a")
    with pytest.raises(IdentityError, match="not issued by the swarm CA"):
        KeyRing(ca.certificate).admit(rogue.certificate)
    other = ca.issue("a")  # the CA's, but another key for a name that has one
    with pytest.raises(IdentityError, match="already has another key"):
        ids["a"].ring.admit(other.certificate)


def test_a_revocation_spreads_by_gossip_quarantines_and_refuses_the_agent():
    names = ["n0", "n1", "n2", "m"]
    ca, creds, ids = _ca_swarm(names)
    cfg = GossipConfig(dim=DIM, fanout=1)
    nodes = {n: GossipNode(n, cfg, seed=5, identity=ids[n]) for n in names}
    net = Bus(nodes)
    for node in nodes.values():
        node.bootstrap(names, 0.0)
    nodes["m"].publish([pattern(i, "m") for i in range(4)], 0.0)
    nodes["n1"].publish([pattern(i, "n1") for i in range(3)], 0.0)
    net.run(5.0)
    assert all(len(n.patterns) == 7 for n in nodes.values())
    with pytest.raises(ProtocolError, match="not issued by the swarm CA"):
        nodes["n0"].revoke(SwarmCA.generate("rogue").revocation_list([creds["m"].certificate], 1), net.now)
    crl = ca.revocation_list([creds["m"].certificate], 1)
    assert nodes["n0"].revoke(crl, net.now) == ("m",)
    net.run(15.0)  # the list reaches the others by gossip (fanout 1: pushes and digests that show an older one)
    for name in ("n0", "n1", "n2"):
        assert "m" in nodes[name].identity.revoked
        assert len(nodes[name].patterns) == 3  # m's four quarantined
        assert "m" not in nodes[name].digest()
        assert any(isinstance(e, Revoked) and e.agents == ("m",) for e in net.events[name])
    late = pattern(9, "m")
    nodes["m"].publish([late], net.now)
    with pytest.raises(ProtocolError, match="revoked"):
        nodes["n0"].receive(encode(Message(DELTA, "m", entries=tuple(nodes["m"].log.recent(1)))), net.now, sender="m")
    assert late.id not in nodes["n0"].patterns
    assert nodes["n0"].revoke(crl, net.now) == ()  # not newer: nothing happens again
    assert net.refused > 0  # m's frames, refused once each node had the list


def test_a_restarted_node_remembers_what_it_revoked(tmp_path):
    ca, creds, ids = _ca_swarm(["n0", "m"])
    store = PatternStore(tmp_path / "n0.db", dim=DIM)
    node = GossipNode("n0", GossipConfig(dim=DIM), identity=ids["n0"], store=store)
    node.revoke(ca.revocation_list([creds["m"].certificate], 1), 1.0)
    store.close()
    again = Identity(creds["n0"].signer, ids["n0"].ring)  # a new process: nothing revoked in memory
    reborn = GossipNode("n0", GossipConfig(dim=DIM), identity=again, boot=1,
                        store=PatternStore(tmp_path / "n0.db", dim=DIM))
    assert "m" in reborn.identity.revoked and reborn.identity.revoked.number == 1


def _contributed(r: StoreReplica, origin: str, seq: int, pid: str, *outcomes: tuple[bool, float]) -> Entry:
    """``origin``'s record of ``outcomes`` on pattern ``pid``, as its ``seq``-th write."""
    c = Contribution(pid, origin)
    for ok, reward in outcomes:
        c = c.recorded(ok, reward, 1.0)
    return signed_entry(origin, seq, c)


def test_no_member_can_erase_or_overwrite_anothers_contribution():
    r = replica("c")
    b0 = replace(pattern(0, "b"), author="b")
    r.apply([signed_entry("b", 1, b0)])
    r.apply([_contributed(r, "d", 1, b0.id, (True, 0.5), (True, 0.25))])
    assert (r.store.get(b0.id).uses, r.store.get(b0.id).total_reward) == (2, 0.75)  # type: ignore[union-attr]
    # a version of b's pattern with its figures zeroed, under m's name or claiming b's: refused
    zeroed = replace(b0, version=b0.version + 1, updated_by="m")
    for version in (zeroed, replace(zeroed, updated_by="b")):
        with pytest.raises(ProtocolError, match="not signed by 'b'"):
            r.apply([forged("m", "m", 1, version)])
    # d's record claimed by m (m's key signs it), or a smaller record of d's own: no effect
    fake = Contribution(b0.id, "d")
    with pytest.raises(ProtocolError, match="does not carry 'd'"):
        r.apply([Entry("d", 2, fake, ident("m").signer.sign(contribution_message("d", 2, b0.id, fake.values())))])
    r.apply([_contributed(r, "d", 2, b0.id, (False, -9.0))])  # d's own older-looking record: fewer uses
    # m adds its own share, which is all it can do
    r.apply([_contributed(r, "m", 3, b0.id, (False, -1.0))])
    held = r.store.get(b0.id)
    assert held is not None and (held.uses, held.successes, held.failures, held.total_reward) == (3, 2, 1, -0.25)
    assert held.version == b0.version and held.title == b0.title
    assert {c.contributor: c.uses for c in r.store.contributions(b0.id)} == {"d": 2, "m": 1}


def test_a_relay_cannot_make_up_a_versions_figures():
    r = replica("c")
    b0 = replace(pattern(0, "b"), author="b")
    r.apply([signed_entry("b", 1, b0)])
    real = apply_outcome(b0, True, 0.5, 2.0, by="b")
    genuine = signed_entry("b", 2, Revision(b0.body_digest(), revision_to_record(real)))
    assert isinstance(genuine.pattern, Revision)
    inflated = replace(genuine, pattern=Revision(genuine.pattern.body, {**genuine.pattern.fields, "uses": 1000}))
    with pytest.raises(ProtocolError, match="not signed by 'b'"):
        r.apply([inflated])  # b's write, relayed with b's signatures, and figures b never wrote
    assert r.apply([genuine]) == [b0.id] and r.store.get(b0.id).uses == 1  # type: ignore[union-attr]


def test_revoking_a_member_drops_its_contributions_to_others_patterns():
    names = ["n0", "n1", "m"]
    ca, creds, ids = _ca_swarm(names)
    store = PatternStore(":memory:", dim=DIM)
    r = StoreReplica(store, "n0", ids["n0"])
    p = replace(pattern(0, "n1"), author="n1")

    def entry(origin: str, seq: int, payload: object) -> Entry:
        s = ids[origin].signer
        if isinstance(payload, Contribution):
            return Entry(origin, seq, payload, s.sign(contribution_message(origin, seq, payload.id, payload.values())))
        return Entry(origin, seq, payload, s.sign(write_message(origin, seq, payload.id)),  # type: ignore[arg-type]
                     signed_version(s, payload))  # type: ignore[arg-type]

    r.apply([entry("n1", 1, p), entry("m", 1, Contribution(p.id, "m").recorded(False, -50.0, 1.0)),
             entry("n0", 1, Contribution(p.id, "n0").recorded(True, 1.0, 1.0))])
    assert store.get(p.id).total_reward == -49.0  # type: ignore[union-attr]
    node = GossipNode("n0", GossipConfig(dim=DIM), identity=ids["n0"], store=store)
    node.revoke(ca.revocation_list([creds["m"].certificate], 1), 2.0)
    held = store.get(p.id)
    assert held is not None and (held.uses, held.total_reward) == (1, 1.0)  # the pattern stays; m's share goes
    assert [c.contributor for c in store.contributions(p.id)] == ["n0"]
