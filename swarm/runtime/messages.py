"""The control channel between the orchestrator and an agent process: typed messages in a
versioned JSON encoding, never pickle (a channel that will cross machines must not run code it
receives).

One class per message, as in h11: the orchestrator sends :class:`Setup` once, then one request at
a time (:class:`Hello`, :class:`Start`, :class:`Status`, ...), and the agent answers each with
:class:`Ok` or :class:`Error`. On the wire a message is one JSON document
``{"v": VERSION, "type": "<class name>", "body": {...}}``.

Values inside a message are JSON, plus tagged forms for what JSON lacks: tuples, sets, maps with
non-string keys, bytes, NaN and infinities, numpy arrays (raw little-endian bytes, exact), the
dataclasses listed in :data:`VALUE_TYPES` or marked as rules (rebuilt through their constructors,
so their own validation runs), and *rules*: functions or classes a topology marked with :func:`swarm.specs.rule`,
named by module and qualified name. A rule is resolved only in a module the agent process was
told to trust on its command line (set by whoever spawned it, not by the channel), and only if it
carries the mark: a message cannot make the agent import or call anything else.

Hand-written because no well-kept library does this: ``json`` has no hooks for these types, and
msgpack/CBOR extension types would need the same per-type code on top of a new dependency.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import importlib
import json
import math
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..learning.episodes import Context, Decision
from ..learning.memory_policy import MemoryConfig
from ..learning.policies import Exploration
from ..learning.session import RunLog
from ..market import MarketConfig
from ..memory.consolidate import ConsolidationPolicy, ConsolidationReport
from ..memory.models import Pattern, Source
from ..memory.transfer import ImportLimits, ImportPolicy, ImportReport
from ..specs import AgentSpec, SwarmConfig, is_rule
from ..transport.quic import QuicStats
from ..transport.sim import LinkProfile

VERSION = 1

#: Dataclasses a message may carry, by name. Anything else is refused on both ends.
VALUE_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    AgentSpec, SwarmConfig, MemoryConfig, Exploration, LinkProfile, MarketConfig, Context, Decision, RunLog,
    Pattern, Source, QuicStats, ImportPolicy, ImportLimits, ImportReport, ConsolidationPolicy, ConsolidationReport,
)}

#: numpy dtypes an array may have on the wire.
_DTYPES = frozenset({"<f4", "<f8", "<i8", "|b1"})


class ProtocolError(ValueError):
    """A message that does not decode: bad JSON, another version, an unknown type or rule."""


# ---- values ---------------------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """``value`` as JSON-ready data (see the module docstring for what may be sent)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else {"$f": repr(v)}
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        arr = arr.astype(dtype, copy=False)
        if arr.dtype.str not in _DTYPES:
            raise ProtocolError(f"cannot send an array of {arr.dtype}")
        return {"$a": base64.b64encode(arr.tobytes()).decode(), "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, tuple):
        return {"$t": [encode_value(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"$s": [encode_value(v) for v in sorted(value, key=repr)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"$d": {k: encode_value(v) for k, v in value.items()}}
        return {"$m": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if isinstance(value, functools.partial) and is_rule(value.func) and not value.args:
        return {"$rule": _rule_name(value.func), "kw": encode_value(dict(value.keywords))}
    if is_rule(value):
        return {"$rule": _rule_name(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if is_rule(type(value)):  # a topology's own record type (e.g. what a policy wrapper did)
            name = _rule_name(type(value))
        elif VALUE_TYPES.get(name) is not type(value):
            raise ProtocolError(f"cannot send a {type(value).__qualname__}: not a message value type")
        return {"$c": name, "f": {f.name: encode_value(getattr(value, f.name))
                                  for f in dataclasses.fields(value) if f.init}}
    raise ProtocolError(f"cannot send a {type(value).__qualname__}")


def decode_value(data: Any, trusted: Iterable[str] = ()) -> Any:
    """The value :func:`encode_value` made; rules only from the ``trusted`` modules."""
    try:
        return _decode(data, frozenset(trusted))
    except TypeError as e:  # e.g. an unhashable set member or map key
        raise ProtocolError(f"malformed value: {e}") from None


def _decode(data: Any, trusted: frozenset[str]) -> Any:
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [_decode(v, trusted) for v in data]
    if not isinstance(data, dict) or len(data) == 0:
        raise ProtocolError(f"malformed value: {str(data)[:60]}")
    if "$d" in data:
        return {str(k): _decode(v, trusted) for k, v in _expect(data["$d"], dict).items()}
    if "$t" in data:
        return tuple(_decode(v, trusted) for v in _expect(data["$t"], list))
    if "$s" in data:
        return {_decode(v, trusted) for v in _expect(data["$s"], list)}
    if "$m" in data:
        return {_decode(k, trusted): _decode(v, trusted) for k, v in (_pair(p) for p in _expect(data["$m"], list))}
    if "$f" in data:
        if data["$f"] not in ("nan", "inf", "-inf"):
            raise ProtocolError(f"malformed float {data['$f']!r}")
        return float(data["$f"])
    if "$b" in data:
        return _b64(data["$b"])
    if "$a" in data:
        dtype, shape = data.get("dtype"), data.get("shape")
        if not isinstance(dtype, str) or dtype not in _DTYPES or not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ProtocolError("malformed array")
        raw = _b64(data["$a"])
        if len(raw) != math.prod(shape) * np.dtype(dtype).itemsize:
            raise ProtocolError("array size does not match its shape")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if "$rule" in data:
        fn = _resolve_rule(data["$rule"], trusted)
        if "kw" in data:
            kw = _decode(data["kw"], trusted)
            if not isinstance(kw, dict):
                raise ProtocolError("malformed rule arguments")
            return functools.partial(fn, **kw)
        return fn
    if "$c" in data:
        name = _expect(data["$c"], str)
        cls = _resolve_rule(name, trusted) if ":" in name else VALUE_TYPES.get(name)
        if cls is None or not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ProtocolError(f"unknown value type {name[:40]!r}")
        fields = {k: _decode(v, trusted) for k, v in _expect(data.get("f"), dict).items()}
        try:
            return cls(**fields)
        except (TypeError, ValueError) as e:
            raise ProtocolError(f"invalid {cls.__name__}: {e}") from None
    raise ProtocolError(f"unknown value tag {next(iter(data))[:20]!r}")


def _expect(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise ProtocolError(f"malformed value: expected a {kind.__name__}")
    return value


def _pair(item: Any) -> tuple[Any, Any]:
    if not isinstance(item, list) or len(item) != 2:
        raise ProtocolError("malformed map entry")
    return item[0], item[1]


def _b64(text: Any) -> bytes:
    try:
        return base64.b64decode(_expect(text, str), validate=True)
    except ValueError:
        raise ProtocolError("malformed base64") from None


def _rule_name(fn: Any) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def _resolve_rule(name: Any, trusted: frozenset[str]) -> Callable[..., Any]:
    module, _, qualname = _expect(name, str).partition(":")
    if module not in trusted:
        raise ProtocolError(f"rule {name!r} is not in a trusted module")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if obj is None or not is_rule(obj):
        raise ProtocolError(f"{name!r} is not a rule")
    return obj


def rule_modules(values: Iterable[Any]) -> list[str]:
    """The modules the rules among ``values`` live in: what an agent process must trust."""
    out = []
    for v in values:
        fn = v.func if isinstance(v, functools.partial) else v
        if fn is not None and is_rule(fn) and fn.__module__ not in out:
            out.append(fn.__module__)
    return out


# ---- messages -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """A control-channel message; subclasses are the message types (listed in :data:`MESSAGES`)."""


def encode(message: Message) -> bytes:
    """One message as bytes for the channel."""
    body = {f.name: encode_value(getattr(message, f.name)) for f in dataclasses.fields(message)}
    return json.dumps({"v": VERSION, "type": type(message).__name__, "body": body},
                      separators=(",", ":"), allow_nan=False).encode()


def decode(data: bytes, trusted: Iterable[str] = ()) -> Message:
    """The message in ``data``; :class:`ProtocolError` with one line if it is not one."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(f"not a JSON message ({e.msg if isinstance(e, json.JSONDecodeError) else e})") from None
    if not isinstance(doc, dict):
        raise ProtocolError("a message is a JSON object")
    if doc.get("v") != VERSION:
        raise ProtocolError(f"control channel version {doc.get('v')!r}; this side speaks {VERSION}")
    cls = MESSAGES.get(str(doc.get("type")))
    if cls is None:
        raise ProtocolError(f"unknown message type {str(doc.get('type'))[:40]!r}")
    body = _expect(doc.get("body"), dict)
    names = {f.name for f in dataclasses.fields(cls)}
    if set(body) != names:
        raise ProtocolError(f"{cls.__name__}: fields {sorted(body)} are not {sorted(names)}")
    values = {k: decode_value(v, trusted) for k, v in body.items()}
    hints = _hints(cls)
    for name, value in values.items():
        if not _conforms(value, hints[name]):
            raise ProtocolError(f"{cls.__name__}.{name}: a {type(value).__name__} is not a {hints[name]}")
    return cls(**values)


_HINTS: dict[str, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls.__name__ not in _HINTS:
        _HINTS[cls.__name__] = typing.get_type_hints(cls)
    return _HINTS[cls.__name__]


def _conforms(value: Any, hint: Any) -> bool:
    """``value`` has the type ``hint`` names (the forms message fields use), checked all the way down."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args))
    if origin is dict:
        return isinstance(value, dict) and all(_conforms(k, args[0]) and _conforms(v, args[1])
                                               for k, v in value.items())
    return isinstance(value, hint)


# The orchestrator's side: the setup, then requests.


@dataclasses.dataclass(frozen=True, slots=True)
class Setup(Message):
    """Everything an agent process needs, sent once when it is spawned."""

    spec: AgentSpec
    decisions: list[Decision]
    config: SwarmConfig
    index: int
    boots: int
    store_dir: str
    space: str
    contacts: Any  # a rule or None
    share: Any  # a rule or None
    certificate_pem: bytes  # issued by the orchestrator's swarm CA; the CA key never leaves it
    key_pem: bytes
    ca_pem: bytes
    write_key: bytes  # the agent's Ed25519 write key (raw); its certificate holds the public half
    certificates: list[bytes]  # every agent's certificate so far (PEM): whose writes it can check
    members: list[str]  # the swarm's agents (a static member list)
    seeds: list[str]  # live peers to rejoin through, after a restart
    # where a restarted agent carries on: its trades so far (as last reported) and its settings
    cursor: int
    log: RunLog | None
    informed_by: list[tuple[str, ...]]
    memory: MemoryConfig | None
    quota: float


@dataclasses.dataclass(frozen=True, slots=True)
class Hello(Message):
    """Are you up? (Answered with the process id once imports are done.)"""


@dataclasses.dataclass(frozen=True, slots=True)
class Start(Message):
    """Run the agent on the swarm clock whose wall-clock origin is ``epoch``."""

    epoch: float


@dataclasses.dataclass(frozen=True, slots=True)
class Status(Message):
    """Progress, and the records made since the last status."""


@dataclasses.dataclass(frozen=True, slots=True)
class Members(Message):
    """The swarm's member list changed."""

    members: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Directory(Message):
    """Where every agent's endpoint listens."""

    directory: dict[str, tuple[str, int]]
    certificates: list[bytes]  # every agent's certificate (PEM), new ones included


@dataclasses.dataclass(frozen=True, slots=True)
class Faults(Message):
    """Peers whose traffic this agent's transport drops, and the share of frames it loses."""

    blocked: list[str]
    loss: float


@dataclasses.dataclass(frozen=True, slots=True)
class Report(Message):
    """The final figures, after trading."""


@dataclasses.dataclass(frozen=True, slots=True)
class Stop(Message):
    """Stop gossiping and exit."""


@dataclasses.dataclass(frozen=True, slots=True)
class StoreRead(Message):
    """A read-only call on the agent's store (or a checkpoint, which changes no pattern)."""

    method: str
    args: list[Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Call(Message):
    """One of the agent's controller calls (vote, export_pack, consolidate, ...)."""

    method: str
    args: list[Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot(Message):
    """Copy the agent's store, as of one instant, to ``path`` (relative to the agent's working
    directory): what the orchestrator downloads so a restart survives losing the agent's disk."""

    path: str


# The agent's side: one answer per request.


@dataclasses.dataclass(frozen=True, slots=True)
class Ok(Message):
    value: Any


@dataclasses.dataclass(frozen=True, slots=True)
class Error(Message):
    """The request failed; the orchestrator raises it as its own error."""

    message: str


#: Every message type, by the name it has on the wire.
MESSAGES: dict[str, type[Message]] = {cls.__name__: cls for cls in (
    Setup, Hello, Start, Status, Members, Directory, Faults, Report, Stop, StoreRead, Call, Snapshot, Ok, Error,
)}
