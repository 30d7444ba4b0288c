"""The durable pattern store: SQLite in WAL mode plus an in-memory vector index mirror.

* Every write is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``); the index is updated
  only after the commit, so it never holds uncommitted rows.
* Several processes may open one file: SQLite's WAL lets one write while the others read.
  Each write stamps its rows with a global sequence number and logs deletions, so a reader's
  :meth:`PatternStore.refresh` pulls just what changed since it last looked
  (``PRAGMA data_version`` tells it whether anything did, and before it, on a store read without
  writing, a read of the WAL index header without a lock: :mod:`~swarm.memory.walwatch`),
  reading the counter, the rows and the deletions in one snapshot (a read transaction).
* Two writers on one file (two processes, or two stores in one): each write takes SQLite's write
  lock (``BEGIN IMMEDIATE``), waiting up to ``busy_timeout_s`` for the other's transaction to
  end, so writes serialise and never interleave; a writer first indexes what the other committed
  (under the lock), and each sees the other's commits on its next refresh or search.
* Every row is checked when it is read: its values' types and ranges, its content against the
  ``body`` digest stored beside it (:meth:`~swarm.memory.models.Pattern.body_digest`), and its
  outcome statistics against its ``row_digest`` (:func:`_row_digest`); once per row as it is
  loaded into the index (at open and refresh) and as a row is decoded into a pattern (rows kept
  in the row cache are not checked again). What the rows cannot show (an index that lost a row,
  damaged page structure) SQLite's ``PRAGMA integrity_check`` finds: it runs at open on a second
  connection, in a thread, beside the loading of the rows.
* What goes wrong raises a one-line :class:`~swarm.memory.errors.StoreError`, never a raw
  ``sqlite3`` error or a decoding error: :class:`~swarm.memory.errors.CorruptStoreError` for a
  damaged file (truncated, damaged pages, a schema that is not a store's, a row that fails its
  checks: the message names the row), :class:`~swarm.memory.errors.StoreReadOnlyError` for a
  write to a store that can only be read (``read_only=True``, or a file or directory this
  process cannot write: reads still work),
  :class:`~swarm.memory.errors.StoreFullError` for a disk (or SQLite's page limit) that is full,
  :class:`~swarm.memory.errors.StoreLockedError` for a lock held longer than the busy timeout.
  A failed write is rolled back whole: every earlier commit stays intact.
* The schema is versioned through ``PRAGMA user_version`` and upgraded by the migrations in
  ``_MIGRATIONS``; a file stamped with another ``application_id`` is refused as foreign.
* Nothing here reads a clock: times come in as ``now`` arguments.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import os
import sqlite3
import threading
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, cast
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .errors import (
    CorruptStoreError,
    DimensionMismatchError,
    ForeignStoreError,
    MemoryEngineError,
    SchemaVersionError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)
from .index import Filter, IndexMode, VectorIndex
from .models import (
    KINDS,
    REVISION_FIELDS,
    Contributed,
    Contribution,
    Pattern,
    Source,
    apply_outcome,
    body_digest_of,
    merge,
    provenance_json,
    revision_digest,
    revision_of,
    with_contributions,
    without_contributions,
)
from .walwatch import WalWatch, open_descriptors

#: ``PRAGMA application_id`` of a ReasoningBank store ("RBNK").
APPLICATION_ID = 0x52424E4B
SCHEMA_VERSION = 8
_SQLITE_MAGIC = b"SQLite format 3\x00"

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

#: One replicated write: ``(origin, seq, pattern id, version, updated_by, body digest, signature)``;
#: the body is empty for a deletion (a tombstone); the signature is the origin's over the write
#: (:func:`swarm.gossip.identity.write_message`), None for a write made before writes were signed.
ReplicaRow = tuple[str, int, str, int, str, str, bytes | None]
#: A deletion: ``(pattern id, version, updated_by)`` of the copy removed.
DeletedKey = tuple[str, int, str]


def _migrate_1(db: sqlite3.Connection) -> None:
    """v1: the pattern table and the store's metadata."""
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE patterns (
            rowid INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            description TEXT NOT NULL,
            content TEXT NOT NULL,
            domain TEXT NOT NULL,
            tags TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('strategy', 'lesson')),
            action TEXT NOT NULL,
            confidence REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1),
            uses INTEGER NOT NULL,
            successes INTEGER NOT NULL,
            failures INTEGER NOT NULL,
            total_reward REAL NOT NULL,
            created_at REAL NOT NULL,
            last_used_at REAL,
            source_agent TEXT NOT NULL,
            source_trajectory TEXT NOT NULL,
            source_outcome TEXT NOT NULL,
            version INTEGER NOT NULL,
            updated_by TEXT NOT NULL,
            embedding BLOB NOT NULL,
            seq INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE INDEX patterns_seq ON patterns (seq)")
    db.execute("CREATE INDEX patterns_domain ON patterns (domain, kind)")
    db.execute("INSERT INTO meta VALUES ('seq', '0')")


def _migrate_2(db: sqlite3.Connection) -> None:
    """v2: provenance, deletion log (for readers' refresh), contradiction links, consolidation log."""
    db.execute("ALTER TABLE patterns ADD COLUMN provenance TEXT NOT NULL DEFAULT '[]'")
    db.execute("CREATE TABLE deleted (pattern_id TEXT NOT NULL, prow INTEGER NOT NULL, seq INTEGER NOT NULL)")
    db.execute("CREATE INDEX deleted_seq ON deleted (seq)")
    db.execute(
        """CREATE TABLE links (
            a TEXT NOT NULL, b TEXT NOT NULL, relation TEXT NOT NULL,
            similarity REAL NOT NULL, created_at REAL NOT NULL,
            PRIMARY KEY (a, b, relation)
        )"""
    )
    db.execute(
        """CREATE TABLE consolidation_log (
            n INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL, action TEXT NOT NULL,
            pattern_id TEXT NOT NULL, other_id TEXT, detail TEXT NOT NULL
        )"""
    )


def _migrate_3(db: sqlite3.Connection) -> None:
    """v3: the reward of the trajectory a pattern was distilled from (NULL for older rows)."""
    db.execute("ALTER TABLE patterns ADD COLUMN source_reward REAL")


def _migrate_4(db: sqlite3.Connection) -> None:
    """v4: the replicated write log. One row per write the store holds, by the writer's ``origin``
    and sequence number (gossip's anti-entropy runs over these columns); the payload is the
    pattern's current version in ``patterns``, so no version is kept twice. A deletion is a write
    too: a row with an empty ``body`` (a tombstone), and a ``tombstones`` row that refuses the
    pattern's writes until it expires. Deletions log the version they removed and whether a
    peer's tombstone caused them (those are not published again as this store's)."""
    db.execute(
        """CREATE TABLE replica (
            origin TEXT NOT NULL, seq INTEGER NOT NULL, pattern_id TEXT NOT NULL,
            version INTEGER NOT NULL, updated_by TEXT NOT NULL, body TEXT NOT NULL, arrival INTEGER NOT NULL,
            PRIMARY KEY (origin, seq)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX replica_version ON replica (pattern_id, version, updated_by)")
    db.execute("CREATE INDEX replica_body ON replica (body)")
    db.execute("CREATE INDEX replica_arrival ON replica (arrival)")
    db.execute("CREATE TABLE tombstones (pattern_id TEXT PRIMARY KEY, version INTEGER NOT NULL,"
               " updated_by TEXT NOT NULL, at REAL NOT NULL) WITHOUT ROWID")
    db.execute("CREATE INDEX tombstones_at ON tombstones (at)")
    db.execute("ALTER TABLE deleted ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE deleted ADD COLUMN updated_by TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE deleted ADD COLUMN remote INTEGER NOT NULL DEFAULT 0")


def _migrate_5(db: sqlite3.Connection) -> None:
    """v5: each pattern's body digest (:meth:`~swarm.memory.models.Pattern.body_digest`) as a
    column, so gossip can tell which body a replica holds, and apply a new version that changes
    only the outcome statistics, without decoding the pattern."""
    db.execute("ALTER TABLE patterns ADD COLUMN body TEXT NOT NULL DEFAULT ''")
    rows = db.execute(f"SELECT rowid, {_COLUMNS_V4} FROM patterns").fetchall()
    db.executemany("UPDATE patterns SET body = ? WHERE rowid = ?", [(_decode(r[1:]).body_digest(), r[0]) for r in rows])


def _migrate_6(db: sqlite3.Connection) -> None:
    """v6: each row's digest of its body digest and its revision fields (:func:`_row_digest`), so
    that a row altered in any column is caught as it is read (the body digest leaves out the
    outcome statistics, which every recorded outcome changes)."""
    db.execute("ALTER TABLE patterns ADD COLUMN row_digest TEXT NOT NULL DEFAULT ''")
    rows = db.execute(f"SELECT rowid, body, {', '.join(REVISION_FIELDS)} FROM patterns").fetchall()
    db.executemany("UPDATE patterns SET row_digest = ? WHERE rowid = ?", [(_row_digest(r[1], r[2:]), r[0]) for r in rows])


def _row_digest(body: str, revision: Sequence[Any], contributed: str | None = None) -> str:
    """A row's digest: :func:`~swarm.memory.models.revision_digest` of its body digest and its
    :data:`~swarm.memory.models.REVISION_FIELDS` values, and (from v8) of its contributors' sums
    when it has any."""
    return revision_digest(body if contributed is None else f"{body}\x1e{contributed}", revision)

def _migrate_7(db: sqlite3.Connection) -> None:
    """v7: authenticated writes (see :mod:`swarm.gossip.identity`). Each pattern's ``author`` (the
    agent that vouches for its body; older rows: the agent it was distilled by), the author's
    signature of its body and which body digest that signature covers (a body changed since is
    unsigned); each replicated write's signature by its origin; which agent a tombstone's
    deletion came from (it guards only that author's patterns, unless a curator's: ``*``); each
    deleted pattern's author; and the signed proofs of deletions (served for good in place of a
    deleted pattern's writes)."""
    db.execute("ALTER TABLE patterns ADD COLUMN author TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE patterns SET author = source_agent")
    db.execute("ALTER TABLE patterns ADD COLUMN body_sig BLOB")
    db.execute("ALTER TABLE patterns ADD COLUMN signed_body TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE replica ADD COLUMN sig BLOB")
    db.execute("ALTER TABLE tombstones ADD COLUMN deleter TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX patterns_author ON patterns (author)")
    db.execute("ALTER TABLE deleted ADD COLUMN author TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE TABLE deletions (pattern_id TEXT PRIMARY KEY, deleter TEXT NOT NULL, proof BLOB NOT NULL)"
               " WITHOUT ROWID")


def _migrate_8(db: sqlite3.Connection) -> None:
    """v8: outcome statistics per contributing agent. A pattern's own columns hold its author's
    figures; what each other agent recorded on it is that agent's row in ``contributions``
    (cumulative; ``seq`` is the store's change number when this store's own agent last changed
    it, 0 for a peer's), and ``patterns.contributed`` caches their sums (JSON ``[uses, successes,
    failures, total_reward, last_used_at]``, NULL when there are none; the row digest covers it).
    ``body_sig`` is now the signature of a version (of its :func:`~swarm.memory.models.revision_digest`,
    kept in ``signed_body``): signatures of bodies alone are dropped (an agent signs its own
    patterns' versions again as it serves them)."""
    db.execute("CREATE TABLE contributions (pattern_id TEXT NOT NULL, contributor TEXT NOT NULL,"
               " uses INTEGER NOT NULL, successes INTEGER NOT NULL, failures INTEGER NOT NULL,"
               " total_reward REAL NOT NULL, last_used_at REAL, seq INTEGER NOT NULL,"
               " PRIMARY KEY (pattern_id, contributor)) WITHOUT ROWID")
    db.execute("CREATE INDEX contributions_by ON contributions (contributor, seq)")
    db.execute("ALTER TABLE patterns ADD COLUMN contributed TEXT")
    db.execute("UPDATE patterns SET body_sig = NULL, signed_body = ''")


_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_1, 2: _migrate_2, 3: _migrate_3,
                                                                4: _migrate_4, 5: _migrate_5, 6: _migrate_6,
                                                                7: _migrate_7, 8: _migrate_8}

_COLUMNS_V4 = (
    "id, title, description, content, domain, tags, kind, action, confidence, uses, successes, "
    "failures, total_reward, created_at, last_used_at, source_agent, source_trajectory, "
    "source_outcome, version, updated_by, embedding, provenance, source_reward"
)
#: The columns a pattern is written with (its contributors' sums are the store's to keep).
_STORED = _COLUMNS_V4 + ", body, row_digest, author"
#: The columns a pattern is read from.
_COLUMNS = _STORED + ", contributed"
_PLACEHOLDERS = ", ".join("?" * len(_STORED.split(",")))
_INSERT = f"INSERT INTO patterns ({_STORED}, seq) VALUES ({_PLACEHOLDERS}, ?)"
# an upsert keeps the author a row has when the new copy names none (an edit of a published pattern)
_UPSERT = (f"INSERT INTO patterns ({_STORED}, seq) VALUES ({_PLACEHOLDERS}, ?) ON CONFLICT (id) DO UPDATE SET "
           + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _STORED.split(",")[1:] if c.strip() != "author")
           + ", author = CASE excluded.author WHEN '' THEN author ELSE excluded.author END, seq = excluded.seq")


WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024

#: How much of a store's file SQLite reads through a memory map.
MMAP_BYTES = 1 << 30

#: The largest embedding matrix a store keeps between writes (see ``PatternStore._staging``).
_STAGING_BYTES = 64 * 1024 * 1024

#: Memory a store spends on decoded patterns kept for its searches (its row cache).
ROW_CACHE_BYTES = 64 * 1024 * 1024


def _page_size(dim: int) -> int:
    """SQLite page size for a new store of ``dim``-d embeddings: about 16 embeddings a page
    (a 1024-d row fits a 64 KiB page whole: no overflow chains), and no bigger, because a
    commit writes every page it dirtied whole to the WAL (64 KiB pages made each small gossip
    transaction of a 64-d store write ~0.5 MB)."""
    size = 4096
    while size < 16 * 4 * dim and size < 65536:
        size *= 2
    return size


def _json_list(items: Sequence[Any]) -> str:
    return json.dumps(list(items), sort_keys=True) if items else "[]"  # fast path: most are empty


def _encode_many(patterns: Sequence[Pattern], embs: np.ndarray, seq: int,
                 bodies: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
    """Each pattern's column values (``_STORED``, then ``seq``; ``bodies``: their body digests, when
    the caller has them already), their embeddings stacked into ``embs`` (little-endian float32,
    one row a pattern: what the index mirror copies). A row's embedding column is a view of its
    row of ``embs``, which SQLite copies as it binds it and its body digest hashes in place: one
    copy of each embedding, where a ``tobytes()`` for the column, another for the digest and a
    stack for the mirror made three."""
    if patterns:
        np.stack([p.embedding for p in patterns], out=embs)
    flat = embs.reshape(-1).view(np.uint8).data
    size = embs.shape[1] * 4
    rows = []
    for i, p in enumerate(patterns):
        emb = flat[i * size:(i + 1) * size]
        src = p.source
        # the column and the digest's provenance: the same JSON (provenance_json's default=str only
        # changes what json.dumps would refuse, which the column write refuses either way)
        provenance = _json_list(p.provenance)
        body = body_digest_of(p.id, p.title, p.description, p.content, p.domain, p.kind, p.action, p.tags,
                              p.created_at, src.agent, src.trajectory, src.outcome, src.reward, provenance,
                              emb) if bodies is None else bodies[i]
        rows.append((
            p.id, p.title, p.description, p.content, p.domain, _json_list(p.tags), p.kind,
            p.action, p.confidence, p.uses, p.successes, p.failures, p.total_reward, p.created_at,
            p.last_used_at, src.agent, src.trajectory, src.outcome, p.version,
            p.updated_by, emb, provenance, src.reward, body,
            _row_digest(body, (p.confidence, p.uses, p.successes, p.failures, p.total_reward, p.last_used_at,
                               p.version, p.updated_by)),
            p.author, seq,
        ))
    return rows


def _contributed(text: str | None) -> Contributed | None:
    """A row's ``contributed`` column (checked by the row digest) as sums."""
    if text is None:
        return None
    uses, successes, failures, total, last = json.loads(text)
    return int(uses), int(successes), int(failures), float(total), None if last is None else float(last)


def _decode(row: Sequence[Any], base: bool = False) -> Pattern:
    """A row as a pattern: with its contributors' sums added (what readers see), or as its
    author's figures alone (``base``: what replication serves and signs)."""
    p = _decode_base(row)
    return p if base or len(row) <= 26 or row[26] is None else with_contributions(p, _contributed(row[26]))


def _decode_base(row: Sequence[Any]) -> Pattern:
    return Pattern(
        id=row[0], title=row[1], description=row[2], content=row[3], domain=row[4],
        tags=_json_tuple(row[5]), kind=row[6], action=row[7], confidence=row[8],
        uses=row[9], successes=row[10], failures=row[11], total_reward=row[12],
        created_at=row[13], last_used_at=row[14],
        source=Source(agent=row[15], trajectory=row[16], outcome=row[17], reward=row[22]),
        version=row[18], updated_by=row[19],
        embedding=np.frombuffer(row[20], dtype="<f4"),  # read-only over the row's bytes: no copy
        provenance=_json_tuple(row[21]),
        author=row[25] if len(row) > 25 else "",  # rows read by migrations before v7 have none
    )


def _json_tuple(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text)) if text != "[]" else ()  # fast path: most are empty


# ---- checking what is read --------------------------------------------------------------

#: The tables of a store at :data:`SCHEMA_VERSION`.
_TABLES = frozenset({"meta", "patterns", "deleted", "links", "consolidation_log", "replica", "tombstones",
                     "deletions", "contributions"})

_COLUMN_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))
_TEXT_AT = operator.itemgetter(0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 19, 21, 23, 24, 25)  # the TEXT columns
_REVISION_AT = operator.itemgetter(8, 9, 10, 11, 12, 14, 18, 19)  # REVISION_FIELDS, in order
_STR = {str}
_NONE = type(None)
_HEAD_TYPES = ((str,), (int,), (str,), (str,), (str,))  # id, version, updated_by, body, author
_REPLICA_TYPES = ((str,), (int,), (str,), (int,), (str,), (str,), (bytes, _NONE))  # a ReplicaRow


def _short(value: Any) -> str:
    """A value for a one-line message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _revision_damage(values: Sequence[Any]) -> str | None:
    """What is wrong with a row's :data:`~swarm.memory.models.REVISION_FIELDS` values (types and
    ranges; the body digest does not cover them), or None."""
    conf, uses, successes, failures, total, last, version, by = values
    if (type(conf) is float and 0.0 <= conf <= 1.0 and type(uses) is int and type(successes) is int
            and type(failures) is int and type(version) is int and min(uses, successes, failures, version) >= 0
            and type(total) is float and math.isfinite(total) and (last is None or type(last) is float)
            and type(by) is str):
        return None  # the fast path: a sound row
    if type(conf) is not float or not 0.0 <= conf <= 1.0:
        return f"confidence {_short(conf)} is not a number in [0, 1]"
    for name, n in (("uses", uses), ("successes", successes), ("failures", failures), ("version", version)):
        if type(n) is not int or n < 0:
            return f"{name} {_short(n)} is not a count"
    if type(total) is not float or not math.isfinite(total):
        return f"total_reward {_short(total)} is not a finite number"
    if last is not None and type(last) is not float:
        return f"last_used_at {_short(last)} is not a time"
    return f"updated_by {_short(by)} is not text"


def _row_damage(row: Sequence[Any], embedding_bytes: int) -> str | None:
    """What is wrong with a pattern row as read (its columns in ``_COLUMNS`` order), or None:
    a value of the wrong type or out of range, an embedding of the wrong length, content that
    does not match the row's ``body`` digest, or outcome statistics that do not match its
    ``row_digest`` (an altered row)."""
    # the values the digest does not cover, and those the index takes (the text the digest
    # covers is checked by hashing it: a value that is not text fails the join)
    (_, _, _, _, domain, _, kind, _, conf, uses, successes, failures, total, created, last, _, _, _, version, by,
     embedding, _, reward, body, row_digest, author, contributed) = row
    if (type(conf) is float and 0.0 <= conf <= 1.0 and type(uses) is int and type(successes) is int
            and type(failures) is int and type(version) is int and min(uses, successes, failures, version) >= 0
            and type(total) is float and math.isfinite(total) and type(created) is float
            and (last is None or type(last) is float) and type(by) is str and type(embedding) is bytes
            and len(embedding) == embedding_bytes and kind in KINDS and type(domain) is str
            and type(author) is str and (reward is None or (type(reward) is float and math.isfinite(reward)))
            and (contributed is None or type(contributed) is str)):
        try:
            if _stored_body_digest(row) != body:
                return "its content does not match its body digest (the row was altered)"
            if _row_digest(body, (conf, uses, successes, failures, total, last, version, by), contributed) == row_digest:
                if contributed is not None:
                    _contributed(contributed)  # written by this store, so its shape is sound unless damaged
                return None  # the fast path: a sound row
            return "its outcome statistics do not match its row digest (the row was altered)"
        except (ValueError, TypeError, RecursionError):  # a value not text, or tags or provenance not JSON
            pass
    if contributed is not None and type(contributed) is not str:
        return f"contributed is {type(contributed).__name__}, not text"
    # the slow path: say what is wrong
    if set(map(type, _TEXT_AT(row))) != _STR:
        at = next(i for i in (0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 19, 21, 23, 24, 25) if type(row[i]) is not str)
        return f"{_COLUMN_NAMES[at]} is {type(row[at]).__name__}, not text"
    if row[6] not in KINDS:
        return f"kind {_short(row[6])} is not one of {', '.join(KINDS)}"
    what = _revision_damage(_REVISION_AT(row))
    if what is not None:
        return what
    created, reward, embedding = row[13], row[22], row[20]
    if type(created) is not float:
        return f"created_at {_short(created)} is not a time"
    if reward is not None and (type(reward) is not float or not math.isfinite(reward)):
        return f"source_reward {_short(reward)} is not a finite number"
    if type(embedding) is not bytes or len(embedding) != embedding_bytes:
        size = len(embedding) if type(embedding) is bytes else type(embedding).__name__
        return f"embedding is {size} bytes, not {embedding_bytes} ({embedding_bytes // 4} float32)"
    return "its tags or provenance are not the JSON lists written"


def _stored_body_digest(row: Sequence[Any]) -> str:
    """:meth:`~swarm.memory.models.Pattern.body_digest` of the pattern a row holds, computed from
    the row's columns without building the pattern (a third of the time)."""
    tags, provenance = row[5], row[21]
    return body_digest_of(row[0], row[1], row[2], row[3], row[4], row[6], row[7],
                          json.loads(tags) if tags != "[]" else (), row[13], row[15], row[16], row[17], row[22],
                          provenance_json(json.loads(provenance)) if provenance != "[]" else "[]", row[20])


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


# SQLite's result codes (https://sqlite.org/rescode.html) that say what went wrong
_SQLITE_ERROR, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 1, 5, 6, 8
_SQLITE_FULL, _SQLITE_CANTOPEN = 13, 14
_SQLITE_IOERR_SHORT_READ = 522  # a read past the end of a (truncated) file
_SQLITE_READONLY_DBMOVED = 1032  # the file was moved or deleted while open
#: Codes that mean the file is not what a store's writer left: damaged pages (CORRUPT), not a
#: database (NOTADB, FORMAT), a schema without the tables or columns asked for (ERROR), values
#: of impossible types or sizes (MISMATCH, TOOBIG, RANGE).
_DAMAGE_CODES = frozenset({_SQLITE_ERROR, 11, 18, 20, 24, 25, 26})

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _sqlite_errors(method: Callable[Concatenate[PatternStore, _P], _R]) -> Callable[Concatenate[PatternStore, _P], _R]:
    """A method that raises what goes wrong inside SQLite as a one-line
    :class:`~swarm.memory.errors.StoreError` by its cause (:meth:`PatternStore._store_error`),
    never as a raw ``sqlite3`` exception."""
    @functools.wraps(method)
    def guarded(self: PatternStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as e:
            raise self._store_error(e) from None
    return guarded


#: one Filter per domain a learner decides in, made once (a decision searches one domain)
_DOMAIN_FILTERS: dict[str | None, Filter] = {}


@dataclass(frozen=True, slots=True)
class Neighbours:
    """The rows nearest a query (:meth:`PatternStore.neighbours`), nearest first, ties by smaller
    key, as parallel lists: each row's key (:meth:`PatternStore.at_keys` reads the pattern),
    cosine similarity, action and source reward (NaN: the pattern has none)."""

    keys: list[int]
    similarity: list[float]
    action: list[str]
    reward: list[float]


@dataclass(frozen=True, slots=True)
class Link:
    """A recorded relation between two patterns (e.g. ``contradicts``)."""

    a: str
    b: str
    relation: str
    similarity: float
    created_at: float


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One change made by consolidation: ``merge``, ``link``, ``prune`` or ``cap``."""

    at: float
    action: str
    pattern_id: str
    other_id: str | None
    detail: dict[str, Any]


class PatternStore:
    """Patterns in SQLite with a vector index mirror. Open a file path or ``":memory:"``.

    ``dim`` fixes the embedding dimension of a new store; an existing store keeps its own and
    refuses a different one. ``read_only`` opens an existing store for reading only (searches,
    gets, refreshes); a file this process cannot write is opened so by itself (and, in a
    directory it cannot write either, read as an immutable file: later changes by others are not
    seen). Writes to a read-only store raise :class:`~swarm.memory.errors.StoreReadOnlyError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        dim: int | None = None,
        *,
        index_mode: IndexMode = "auto",
        ann_threshold: int = 20_000,
        synchronous: Synchronous = "FULL",
        busy_timeout_s: float = 30.0,
        row_cache_bytes: int = ROW_CACHE_BYTES,
        read_only: bool = False,
    ) -> None:
        if row_cache_bytes < 0:
            raise ValueError(f"row_cache_bytes must be >= 0, not {row_cache_bytes}")
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        if dim is not None and int(dim) <= 0:
            raise ValueError(f"dim must be > 0, not {dim}")
        self.path = str(path)
        self.busy_timeout_s = float(busy_timeout_s)
        # decoded patterns a search returned, by rowid, least recently used first: fetching and
        # decoding the k rows of a search cost ~10x the vector search itself at 10k patterns.
        # Every change to a row goes through the index mirror (_index_*), which drops it here (or,
        # for a recorded outcome, puts the row as it now reads in its place); others' signatures,
        # which change no change number, clear it through the meta counter ``signed``.
        self._rows: dict[int, Pattern] = {}
        self._row_ids: dict[str, int] = {}  # the rowid of each cached pattern, by its id (get_many)
        self._spare: np.ndarray | None = None  # a write's embedding matrix, for the next (_staging)
        self._row_cache = 0  # entries, once the dimension is known

        self._in_memory = self.path == ":memory:"
        #: Why this store cannot be written (None: it can).
        self.read_only_reason: str | None = "opened with read_only=True" if read_only else None
        if self._in_memory and read_only:
            raise ValueError("an in-memory store cannot be read-only: it starts empty")
        if not self._in_memory:
            _check_header(self.path)
            if self.read_only_reason is None and os.path.exists(self.path):
                if not os.access(self.path, os.W_OK):
                    self.read_only_reason = "the file is not writable"
                elif not os.access(os.path.dirname(os.path.abspath(self.path)), os.W_OK) and not os.path.exists(
                        self.path + "-shm"):
                    self.read_only_reason = "its directory is not writable, so SQLite cannot make its WAL files"
        self.index: VectorIndex | None = None  # built once the schema and dimension are known
        self._seq = 0
        self._data_version = -1
        #: reads the WAL index header: unchanged since ``_quiet`` means nothing to refresh
        self._watch = None if self._in_memory else WalWatch(self.path)
        self._quiet: bytes | None = None  # the header when this store was last known current
        self._commits = 0  # this store's commits: a refresh with none since the last one is idle
        self._commits_refreshed = -1  # ... as counted at the last refresh
        #: how many times sign_versions committed, as last read (meta ``signed``): signing changes
        #: authors without a change number, so another connection's signing shows only here
        self._signings = 0
        try:
            self._db = self._connect()
        except sqlite3.Error as e:
            raise self._store_error(e) from None
        try:
            self._reading(self._open, dim, synchronous)
            self.index = VectorIndex(self.dim, mode=index_mode, ann_threshold=ann_threshold)
            self._row_cache = row_cache_bytes // (4 * self.dim + 1024)  # ~1 KB of text and objects a row
            pages_checked = self._check_pages()
            try:
                self._reading(self._load_all)
            except BaseException:
                pages_checked(report=False)  # the rows' error names the row: it says more
                raise
            pages_checked()
        except BaseException:
            self._db.close()
            raise

    @property
    def read_only(self) -> bool:
        """Whether writes are refused (see :attr:`read_only_reason`)."""
        return self.read_only_reason is not None

    # ---- opening -----------------------------------------------------------------------

    @property
    def _vindex(self) -> VectorIndex:
        """The vector index, which ``__init__`` builds before anything reads or writes rows."""
        assert self.index is not None
        return self.index

    def _connect(self) -> sqlite3.Connection:
        #: how a second, read-only connection opens the file (the integrity check's)
        self._read_uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?mode=ro"
        if self.read_only_reason is None:
            return sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_s)
        # read-only: SQLite still needs the WAL index (the -shm file) beside the file; when it can
        # create none (a read-only directory) and no WAL holds commits, the file is all there is
        uri = self._read_uri
        db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=self.busy_timeout_s)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.Error as e:
            db.close()
            wal = self.path + "-wal"
            if (getattr(e, "sqlite_errorcode", 0) & 0xFF != _SQLITE_CANTOPEN
                    or (os.path.exists(wal) and os.path.getsize(wal) > 0)):
                raise
        self.read_only_reason += "; its directory is not writable either: read as an immutable file"
        self._read_uri = uri + "&immutable=1"
        return sqlite3.connect(self._read_uri, uri=True, isolation_level=None, timeout=self.busy_timeout_s)

    def _check_pages(self) -> Callable[..., None]:
        """Start SQLite's ``PRAGMA integrity_check`` of the file (every page's structure, every
        index against its table: what the rows' own checks cannot see, e.g. an id index that no
        longer finds a row) on a second, read-only connection in a thread, while this one loads
        and checks the rows: SQLite runs without the GIL, so on a free core it costs no time.
        Returns the function that waits for it and raises what it found."""
        if self._in_memory:
            return lambda report=True: None
        found: list[str | sqlite3.Error] = []

        def check() -> None:
            try:
                db = sqlite3.connect(self._read_uri, uri=True, isolation_level=None, timeout=self.busy_timeout_s)
                try:
                    found.extend(str(r[0]) for r in db.execute("PRAGMA integrity_check(1)").fetchall())
                finally:
                    db.close()
            except sqlite3.Error as e:
                found.append(e)

        thread = threading.Thread(target=check, name=f"integrity_check {self.path}", daemon=True)
        thread.start()

        def wait(report: bool = True) -> None:
            thread.join()
            if not report:
                return
            if found and isinstance(found[0], sqlite3.Error):
                raise self._store_error(found[0]) from None
            if found != ["ok"]:
                raise CorruptStoreError(f"{self.path}: corrupt store (SQLite's integrity check:"
                                        f" {_one_line(Exception(found[0] if found else 'no answer'))})")
        return wait

    def _reading(self, step: Callable[..., None], *args: Any) -> None:
        """Run a step of opening that reads the file: what the file's damage makes it raise
        (SQLite's errors, and whatever a value no store writes trips) becomes a one-line
        :class:`~swarm.memory.errors.StoreError`."""
        try:
            step(*args)
        except sqlite3.Error as e:
            raise self._store_error(e) from None
        except MemoryEngineError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, OverflowError, RecursionError) as e:
            raise CorruptStoreError(
                f"{self.path}: corrupt store (unreadable data: {type(e).__name__}: {_one_line(e)})") from None

    def _store_error(self, e: sqlite3.Error) -> StoreError:
        """The one-line error to raise for what SQLite reported, by its result code."""
        where, msg = self.path, _one_line(e)
        code = getattr(e, "sqlite_errorcode", None)
        if code is None:  # raised by Python's sqlite3 module itself
            if isinstance(e, sqlite3.OperationalError):  # e.g. "Could not decode to UTF-8 column ..."
                return CorruptStoreError(f"{where}: corrupt store ({msg})")
            return StoreError(f"{where}: {type(e).__name__}: {msg}")  # e.g. "Cannot operate on a closed database."
        primary = code & 0xFF
        if primary == _SQLITE_FULL:
            return StoreFullError(f"{where}: store is full (no space left on the disk, or SQLite's page limit"
                                  " reached): the write was rolled back; earlier commits are intact")
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StoreLockedError(f"{where}: store is locked: another connection held it for longer than"
                                    f" the busy timeout ({self.busy_timeout_s:g} s); nothing was changed")
        if code == _SQLITE_READONLY_DBMOVED:
            return StoreError(f"{where}: the store's file was moved or deleted while open; nothing was changed")
        if primary == _SQLITE_READONLY:
            return StoreReadOnlyError(f"{where}: store is read-only ({self.read_only_reason or msg}):"
                                      " nothing was changed")
        if primary in _DAMAGE_CODES or code == _SQLITE_IOERR_SHORT_READ:
            return CorruptStoreError(f"{where}: corrupt store ({msg})")
        if primary == _SQLITE_CANTOPEN:
            return StoreError(f"{where}: cannot open store ({msg})")
        return StoreError(f"{where}: store error ({getattr(e, 'sqlite_errorname', 'SQLITE')}: {msg})")

    def _corrupt_row(self, rowid: int | None, pattern_id: Any, what: str) -> CorruptStoreError:
        at = "" if rowid is None else f" at row {rowid}"
        return CorruptStoreError(f"{self.path}: corrupt store (pattern {_short(pattern_id)}{at}: {what})")

    def _pattern(self, row: Sequence[Any], rowid: int | None = None, base: bool = False) -> Pattern:
        """Decode a row (its columns in ``_COLUMNS`` order) after checking it (:func:`_row_damage`);
        ``base``: its author's figures alone (see :func:`_decode`)."""
        what = _row_damage(row, 4 * self.dim)
        if what is None:
            try:
                return _decode(row, base)
            except (ValueError, TypeError) as e:
                what = f"cannot be decoded ({_one_line(e)})"
        raise self._corrupt_row(rowid, row[0], what)

    def _checked(self, rows: Iterable[Sequence[Any]], types: Sequence[tuple[type, ...]],
                 what: str) -> list[tuple[Any, ...]]:
        """``rows`` as tuples, each value of one of its column's ``types`` (exact types, as SQLite
        gives them back); a damaged value raises :class:`~swarm.memory.errors.CorruptStoreError`."""
        out = [tuple(r) for r in rows]
        for col, allowed in zip(zip(*out), types):
            if not set(map(type, col)) <= set(allowed):
                bad = next(v for v in col if type(v) not in allowed)
                raise CorruptStoreError(f"{self.path}: corrupt store ({what}: {_short(bad)} where"
                                        f" {' or '.join(t.__name__ for t in allowed)} belongs)")
        return out

    def _meta_int(self, key: str, missing: int | None = None) -> int:
        """A count kept in the meta table; ``missing``: its value when the key is absent (an
        optional counter), else an absent key is damage."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None and type(row[0]) is str and row[0].isascii() and row[0].isdigit():
            return int(row[0])
        if row is None and missing is not None:
            return missing
        found = "missing" if row is None else _short(row[0])
        raise CorruptStoreError(f"{self.path}: corrupt store (meta {key!r} is {found}, not a count)")

    def _pragma(self, name: str) -> Any:
        return self._db.execute(f"PRAGMA {name}").fetchone()[0]

    def _open(self, dim: int | None, synchronous: Synchronous) -> None:
        db = self._db
        writable = self.read_only_reason is None
        has_tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
        app_id = self._pragma("application_id")
        version = self._pragma("user_version")
        if has_tables and app_id != APPLICATION_ID:
            raise ForeignStoreError(f"{self.path}: not a ReasoningBank store (a different SQLite database)")
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.path}: store schema v{version} is newer than this software (v{SCHEMA_VERSION})")
        if not has_tables and dim is None:  # before anything is written to the file
            raise StoreError(f"{self.path}: a new store needs an embedding dimension (dim=...)")
        if not has_tables and dim is not None and writable:
            db.execute(f"PRAGMA page_size = {_page_size(int(dim))}")
        if not self._in_memory and writable:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.execute("PRAGMA foreign_keys = ON")
        # read the file through a memory map: a search's rows then cost no read() copies of whole
        # pages (2.7x faster cold row fetches at 1024-d); address space only, the OS pages it
        db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        # checkpoint (and fsync) once per 64 MiB of WAL whatever the page size (SQLite's default
        # is 1,000 pages: 64 MiB at 64 KiB pages, but a checkpoint per 4 MiB at 4 KiB pages)
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_BYTES // int(self._pragma('page_size'))}")
        if version < SCHEMA_VERSION:
            if not has_tables and not writable:
                raise StoreError(f"{self.path}: empty file, not a store yet (and read-only: {self.read_only_reason})")
            self.migrate(SCHEMA_VERSION)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if missing := _TABLES - tables:
            raise CorruptStoreError(f"{self.path}: corrupt store (missing table(s):"
                                    f" {', '.join(sorted(missing))})")
        row = db.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()
        if row is None:
            if db.execute("SELECT 1 FROM patterns LIMIT 1").fetchone() is not None:
                raise CorruptStoreError(f"{self.path}: corrupt store (meta 'dim' is missing, and rows are held)")
            if dim is None:
                raise StoreError(f"{self.path}: a new store needs an embedding dimension (dim=...)")
            with self._tx() as tx:
                tx.db.execute("INSERT OR IGNORE INTO meta VALUES ('dim', ?)", (str(int(dim)),))
        self.dim = self._meta_int("dim")
        if not 0 < self.dim <= 1 << 20:
            raise CorruptStoreError(f"{self.path}: corrupt store (meta 'dim' is {self.dim})")
        if dim is not None and int(dim) != self.dim:
            raise DimensionMismatchError(
                f"{self.path}: store holds {self.dim}-d embeddings, {dim}-d were asked for")

    @_sqlite_errors
    def migrate(self, target: int) -> None:
        """Apply migrations up to ``target``, each step in its own transaction."""
        current = self._pragma("user_version")
        if current < target and self.read_only_reason is not None:
            raise StoreReadOnlyError(f"{self.path}: store schema v{current} needs upgrading to v{target},"
                                     f" but the store is read-only ({self.read_only_reason})")
        for step in range(current + 1, target + 1):
            try:
                with self._tx():
                    self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    _MIGRATIONS[step](self._db)
                    self._db.execute(f"PRAGMA user_version = {step}")
            except sqlite3.OperationalError as e:
                if getattr(e, "sqlite_errorcode", None) != _SQLITE_ERROR:
                    raise
                # e.g. "duplicate column name": the tables are not those of the version stamped
                raise CorruptStoreError(f"{self.path}: corrupt store (cannot upgrade schema v{step - 1} to"
                                        f" v{step}: {_one_line(e)})") from None

    @property
    @_sqlite_errors
    def schema_version(self) -> int:
        return int(self._pragma("user_version"))

    @_sqlite_errors
    def close(self) -> None:
        if self._watch is not None:
            self._watch.detach()
        self._db.close()

    def __enter__(self) -> PatternStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transactions and refresh ------------------------------------------------------

    class _Tx:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; ``on_commit`` effects run only after a commit."""

        def __init__(self, store: PatternStore) -> None:
            self.store = store
            self.on_commit: list[Callable[[], None]] = []

        @property
        def db(self) -> sqlite3.Connection:
            return self.store._db

        def __enter__(self) -> PatternStore._Tx:
            store = self.store
            if store.read_only_reason is not None:
                raise StoreReadOnlyError(f"{store.path}: store is read-only ({store.read_only_reason}):"
                                         " nothing was changed")
            self.db.execute("BEGIN IMMEDIATE")  # waits up to the busy timeout for another writer
            try:
                store._catch_up()  # index what other writers committed before we took the lock
            except BaseException:
                self._rollback()
                raise
            return self

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            if exc_type is not None:
                self._rollback()
                return
            # read while this transaction holds the write lock: no other connection can commit
            # until ours is done, and our own commit leaves the value as it is. Read after the
            # COMMIT, a commit landing in between would pass for seen, and its rows would never
            # be loaded here.
            data_version = self.store._pragma("data_version")
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error:
                self._rollback()  # a COMMIT that failed (a full disk) leaves the transaction open
                raise
            self.store._data_version = data_version
            self.store._commits += 1
            for effect in self.on_commit:
                effect()

        def _rollback(self) -> None:
            if self.db.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the error being raised says more; SQLite rolls back what it cannot keep

        def next_seq(self) -> int:
            """Claim the next change number; the store adopts it once the commit succeeds."""
            seq = self.store._meta_int("seq") + 1
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq),))
            self.on_commit.append(lambda: setattr(self.store, "_seq", max(self.store._seq, seq)))
            return seq

    def _tx(self) -> PatternStore._Tx:
        return PatternStore._Tx(self)

    @_sqlite_errors
    def refresh(self) -> bool:
        """Pull rows other connections committed since we last looked; True if any changed."""
        # the header is read before the PRAGMA: a commit landing between the two is then loaded
        # now and changes the header from the mark kept, so the next refresh asks again
        watch = self._watch
        mark = None if watch is None else watch.mark()
        if mark is not None and mark == self._quiet:
            return False
        dv = self._pragma("data_version")
        idle = self._commits == self._commits_refreshed
        self._commits_refreshed = self._commits
        if dv == self._data_version:
            self._quiet = mark
            if idle and watch is not None and not watch.attached:  # read, not written: worth a look
                watch.attach()
            return False
        changed = self._load_since(self._seq)
        self._data_version = dv  # only now: a refresh that failed (a damaged row) fails again
        self._quiet = mark
        return changed

    def _catch_up(self) -> None:
        if self.index is not None and self._pragma("data_version") != self._data_version:
            self._load_since(self._seq)

    def _load_all(self) -> None:
        self._data_version = self._pragma("data_version")
        self._load_since(None)

    def _load_since(self, seq: int | None) -> bool:
        """Mirror the rows written and deleted after change ``seq`` into the index (``None``:
        every row, read by a scan of the table itself, so that no damaged index hides one).
        The counter, the rows and the deletions are read in one snapshot (a read transaction,
        unless a write transaction holds one already): a commit landing meanwhile is read next
        time, whole."""
        db = self._db
        snapshot = not db.in_transaction
        if snapshot:
            db.execute("BEGIN")  # deferred: the first SELECT fixes what this connection sees
        try:
            top = self._meta_int("seq")
            signings = self._meta_int("signed", missing=0)
            if seq is None:
                rows = db.execute(f"SELECT rowid, seq, {_COLUMNS} FROM patterns NOT INDEXED ORDER BY rowid").fetchall()
                gone = []
            else:
                rows = db.execute(
                    f"SELECT rowid, seq, {_COLUMNS} FROM patterns WHERE seq > ? ORDER BY rowid", (seq,)).fetchall()
                gone = self._checked(db.execute("SELECT prow FROM deleted WHERE seq > ?", (seq,)), [(int,)],
                                     "deleted.prow")
        finally:
            if snapshot and db.in_transaction:
                db.execute("ROLLBACK")  # a read transaction: nothing to keep
        if signings != self._signings:  # another connection recorded signatures: authors changed
            self.clear_row_cache()  # (rare: which rows is not logged, so every cached row goes)
            self._signings = signings
        if gone:
            self._index_remove([r[0] for r in gone])
        if rows:
            self._index_rows(rows)
        self._seq = max(self._seq, top)
        return bool(rows or gone)

    def _index_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Check ``(rowid, seq, columns...)`` rows (:func:`_row_damage`) and mirror them into the
        vector index; a damaged row raises :class:`~swarm.memory.errors.CorruptStoreError`
        naming it, and nothing is indexed."""
        size = 4 * self.dim
        for r in rows:
            what = _row_damage(r[2:], size) if type(r[1]) is int else f"seq {_short(r[1])} is not a count"
            if what is not None:
                raise self._corrupt_row(r[0], r[2], what)
        vecs = np.frombuffer(b"".join(r[22] for r in rows), dtype="<f4").reshape(len(rows), self.dim)
        self._index_upsert([r[0] for r in rows], vecs, [r[6] for r in rows], [r[8] for r in rows],
                           [r[10] for r in rows], [r[9] for r in rows], [r[24] for r in rows])

    # ---- the index mirror: every change to a row passes here, and drops its cached copy ----

    def _index_upsert(self, keys: Sequence[int], vecs: np.ndarray, domains: Sequence[str],
                      kinds: Sequence[str], confidences: Sequence[float], actions: Sequence[str],
                      rewards: Sequence[float | None]) -> None:
        for k in keys:
            self._drop_row(k)
        self._vindex.upsert(keys, vecs, domains, kinds, confidences, actions, rewards)

    def _index_remove(self, keys: Sequence[int]) -> None:
        for k in keys:
            self._drop_row(k)
        self._vindex.remove(keys)

    def _index_set_confidence(self, key: int, confidence: float, seen: Pattern | None = None) -> None:
        """A row's outcome figures changed; ``seen``: the row as a read now decodes it, which
        replaces its cached copy (a learner's next decisions retrieve the patterns it just
        updated) rather than dropping it."""
        if seen is not None and key in self._rows:
            self._rows[key] = seen  # the same id at the same rowid: its _row_ids entry holds
        else:
            self._drop_row(key)
        self._vindex.set_confidence(key, confidence)

    # ---- writes ------------------------------------------------------------------------

    def _check_dim(self, patterns: Iterable[Pattern]) -> None:
        for p in patterns:
            if p.dim != self.dim:
                raise DimensionMismatchError(
                    f"pattern {p.id!r} has a {p.dim}-d embedding, the store holds {self.dim}-d")

    def _write_in_tx(self, tx: PatternStore._Tx, patterns: Sequence[Pattern], sql: str,
                     insert_only: bool = False, bodies: Sequence[str] | None = None, seen: bool = False) -> None:
        """Write ``patterns`` (``bodies``: their body digests, if known) and index them on commit.
        ``seen``: they are copies as readers see them (read from here, then changed): their
        contributors' sums are taken off, so that only the author's figures are written."""
        self._check_dim(patterns)
        if seen:
            sums = self._sums_in_tx(tx, [p.id for p in patterns])
            if sums:
                patterns = [without_contributions(p, sums.get(p.id)) for p in patterns]
        if bodies is not None and len(bodies) != len(patterns):
            raise ValueError(f"{len(bodies)} body digests for {len(patterns)} patterns")
        seq = tx.next_seq()
        before = self._last_rowid(tx.db)
        embs = self._staging(len(patterns))
        rows = _encode_many(patterns, embs, seq, bodies)
        tx.db.executemany(sql, rows)
        del rows
        if insert_only:
            # AUTOINCREMENT under one write lock hands out consecutive rowids
            assert self._last_rowid(tx.db) == before + len(patterns)
            rowids = {p.id: before + 1 + i for i, p in enumerate(patterns)}
        else:
            rowids = self.rowid_of([p.id for p in patterns])
        if not insert_only:
            self._sum_in_tx(tx, [p.id for p in patterns], seq, rewritten=True)
        tx.on_commit.append(lambda: self._mirror(patterns, rowids, embs))

    def _sums_in_tx(self, tx: PatternStore._Tx, ids: Sequence[str]) -> dict[str, Contributed]:
        """The contributors' sums of these patterns (those that have contributions), from the rows
        themselves (``contributed``, checked by the row digest as each row is read)."""
        out: dict[str, Contributed] = {}
        for chunk, marks in _id_chunks(list(ids)):
            for pid, text in tx.db.execute(
                    f"SELECT id, contributed FROM patterns WHERE id IN ({marks}) AND contributed IS NOT NULL", chunk):
                try:
                    out[pid] = cast(Contributed, _contributed(text))
                except (ValueError, TypeError):
                    raise self._corrupt_row(None, pid, "contributed is not the sums written") from None
        return out

    def _sum_in_tx(self, tx: PatternStore._Tx, ids: Sequence[str], seq: int, rewritten: bool = False,
                   read: dict[int, tuple[Any, ...]] | None = None) -> list[str]:
        """Bring these patterns' ``contributed`` sums (and row digests) up to their contributions
        (summed in contributor order: every replica holding the same records gets the same
        figures); returns the ids whose sums changed. A pattern that has none keeps NULL.
        ``rewritten``: the rows were just written (their digests left the sums out; the caller
        sees to their cached copies). ``read``, if given, gets every row's ``REVISION_FIELDS``
        and sums as they now stand, by rowid."""
        ids = list(dict.fromkeys(ids))
        sums: dict[str, str] = {}
        for chunk, marks in _id_chunks(ids):
            for pid, uses, successes, failures, total, last in tx.db.execute(
                    f"SELECT pattern_id, SUM(uses), SUM(successes), SUM(failures), SUM(total_reward), MAX(last_used_at)"
                    f" FROM contributions WHERE pattern_id IN ({marks}) GROUP BY pattern_id", chunk):
                sums[pid] = json.dumps([uses, successes, failures, float(total), last])
        changed: list[tuple[Any, ...]] = []
        revisions: dict[int, tuple[Any, ...]] = {}
        out: list[str] = []
        cols = ", ".join(REVISION_FIELDS)
        for chunk, marks in _id_chunks(ids):
            for rowid, pid, body, contributed, *revision in tx.db.execute(
                    f"SELECT rowid, id, body, contributed, {cols} FROM patterns WHERE id IN ({marks})", chunk):
                now = sums.get(pid)
                if read is not None:
                    read[rowid] = (*revision, now)
                if now != contributed or (rewritten and now is not None):
                    changed.append((now, seq, _row_digest(body, revision, now), rowid))
                    revisions[rowid] = (*revision, now)
                    out.append(pid)
        if changed:
            tx.db.executemany("UPDATE patterns SET contributed = ?, seq = ?, row_digest = ? WHERE rowid = ?", changed)
            if not rewritten:
                tx.on_commit.append(lambda: self._resum_rows(revisions))
        return out

    def _resum_rows(self, revisions: Mapping[int, tuple[Any, ...]], same_body: bool = False) -> None:
        """These rows' outcome figures changed, not their bodies: ``revisions`` holds, by rowid,
        each row's :data:`REVISION_FIELDS` and contributors' sums as read in the transaction that
        changed them. Their cached copies become what a read of each row now returns, instead of
        being dropped (a gossiping agent's rows change so on most frames, and its next decisions
        retrieve them). Runs on commit, after the callbacks of the transaction's earlier writes, so
        a row rewritten whole in it has left the cache already; unless ``same_body`` (the caller
        changed only figures and versions), a cached copy of another version is dropped too."""
        rows = self._rows
        for rowid, (*revision, contributed) in revisions.items():
            held = rows.get(rowid)
            if held is None:
                continue
            if not same_body and (held.version, held.updated_by) != (revision[6], revision[7]):
                self._drop_row(rowid)
                continue
            if _revision_damage(revision) is not None:  # damaged on disk: the next read says so
                self._drop_row(rowid)
                continue
            try:  # runs after COMMIT: must not raise, and must not leave the other rows stale
                rows[rowid] = with_contributions(replace(held, **dict(zip(REVISION_FIELDS, revision))),
                                                 _contributed(contributed))
            except (ValueError, TypeError, OverflowError):
                self._drop_row(rowid)

    def _forget_rows(self, rowids: Sequence[int]) -> None:
        """Drop these rows' cached copies (their figures changed; the index holds nothing of them)."""
        for k in rowids:
            self._drop_row(k)

    def _drop_row(self, rowid: int) -> None:
        """Forget the cached copy of the row at ``rowid``, if any."""
        p = self._rows.pop(rowid, None)
        if p is not None and self._row_ids.get(p.id) == rowid:
            del self._row_ids[p.id]

    def _staging(self, rows: int) -> np.ndarray:
        """A ``rows`` x ``dim`` float32 matrix for a write's embeddings (:func:`_encode_many`), kept
        for the next write once the index has copied it (:meth:`_mirror`): a fresh 40 MB matrix (a
        10k x 1024 batch) cost more in page faults than hashing its rows. Taken out while in use
        (a second write inside one transaction gets its own); up to ``_STAGING_BYTES`` is kept."""
        spare, self._spare = self._spare, None
        if spare is not None and spare.shape[0] >= rows:
            return spare[:rows]
        return np.empty((rows, self.dim), dtype="<f4")

    def _mirror(self, patterns: Sequence[Pattern], rowids: dict[str, int], embs: np.ndarray) -> None:
        """Copy committed rows into the vector index (``embs``: the patterns' embeddings, stacked)."""
        latest = {p.id: i for i, p in enumerate(patterns)}  # a batch may repeat an id: the last write wins
        vecs = embs
        if len(latest) < len(patterns):
            at = list(latest.values())
            patterns, vecs = [patterns[i] for i in at], embs[at]
        if patterns:
            self._index_upsert([rowids[p.id] for p in patterns], vecs, [p.domain for p in patterns],
                               [p.kind for p in patterns], [p.confidence for p in patterns],
                               [p.action for p in patterns], [p.source.reward for p in patterns])
        whole = embs if embs.base is None else embs.base
        if isinstance(whole, np.ndarray) and whole.nbytes <= _STAGING_BYTES and (
                self._spare is None or self._spare.shape[0] < whole.shape[0]):
            self._spare = whole  # the index holds its own copy: the matrix can take the next write

    @staticmethod
    def _last_rowid(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'patterns'").fetchone()
        return int(row[0]) if row else 0

    def add(self, pattern: Pattern) -> None:
        self.add_many([pattern])

    @_sqlite_errors
    def add_many(self, patterns: Sequence[Pattern]) -> None:
        """Insert new patterns in one transaction; an id that already exists aborts the whole batch."""
        if not patterns:
            return
        try:
            with self._tx() as tx:
                self._write_in_tx(tx, patterns, _INSERT, insert_only=True)
        except sqlite3.IntegrityError as e:
            raise ValueError(f"cannot add patterns: {e}") from None

    @_sqlite_errors
    def put_many(self, patterns: Sequence[Pattern]) -> None:
        """Insert or replace patterns by id, in one transaction. Each carries the figures readers
        see (its author's and its contributors'); its author's are what is written."""
        if patterns:
            with self._tx() as tx:
                self._write_in_tx(tx, patterns, _UPSERT, seen=True)

    @_sqlite_errors
    def merge_many(self, incoming: Sequence[Pattern]) -> list[Pattern]:
        """Merge copies from elsewhere by :func:`~swarm.memory.models.merge`; return those that changed."""
        latest: dict[str, Pattern] = {}
        for p in incoming:
            latest[p.id] = merge(latest[p.id], p) if p.id in latest else p
        current = self.get_many(list(latest))
        changed = [p for pid, p in latest.items() if pid not in current or _newer(p, current[pid])]
        self.put_many(changed)
        return changed

    @_sqlite_errors
    def apply_changes(self, *, puts: Sequence[Pattern] = (), deletes: Sequence[str] = (),
                      links: Sequence[tuple[str, str, str, float]] = (),
                      log: Sequence[tuple[str, str, str | None, dict[str, Any]]] = (),
                      now: float = 0.0) -> None:
        """Upserts, deletions, links and log entries, all in one transaction (all or nothing)."""
        with self._tx() as tx:
            if deletes:
                self._delete_in_tx(tx, deletes)
            if puts:
                self._write_in_tx(tx, puts, _UPSERT, seen=True)
            tx.db.executemany("INSERT OR REPLACE INTO links VALUES (?, ?, ?, ?, ?)",
                              [(a, b, rel, float(sim), now) for a, b, rel, sim in links])
            tx.db.executemany("INSERT INTO consolidation_log (at, action, pattern_id, other_id, detail) "
                              "VALUES (?, ?, ?, ?, ?)",
                              [(now, act, pid, other, json.dumps(detail, sort_keys=True))
                               for act, pid, other, detail in log])

    @_sqlite_errors
    def delete_many(self, ids: Sequence[str]) -> int:
        """Delete patterns by id in one transaction; returns how many existed."""
        if not ids:
            return 0
        with self._tx() as tx:
            return self._delete_in_tx(tx, ids)

    def _delete_in_tx(self, tx: PatternStore._Tx, ids: Sequence[str], remote: bool = False) -> int:
        seq = tx.next_seq()
        rows: list[tuple[int, str, int, str, str]] = []
        for chunk, marks in _id_chunks(ids):
            rows += tx.db.execute(f"SELECT rowid, id, version, updated_by, author FROM patterns WHERE id IN ({marks})",
                                  chunk).fetchall()
            tx.db.execute(f"DELETE FROM patterns WHERE id IN ({marks})", chunk)
        tx.db.executemany("INSERT INTO deleted (pattern_id, prow, seq, version, updated_by, remote, author)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [(pid, rowid, seq, v, by, int(remote), a) for rowid, pid, v, by, a in rows])
        tx.db.executemany("DELETE FROM contributions WHERE pattern_id = ?", [(r[1],) for r in rows])
        tx.on_commit.append(lambda: self._index_remove([r[0] for r in rows]))
        return len(rows)

    def record_outcome(self, pattern_id: str, success: bool, reward: float, now: float,
                       lr: float = 0.1, by: str = "") -> Pattern:
        """Apply :func:`~swarm.memory.models.apply_outcome` to a stored pattern, atomically."""
        return self.record_outcomes([(pattern_id, success, reward)], now, lr=lr, by=by)[0]

    @_sqlite_errors
    def record_outcomes(self, outcomes: Sequence[tuple[str, bool, float]], now: float,
                        lr: float = 0.1, by: str = "") -> list[Pattern]:
        """:meth:`record_outcome` for several ``(pattern_id, success, reward)``, in one transaction.

        On a pattern ``by`` authors (or one nobody has published yet) the outcome moves its own
        figures (a new version); on another agent's pattern it goes into ``by``'s contribution to
        it (:class:`~swarm.memory.models.Contribution`: no new version; its confidence, the
        author's judgement, stays). Returns the patterns as readers now see them. All or nothing:
        an unknown id raises ``KeyError`` and nothing is changed.
        """
        when = float(now) + 0.0  # as the row reads back: a float, never -0.0 (the cached copy is that)
        if not math.isfinite(when):
            raise ValueError(f"now must be a finite time, not {now!r}")
        out: list[Pattern] = []
        with self._tx() as tx:
            for pattern_id, success, reward in outcomes:
                row = tx.db.execute(f"SELECT rowid, {_COLUMNS} FROM patterns WHERE id = ?", (pattern_id,)).fetchone()
                if row is None:
                    raise KeyError(f"no pattern with id {pattern_id!r}")
                rowid, author = row[0], row[26]
                base = self._pattern(row[1:], rowid, base=True)
                if by and author and author != by:
                    out.append(self._contribute_in_tx(tx, base, by, success, reward, now))
                    continue
                updated = apply_outcome(base, success, reward, when, lr=lr, by=by)
                revision = (updated.confidence, updated.uses, updated.successes, updated.failures,
                            updated.total_reward, updated.last_used_at, updated.version, updated.updated_by)
                tx.db.execute(
                    "UPDATE patterns SET confidence=?, uses=?, successes=?, failures=?, total_reward=?,"
                    " last_used_at=?, version=?, updated_by=?, seq=?, row_digest=? WHERE rowid=?",
                    (*revision, tx.next_seq(), _row_digest(row[24], revision, row[27]), rowid))
                seen = with_contributions(updated, _contributed(row[27]))  # what a read of the row now returns
                tx.on_commit.append(functools.partial(self._index_set_confidence, rowid, updated.confidence, seen))
                out.append(seen)
        return out

    def _contribute_in_tx(self, tx: PatternStore._Tx, base: Pattern, by: str, success: bool, reward: float,
                          now: float) -> Pattern:
        """Count an outcome in ``by``'s contribution to another's pattern; returns the pattern as
        readers now see it."""
        held = tx.db.execute("SELECT uses, successes, failures, total_reward, last_used_at FROM contributions"
                             " WHERE pattern_id = ? AND contributor = ?", (base.id, by)).fetchone()
        mine = Contribution(base.id, by) if held is None else self._contribution(base.id, by, held)
        mine = mine.recorded(success, reward, now)
        seq = tx.next_seq()
        tx.db.execute("INSERT OR REPLACE INTO contributions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (base.id, by, *mine.values(), seq))
        self._sum_in_tx(tx, [base.id], seq)
        sums = self._sums_in_tx(tx, [base.id])
        return with_contributions(base, sums.get(base.id))

    def _contribution(self, pattern_id: str, contributor: str, values: Sequence[Any]) -> Contribution:
        """A contribution row's figures as a record (a damaged row raises CorruptStoreError)."""
        try:
            uses, successes, failures, total, last = values
            if not (type(uses) is type(successes) is type(failures) is int and type(total) is float
                    and (last is None or type(last) is float)):
                raise TypeError("figures of the wrong types")
            return Contribution(pattern_id, contributor, uses, successes, failures, total, last)
        except (ValueError, TypeError) as e:
            raise CorruptStoreError(f"{self.path}: corrupt store (contribution of {_short(contributor)} to"
                                    f" {_short(pattern_id)}: {_one_line(e)})") from None

    @_sqlite_errors
    def contributions(self, pattern_id: str) -> list[Contribution]:
        """Every contributor's record on a pattern, by contributor."""
        return [self._contribution(pattern_id, c, v) for c, *v in self._db.execute(
            "SELECT contributor, uses, successes, failures, total_reward, last_used_at FROM contributions"
            " WHERE pattern_id = ? ORDER BY contributor", (pattern_id,))]

    @_sqlite_errors
    def own_contributions(self, contributor: str, after: int, upto: int) -> list[Contribution]:
        """``contributor``'s records this store changed with change numbers in ``(after, upto]``:
        what a replicator ships beside :meth:`changed_since` (peers' records are not re-shipped)."""
        return [self._contribution(pid, contributor, v) for pid, *v in self._db.execute(
            "SELECT pattern_id, uses, successes, failures, total_reward, last_used_at FROM contributions"
            " WHERE contributor = ? AND seq > ? AND seq <= ? ORDER BY seq, pattern_id", (contributor, after, upto))]

    # ---- reads -------------------------------------------------------------------------

    @_sqlite_errors
    def get(self, pattern_id: str) -> Pattern | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM patterns WHERE id = ?", (pattern_id,)).fetchone()
        if row is None:
            return None
        if row[0] != pattern_id:
            raise self._corrupt_row(None, row[0], f"the id index gave this row for {_short(pattern_id)}")
        return self._pattern(row)

    @_sqlite_errors
    def get_many(self, ids: Sequence[str], base: bool = False) -> dict[str, Pattern]:
        """The patterns held of ``ids``; ``base``: with their authors' figures alone (what
        replication serves), not their contributors' added."""
        out: dict[str, Pattern] = {}
        # the rows a search cached (a learner looks up what informed it), unless a transaction
        # here holds changes the cache does not show yet
        if not base and self._row_ids and not self._db.in_transaction:
            self.refresh()  # other connections' commits drop what they changed from the cache
            rows, row_ids = self._rows, self._row_ids
            for pid in ids:
                rowid = row_ids.get(pid)
                if rowid is not None and (p := rows.get(rowid)) is not None:
                    out[pid] = p
            if out:
                ids = [pid for pid in ids if pid not in out]
        for chunk, marks in _id_chunks(ids):
            for row in self._db.execute(f"SELECT {_COLUMNS} FROM patterns WHERE id IN ({marks})", chunk):
                out[row[0]] = self._pattern(row, base=base)
        return out

    def _by_rowid(self, keys: Sequence[int]) -> dict[int, Pattern]:
        """The patterns at ``keys`` (those that exist), from the row cache where it holds them."""
        cache = self._rows
        get = cache.get
        found = {k: p for k in keys if (p := get(k)) is not None}
        # near eviction, hits become the most recently used; below half full they keep their
        # insertion order (a pop and re-insert per hit cost a decision ~5 us), so a row hit then may
        # leave the cache earlier later on: a cost in speed only, never in what a search returns
        if 2 * len(cache) > self._row_cache:
            for k, p in found.items():
                del cache[k]
                cache[k] = p  # its _row_ids entry stays as it is
        missing = [k for k in keys if k not in found] if len(found) < len(keys) else []
        if missing:
            marks = ",".join("?" * len(missing))
            for r in self._db.execute(f"SELECT rowid, {_COLUMNS} FROM patterns WHERE rowid IN ({marks})", missing):
                found[r[0]] = p = self._pattern(r[1:], r[0])  # its embedding is read-only: safe to share
                if self._row_cache:
                    cache[r[0]] = p
                    self._row_ids[p.id] = r[0]
            while len(cache) > self._row_cache:
                self._drop_row(next(iter(cache)))
        return found

    def clear_row_cache(self) -> None:
        """Forget the decoded rows kept for searches (the next searches read their rows from
        SQLite again); for measurements and for callers that want the memory back."""
        self._rows.clear()
        self._row_ids.clear()

    @_sqlite_errors
    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM patterns").fetchone()[0])

    def __iter__(self) -> Iterator[Pattern]:
        return self.iter_patterns()

    def iter_patterns(self, domain: str | None = None, kind: str | None = None,
                      min_confidence: float | None = None, base: bool = False) -> Iterator[Pattern]:
        """Every pattern passing the filters, in insertion order (``base``: see :meth:`get_many`)."""
        clauses: list[str] = []
        args: list[str | float] = []
        if domain is not None:
            clauses.append("domain = ?")
            args.append(domain)
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        if min_confidence is not None:
            clauses.append("confidence >= ?")
            args.append(min_confidence)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        try:
            for row in self._db.execute(f"SELECT rowid, {_COLUMNS} FROM patterns{where} ORDER BY rowid", args):
                yield self._pattern(row[1:], row[0], base)
        except sqlite3.Error as e:
            raise self._store_error(e) from None

    @_sqlite_errors
    def search(self, query: np.ndarray, k: int = 10, *, domain: str | None = None,
               kind: str | None = None, min_confidence: float | None = None) -> list[tuple[Pattern, float]]:
        """Top ``k`` patterns by cosine similarity to ``query`` that pass the filters."""
        self._current(query)
        keys, sims = self._vindex.search(query, k, Filter(domain, kind, min_confidence))
        order = keys.tolist()
        found = self._by_rowid(order)
        return [(found[key], s) for key, s in zip(order, sims.tolist()) if key in found]

    @_sqlite_errors
    def neighbours(self, query: np.ndarray, k: int = 10, *, domain: str | None = None) -> Neighbours:
        """:meth:`search`'s top ``k`` as columns (each row's key, similarity, action and source
        reward) read from the index, so no row is read or decoded: a learner deciding at 10k
        patterns spent a third of a decision fetching the 32 rows it weighs (most of it cache
        misses on their objects, once the scan has streamed the vectors through the cache)."""
        self._current(query)
        flt = _DOMAIN_FILTERS.get(domain) if domain is None or type(domain) is str else None
        if flt is None:
            flt = Filter(domain)
            if len(_DOMAIN_FILTERS) < 64:  # a few domains are kept, not every one ever asked for
                _DOMAIN_FILTERS[domain] = flt
        return Neighbours(*self._vindex.search_columns(query, k, flt))

    @_sqlite_errors
    def at_keys(self, keys: Sequence[int]) -> dict[int, Pattern]:
        """The patterns at these keys (as :meth:`neighbours` names them) that the store holds."""
        return self._by_rowid(keys)

    def _current(self, query: np.ndarray) -> None:
        """Refuse a query of the wrong dimension, then bring the index up to date for a search."""
        size = query.size if type(query) is np.ndarray else np.size(query)
        if size != self.dim:
            raise DimensionMismatchError(f"query has dimension {size}, the store holds {self.dim}")
        self.refresh()

    @property
    @_sqlite_errors
    def sequence(self) -> int:
        """The store's change counter: every committed write raises it."""
        return self._meta_int("seq")

    @_sqlite_errors
    def changed_since(self, seq: int, unlogged: bool = False) -> tuple[list[Pattern], int]:
        """Patterns written after change ``seq`` (in write order, with their authors' figures
        alone) and the current counter: the feed a replicator reads to ship this store's writes.
        With ``unlogged``, only versions the replicated write log does not hold (this store's own
        writes, not copies from peers)."""
        where = "seq > ?"
        if unlogged:
            where += (" AND NOT EXISTS (SELECT 1 FROM replica r WHERE r.pattern_id = patterns.id"
                      " AND r.version = patterns.version AND r.updated_by = patterns.updated_by)")
        rows = self._db.execute(f"SELECT rowid, {_COLUMNS} FROM patterns WHERE {where} ORDER BY seq, rowid",
                                (seq,)).fetchall()
        return [self._pattern(r[1:], r[0], base=True) for r in rows], self.sequence

    @_sqlite_errors
    def deleted_between(self, after: int, upto: int) -> list[DeletedKey]:
        """This store's own deletions (not those a peer's tombstone caused) with change numbers in
        ``(after, upto]``, oldest first: the deletions a replicator ships beside :meth:`changed_since`."""
        return self._checked(self._db.execute(
            "SELECT pattern_id, version, updated_by FROM deleted WHERE seq > ? AND seq <= ? AND remote = 0"
            " ORDER BY seq, rowid", (after, upto)), _REPLICA_TYPES[2:5], "a deletion")

    # ---- the replicated write log (read and written by gossip: swarm.gossip.StoreReplica) ----

    @_sqlite_errors
    def replica_log(self, rows: Sequence[ReplicaRow], merge_in: Sequence[Pattern] = (),
                    tombstones: Sequence[DeletedKey] = (), now: float = 0.0,
                    revisions: Sequence[dict[str, Any]] = (),
                    bodies: Sequence[str] | None = None,
                    version_sigs: Sequence[bytes | None] | None = None,
                    proofs: Sequence[tuple[str, str, bytes]] | None = None,
                    contributions: Sequence[Contribution] = ()) -> tuple[list[str], list[str]]:
        """In one transaction: apply ``tombstones`` (delete each pattern whatever its version, and
        refuse its writes until the tombstone expires), merge ``merge_in`` (copies from peers) by
        the memory's total order and ``revisions`` (an id, a ``body`` digest and the revision
        columns: a new version over the body held, applied only where the copy here has that body
        and an older version) except patterns under a tombstone, and record the writes in ``rows``
        (already held ones are ignored). ``bodies``, if given, are the body digests of
        ``merge_in``, in order (computed once by the caller), and ``version_sigs`` the signatures of
        their versions (kept with each copy written, for serving it on); ``proofs``, per tombstone,
        ``(guard, deleter, signed proof)``: a tombstone guards only the patterns of its ``guard``
        (the deleter, or ``*`` for a curator's deletion: any). ``contributions``: peers' records,
        each kept where it supersedes the contributor's record held (more uses). Returns the ids
        whose figures changed and the ids deleted."""
        deleted: list[str] = []
        changed: list[str] = []
        with self._tx() as tx:
            if tombstones:
                ids = list(dict.fromkeys(t[0] for t in tombstones))
                deleted = list(self.rowid_of(ids))
                if deleted:
                    self._delete_in_tx(tx, deleted, remote=True)
                why = list(proofs) if proofs is not None else [("", "", b"")] * len(tombstones)
                tx.db.executemany(
                    "INSERT INTO tombstones (pattern_id, version, updated_by, at, deleter) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (pattern_id) DO UPDATE SET"
                    " version = max(version, excluded.version), at = max(at, excluded.at)",
                    [(pid, v, by, now, g) for (pid, v, by), (g, _, _) in zip(tombstones, why, strict=True)])
                tx.db.executemany("INSERT OR IGNORE INTO deletions VALUES (?, ?, ?)",
                                  [(t[0], d, proof) for t, (_, d, proof) in zip(tombstones, why) if proof])
            guarded = self.replica_guarded([(p.id, p.author) for p in merge_in])
            latest: dict[str, tuple[Pattern, str | None, bytes | None]] = {}
            for i, p in enumerate(merge_in):
                if p.id not in guarded:
                    body = None if bodies is None else bodies[i]
                    sig = None if version_sigs is None else version_sigs[i]
                    if p.id in latest:
                        won = merge(latest[p.id][0], p)
                        latest[p.id] = (won, body, sig) if won is p else latest[p.id]
                    else:
                        latest[p.id] = (p, body, sig)
            if latest:
                heads = self.heads(list(latest))
                newer = [(p, b, g) for pid, (p, b, g) in latest.items()
                         if pid not in heads or _newer_than_head(p, heads[pid], self)]
                if newer:
                    digests = [p.body_digest() if b is None else b for p, b, _ in newer]
                    self._write_in_tx(tx, [p for p, _, _ in newer], _UPSERT, bodies=digests)
                    changed = [p.id for p, _, _ in newer]
                    signed = [(g, revision_digest(b, revision_of(p)), p.id, p.version, p.updated_by, b)
                              for (p, _, g), b in zip(newer, digests) if g is not None]
                    tx.db.executemany("UPDATE patterns SET body_sig = ?, signed_body = ? WHERE id = ? AND version = ?"
                                      " AND updated_by = ? AND body = ?", signed)
            # after the copies: each UPDATE checks the body and version of the row as it now stands
            if revisions:  # over a body held: a live tombstone has deleted it
                changed += self._revise_in_tx(tx, revisions)
            if contributions:
                tx.db.executemany(
                    "INSERT INTO contributions VALUES (?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (pattern_id, contributor)"
                    " DO UPDATE SET uses = excluded.uses, successes = excluded.successes, failures = excluded.failures,"
                    " total_reward = excluded.total_reward, last_used_at = excluded.last_used_at"
                    " WHERE (excluded.uses, excluded.successes, excluded.total_reward, coalesce(excluded.last_used_at, -1.0))"
                    " > (uses, successes, total_reward, coalesce(last_used_at, -1.0))",
                    [(c.pattern_id, c.contributor, *c.values()) for c in contributions])
                changed += self._sum_in_tx(tx, [c.pattern_id for c in contributions], tx.next_seq())
            top = tx.db.execute("SELECT COALESCE(MAX(arrival), 0) FROM replica").fetchone()[0]
            tx.db.executemany("INSERT OR IGNORE INTO replica (origin, seq, pattern_id, version, updated_by, body, sig,"
                              " arrival) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              [(*r, top + 1 + i) for i, r in enumerate(rows)])
        return changed, deleted

    def _revise_in_tx(self, tx: PatternStore._Tx, revisions: Sequence[dict[str, Any]]) -> list[str]:
        """Apply revisions by an UPDATE of their columns (nothing decoded, the embedding
        untouched): each where the row has its body and an older (version, updated_by). Which
        apply is worked out here over the rows' heads, in order (a later revision of the same
        pattern sees an earlier one's version), so that the UPDATEs run as one batch; each UPDATE
        still checks its row."""
        heads = self.heads([str(r["id"]) for r in revisions])  # updated below as revisions apply
        applied: dict[str, dict[str, Any]] = {}  # id -> the last revision applied to it
        batch: list[tuple[Any, ...]] = []
        seq = tx.next_seq()
        for r in revisions:
            pid = str(r["id"])
            head = heads.get(pid)
            if head is None or head[2] != r["body"] or (r["version"], r["updated_by"]) <= (head[0], head[1]):
                continue
            heads[pid] = (r["version"], r["updated_by"], head[2], head[3])
            applied[pid] = r
            revision = [r[c] for c in REVISION_FIELDS]
            digest = revision_digest(r["body"], revision)
            batch.append((*revision, seq, _row_digest(r["body"], revision), r.get("sig"), digest, pid, r["body"],
                          r["version"], r["version"], r["updated_by"]))
        if not batch:
            return []
        sets = ", ".join(f"{c} = ?" for c in REVISION_FIELDS)
        tx.db.executemany(
            f"UPDATE patterns SET {sets}, seq = ?, row_digest = ?, body_sig = ?, signed_body = ? WHERE id = ?"
            " AND body = ? AND (version < ? OR (version = ? AND updated_by < ?))", batch)
        read: dict[int, tuple[Any, ...]] = {}
        self._sum_in_tx(tx, list(applied), seq, rewritten=True, read=read)
        tx.on_commit.append(functools.partial(self._resum_rows, read, same_body=True))  # over the bodies held
        rowids = self.rowid_of(list(applied))
        for pid, r in applied.items():
            tx.on_commit.append(functools.partial(self._vindex.set_confidence, rowids[pid], float(r["confidence"])))
        return [str(r[len(REVISION_FIELDS) + 4]) for r in batch]

    @_sqlite_errors
    def heads(self, ids: Sequence[str]) -> dict[str, tuple[int, str, str, str]]:
        """``(version, updated_by, body digest, author)`` of the current copy of each id held:
        which version and body a replica holds, and whose it is, read without decoding a pattern."""
        out: dict[str, tuple[int, str, str, str]] = {}
        for chunk, marks in _id_chunks(list(ids)):
            for pid, v, by, body, author in self._checked(self._db.execute(
                    f"SELECT id, version, updated_by, body, author FROM patterns WHERE id IN ({marks})", chunk),
                    _HEAD_TYPES, "a pattern's head"):
                out[pid] = (v, by, body, author)
        return out

    @_sqlite_errors
    def version_signatures(self, ids: Sequence[str]) -> dict[str, tuple[str, str, str, bytes | None]]:
        """Per id held: ``(author, body digest, revision digest, signature)`` of its current
        version (:func:`~swarm.memory.models.revision_digest` of its body and its author's
        figures); the signature (by its author, or a curator) is None when that version has none
        (not published yet, or changed here since)."""
        out: dict[str, tuple[str, str, str, bytes | None]] = {}
        cols = ", ".join(REVISION_FIELDS)
        for chunk, marks in _id_chunks(list(ids)):
            for pid, author, body, sig, signed, *revision in self._db.execute(
                    f"SELECT id, author, body, body_sig, signed_body, {cols} FROM patterns WHERE id IN ({marks})",
                    chunk):
                if not (type(author) is type(body) is type(signed) is str and type(sig) in (bytes, _NONE)):
                    raise self._corrupt_row(None, pid, "its author or signature is damaged")
                what = _revision_damage(revision)
                if what is not None:
                    raise self._corrupt_row(None, pid, what)
                digest = revision_digest(body, revision)
                out[pid] = (author, body, digest, sig if signed == digest else None)
        return out

    @_sqlite_errors
    def sign_versions(self, signed: Sequence[tuple[str, str, str, bytes]]) -> None:
        """Record signatures of versions: ``(pattern id, author, revision digest, signature)``,
        each taken only while the pattern's current version is the one signed; its author is
        recorded too (a pattern nobody had published becomes its signer's)."""
        if not signed:
            return
        cols = ", ".join(REVISION_FIELDS)
        with self._tx() as tx:
            current: dict[str, tuple[int, str, str]] = {}  # id -> (rowid, current revision digest, author)
            for chunk, marks in _id_chunks([pid for pid, _, _, _ in signed]):
                for rowid, pid, body, author, *revision in tx.db.execute(
                        f"SELECT rowid, id, body, author, {cols} FROM patterns WHERE id IN ({marks})", chunk):
                    current[pid] = (rowid, revision_digest(body, revision), author)
            taken = [(a, sig, digest, pid) for pid, a, digest, sig in signed
                     if pid in current and current[pid][1] == digest]
            tx.db.executemany("UPDATE patterns SET author = ?, body_sig = ?, signed_body = ? WHERE id = ?", taken)
            # of what a cached pattern holds, only the author can change here
            rowids = [current[pid][0] for a, _, _, pid in taken if current[pid][2] != a]
            tx.on_commit.append(lambda: self._forget_rows(rowids))
            if rowids:  # tells other connections' caches (see _load_since)
                signings = self._meta_int("signed", missing=0) + 1
                tx.db.execute("INSERT OR REPLACE INTO meta VALUES ('signed', ?)", (str(signings),))
                tx.on_commit.append(lambda: setattr(self, "_signings", signings))

    @_sqlite_errors
    def deletion_proofs(self, ids: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        """Per id deleted here with a signed proof: ``(deleter, proof)``."""
        out: dict[str, tuple[str, bytes]] = {}
        for chunk, marks in _id_chunks(list(ids)):
            for pid, deleter, proof in self._checked(self._db.execute(
                    f"SELECT pattern_id, deleter, proof FROM deletions WHERE pattern_id IN ({marks})", chunk),
                    [(str,), (str,), (bytes,)], "a deletion proof"):
                out[pid] = (deleter, proof)
        return out

    @_sqlite_errors
    def revocation_list(self) -> bytes:
        """The swarm CA's newest revocation list this store's agent took (DER; empty: none), kept so
        that a restarted agent refuses the revoked at once."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'revocation_list'").fetchone()
        if row is None:
            return b""
        try:
            return bytes.fromhex(row[0])
        except (TypeError, ValueError):
            raise CorruptStoreError(f"{self.path}: corrupt store (meta 'revocation_list' is not hex)") from None

    @_sqlite_errors
    def keep_revocation_list(self, der: bytes) -> None:
        with self._tx() as tx:
            tx.db.execute("INSERT OR REPLACE INTO meta VALUES ('revocation_list', ?)", (der.hex(),))

    @_sqlite_errors
    def deleted_authors(self, ids: Sequence[str]) -> dict[str, str]:
        """The author of each of these patterns when it was last deleted here."""
        out: dict[str, str] = {}
        for chunk, marks in _id_chunks(list(ids)):
            for pid, author in self._checked(self._db.execute(
                    f"SELECT pattern_id, author FROM deleted WHERE pattern_id IN ({marks}) ORDER BY seq", chunk),
                    [(str,), (str,)], "a deletion's author"):
                out[pid] = author
        return out

    @_sqlite_errors
    def replica_sign(self, signed: Sequence[tuple[str, int, bytes]]) -> None:
        """Record signatures of writes logged before they were signed: ``(origin, seq, signature)``."""
        if signed:
            with self._tx() as tx:
                tx.db.executemany("UPDATE replica SET sig = ? WHERE origin = ? AND seq = ?",
                                  [(sig, o, q) for o, q, sig in signed])

    @_sqlite_errors
    def quarantine(self, author: str) -> list[str]:
        """Delete every pattern ``author`` vouches for (a revoked agent's), as a peer's tombstone
        would (not this store's own deletion: not published again), and every contribution it
        made to others' patterns; returns the ids of the patterns deleted."""
        ids = [r[0] for r in self._checked(self._db.execute("SELECT id FROM patterns WHERE author = ?", (author,)),
                                           [(str,)], "a pattern's id")]
        touched = [r[0] for r in self._checked(self._db.execute(
            "SELECT pattern_id FROM contributions WHERE contributor = ?", (author,)), [(str,)], "a contribution")]
        if ids or touched:
            with self._tx() as tx:
                if ids:
                    self._delete_in_tx(tx, ids, remote=True)
                tx.db.execute("DELETE FROM contributions WHERE contributor = ?", (author,))
                self._sum_in_tx(tx, touched, tx.next_seq())
        return ids

    @_sqlite_errors
    def revision_records(self, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Per id held: its body digest and its revision record (the id and the columns a
        revision carries), read without decoding the pattern."""
        cols = ", ".join(REVISION_FIELDS)
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for chunk, marks in _id_chunks(list(ids)):
            for row in self._db.execute(f"SELECT id, body, {cols} FROM patterns WHERE id IN ({marks})", chunk):
                what = _revision_damage(row[2:]) if type(row[1]) is str else "body digest is not text"
                if what is not None:
                    raise self._corrupt_row(None, row[0], what)
                out[row[0]] = (row[1], {"id": row[0], **dict(zip(REVISION_FIELDS, row[2:]))})
        return out

    @_sqlite_errors
    def replica_guarded(self, keys: Sequence[tuple[str, str]]) -> set[str]:
        """Which of these ``(pattern id, author)`` are under a live tombstone (deleted; their
        writes refused): one their author's deletion made (or one from before deleters were
        recorded); another agent's deletion does not guard an author's pattern."""
        authors = dict(keys)
        out: set[str] = set()
        for chunk, marks in _id_chunks(list(authors)):
            out.update(pid for pid, deleter in self._db.execute(
                f"SELECT pattern_id, deleter FROM tombstones WHERE pattern_id IN ({marks})", chunk)
                if deleter in ("", "*", authors[pid]))
        return out

    @_sqlite_errors
    def replica_oldest_tombstone(self) -> float | None:
        """When the oldest live tombstone was recorded (None: there is none)."""
        at = self._checked(self._db.execute("SELECT MIN(at) FROM tombstones"), [(float, _NONE)], "tombstones.at")[0][0]
        return None if at is None else float(at)

    @_sqlite_errors
    def replica_expire(self, before: float) -> int:
        """Drop the tombstones recorded before ``before``: their patterns' writes are taken again.
        Returns how many expired."""
        with self._tx() as tx:
            return int(tx.db.execute("DELETE FROM tombstones WHERE at < ?", (before,)).rowcount)

    @_sqlite_errors
    def replica_writes(self) -> list[tuple[str, int]]:
        """Every ``(origin, seq)`` held: what a replica's digest is made from, at start."""
        return self._checked(self._db.execute("SELECT origin, seq FROM replica"), [(str,), (int,)], "a replica row")

    @_sqlite_errors
    def replica_after(self, origin: str, seq: int, limit: int) -> list[ReplicaRow]:
        """Up to ``limit`` writes of ``origin`` after ``seq``, oldest first."""
        return self._checked(self._db.execute(
            "SELECT origin, seq, pattern_id, version, updated_by, body, sig FROM replica WHERE origin = ? AND seq > ?"
            " ORDER BY seq LIMIT ?", (origin, seq, limit)), _REPLICA_TYPES, "a replica row")

    @_sqlite_errors
    def replica_recent(self, since: int, limit: int) -> list[tuple[int, ReplicaRow]]:
        """The last ``limit`` writes that arrived after arrival number ``since``, as ``(arrival, row)``."""
        rows = self._checked(self._db.execute(
            "SELECT arrival, origin, seq, pattern_id, version, updated_by, body, sig FROM replica WHERE arrival > ?"
            " ORDER BY arrival DESC LIMIT ?", (since, limit)), [(int,), *_REPLICA_TYPES], "a replica row")
        return [(a, (o, q, pid, v, by, body, sig)) for a, o, q, pid, v, by, body, sig in reversed(rows)]

    @_sqlite_errors
    def replica_arrivals(self) -> int:
        return int(self._checked(self._db.execute("SELECT COALESCE(MAX(arrival), 0) FROM replica"), [(int,)],
                                 "replica.arrival")[0][0])

    @_sqlite_errors
    def replica_knows(self, pattern_id: str) -> bool:
        """Whether any held write carried this pattern."""
        return self._db.execute("SELECT 1 FROM replica WHERE pattern_id = ? LIMIT 1", (pattern_id,)).fetchone() is not None

    @_sqlite_errors
    def replica_carriers(self, bodies: Sequence[str]) -> dict[str, dict[str, int]]:
        """Per pattern body, per origin, the first of the origin's writes that carried it."""
        out: dict[str, dict[str, int]] = {b: {} for b in bodies}
        for chunk, marks in _id_chunks(list(bodies)):
            for body, o, q in self._checked(self._db.execute(
                    f"SELECT body, origin, MIN(seq) FROM replica WHERE body IN ({marks}) GROUP BY body, origin", chunk),
                    [(str,), (str,), (int,)], "a replica row"):
                if body not in out:
                    raise CorruptStoreError(f"{self.path}: corrupt store (the replica body index gave {_short(body)})")
                out[body][o] = q
        return out

    @_sqlite_errors
    def replica_held(self, keys: Sequence[tuple[str, int, str]]) -> set[tuple[str, int, str]]:
        """Which ``(pattern id, version, updated_by)`` have a write of exactly that version in the log."""
        out: set[tuple[str, int, str]] = set()
        by_id: dict[str, set[tuple[str, int, str]]] = {}
        for k in keys:
            by_id.setdefault(k[0], set()).add(k)
        for chunk, marks in _id_chunks(list(by_id)):
            for pid, v, by in self._checked(self._db.execute(
                    f"SELECT DISTINCT pattern_id, version, updated_by FROM replica WHERE pattern_id IN ({marks})", chunk),
                    _REPLICA_TYPES[2:5], "a replica row"):
                if (pid, v, by) in by_id.get(pid, ()):
                    out.add((pid, v, by))
        return out

    @_sqlite_errors
    def rowid_of(self, ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk, marks in _id_chunks(ids):
            out.update(self._checked(self._db.execute(f"SELECT id, rowid FROM patterns WHERE id IN ({marks})", chunk),
                                     [(str,), (int,)], "a pattern's id"))
        return out

    @_sqlite_errors
    def summary(self) -> list[tuple[str, str, int, float, int]]:
        """``(kind, domain, count, sum of confidence, sum of uses)`` per kind and domain."""
        return self._checked(self._db.execute(
            "SELECT kind, domain, count(*), sum(confidence), sum(uses) FROM patterns GROUP BY kind, domain"
            " ORDER BY kind, domain"), [(str,), (str,), (int,), (float,), (int,)], "a pattern's kind, domain or counts")

    @_sqlite_errors
    def links(self, relation: str | None = None) -> list[Link]:
        sql, args = "SELECT a, b, relation, similarity, created_at FROM links", []
        if relation is not None:
            sql, args = sql + " WHERE relation = ?", [relation]
        return [Link(*r) for r in self._checked(self._db.execute(sql + " ORDER BY a, b", args),
                                                [(str,), (str,), (str,), (float,), (float,)], "a link")]

    @_sqlite_errors
    def consolidation_log(self) -> list[LogEntry]:
        rows = self._checked(self._db.execute(
            "SELECT at, action, pattern_id, other_id, detail FROM consolidation_log ORDER BY n"),
            [(float,), (str,), (str,), (str, _NONE), (str,)], "a consolidation log entry")
        try:
            return [LogEntry(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]
        except (ValueError, RecursionError) as e:
            raise CorruptStoreError(f"{self.path}: corrupt store (a consolidation log entry's detail: {_one_line(e)})") from None

    @_sqlite_errors
    def size_bytes(self) -> int:
        """Bytes on disk (database plus WAL); the page total for an in-memory store."""
        if self._in_memory:
            return int(self._pragma("page_count")) * int(self._pragma("page_size"))
        return sum(os.path.getsize(self.path + s) for s in ("", "-wal") if os.path.exists(self.path + s))

    def wal_bytes(self) -> int:
        """Bytes in the write-ahead log not yet folded into the database (0 in memory)."""
        if self._in_memory or not os.path.exists(self.path + "-wal"):
            return 0
        return os.path.getsize(self.path + "-wal")

    @_sqlite_errors
    def checkpoint(self) -> None:
        """Fold the WAL back into the database file."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _id_chunks(ids: Sequence[str], size: int = 900) -> Iterator[tuple[list[str], str]]:
    """Ids in chunks under SQLite's bound-parameter limit, each with its ``?,?,...`` marks."""
    for start in range(0, len(ids), size):
        chunk = list(ids[start:start + size])
        yield chunk, ",".join("?" * len(chunk))


def _newer(candidate: Pattern, current: Pattern) -> bool:
    """True when ``candidate`` wins the merge against ``current`` and differs from it."""
    key = (candidate.version, candidate.updated_by, candidate.digest())
    return key > (current.version, current.updated_by, current.digest())


def _newer_than_head(candidate: Pattern, head: tuple[int, str, str, str], store: PatternStore) -> bool:
    """:func:`_newer` against a stored copy known by its head; the copy is decoded only to break
    a tie on (version, updated_by)."""
    key, cur = (candidate.version, candidate.updated_by), (head[0], head[1])
    if key != cur:
        return key > cur
    current = store.get(candidate.id)
    return current is not None and _newer(candidate, current)


def _check_header(path: str) -> None:
    """Refuse a non-empty file that is not SQLite before sqlite3 gets a chance to misread it."""
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return
    if p.is_dir():
        raise StoreError(f"{path}: is a directory, not a store file")
    try:
        held = open_descriptors(path)
        if held:
            # a connection of this process has this file open (by any name): read through its
            # descriptor and leave it open. Closing one of our own would drop that connection's
            # POSIX locks on the file (its shared lock says it is in use: without it another
            # process's last close deletes the WAL index under it). Where open files are not
            # listed, the file is opened as before.
            head = os.pread(held[0], 16, 0)
        else:
            with open(p, "rb") as f:
                head = f.read(16)
    except OSError as e:
        raise StoreError(f"{path}: cannot read the store file ({e.strerror})") from None
    if head != _SQLITE_MAGIC:
        raise CorruptStoreError(f"{path}: not a ReasoningBank store (no SQLite header; corrupt or foreign file)")
