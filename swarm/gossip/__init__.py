"""Sans-IO gossip: pattern anti-entropy and SWIM membership over a versioned wire codec.

Nothing here reads a socket or a clock: :class:`GossipNode` takes ``now`` and bytes and returns
frames to send and events. ``swarm.transport`` drives it over a simulated network or QUIC.
"""

from .codec import Entry, FrameReader, Limits, Message, ProtocolError, Revision, Tombstone, Update, decode, encode
from .identity import Identity, IdentityError, KeyRing, Revocations, Signer, derived_identities
from .membership import ALIVE, DEAD, LEFT, SUSPECT, MemberChanged, Membership
from .neighbours import Ring, origin_node, ring_of
from .node import Contacts, Event, GossipConfig, GossipNode, NodeStats, PatternsReceived, Revoked
from .replication import StoreReplica

__all__ = [
    "ALIVE",
    "DEAD",
    "LEFT",
    "SUSPECT",
    "Contacts",
    "Entry",
    "Event",
    "FrameReader",
    "GossipConfig",
    "GossipNode",
    "Identity",
    "IdentityError",
    "KeyRing",
    "Limits",
    "MemberChanged",
    "Membership",
    "Message",
    "NodeStats",
    "PatternsReceived",
    "ProtocolError",
    "Revision",
    "Revocations",
    "Revoked",
    "Ring",
    "Signer",
    "StoreReplica",
    "Tombstone",
    "Update",
    "decode",
    "derived_identities",
    "encode",
    "origin_node",
    "ring_of",
]
