"""Proving swarm membership inside a connection, for transports whose TLS cannot carry the proof:
qh3's QUIC (its TLS never asks for a client certificate) and WebSocket through E2B's proxy (which
terminates TLS). A peer is a member if the swarm CA signed its certificate; it proves it holds
that certificate's key by signing a transcript naming both ends and fresh nonces.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ..gossip.identity import certificate_agent

#: Largest field :func:`unpack` takes (a certificate is under 1 KB; a signature under 80 bytes).
MAX_FIELD = 16 * 1024


def check_certificate(cert: x509.Certificate | None, ca: x509.Certificate,
                      revoked: Collection[str] = ()) -> tuple[str | None, str | None]:
    """``(node, None)`` if ``cert`` is a swarm member's: signed by the swarm CA ``ca``, in its
    validity window, naming a node that is not ``revoked``; else ``(None, why not)``. Node
    certificates are issued by the CA itself (path length 0): one signature check, no store."""
    if cert is None:
        return None, "it sent no certificate"
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return None, "its certificate is outside its validity window"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return None, "its certificate is not signed by the swarm CA"
    peer = certificate_agent(cert)
    if peer is not None and peer in revoked:
        return None, f"{peer} is revoked"
    return (peer, None) if peer is not None else (None, "its certificate names no swarm node")


def pack(*fields: bytes) -> bytes:
    """Fields, each behind its 4-byte length: one byte string that splits back only one way."""
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)


def unpack(data: bytes, count: int) -> list[bytes]:
    """Exactly ``count`` fields :func:`pack` made, each at most :data:`MAX_FIELD` bytes; raises
    ``ValueError`` for anything else (a peer sent it)."""
    out, pos = [], 0
    for _ in range(count):
        if pos + 4 > len(data):
            raise ValueError("truncated")
        size = int.from_bytes(data[pos:pos + 4], "big")
        if size > MAX_FIELD or pos + 4 + size > len(data):
            raise ValueError(f"a field of {size} bytes does not fit")
        out.append(data[pos + 4:pos + 4 + size])
        pos += 4 + size
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} bytes after the last field")
    return out


def transcript(context: bytes, *fields: bytes) -> bytes:
    """What a proof signs: a context naming the protocol and the role, then the fields (nonces,
    node names, certificate hashes), unambiguously joined."""
    return context + pack(*fields)


def sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """A proof of holding ``key`` (a member's TLS key, EC P-256) over ``message``."""
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def verify(cert: x509.Certificate, signature: bytes, message: bytes) -> str | None:
    """None if ``signature`` over ``message`` was made with the key ``cert`` names; else why not."""
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return "its certificate's key is not an EC key"
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "its signature does not verify"
    return None
