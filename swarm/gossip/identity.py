"""Who wrote what: agent signing keys, the swarm's key ring, and revocation.

Each agent holds an Ed25519 write key; the swarm CA's certificate for the agent names its id (DNS
name ``<agent>.swarm``) and carries the key's public half in an extension (:data:`WRITE_KEY_OID`;
the certificate's own key is the agent's TLS key, EC P-256, which both QUIC stacks speak). A node signs every write it makes (the
log row: origin, sequence number, pattern), every version of a pattern it authors (its body and
its author's figures) and every record of what it contributed to others' patterns; a receiver
takes a write only when its origin's key verifies it, a version only when its author's (or a
curator's) does, and a contribution only when its contributor's does.
The CA revokes an agent with a certificate revocation list (an X.509 CRL it signs), which spreads
by gossip: every node then refuses the agent's writes and quarantines the patterns it authored.

Pure functions of bytes and keys (``cryptography``): no socket and no clock. Ed25519 because its
signatures are deterministic (a simulated run signs the same bytes every time) and 64 bytes long.

A node signs what it publishes together in batches (:meth:`Signer.sign_many`): one Ed25519
signature over the root of a Merkle tree of the batch's messages (at most :data:`BATCH_MAX`), and
each message's *proof* is that signature, its place in the tree and the hashes that lead from it to
the root. A proof stands for a signature everywhere one goes (logged, served on, checked by
:meth:`KeyRing.verify`) and proves exactly what a signature of the message alone would: checking
one hashes ``depth + 1`` times and, once per batch, verifies. A decision publishes about four
messages; signed one by one they cost a 5-agent mesh's decisions 1.5x their time without gossip
(``benchmarks/swarm_bench.py``), and agents in separate processes each check every copy they get.
Leaves, inner nodes and padding are hashed under distinct prefixes and the root is signed under its
own message type, so no proof can pass for another message, another place or a plain signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

#: A certificate's DNS name for agent ``a`` is ``a + SAN_SUFFIX``.
SAN_SUFFIX = ".swarm"
SIGNATURE_BYTES = 64
#: Verified signatures a key ring remembers (about 300 bytes each, whatever the message's size):
#: enough for the repeats of a 1,000-agent mesh's recent writes, which arrive within a few gossip
#: rounds of each other
VERIFIED_KEPT = 1 << 16
#: The certificate extension holding an agent's Ed25519 write key (32 raw bytes). An OID of this
#: project's own: only the swarm's CA writes it and only swarm members read it.
WRITE_KEY_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
#: The certificate extension that makes its agent a curator: it may change and delete any
#: member's patterns (a hierarchical swarm's leader, which consolidates its workers' memory).
CURATOR_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.2")

#: Messages signed together at most (a proof then holds at most 3 hashes: 164 bytes against a
#: signature's 64, on every write a frame carries)
BATCH_MAX = 8
#: The deepest tree a proof may climb: what BATCH_MAX makes, and no more (a peer's longer proofs
#: would be stored and served on by every replica)
PROOF_DEPTH_MAX = (BATCH_MAX - 1).bit_length()
_PROOF_HEAD = SIGNATURE_BYTES + 4  # the root's signature, then the leaf's place (4 bytes, big-endian)
_LEAF, _NODE, _PAD = b"\x00", b"\x01", b"\x02"
_BATCH = b"swarm-batch/1\x00"
_WRITE = b"swarm-write/1\x00"
_VERSION = b"swarm-version/1\x00"
_CONTRIBUTION = b"swarm-contribution/1\x00"
_DELETE = b"swarm-delete/1\x00"


class IdentityError(ValueError):
    """A certificate or revocation list that is not the swarm CA's, or names no agent."""


def write_message(origin: str, seq: int, pattern_id: str) -> bytes:
    """What an origin signs for its ``seq``-th write of a pattern version or a deletion: which
    pattern it wrote (or deleted). Neither the version nor the kind: a replica serves a write with
    its pattern's current version, or as a tombstone once the pattern is deleted (see
    :mod:`swarm.gossip.replication`); the version is signed apart (:func:`version_message`)."""
    return _WRITE + "\x1f".join((origin, str(seq), pattern_id)).encode()


def version_message(pattern_id: str, author: str, revision_digest: str) -> bytes:
    """What a pattern's author (or a curator) signs for a version of it: the
    :func:`~swarm.memory.models.revision_digest` of its body digest and its author's figures
    (confidence, uses, successes, failures, rewards, version, updated_by). A relay can neither
    change a body nor make up figures."""
    return _VERSION + "\x1f".join((pattern_id, author, revision_digest)).encode()


def contribution_message(origin: str, seq: int, pattern_id: str, values: list[object]) -> bytes:
    """What a contributor signs for its ``seq``-th write when that write is its record on a
    pattern (:class:`~swarm.memory.models.Contribution`): one signature for both (a record is
    served as it was written, never as a later one)."""
    return _CONTRIBUTION + "\x1f".join((origin, str(seq), pattern_id, *map(_figure, values))).encode()


def _hash(*parts: bytes) -> bytes:
    return hashlib.blake2b(b"".join(parts), digest_size=32).digest()


def _batch_message(depth: int, root: bytes) -> bytes:
    """What a signer signs for a batch: the root of its Merkle tree, and the tree's depth."""
    return _BATCH + bytes([depth]) + root


def signature_size_ok(size: int) -> bool:
    """Whether ``size`` bytes can be a signature or a proof (before anything is hashed)."""
    depth, rest = divmod(size - _PROOF_HEAD, 32)
    return size == SIGNATURE_BYTES or (rest == 0 and 1 <= depth <= PROOF_DEPTH_MAX)


def _proven(message: bytes, proof: bytes) -> tuple[bytes, bytes] | None:
    """``(what was signed, the signature)`` that ``proof`` says covers ``message``: the message
    itself for a plain signature, the batch's root for a proof; None if ``proof`` is neither."""
    size = len(proof)
    if size == SIGNATURE_BYTES:
        return message, proof
    if not signature_size_ok(size):
        return None
    depth = (size - _PROOF_HEAD) // 32
    place = int.from_bytes(proof[SIGNATURE_BYTES:_PROOF_HEAD], "big")
    if place >> depth:
        return None  # a place outside the tree
    node = _hash(_LEAF, message)
    for level in range(depth):
        sibling = proof[_PROOF_HEAD + 32 * level:_PROOF_HEAD + 32 * (level + 1)]
        node = _hash(_NODE, sibling, node) if (place >> level) & 1 else _hash(_NODE, node, sibling)
    return _batch_message(depth, node), proof[:SIGNATURE_BYTES]


def _figure(v: object) -> str:
    """A record's figure as signed: integers as written, floats by their repr (-0.0 as 0.0)."""
    return repr(float(v) + 0.0) if isinstance(v, float) else "None" if v is None else str(v)


def deletion_message(pattern_id: str, deleter: str) -> bytes:
    """What a pattern's author (or a curator) signs to delete it: the proof every replica serves
    in place of the pattern's writes from then on."""
    return _DELETE + "\x1f".join((pattern_id, deleter)).encode()


class Signer:
    """One agent's signing key."""

    __slots__ = ("agent", "key", "public_bytes", "signed")

    def __init__(self, agent: str, key: ed25519.Ed25519PrivateKey) -> None:
        self.agent = agent
        self.key = key
        self.public_bytes = key.public_key().public_bytes_raw()
        self.signed = 0  # signatures made (what security costs gossip: benchmarks/swarm_bench.py)

    @classmethod
    def derive(cls, agent: str, secret: bytes | str) -> Signer:
        """A key drawn from ``secret`` and the agent id: the same every run (simulations; a real
        swarm draws its keys at random, :meth:`generate`)."""
        seed = hashlib.blake2b(f"{agent}\x1f".encode() + (secret.encode() if isinstance(secret, str) else secret),
                               digest_size=32, person=b"swarm-agent-key").digest()
        return cls(agent, ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls, agent: str) -> Signer:
        return cls(agent, ed25519.Ed25519PrivateKey.generate())

    def sign(self, message: bytes) -> bytes:
        self.signed += 1
        return self.key.sign(message)

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """A proof for each message, in order: one signature per :data:`BATCH_MAX` messages (a
        message alone gets a plain signature). See the module docstring."""
        out: list[bytes] = []
        for start in range(0, len(messages), BATCH_MAX):
            batch = messages[start:start + BATCH_MAX]
            if len(batch) == 1:
                out.append(self.sign(batch[0]))
                continue
            depth = (len(batch) - 1).bit_length()
            level = [_hash(_LEAF, m) for m in batch] + [_hash(_PAD)] * ((1 << depth) - len(batch))
            levels = [level]
            while len(level) > 1:
                level = [_hash(_NODE, level[i], level[i + 1]) for i in range(0, len(level), 2)]
                levels.append(level)
            sig = self.sign(_batch_message(depth, level[0]))
            out.extend(sig + place.to_bytes(4, "big") + b"".join(levels[d][(place >> d) ^ 1] for d in range(depth))
                       for place in range(len(batch)))
        return out


def write_key_extension(key: ed25519.Ed25519PublicKey) -> x509.UnrecognizedExtension:
    """The certificate extension that binds ``key`` to the certificate's agent."""
    return x509.UnrecognizedExtension(WRITE_KEY_OID, key.public_bytes_raw())


def curator_extension() -> x509.UnrecognizedExtension:
    """The certificate extension that makes its agent a curator (see :data:`CURATOR_OID`)."""
    return x509.UnrecognizedExtension(CURATOR_OID, b"curator")


def certificate_agent(certificate: x509.Certificate) -> str | None:
    """The agent a swarm certificate names (its ``<agent>.swarm`` DNS name), if any."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for name in names.get_values_for_type(x509.DNSName):
        if name.endswith(SAN_SUFFIX):
            return name[: -len(SAN_SUFFIX)]
    return None


@dataclass(slots=True)
class KeyRing:
    """The public keys of a swarm's agents, each admitted from a certificate the swarm CA signed
    (or added directly by whoever builds the swarm and holds the keys). Shared by the nodes of one
    process; what each node has revoked is its own (:class:`Revocations`)."""

    ca: x509.Certificate | None = None
    _keys: dict[str, ed25519.Ed25519PublicKey] = field(default_factory=dict)
    serials: dict[int, str] = field(default_factory=dict)  # certificate serial -> agent
    curators: set[str] = field(default_factory=set)  # agents that may change and delete any pattern
    #: ``(agent, blake2b of the message, signature or blake2b of a batch proof)`` of the checks
    #: that succeeded (a batch's root among them), newest last, at most :data:`VERIFIED_KEPT`
    #: (see :meth:`verify`)
    _verified: dict[tuple[str, bytes, bytes], None] = field(default_factory=dict, repr=False, compare=False)
    checked: int = field(default=0, compare=False)  # signatures verified with a key (cache hits not counted)

    def admit(self, certificate: x509.Certificate) -> str:
        """Take the key of a certificate the swarm CA issued; returns the agent it names."""
        if self.ca is None:
            raise IdentityError("this key ring has no CA to check certificates against")
        try:
            certificate.verify_directly_issued_by(self.ca)
        except (ValueError, TypeError, InvalidSignature):
            raise IdentityError("certificate not issued by the swarm CA") from None
        agent = certificate_agent(certificate)
        if agent is None:
            raise IdentityError("certificate names no agent")
        try:
            raw = certificate.extensions.get_extension_for_oid(WRITE_KEY_OID).value
        except x509.ExtensionNotFound:
            raise IdentityError(f"certificate of {agent!r} holds no write key") from None
        if not isinstance(raw, x509.UnrecognizedExtension) or len(raw.value) != 32:
            raise IdentityError(f"certificate of {agent!r} holds a malformed write key")
        try:
            curator = certificate.extensions.get_extension_for_oid(CURATOR_OID).value
        except x509.ExtensionNotFound:
            curator = None
        self.add(agent, raw.value, curator=isinstance(curator, x509.UnrecognizedExtension)
                 and curator.value == b"curator")
        self.serials[certificate.serial_number] = agent
        return agent

    def add(self, agent: str, key: ed25519.Ed25519PublicKey | bytes, curator: bool = False) -> None:
        """Trust ``key`` as ``agent``'s (a key the caller vouches for), a ``curator``'s or not.
        An agent keeps its first key: a second, different one is refused."""
        if isinstance(key, bytes):
            key = ed25519.Ed25519PublicKey.from_public_bytes(key)
        held = self._keys.get(agent)
        if held is not None and held.public_bytes_raw() != key.public_bytes_raw():
            raise IdentityError(f"{agent!r} already has another key")
        self._keys[agent] = key
        if curator:
            self.curators.add(agent)

    def may_change(self, agent: str, author: str) -> bool:
        """Whether ``agent`` may give ``author``'s pattern a new body or delete it."""
        return agent == author or agent in self.curators

    def version_signer(self, author: str, updated_by: str) -> str:
        """Whose signature a version of ``author``'s pattern made by ``updated_by`` carries: a
        curator's for a version it made, its author's for any other."""
        return updated_by if updated_by != author and updated_by in self.curators else author

    def __contains__(self, agent: str) -> bool:
        return agent in self._keys

    def verify(self, agent: str, message: bytes, signature: bytes) -> bool | None:
        """Whether ``signature`` is ``agent``'s over ``message``; None when the agent's key is not
        known here (yet)."""
        key = self._keys.get(agent)
        if key is None:
            return None
        if not signature_size_ok(len(signature)):
            return False
        # The nodes sharing this ring receive each signed write and version from several peers,
        # and a node meets a version again on every digest that names it: in a 50-agent mesh 4 of
        # 5 verifications were repeats. A triple that verified once verifies again (an agent's key
        # never changes, see add), so it is answered from the cache; only successes are kept, and
        # by the message's 256-bit digest (a message may be kilobytes: a peer could otherwise pin
        # ~200 MB with long pattern ids) and the signature's bytes, so nothing a peer sends can
        # put a false answer there.
        # A proof is remembered by its digest, and so is the batch root it leads to: every other
        # message of the batch then costs its hashes up the tree, not a verification.
        signature = bytes(signature)
        triple = (agent, _hash(message), signature if len(signature) == SIGNATURE_BYTES else _hash(signature))
        if triple in self._verified:
            return True
        proven = _proven(message, signature)
        if proven is None:
            return False
        signed, sig = proven
        if signed is message:  # a plain signature
            return self._check(key, triple, message, sig)
        root = (agent, _hash(signed), sig)
        if root not in self._verified and not self._check(key, root, signed, sig):
            return False
        self._remember(triple)
        return True

    def _check(self, key: ed25519.Ed25519PublicKey, triple: tuple[str, bytes, bytes], message: bytes,
               signature: bytes) -> bool:
        """Verify with the key, remembering a success under ``triple``."""
        self.checked += 1
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        self._remember(triple)
        return True

    def _remember(self, triple: tuple[str, bytes, bytes]) -> None:
        verified = self._verified
        verified[triple] = None
        if len(verified) > VERIFIED_KEPT:
            del verified[next(iter(verified))]  # the oldest: repeats come within a few gossip rounds


@dataclass(slots=True)
class Revocations:
    """What one node has revoked: the newest CA revocation list it has seen, and the agents that
    list names (by their certificates' serial numbers, through the key ring)."""

    ring: KeyRing
    number: int = -1  # the CRL number of the newest list taken (-1: none)
    der: bytes = b""
    agents: frozenset[str] = frozenset()

    def take(self, der: bytes) -> frozenset[str] | None:
        """Take a revocation list (DER); returns the agents it newly revokes, or None when it is not
        newer than the one held. Raises :class:`IdentityError` if the swarm CA did not sign it."""
        ca = self.ring.ca
        if ca is None:
            raise IdentityError("no swarm CA to check a revocation list against")
        try:
            crl = x509.load_der_x509_crl(der)
        except ValueError:
            raise IdentityError("malformed revocation list") from None
        ca_key = ca.public_key()
        if not isinstance(ca_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) or crl.issuer != ca.subject:
            raise IdentityError("revocation list not issued by the swarm CA")
        if not crl.is_signature_valid(ca_key):
            raise IdentityError("revocation list signature does not verify")
        try:
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            raise IdentityError("revocation list has no CRL number") from None
        if number <= self.number:
            return None
        agents = frozenset(self.ring.serials[r.serial_number] for r in crl if r.serial_number in self.ring.serials)
        fresh = agents - self.agents
        self.number, self.der, self.agents = number, der, self.agents | agents  # a revocation is for good
        return frozenset(fresh)

    def __contains__(self, agent: str) -> bool:
        return agent in self.agents


@dataclass(slots=True)
class Identity:
    """What a node needs to sign its writes and check its peers': its agent's key, the swarm's
    key ring, and what it has revoked (its own: a revocation reaches each node by gossip)."""

    signer: Signer
    ring: KeyRing
    revoked: Revocations = field(init=False)

    def __post_init__(self) -> None:
        self.revoked = Revocations(self.ring)

    @property
    def agent(self) -> str:
        return self.signer.agent


def derived_identities(agents: Iterable[str], secret: bytes | str = b"", ca: x509.Certificate | None = None,
                       ring: KeyRing | None = None, curators: Iterable[str] = ()) -> dict[str, Identity]:
    """Identities for ``agents`` with keys drawn from ``secret`` (:meth:`Signer.derive`), their
    public keys in one shared ring (``ring``, or a new one): for simulations, tests and benchmarks
    that hold every key themselves."""
    ring = ring if ring is not None else KeyRing(ca)
    curators = set(curators)
    out = {}
    for a in agents:
        signer = Signer.derive(a, secret)
        ring.add(a, signer.public_bytes, curator=a in curators)
        out[a] = Identity(signer, ring)
    return out
