"""Wire codec: versioned, length-prefixed frames with size limits.

A frame is ``MAGIC (2 bytes) | version (1) | kind (1) | length (4, big-endian) | payload`` and the
payload is one UTF-8 JSON object. Patterns travel as export records (embedding in base64 float32)
and are validated exactly as an imported pack is; a version that only recorded outcomes may
travel as a :class:`Revision` (its statistics and the digest of a body the receiver holds: about
a tenth of the bytes); what an agent recorded on another's pattern travels as its
:class:`~swarm.memory.models.Contribution`. Every malformed input — bad magic, unknown
version or kind, truncated or oversized frame, bad JSON, a field of the wrong type — raises
:class:`ProtocolError` and nothing else. Hand-written rather than a schema library because the
frame layer is eight bytes of ``struct`` and the message checks are a dozen field tests.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable, Iterator

from ..memory.errors import ImportValidationError
from ..memory.models import REVISION_FIELDS, Contribution, Pattern
from ..memory.transfer import (CONTRIBUTION_KEYS, MAX_INT, ImportLimits, contribution_from_record,
                               pattern_from_record, pattern_to_record, revision_from_record,
                               version_head_from_record)
from .identity import PROOF_DEPTH_MAX, SIGNATURE_BYTES, signature_size_ok
from .neighbours import origin_node

MAGIC = b"SG"
VERSION = 7  # 2: entries may be revisions; 3: or tombstones; 4: every entry signed by its origin;
# 5: versions signed (not bodies), contributions; 6: signatures may be batch proofs; 7: a frame
# lists the batch signatures its proofs share once
HEADER = struct.Struct(">2sBBI")
DEFAULT_MAX_FRAME = 4 * 1024 * 1024

# message kinds
PING, ACK, PING_REQ, JOIN, DIGEST, DELTA, LEAVE, REVOKE = 1, 2, 3, 4, 5, 6, 7, 8
KIND_NAMES = {PING: "ping", ACK: "ack", PING_REQ: "ping-req", JOIN: "join", DIGEST: "digest",
              DELTA: "delta", LEAVE: "leave", REVOKE: "revoke"}
#: The largest revocation list a node takes (DER bytes).
MAX_REVOCATION_LIST = 256 * 1024
STATUSES = ("alive", "suspect", "dead", "left")


#: A revision on the wire is a list of these, in this order (a list: key names would double its size).
_REVISION_KEYS = ("id", *REVISION_FIELDS)


class ProtocolError(Exception):
    """A frame or message that does not follow the protocol."""


@dataclass(frozen=True, slots=True)
class Update:
    """A membership rumour: ``node`` is ``status`` at ``incarnation``."""

    node: str
    status: str
    incarnation: int


@dataclass(frozen=True, slots=True)
class Revision:
    """A pattern version as its :data:`~swarm.memory.models.REVISION_FIELDS` (validated, with
    ``id``) over a body, named by :meth:`~swarm.memory.models.Pattern.body_digest`, that the
    receiver already holds; the receiver's replica log rebuilds the pattern."""

    body: str
    fields: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.fields["id"])


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A deletion as a replicated write: pattern ``id`` was deleted as of ``version`` by
    ``updated_by`` (the version its deleter held); a replica deletes its copy if that copy is not
    newer, and older writes of the pattern do not bring it back. ``deleter`` (the pattern's
    author, or a curator) signed ``proof`` (:func:`~swarm.gossip.identity.deletion_message`)."""

    id: str
    version: int
    updated_by: str
    deleter: str = ""
    proof: bytes = b""


#: What a write carries: a pattern version (whole, or as a revision), a deletion, or a contribution.
Payload = Pattern | Revision | Tombstone | Contribution


@dataclass(frozen=True, slots=True)
class Entry:
    """One replicated write: the ``seq``-th write by ``origin``, carrying a pattern version
    (a :class:`Revision` only on the wire: replica logs hold whole patterns), a deletion, or the
    origin's contribution to a pattern. ``sig`` is the origin's signature of the write
    (:func:`~swarm.gossip.identity.write_message`; of a contribution,
    :func:`~swarm.gossip.identity.contribution_message`); a version (whole or a revision) also
    carries ``version_sig``, its author's (or a curator's) signature of it
    (:func:`~swarm.gossip.identity.version_message`)."""

    origin: str
    seq: int
    pattern: Payload
    sig: bytes = b""
    version_sig: bytes | None = None


@dataclass(frozen=True, slots=True)
class RawEntry:
    """An entry as it arrived, its origin and sequence number checked and its write not yet: a
    receiver validates (:func:`validate_entries`) only the writes it lacks, and drops the rest
    unread (most of what anti-entropy delivers is already held). ``roots``: the batch signatures
    its frame listed, which its proofs name by position."""

    origin: str
    seq: int
    record: list[Any]
    roots: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded message. Fields a kind does not use keep their defaults."""

    kind: int
    sender: str
    updates: tuple[Update, ...] = ()
    probe: int = 0  # ping / ack / ping-req: the probe number
    target: str = ""  # ping-req: whom to ping on the sender's behalf
    incarnation: int = 0  # join: the joiner's incarnation
    space: str = ""  # join: the embedding-space fingerprint the swarm shares
    digest: dict[str, int] | None = None  # digest / delta: per-origin high-water marks
    entries: tuple[Entry, ...] = ()
    raw: tuple[RawEntry, ...] = ()  # a lazy decode's entries (see decode); ``entries`` is then empty
    reply: bool = False  # digest / delta: whether the receiver should answer with its own delta
    revocations: int = -1  # digest / delta: the number of the newest revocation list the sender holds
    revocation_list: bytes = b""  # revoke: the swarm CA's revocation list (DER)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]


def _b64(data: bytes | None) -> str:
    return base64.b64encode(data).decode("ascii") if data else ""


#: The marker of a contribution entry (in a pattern's place).
_CONTRIBUTION = "c"


class _Roots:
    """The batch signatures of a frame's proofs, each listed once: the proofs of one batch (a
    write's and its version's, a publication's several writes) share the signature of their
    batch's root, 88 characters of base64 that each proof would otherwise repeat."""

    def __init__(self) -> None:
        self.at: dict[bytes, int] = {}

    def sig(self, sig: bytes | None) -> str | list[Any]:
        """A signature as base64, or a proof as ``[its root's place in the list, the rest in base64]``."""
        if sig is None or len(sig) <= SIGNATURE_BYTES:
            return _b64(sig)
        place = self.at.setdefault(sig[:SIGNATURE_BYTES], len(self.at))
        return [place, _b64(sig[SIGNATURE_BYTES:])]


def _entry_record(e: Entry, roots: _Roots) -> list[Any]:
    """``[origin, seq, signature, pattern, version signature]``, ``[origin, seq, signature,
    revision, [body, version signature]]``, ``[origin, seq, signature, null, [id, version, by,
    deleter, proof]]`` or ``[origin, seq, signature, "c", [id, uses, successes, failures,
    total_reward, last_used_at]]`` (signatures in base64, proofs as ``[root, rest]``: see _Roots)."""
    p = e.pattern
    sig = roots.sig(e.sig)
    if isinstance(p, Revision):
        return [e.origin, e.seq, sig, [p.fields[k] for k in _REVISION_KEYS], [p.body, roots.sig(e.version_sig)]]
    if isinstance(p, Tombstone):
        return [e.origin, e.seq, sig, None, [p.id, p.version, p.updated_by, p.deleter, _b64(p.proof)]]
    if isinstance(p, Contribution):
        return [e.origin, e.seq, sig, _CONTRIBUTION, [p.pattern_id, *p.values()]]
    return [e.origin, e.seq, sig, pattern_to_record(p), roots.sig(e.version_sig)]


def encode(msg: Message) -> bytes:
    """One frame for ``msg``."""
    body: dict[str, Any] = {"from": msg.sender}
    if msg.updates:
        body["u"] = [[u.node, u.status, u.incarnation] for u in msg.updates]
    if msg.kind in (PING, ACK, PING_REQ):
        body["probe"] = msg.probe
    if msg.kind == PING_REQ:
        body["target"] = msg.target
    if msg.kind == JOIN:
        body["inc"] = msg.incarnation
        body["space"] = msg.space
    if msg.kind in (DIGEST, DELTA):
        if msg.digest is not None:
            body["digest"] = msg.digest
        if msg.entries:
            roots = _Roots()
            body["entries"] = [_entry_record(e, roots) for e in msg.entries]
            if roots.at:
                body["roots"] = [_b64(r) for r in roots.at]
        body["reply"] = msg.reply
        if msg.revocations >= 0:
            body["rl"] = msg.revocations
    if msg.kind == REVOKE:
        body["crl"] = _b64(msg.revocation_list)
    payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return HEADER.pack(MAGIC, VERSION, msg.kind, len(payload)) + payload


@dataclass(frozen=True, slots=True)
class Limits:
    """What a receiver accepts."""

    max_frame: int = DEFAULT_MAX_FRAME
    max_entries: int = 10_000
    max_updates: int = 1_000
    max_id_chars: int = 256


def decode(data: bytes, dim: int, limits: Limits = Limits(), lazy: bool = False) -> Message:
    """Exactly one frame -> a validated :class:`Message` (raises :class:`ProtocolError`). With
    ``lazy`` the entries stay :class:`RawEntry` (in ``raw``; only their shape, origin and
    sequence number checked) for the receiver to validate those it lacks."""
    kind, payload = _split(data, limits)
    if len(payload) + HEADER.size != len(data):
        raise ProtocolError(f"frame length {HEADER.size + len(payload)} does not match {len(data)} bytes received")
    return _message(kind, payload, dim, limits, lazy)


class FrameReader:
    """Splits a byte stream into messages; keeps a partial frame until the rest arrives."""

    def __init__(self, dim: int, limits: Limits = Limits()) -> None:
        self._buf = bytearray()
        self._dim = dim
        self._limits = limits

    def feed(self, data: bytes) -> Iterator[Message]:
        self._buf += data
        while len(self._buf) >= HEADER.size:
            magic, version, kind, length = HEADER.unpack_from(self._buf)
            _check_header(magic, version, kind, length, self._limits)
            end = HEADER.size + length
            if len(self._buf) < end:
                return
            payload = bytes(self._buf[HEADER.size:end])
            del self._buf[:end]
            yield _message(kind, payload, self._dim, self._limits)

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered (nonzero at end of stream = truncated)."""
        return len(self._buf)


class FrameSplitter:
    """Splits a byte stream into whole raw frames, checking only the header (magic, version,
    kind, size limit); the receiver decodes each frame. A bad header raises ProtocolError."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self._buf = bytearray()
        self._limits = limits

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out = []
        while len(self._buf) >= HEADER.size:
            magic, version, kind, length = HEADER.unpack_from(self._buf)
            _check_header(magic, version, kind, length, self._limits)
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            out.append(bytes(self._buf[:end]))
            del self._buf[:end]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


def _check_header(magic: bytes, version: int, kind: int, length: int, limits: Limits) -> None:
    if magic != MAGIC:
        raise ProtocolError("bad magic: not a swarm-gossip frame")
    if version != VERSION:
        raise ProtocolError(f"frame version {version} is not supported (this node speaks v{VERSION})")
    if kind not in KIND_NAMES:
        raise ProtocolError(f"unknown message kind {kind}")
    if length > limits.max_frame:
        raise ProtocolError(f"frame of {length} bytes exceeds the {limits.max_frame}-byte limit")


def _split(data: bytes, limits: Limits) -> tuple[int, bytes]:
    if len(data) < HEADER.size:
        raise ProtocolError(f"truncated frame: {len(data)} bytes, the header alone is {HEADER.size}")
    magic, version, kind, length = HEADER.unpack_from(data)
    _check_header(magic, version, kind, length, limits)
    if len(data) < HEADER.size + length:
        raise ProtocolError(f"truncated frame: header says {length} payload bytes, {len(data) - HEADER.size} arrived")
    return kind, bytes(data[HEADER.size:HEADER.size + length])


def _message(kind: int, payload: bytes, dim: int, limits: Limits, lazy: bool = False) -> Message:
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(f"{KIND_NAMES[kind]} payload is not JSON ({e.__class__.__name__})") from None
    except ValueError:  # Python's own bound on digits in an integer literal (4,300)
        raise ProtocolError(f"{KIND_NAMES[kind]} payload holds an integer of too many digits") from None
    except RecursionError:
        raise ProtocolError(f"{KIND_NAMES[kind]} payload is JSON nested too deep") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"{KIND_NAMES[kind]} payload must be a JSON object")
    name = KIND_NAMES[kind]
    sender = _ident(body.get("from"), "from", name, limits)
    updates = _updates(body.get("u", []), name, limits)
    out: dict[str, Any] = {}
    if kind in (PING, ACK, PING_REQ):
        out["probe"] = _int(body.get("probe"), "probe", name)
    if kind == PING_REQ:
        out["target"] = _ident(body.get("target"), "target", name, limits)
    if kind == JOIN:
        out["incarnation"] = _int(body.get("inc"), "inc", name)
        space = body.get("space", "")
        if not isinstance(space, str) or len(space) > limits.max_id_chars or not _encodable(space):
            raise ProtocolError("join: 'space' must be a short string")
        out["space"] = space
    if kind in (DIGEST, DELTA):
        if "digest" in body:
            out["digest"] = _digest(body["digest"], name, limits)
        entries = body.get("entries", [])
        roots = _roots(body.get("roots", []), 2 * len(entries) if isinstance(entries, list) else 0, name)
        raw = _raw_entries(entries, roots, name, limits)
        if lazy:
            out["raw"] = raw
        else:
            out["entries"] = validate_entries(raw, dim, name, limits)
        reply = body.get("reply", False)
        if not isinstance(reply, bool):
            raise ProtocolError(f"{name}: 'reply' must be true or false")
        out["reply"] = reply
        if "rl" in body:
            out["revocations"] = _int(body["rl"], "rl", name)
    if kind == REVOKE:
        crl = body.get("crl")
        if not isinstance(crl, str) or not crl or len(crl) > MAX_REVOCATION_LIST * 4 // 3 + 4:
            raise ProtocolError(f"revoke: 'crl' must be a revocation list of at most {MAX_REVOCATION_LIST} bytes")
        out["revocation_list"] = _unb64(crl, "crl", name)
    return Message(kind, sender, updates, **out)


def _unb64(v: Any, key: str, name: str, size: int | None = None) -> bytes:
    """Base64 text -> bytes (of ``size`` bytes, if given)."""
    try:
        raw = base64.b64decode(v, validate=True) if isinstance(v, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or (size is not None and len(raw) != size):
        what = f"{size} bytes in base64" if size is not None else "base64"
        raise ProtocolError(f"{name}: '{key}' must be {what}")
    return raw


def _roots(v: Any, most: int, name: str) -> tuple[bytes, ...]:
    """A frame's list of batch signatures: at most ``most``, two an entry (a write's and its version's)."""
    if not isinstance(v, list) or len(v) > most:
        raise ProtocolError(f"{name}: 'roots' must be a list of at most {most} signatures (two an entry)")
    return tuple(_unb64(r, "roots", name, SIGNATURE_BYTES) for r in v)


def _signature(v: Any, key: str, name: str, roots: tuple[bytes, ...]) -> bytes:
    """Base64 text, or ``[place in the frame's roots, the rest in base64]`` -> a signature or a
    batch proof (:mod:`.identity`), by its size alone (what it proves is the key ring's to check)."""
    if isinstance(v, list):
        if (len(v) != 2 or isinstance(v[0], bool) or not isinstance(v[0], int)
                or not 0 <= v[0] < len(roots)):
            raise ProtocolError(f"{name}: '{key}' must name one of the frame's {len(roots)} roots by place")
        raw = roots[v[0]] + _unb64(v[1], key, name)
    else:
        raw = _unb64(v, key, name)
    if not signature_size_ok(len(raw)):
        raise ProtocolError(f"{name}: '{key}' must be a signature ({SIGNATURE_BYTES} bytes) or a batch proof"
                            f" ({SIGNATURE_BYTES + 4} bytes and 1 to {PROOF_DEPTH_MAX} hashes of 32)")
    return raw


def _encodable(v: str) -> bool:
    """False for a string JSON accepts that cannot be encoded (a lone surrogate): hashing or
    storing it would raise."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ident(v: Any, key: str, name: str, limits: Limits) -> str:
    if not isinstance(v, str) or not v or len(v) > limits.max_id_chars or not _encodable(v):
        raise ProtocolError(f"{name}: '{key}' must be a non-empty node id of at most {limits.max_id_chars} chars")
    return v


def _int(v: Any, key: str, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_INT:
        raise ProtocolError(f"{name}: '{key}' must be a non-negative 64-bit integer")
    return v


def _updates(raw: Any, name: str, limits: Limits) -> tuple[Update, ...]:
    if not isinstance(raw, list) or len(raw) > limits.max_updates:
        raise ProtocolError(f"{name}: 'u' must be a list of at most {limits.max_updates} updates")
    out = []
    for u in raw:
        if not isinstance(u, list) or len(u) != 3 or u[1] not in STATUSES:
            raise ProtocolError(f"{name}: a membership update must be [node, status, incarnation]")
        out.append(Update(_ident(u[0], "node", name, limits), u[1], _int(u[2], "incarnation", name)))
    return tuple(out)


def _digest(raw: Any, name: str, limits: Limits) -> dict[str, int]:
    if not isinstance(raw, dict) or len(raw) > limits.max_entries:
        raise ProtocolError(f"{name}: 'digest' must be an object of origin -> sequence number")
    return {_ident(k, "origin", name, limits): _int(v, "seq", name) for k, v in raw.items()}


def _raw_entries(raw: Any, roots: tuple[bytes, ...], name: str, limits: Limits) -> tuple[RawEntry, ...]:
    if not isinstance(raw, list) or len(raw) > limits.max_entries:
        raise ProtocolError(f"{name}: 'entries' must be a list of at most {limits.max_entries}")
    out = []
    for e in raw:
        if not isinstance(e, list) or len(e) != 5:
            raise ProtocolError(f"{name}: an entry must be [origin, seq, signature, pattern, version signature], "
                                "[origin, seq, signature, revision, [body, version signature]], [origin, seq, "
                                "signature, null, tombstone] or [origin, seq, signature, \"c\", contribution]")
        seq = _int(e[1], "seq", name)
        if seq < 1:
            raise ProtocolError(f"{name}: entry sequence numbers start at 1")
        out.append(RawEntry(_ident(e[0], "origin", name, limits), seq, e, roots))
    return tuple(out)


def validate_entries(raw: Iterable[RawEntry], dim: int, name: str = "delta", limits: Limits = Limits()) -> tuple[Entry, ...]:
    """Validate the writes of ``raw`` entries (patterns as an imported pack's, revisions,
    tombstones, contributions); raises :class:`ProtocolError` naming the message kind ``name``."""
    out = []
    for r in raw:
        e = r.record
        pattern: Payload
        sig = _signature(e[2], "signature", name, r.roots)
        version_sig = None
        try:
            if e[3] == _CONTRIBUTION:
                pattern = _contribution(e[4], origin_node(r.origin), name)
            elif e[3] is None:
                t = e[4]
                if not isinstance(t, list) or len(t) != 5:
                    raise ProtocolError(f"{name}: a tombstone must be [pattern id, version, updated_by, deleter, proof]")
                pid, version, updated_by = version_head_from_record(
                    {"id": t[0], "version": t[1], "updated_by": t[2]}, where=f"{name} tombstone")
                pattern = Tombstone(pid, version, updated_by,
                                    _ident(t[3], "deleter", name, limits),
                                    _unb64(t[4], "proof", name, SIGNATURE_BYTES))
            elif isinstance(e[3], dict):
                pattern = pattern_from_record(e[3], dim, ImportLimits(), where=f"{name} entry")
                version_sig = _signature(e[4], "version signature", name, r.roots)
            else:
                if not isinstance(e[4], list) or len(e[4]) != 2:
                    raise ProtocolError(f"{name}: a revision goes with [body, version signature]")
                body = e[4][0]
                if not isinstance(body, str) or len(body) != 32 or not all(c in "0123456789abcdef" for c in body):
                    raise ProtocolError(f"{name}: a revision's body must be a 32-digit hex digest")
                if not isinstance(e[3], list) or len(e[3]) != len(_REVISION_KEYS):
                    raise ProtocolError(f"{name}: a revision must list {', '.join(_REVISION_KEYS)}")
                fields = revision_from_record(dict(zip(_REVISION_KEYS, e[3])), ImportLimits(), where=f"{name} revision")
                pattern = Revision(body, fields)
                version_sig = _signature(e[4][1], "version signature", name, r.roots)
        except ImportValidationError as err:
            raise ProtocolError(str(err)) from None
        out.append(Entry(r.origin, r.seq, pattern, sig, version_sig))
    return tuple(out)


def _contribution(v: Any, contributor: str, name: str) -> Contribution:
    """``[id, uses, successes, failures, total_reward, last_used_at]`` -> the origin's record,
    checked by the validator of patterns and imports (the same bounds on ids and figures)."""
    if not isinstance(v, list) or len(v) != len(CONTRIBUTION_KEYS):
        raise ProtocolError(f"{name}: a contribution must be [{', '.join(CONTRIBUTION_KEYS)}]")
    return contribution_from_record(dict(zip(CONTRIBUTION_KEYS, v)), contributor, where=f"{name} contribution")
