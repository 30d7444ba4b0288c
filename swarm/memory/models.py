"""The ReasoningBank data model: patterns, trajectories, verdicts, and the rules that change them.

Everything here is pure: no clock, no I/O. Times are plain floats handed in by the caller
(wall-clock seconds in real mode, virtual seconds in a simulation).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from collections.abc import Mapping, Sequence

import numpy as np

PatternKind = Literal["strategy", "lesson"]
KINDS: tuple[PatternKind, ...] = ("strategy", "lesson")

VerdictLabel = Literal["success", "failure"]

#: The most provenance entries a pattern keeps (consolidation drops the oldest beyond it; a
#: pattern file or a gossip frame carrying more is refused).
MAX_PROVENANCE = 1024

#: Default learning rate of :func:`apply_outcome`.
DEFAULT_OUTCOME_LR = 0.1


@dataclass(frozen=True, slots=True)
class Source:
    """Where a pattern came from: the agent, the trajectory it was distilled from, and its outcome
    (the judge's label, and the reward the trajectory earned: the size of what it teaches)."""

    agent: str = ""
    trajectory: str = ""
    outcome: str = ""  # "success" / "failure" / "" when written by hand
    reward: float | None = None  # the trajectory's reward; None when written by hand

    def to_dict(self) -> dict[str, str | float | None]:
        return {"agent": self.agent, "trajectory": self.trajectory, "outcome": self.outcome, "reward": self.reward}


#: The fields that using a pattern changes (its outcome statistics and version); the rest is its
#: body, which :func:`apply_outcome` leaves alone (see :meth:`Pattern.body_digest`).
REVISION_FIELDS = ("confidence", "uses", "successes", "failures", "total_reward", "last_used_at",
                   "version", "updated_by")


@dataclass(frozen=True, slots=True, eq=False)
class Pattern:
    """One unit of memory: a strategy that worked, or a lesson from something that failed.

    ``version`` and ``updated_by`` order concurrent copies of one pattern (see :func:`merge`);
    every local change bumps ``version``. ``author`` is the agent that vouches for the body (signs
    it, when a swarm replicates it: only the author may change or delete it); empty until the
    pattern is first published, when its publisher becomes its author. Equality is identity (the
    embedding is an array); compare copies with :meth:`digest` and ``version``.
    """

    id: str
    title: str
    content: str
    embedding: np.ndarray
    kind: PatternKind = "strategy"
    description: str = ""
    domain: str = "general"
    tags: tuple[str, ...] = ()
    action: str = ""  # the strategy this pattern argues for (strategy) or against (lesson)
    confidence: float = 0.5
    uses: int = 0
    successes: int = 0
    failures: int = 0
    total_reward: float = 0.0
    created_at: float = 0.0
    last_used_at: float | None = None
    source: Source = Source()
    version: int = 1
    updated_by: str = ""
    provenance: tuple[Mapping[str, Any], ...] = ()
    author: str = ""

    def __post_init__(self) -> None:
        emb = np.asarray(self.embedding, dtype=np.float32)
        if emb.ndim != 1 or emb.size == 0:
            raise ValueError(f"pattern {self.id!r}: embedding must be a non-empty 1-D vector")
        # one dot product catches any NaN or infinity (the sum of squares is then not finite, and
        # squares cannot cancel); only huge finite values (> ~1e19, numpy warns of the overflow) need
        # the element-wise check. A search decodes every row it returns: this is on the query path.
        if not math.isfinite(float(emb @ emb)) and not np.isfinite(emb).all():
            raise ValueError(f"pattern {self.id!r}: embedding has non-finite values")
        object.__setattr__(self, "embedding", emb)
        if type(self.tags) is not tuple:
            object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "provenance", tuple(dict(p) for p in self.provenance) if self.provenance else ())
        if not self.id:
            raise ValueError("pattern id must not be empty")
        if self.kind not in KINDS:
            raise ValueError(f"pattern {self.id!r}: kind must be one of {KINDS}, not {self.kind!r}")
        if not (0.0 <= self.confidence <= 1.0) or math.isnan(self.confidence):
            raise ValueError(f"pattern {self.id!r}: confidence {self.confidence} outside [0, 1]")
        if min(self.uses, self.successes, self.failures, self.version) < 0:
            name = next(n for n in ("uses", "successes", "failures", "version") if getattr(self, n) < 0)
            raise ValueError(f"pattern {self.id!r}: {name} must be >= 0")
        if self.source.reward is not None and not math.isfinite(self.source.reward):
            raise ValueError(f"pattern {self.id!r}: source reward must be finite")
        if not math.isfinite(self.total_reward):
            raise ValueError(f"pattern {self.id!r}: total_reward must be finite")

    @property
    def dim(self) -> int:
        return int(self.embedding.shape[0])

    @property
    def success_rate(self) -> float | None:
        """Share of recorded outcomes that were successes; None before any outcome."""
        n = self.successes + self.failures
        return self.successes / n if n else None

    def digest(self) -> str:
        """A content hash, the last tie-breaker of :func:`merge`."""
        return _hash_parts((self.title, self.description, self.content, self.domain, self.kind,
                            self.action, "\x1f".join(self.tags), _number(self.confidence),
                            repr((int(self.uses), int(self.successes), int(self.failures),
                                  float(self.total_reward) + 0.0))), self.embedding)

    def body_digest(self) -> str:
        """A hash of everything but :data:`REVISION_FIELDS`: the same for every version of a
        pattern that only recorded outcomes, so a peer holding one can rebuild the others.
        Numbers hash as SQLite and JSON give them back (see :func:`_number`), so the copy a
        distiller made and the copy read from a store or the wire hash alike."""
        src = self.source
        return body_digest_of(self.id, self.title, self.description, self.content, self.domain, self.kind,
                              self.action, self.tags, self.created_at, src.agent, src.trajectory, src.outcome,
                              src.reward, provenance_json(self.provenance), self.embedding)

    def bumped(self, by: str, **changes: Any) -> Pattern:
        """A copy with ``changes`` applied and the version advanced (a local edit)."""
        return replace(self, version=self.version + 1, updated_by=by, **changes)


def revision_digest(body: str, revision: Sequence[Any]) -> str:
    """A digest of a version: its body digest and its :data:`REVISION_FIELDS` values (in that
    order), the numbers packed as SQLite gives them back (REAL as doubles, -0.0 as 0.0; INTEGER
    as 64-bit integers): about 1 us, where formatting the floats as text took twice that. A store
    checks each row against it, and an author signs it for each version it publishes."""
    conf, uses, successes, failures, total, last, version, by = revision
    h = hashlib.blake2b(_REVISION_PACKING.pack(float(conf) + 0.0, int(uses), int(successes), int(failures),
                                               float(total) + 0.0, 0.0 if last is None else float(last) + 0.0,
                                               int(version), last is None), digest_size=8)
    h.update(f"{body}\x1e{by}".encode())
    return h.hexdigest()


_REVISION_PACKING = struct.Struct("<dqqqddq?")


def revision_of(p: Pattern) -> tuple[Any, ...]:
    """``p``'s :data:`REVISION_FIELDS` values, in order."""
    return (p.confidence, p.uses, p.successes, p.failures, p.total_reward, p.last_used_at, p.version, p.updated_by)


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one agent (``contributor``) recorded on another's pattern: its uses, successes,
    failures and rewards, cumulative. Only the contributor writes (and signs) its record, and of
    two records of one contributor the one with more uses wins, so no member can erase or
    overwrite another's share; a pattern's figures are its author's plus every contributor's
    (:func:`with_contributions`). Confidence stays the author's judgement: a record carries none."""

    pattern_id: str
    contributor: str
    uses: int = 0
    successes: int = 0
    failures: int = 0
    total_reward: float = 0.0
    last_used_at: float | None = None

    def __post_init__(self) -> None:
        if min(self.successes, self.failures) < 0 or self.successes + self.failures != self.uses:
            raise ValueError(f"contribution of {self.contributor!r} to {self.pattern_id!r}: successes and failures"
                             " must be counts adding up to uses")
        if not math.isfinite(self.total_reward) or (self.last_used_at is not None
                                                    and not math.isfinite(self.last_used_at)):
            raise ValueError(f"contribution of {self.contributor!r} to {self.pattern_id!r}: figures must be finite")

    @property
    def id(self) -> str:
        """The pattern's id (a contribution stands where a pattern version would in a write)."""
        return self.pattern_id

    def recorded(self, success: bool, reward: float, now: float) -> Contribution:
        """This record with one more outcome (the counting half of :func:`apply_outcome`)."""
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, not {reward}")
        return replace(self, uses=self.uses + 1, successes=self.successes + int(success),
                       failures=self.failures + int(not success), total_reward=self.total_reward + float(reward),
                       last_used_at=now)

    def key(self) -> tuple[Any, ...]:
        """The order in which one contributor's records supersede each other (more uses wins; the
        rest breaks a tie between two records a contributor signed with the same count)."""
        return (self.uses, self.successes, self.total_reward, -1.0 if self.last_used_at is None else self.last_used_at)

    def values(self) -> list[Any]:
        """The record's figures as they travel and are signed: ``[uses, successes, failures,
        total_reward, last_used_at]``."""
        return [self.uses, self.successes, self.failures, self.total_reward, self.last_used_at]


#: The sums of a pattern's contributions: ``(uses, successes, failures, total_reward, last_used_at)``.
Contributed = tuple[int, int, int, float, float | None]


def with_contributions(p: Pattern, contributed: Contributed | None) -> Pattern:
    """``p`` (its author's figures) with its contributors' sums added: what readers see."""
    if contributed is None:
        return p
    uses, successes, failures, total, last = contributed
    latest = p.last_used_at if last is None else (last if p.last_used_at is None else max(last, p.last_used_at))
    return replace(p, uses=p.uses + uses, successes=p.successes + successes, failures=p.failures + failures,
                   total_reward=p.total_reward + total, last_used_at=latest)


def without_contributions(p: Pattern, contributed: Contributed | None) -> Pattern:
    """The inverse of :func:`with_contributions` for a copy a reader changed (a consolidation's
    merge): its author's figures, the contributors' sums taken off (floored at 0; the time a
    contributor last used it stays, as it cannot be told apart)."""
    if contributed is None:
        return p
    uses, successes, failures, total, _ = contributed
    return replace(p, uses=max(0, p.uses - uses), successes=max(0, p.successes - successes),
                   failures=max(0, p.failures - failures), total_reward=p.total_reward - total)


def make_pattern_id(*parts: str) -> str:
    """A deterministic id from the parts that identify a pattern (agent, trajectory, index...).

    Deterministic ids keep simulated runs reproducible: the same run yields the same ids.
    """
    h = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12)
    return h.hexdigest()


def body_digest_of(pattern_id: str, title: str, description: str, content: str, domain: str, kind: str,
                   action: str, tags: Sequence[str], created_at: float, agent: str, trajectory: str,
                   outcome: str, reward: float | None, provenance: str,
                   embedding: np.ndarray | bytes | memoryview) -> str:
    """:meth:`Pattern.body_digest` from a body's values, for who holds them without a pattern (a
    store's columns): ``provenance`` as :func:`provenance_json` writes it, the embedding as an
    array or its little-endian float32 bytes (or a view of them)."""
    return _hash_parts((pattern_id, title, description, content, domain, kind, action, "\x1f".join(tags),
                        _number(created_at), agent, trajectory, outcome,
                        "None" if reward is None else _number(reward), provenance), embedding)


def provenance_json(provenance: Sequence[Mapping[str, Any]]) -> str:
    """Provenance as the body digest hashes it: sorted-key JSON, ``[]`` when there is none."""
    return json.dumps(list(provenance), sort_keys=True, default=str) if provenance else "[]"


def _hash_parts(parts: Sequence[str], embedding: np.ndarray | bytes | memoryview) -> str:
    """blake2b-128 of each part followed by a record separator, then the embedding's bytes: one
    ``update`` of the joined text (the same digest as one per part, at a fraction of the calls;
    every store insert and every gossip merge hashes)."""
    h = hashlib.blake2b(("\x1e".join(parts) + "\x1e").encode(), digest_size=16)
    # a C-contiguous array is hashed through its buffer: the same bytes as ``tobytes()`` without
    # copying them (4 KB a 1024-d row; every store insert hashes one)
    if not isinstance(embedding, bytes | memoryview):
        embedding = embedding.data if embedding.flags.c_contiguous else embedding.tobytes()
    h.update(embedding)
    return h.hexdigest()


def _number(x: float) -> str:
    """A number as hashed: a Python float's repr, with -0.0 as 0.0 (SQLite stores -0.0 as 0.0,
    and a numpy float's repr names its type), so a pattern hashes the same before and after a
    store or the wire."""
    return repr(float(x) + 0.0)


def merge(a: Pattern, b: Pattern) -> Pattern:
    """Pick the winner of two copies of one pattern: higher version, then updater, then digest.

    The order is total, so merge is commutative, associative and idempotent: every node that
    has seen the same copies ends with the same one, whatever order they arrived in.
    """
    if a.id != b.id:
        raise ValueError(f"cannot merge different patterns {a.id!r} and {b.id!r}")
    ka = (a.version, a.updated_by, a.digest())
    kb = (b.version, b.updated_by, b.digest())
    return a if ka >= kb else b


def apply_outcome(
    pattern: Pattern,
    success: bool,
    reward: float,
    now: float,
    lr: float = DEFAULT_OUTCOME_LR,
    by: str = "",
) -> Pattern:
    """Record that ``pattern`` informed a decision whose outcome was ``success`` with ``reward``.

    The rule: ``uses`` += 1; ``successes`` or ``failures`` += 1; ``total_reward`` += reward;
    and confidence moves toward the outcome by an exponential moving average,
    ``confidence += lr * (target - confidence)`` with ``target = 1`` on success, ``0`` on failure.
    A lesson ("avoid X here") is *confirmed* when avoiding was right, so callers pass
    ``success=True`` when the lesson's warning held. Confidence stays within [0, 1] because
    it is a convex combination of values in [0, 1].
    """
    if not (0.0 < lr <= 1.0):
        raise ValueError(f"learning rate must be in (0, 1], not {lr}")
    if not math.isfinite(reward):
        raise ValueError(f"reward must be finite, not {reward}")
    target = 1.0 if success else 0.0
    confidence = pattern.confidence + lr * (target - pattern.confidence)
    return pattern.bumped(
        by or pattern.updated_by,
        uses=pattern.uses + 1,
        successes=pattern.successes + (1 if success else 0),
        failures=pattern.failures + (0 if success else 1),
        total_reward=pattern.total_reward + float(reward),
        confidence=min(1.0, max(0.0, confidence)),
        last_used_at=now,
    )


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a trajectory: what the agent did, what it saw, and the reward it got."""

    action: str
    observation: str = ""
    reward: float = 0.0


@dataclass(frozen=True, slots=True)
class Trajectory:
    """What an agent did for one task: the context it acted in, its steps, and the reward.

    ``context`` is what gets embedded: text, or a numeric context vector.
    """

    id: str
    agent: str
    context: str | Sequence[float] | np.ndarray
    steps: tuple[Step, ...]
    reward: float
    task: str = ""
    domain: str = "general"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def context_text(self) -> str:
        """A short human-readable rendering of the context, for titles and prompts."""
        if isinstance(self.context, str):
            return self.context
        values = np.asarray(self.context, dtype=float).ravel()
        names = self.metadata.get("feature_names")
        if names and len(names) == values.size:
            return ", ".join(f"{n}={v:.3g}" for n, v in zip(names, values))
        return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(s.action for s in self.steps)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's label for a trajectory, with its confidence and the reasons."""

    label: VerdictLabel
    confidence: float
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.label not in ("success", "failure"):
            raise ValueError(f"verdict label must be 'success' or 'failure', not {self.label!r}")
        if not (0.0 <= self.confidence <= 1.0) or math.isnan(self.confidence):
            raise ValueError(f"verdict confidence {self.confidence} outside [0, 1]")

    @property
    def success(self) -> bool:
        return self.label == "success"
