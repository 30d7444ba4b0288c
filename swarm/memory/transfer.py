"""Export patterns to a versioned JSONL file and import them back with validation.

File format ``reasoningbank-patterns`` v1: line 1 is a header object
``{"format", "version", "dim", "count", "exported_at", "origin"}`` plus, when the exporting bank's
embedder has one, ``"embedder"`` (the fingerprint of its embedding space, which import checks
against the importing bank's); each further line is one
pattern with every field of :class:`~swarm.memory.models.Pattern`, the embedding as base64 of
little-endian float32 (exact, and a quarter the size of decimal text).

Import reads and validates the *whole* file before it writes anything, then writes in one
transaction: a bad file raises :class:`ImportValidationError` naming the file, line and
problem, and leaves the store untouched.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from collections.abc import Iterable

import numpy as np

from .errors import ImportValidationError
from .models import KINDS, MAX_PROVENANCE, REVISION_FIELDS, Contribution, Pattern, Source, merge
from .store import PatternStore

FORMAT = "reasoningbank-patterns"
FORMAT_VERSION = 1


#: The largest integer a store column holds (SQLite's signed 64-bit INTEGER).
MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """Bounds on everything a pattern file or a gossip frame may carry (one validator serves both:
    whatever passes can be stored, hashed, indexed, exported and sent on without error)."""

    max_file_bytes: int = 512 * 1024 * 1024
    max_patterns: int = 1_000_000
    max_text_chars: int = 65_536  # title, description, content
    max_tags: int = 64
    max_name_chars: int = 512  # ids, domain, action, tags, agent names, source fields
    max_provenance: int = MAX_PROVENANCE  # entries
    max_provenance_bytes: int = 256 * 1024  # all of a pattern's provenance, as UTF-8 JSON
    max_depth: int = 8  # nesting inside a provenance entry
    max_embedding_abs: float = 1e6  # per value: the float32 sum of squares cannot overflow
    min_embedding_norm: float = 1e-6  # nor underflow to a zero vector
    # uses, successes, failures and versions: far beyond any real count, yet low enough that what
    # is computed from them stays within a store's 64 bits (one more use or version, and a
    # pattern's figures summed over up to 2**22 contributors): 2**63 - 1 passed this bound once
    # and then made every later outcome on the pattern fail with an overflow
    max_count: int = 2**40
    # a pattern's or a record's total reward, in reward units: likewise, so that sums stay finite
    max_total_reward: float = 1e12


@dataclass(frozen=True, slots=True)
class ImportPolicy:
    """Which patterns to take and what to do when an id exists already.

    ``mode="all"`` takes everything; ``"selective"`` takes only ``domains`` (if given) with
    confidence >= ``min_confidence``. On an existing id, ``on_conflict="merge"`` keeps the
    deterministic winner (:func:`~swarm.memory.models.merge`), ``"skip"`` keeps ours,
    ``"replace"`` takes theirs.
    """

    mode: Literal["all", "selective"] = "all"
    domains: tuple[str, ...] | None = None
    min_confidence: float = 0.0
    on_conflict: Literal["merge", "skip", "replace"] = "merge"

    def __post_init__(self) -> None:
        if self.mode not in ("all", "selective"):
            raise ValueError(f"import mode must be 'all' or 'selective', not {self.mode!r}")
        if self.on_conflict not in ("merge", "skip", "replace"):
            raise ValueError(f"on_conflict must be merge, skip or replace, not {self.on_conflict!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError("min_confidence must be in [0, 1]")

    def admits(self, p: Pattern) -> bool:
        if self.mode == "all":
            return True
        return (self.domains is None or p.domain in self.domains) and p.confidence >= self.min_confidence


@dataclass(frozen=True, slots=True)
class ImportReport:
    in_file: int
    imported: int
    filtered_out: int
    kept_existing: int


def _pattern_record(p: Pattern) -> dict[str, Any]:
    return {
        "id": p.id, "title": p.title, "description": p.description, "content": p.content,
        "domain": p.domain, "tags": list(p.tags), "kind": p.kind, "action": p.action,
        "confidence": p.confidence, "uses": p.uses, "successes": p.successes,
        "failures": p.failures, "total_reward": p.total_reward, "created_at": p.created_at,
        "last_used_at": p.last_used_at, "source": p.source.to_dict(), "version": p.version,
        "updated_by": p.updated_by, "provenance": list(p.provenance), "author": p.author,
        "embedding": base64.b64encode(p.embedding.astype("<f4").tobytes()).decode("ascii"),
    }


def pattern_to_record(p: Pattern) -> dict[str, Any]:
    """A pattern as a JSON-ready dict (the export line format; the embedding as base64 float32)."""
    return _pattern_record(p)


def pattern_from_record(rec: Any, dim: int, limits: ImportLimits = ImportLimits(), where: str = "record") -> Pattern:
    """Validate one record as written by :func:`pattern_to_record`; raises ImportValidationError."""
    return _Reader(where, limits).pattern(rec, dim)


#: A contribution's fields in its record (and, in this order, in a gossip entry's list).
CONTRIBUTION_KEYS = ("id", "uses", "successes", "failures", "total_reward", "last_used_at")


def contribution_from_record(rec: Any, contributor: str, limits: ImportLimits = ImportLimits(),
                             where: str = "record") -> Contribution:
    """Validate ``contributor``'s record on a pattern (the keys of :data:`CONTRIBUTION_KEYS`)
    with the bounds a pattern's own figures get; raises ImportValidationError."""
    return _Reader(where, limits).contribution(rec, contributor)


def version_head_from_record(rec: Any, limits: ImportLimits = ImportLimits(), where: str = "record") -> tuple[str, int, str]:
    """A pattern's ``id``, ``version`` and ``updated_by`` (what a deletion names), validated as
    in a whole pattern; raises ImportValidationError."""
    r = _Reader(where, limits)
    if not isinstance(rec, dict):
        raise r.fail("a version head must be a JSON object")
    return (r.text(rec, "id", allow_empty=False, name=True),
            r.number(rec, "version", 0, limits.max_count, integer=True), r.text(rec, "updated_by", name=True))


def revision_to_record(p: Pattern) -> dict[str, Any]:
    """A pattern's :data:`~swarm.memory.models.REVISION_FIELDS` (and id) as a JSON-ready dict."""
    return {"id": p.id, **{k: getattr(p, k) for k in REVISION_FIELDS}}  # all plain JSON values


def revision_from_record(rec: Any, limits: ImportLimits = ImportLimits(), where: str = "record") -> dict[str, Any]:
    """Validate a record written by :func:`revision_to_record`: its id and revision fields, ready
    for ``dataclasses.replace`` on a copy of the pattern's body. Raises ImportValidationError."""
    r = _Reader(where, limits)
    fields = r.revision(rec)  # first: it checks that the record is an object
    return {"id": r.text(rec, "id", allow_empty=False, name=True), **fields}


def export_patterns(patterns: Iterable[Pattern], path: str | os.PathLike[str], dim: int,
                    now: float, origin: str = "", embedder: str | None = None) -> int:
    """Write ``patterns`` to ``path`` (atomically: a temporary file renamed into place).
    ``embedder`` is the fingerprint of the embedding space, checked on import."""
    records = [_pattern_record(p) for p in patterns]
    header = {"format": FORMAT, "version": FORMAT_VERSION, "dim": dim, "count": len(records),
              "exported_at": now, "origin": origin}
    if embedder is not None:
        header["embedder"] = embedder
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(header, sort_keys=True) + "\n")
        for r in records:
            f.write(json.dumps(r, sort_keys=True, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return len(records)


class _Reader:
    """Validates one file (or one record); every error names the file and line."""

    def __init__(self, path: Path | str, limits: ImportLimits) -> None:
        self.name = path.name if isinstance(path, Path) else path
        self.limits, self.line = limits, 0

    def fail(self, msg: str) -> ImportValidationError:
        where = f"{self.name} line {self.line}" if self.line else self.name
        return ImportValidationError(f"{where}: {msg}")

    def text(self, rec: dict[str, Any], key: str, allow_empty: bool = True, name: bool = False,
             missing: str | None = None) -> str:
        """A string field (``missing``: its value when absent): bounded (``name``: an id-like
        field, to ``max_name_chars``) and valid Unicode (a lone surrogate passes JSON but cannot
        be encoded, hashed or stored)."""
        v = rec.get(key, missing)
        if not isinstance(v, str):
            raise self.fail(f"'{key}' must be a string")
        if not allow_empty and not v:
            raise self.fail(f"'{key}' must not be empty")
        limit = self.limits.max_name_chars if name else self.limits.max_text_chars
        if len(v) > limit:
            raise self.fail(f"'{key}' is longer than {limit} characters")
        self.encodable(v, key)
        return v

    def encodable(self, v: str, key: str) -> None:
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise self.fail(f"'{key}' is not valid Unicode (it holds a lone surrogate)") from None

    def number(self, rec: dict[str, Any], key: str, lo: float = -math.inf, hi: float = math.inf,
               integer: bool = False, optional: bool = False) -> Any:
        v = rec.get(key)
        if v is None and optional:
            return None
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            raise self.fail(f"'{key}' must be {'an integer' if integer else 'a number'}, not {v!r}")
        assert v is not None  # ``ok`` above: v is a number
        if isinstance(v, int) and not -MAX_INT - 1 <= v <= MAX_INT:  # nor would it convert to a float
            raise self.fail(f"'{key}' is out of range (a store holds 64-bit integers)")
        if not math.isfinite(v):
            raise self.fail(f"'{key}' must be finite")
        if not lo <= v <= hi:
            raise self.fail(f"'{key}' {v} out of range [{lo}, {hi}]")
        return v

    def provenance(self, prov: Any) -> tuple[dict[str, Any], ...]:
        """A list of plain JSON objects: bounded in count, depth and size, strict JSON (no NaN),
        valid Unicode; so it can be hashed, stored and exported again."""
        lim = self.limits
        if not isinstance(prov, list) or not all(isinstance(x, dict) for x in prov):
            raise self.fail("'provenance' must be a list of objects")
        if len(prov) > lim.max_provenance:
            raise self.fail(f"'provenance' has more than {lim.max_provenance} entries")
        for x in prov:
            self._plain(x, lim.max_depth)
        try:
            size = len(json.dumps(prov, allow_nan=False, ensure_ascii=False).encode("utf-8"))
        except (ValueError, UnicodeEncodeError):
            raise self.fail("'provenance' holds a non-finite number or invalid Unicode") from None
        if size > lim.max_provenance_bytes:
            raise self.fail(f"'provenance' is larger than {lim.max_provenance_bytes} bytes")
        return tuple(prov)

    def _plain(self, v: Any, depth: int) -> None:
        """``v`` is JSON data nested at most ``depth`` deep, its integers within 64 bits (checked
        before anything recurses into it without a bound)."""
        if depth < 0:
            raise self.fail(f"'provenance' is nested more than {self.limits.max_depth} deep")
        if isinstance(v, dict):
            for x in v.values():
                self._plain(x, depth - 1)
        elif isinstance(v, list):
            for x in v:
                self._plain(x, depth - 1)
        elif isinstance(v, int) and not isinstance(v, bool) and not -MAX_INT - 1 <= v <= MAX_INT:
            raise self.fail("'provenance' holds an integer beyond 64 bits")
        elif not (v is None or isinstance(v, (str, int, float))):
            raise self.fail("'provenance' must hold JSON data only")

    def pattern(self, rec: Any, dim: int) -> Pattern:
        if not isinstance(rec, dict):
            raise self.fail("a pattern line must be a JSON object")
        kind = rec.get("kind")
        if kind not in KINDS:
            raise self.fail(f"'kind' must be one of {list(KINDS)}, not {kind!r}")
        tags = rec.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise self.fail("'tags' must be a list of strings")
        if len(tags) > self.limits.max_tags:
            raise self.fail(f"more than {self.limits.max_tags} tags")
        for tag in tags:
            self.text({"tag": tag}, "tag", name=True)
        src = rec.get("source")
        if not isinstance(src, dict) or not all(isinstance(src.get(k, ""), str) for k in ("agent", "trajectory", "outcome")):
            raise self.fail("'source' must be an object of strings (agent, trajectory, outcome)")
        src_reward = self.number(src, "reward", optional=True)
        prov = self.provenance(rec.get("provenance", []))
        try:
            raw = base64.b64decode(self.text(rec, "embedding", allow_empty=False), validate=True)
        except (binascii.Error, ValueError):
            raise self.fail("'embedding' is not valid base64") from None
        if len(raw) != 4 * dim:
            raise self.fail(f"embedding has {len(raw) // 4} dimensions, the file declares {dim}")
        emb = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(emb)):
            raise self.fail("embedding has non-finite values")
        if float(np.max(np.abs(emb))) > self.limits.max_embedding_abs:
            raise self.fail(f"embedding has a value beyond +-{self.limits.max_embedding_abs:g}")
        if float(np.linalg.norm(emb.astype(np.float64))) < self.limits.min_embedding_norm:
            raise self.fail("embedding is all zeros (or nearly)")
        return Pattern(
            id=self.text(rec, "id", allow_empty=False, name=True), title=self.text(rec, "title"),
            description=self.text(rec, "description"), content=self.text(rec, "content"),
            domain=self.text(rec, "domain", allow_empty=False, name=True), tags=tuple(tags), kind=kind,
            action=self.text(rec, "action", name=True), created_at=self.number(rec, "created_at"),
            source=Source(agent=self.text(src, "agent", name=True, missing=""),
                          trajectory=self.text(src, "trajectory", name=True, missing=""),
                          outcome=self.text(src, "outcome", name=True, missing=""), reward=src_reward),
            provenance=prov, embedding=emb, author=self.text(rec, "author", name=True, missing=""),
            **self.revision(rec),
        )

    def revision(self, rec: Any) -> dict[str, Any]:
        """The :data:`~swarm.memory.models.REVISION_FIELDS` of a record, validated."""
        if not isinstance(rec, dict):
            raise self.fail("a revision must be a JSON object")
        uses, successes, failures = self.counts(rec)
        if successes + failures > uses:
            raise self.fail(f"successes + failures ({successes + failures}) exceed uses ({uses})")
        return {"confidence": self.number(rec, "confidence", 0.0, 1.0), "uses": uses, "successes": successes,
                "failures": failures, "total_reward": self.total_reward(rec),
                "last_used_at": self.number(rec, "last_used_at", optional=True),
                "version": self.number(rec, "version", 0, self.limits.max_count, integer=True),
                "updated_by": self.text(rec, "updated_by", name=True)}

    def counts(self, rec: dict[str, Any]) -> tuple[int, int, int]:
        """``uses``, ``successes`` and ``failures``, each a count up to ``max_count``."""
        top = self.limits.max_count
        return (self.number(rec, "uses", 0, top, integer=True), self.number(rec, "successes", 0, top, integer=True),
                self.number(rec, "failures", 0, top, integer=True))

    def total_reward(self, rec: dict[str, Any]) -> float:
        top = self.limits.max_total_reward
        return float(self.number(rec, "total_reward", -top, top))

    def contribution(self, rec: Any, contributor: str) -> Contribution:
        """A contributor's record (:class:`~swarm.memory.models.Contribution`), its fields named as
        in :data:`CONTRIBUTION_KEYS`, validated as a pattern's figures are."""
        if not isinstance(rec, dict):
            raise self.fail("a contribution must be a JSON object")
        uses, successes, failures = self.counts(rec)
        last = self.number(rec, "last_used_at", optional=True)
        try:
            return Contribution(self.text(rec, "id", allow_empty=False, name=True), contributor, uses, successes,
                                failures, self.total_reward(rec), None if last is None else float(last))
        except ValueError as err:
            raise self.fail(str(err)) from None


def read_patterns(path: str | os.PathLike[str], dim: int,
                  limits: ImportLimits = ImportLimits()) -> tuple[dict[str, Any], list[Pattern]]:
    """Parse and validate a whole pattern file; raise :class:`ImportValidationError` on any flaw."""
    p = Path(path)
    r = _Reader(p, limits)
    if not p.is_file():
        raise ImportValidationError(f"{p}: no such file")
    if p.stat().st_size > limits.max_file_bytes:
        raise r.fail(f"file is larger than the {limits.max_file_bytes}-byte limit")
    patterns: list[Pattern] = []
    header: dict[str, Any] | None = None
    seen: set[str] = set()
    with open(p, "rb") as f:
        for r.line, raw in enumerate(f, start=1):
            try:
                rec = json.loads(raw.decode("utf-8"), parse_constant=lambda c: float("nan"))
            except UnicodeDecodeError:
                raise r.fail("not UTF-8 text") from None
            except json.JSONDecodeError as e:
                raise r.fail(f"invalid JSON ({e.msg})") from None
            except ValueError:  # Python's own bound on digits in an integer literal (4,300)
                raise r.fail("an integer of more digits than JSON numbers may have here") from None
            except RecursionError:
                raise r.fail("JSON nested too deep") from None
            if header is None:
                header = _check_header(r, rec, dim)
                continue
            if len(patterns) >= limits.max_patterns:
                raise r.fail(f"more than {limits.max_patterns} patterns")
            pat = r.pattern(rec, dim)
            if pat.id in seen:
                raise r.fail(f"duplicate pattern id {pat.id!r}")
            seen.add(pat.id)
            patterns.append(pat)
    r.line = 0
    if header is None:
        raise r.fail("empty file (no header)")
    if header["count"] != len(patterns):
        raise r.fail(f"header declares {header['count']} patterns, the file holds {len(patterns)} (truncated?)")
    return header, patterns


def _check_header(r: _Reader, rec: Any, dim: int) -> dict[str, Any]:
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise r.fail(f"not a {FORMAT} file (bad header)")
    if rec.get("version") != FORMAT_VERSION:
        raise r.fail(f"format version {rec.get('version')!r} is not supported (this software reads v{FORMAT_VERSION})")
    if rec.get("dim") != dim:
        raise r.fail(f"patterns have dimension {rec.get('dim')!r}, the store holds {dim}")
    count = rec.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise r.fail("header 'count' must be a non-negative integer")
    return rec


def import_patterns(store: PatternStore, path: str | os.PathLike[str], now: float,
                    policy: ImportPolicy = ImportPolicy(), limits: ImportLimits = ImportLimits(),
                    embedder: str | None = None) -> ImportReport:
    """Validate ``path`` completely, then merge the admitted patterns in one transaction.

    When both the file and the caller name an embedder fingerprint they must match: vectors
    from another embedding space of the same size would import cleanly and retrieve nonsense.
    """
    header, patterns = read_patterns(path, store.dim, limits)
    theirs = header.get("embedder")
    if embedder is not None and theirs is not None and theirs != embedder:
        raise ImportValidationError(f"{path}: patterns were embedded by {theirs!r}, this bank embeds with "
                                    f"{embedder!r}; vectors from another embedding space cannot be compared")
    admitted = [p for p in patterns if policy.admits(p)]
    existing = store.get_many([p.id for p in admitted])
    stamp = {"event": "import", "file": Path(path).name, "origin": str(header.get("origin", "")), "at": now}
    take: list[Pattern] = []
    for p in admitted:
        cur = existing.get(p.id)
        if cur is not None:
            if policy.on_conflict == "skip":
                continue
            if policy.on_conflict == "merge" and merge(cur, p) is cur:
                continue
        # the importer vouches for what it imports: it becomes the author when it publishes them
        take.append(replace(p, provenance=p.provenance + (stamp,), author=""))
    store.put_many(take)
    return ImportReport(in_file=len(patterns), imported=len(take),
                        filtered_out=len(patterns) - len(admitted),
                        kept_existing=len(admitted) - len(take))
