"""Write keys for tests: every agent name gets a key drawn from it, all in one shared key ring
(what an orchestrator holds for its swarm), so any two test nodes can check each other's writes."""

from __future__ import annotations

from dataclasses import replace

from swarm.gossip import Entry, Identity, KeyRing, Revision, Signer, Tombstone, origin_node
from swarm.gossip.identity import contribution_message, deletion_message, version_message, write_message
from swarm.memory.models import REVISION_FIELDS, Contribution, Pattern, revision_digest, revision_of

RING = KeyRing()


def ident(agent: str) -> Identity:
    """``agent``'s identity: its derived key, the shared ring, revocations of its own."""
    signer = Signer.derive(agent, b"tests")
    RING.add(agent, signer.public_bytes)
    return Identity(signer, RING)


def signed_entry(origin: str, seq: int, payload: Pattern | Revision | Tombstone | Contribution,
                 author: str | None = None) -> Entry:
    """A write as its origin sends it: signed by the origin; a whole pattern named for its author
    (the origin's agent, if it names none) and its version signed by that author (a revision's
    by ``author``, default the origin's agent); a deletion with its deleter's proof (the origin's
    agent, if it names none); a contribution as the origin's record."""
    agent = origin_node(origin)
    if isinstance(payload, Contribution):
        return Entry(origin, seq, payload, ident(agent).signer.sign(
            contribution_message(origin, seq, payload.pattern_id, payload.values())))
    sig = ident(agent).signer.sign(write_message(origin, seq, payload.id))
    if isinstance(payload, Revision):
        author = author or agent
        digest = revision_digest(payload.body, [payload.fields[k] for k in REVISION_FIELDS])
        return Entry(origin, seq, payload, sig, ident(author).signer.sign(version_message(payload.id, author, digest)))
    if isinstance(payload, Tombstone) and not payload.proof:  # deleted by the origin's agent
        deleter = payload.deleter or agent
        payload = replace(payload, deleter=deleter,
                          proof=ident(deleter).signer.sign(deletion_message(payload.id, deleter)))
    if not isinstance(payload, Pattern):
        return Entry(origin, seq, payload, sig)
    if not payload.author:
        payload = replace(payload, author=agent)
    version_sig = ident(payload.author).signer.sign(version_message(
        payload.id, payload.author, revision_digest(payload.body_digest(), revision_of(payload))))
    return Entry(origin, seq, payload, sig, version_sig)
