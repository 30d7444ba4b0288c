"""Write keys for tests: every agent name gets a key drawn from it, all in one shared key ring
(what an orchestrator holds for its swarm), so any two test nodes can check each other's writes."""

from __future__ import annotations

from dataclasses import replace

from swarm.gossip import Entry, Identity, KeyRing, Revision, Signer, Tombstone, origin_node
from swarm.gossip.identity import body_message, deletion_message, write_message
from swarm.memory.models import Pattern

RING = KeyRing()


def ident(agent: str) -> Identity:
    """``agent``'s identity: its derived key, the shared ring, revocations of its own."""
    signer = Signer.derive(agent, b"tests")
    RING.add(agent, signer.public_bytes)
    return Identity(signer, RING)


def signed_entry(origin: str, seq: int, payload: Pattern | Revision | Tombstone) -> Entry:
    """A write as its origin sends it: signed by the origin; a whole pattern named for its author
    (the origin's agent, if it names none) and its body signed by that author; a deletion with
    its deleter's proof (the origin's agent, if it names none)."""
    agent = origin_node(origin)
    sig = ident(agent).signer.sign(write_message(origin, seq, payload.id))
    if isinstance(payload, Tombstone) and not payload.proof:  # deleted by the origin's agent
        deleter = payload.deleter or agent
        payload = replace(payload, deleter=deleter,
                          proof=ident(deleter).signer.sign(deletion_message(payload.id, deleter)))
    if not isinstance(payload, Pattern):
        return Entry(origin, seq, payload, sig)
    if not payload.author:
        payload = replace(payload, author=agent)
    body_sig = ident(payload.author).signer.sign(body_message(payload.id, payload.author, payload.body_digest()))
    return Entry(origin, seq, payload, sig, body_sig)
