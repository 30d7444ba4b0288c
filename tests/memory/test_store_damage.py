"""Damaged and unusual store files: every failure is a one-line StoreError, never a raw exception,
and a store that opens reads back exactly what was written (issue 16, part 5).

The damage is done to real store files: truncation, bit flips and smeared bytes at seeded random
places, whole pages zeroed, and values overwritten through plain sqlite3. Then the file is opened
and read through every read the store offers; the outcome must be a StoreError (naming the file,
on one line) or data identical to the pristine store's. Then the other unusual conditions: a
read-only store, a full disk (SQLite's page limit, and a real tiny tmpfs where one can be mounted),
and a lock held by another connection.
"""

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from swarm.memory import (
    CorruptStoreError,
    ForeignStoreError,
    PatternStore,
    SchemaVersionError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)
from swarm.memory.models import Source
from tests.conftest import make_pattern

pytestmark = pytest.mark.fault

DIM = 16
N = 120  # 4 KiB pages of ~16 rows: a table of several leaves under an interior page
QUERIES = np.random.default_rng(99).standard_normal((4, DIM))


def _pid(i: int) -> str:
    return f"p{i:04d}"


def _build(path: Path) -> None:
    rng = np.random.default_rng(7)
    with PatternStore(path, dim=DIM) as s:
        s.add_many([
            make_pattern(_pid(i), rng.standard_normal(DIM), kind="lesson" if i % 4 == 0 else "strategy",
                         domain=("trading", "general")[i % 2], action=("momentum", "revert")[i % 2],
                         tags=("trend", f"t{i % 3}") if i % 5 == 0 else (), confidence=float(rng.uniform(0.1, 0.9)),
                         description=f"when {i}", created_at=float(i),
                         source=Source(agent=f"a{i % 7}", trajectory=f"t{i}", outcome="success", reward=i % 9 - 4.0),
                         provenance=({"event": "import", "at": float(i)},) if i % 11 == 0 else ())
            for i in range(N)])
        s.record_outcomes([(_pid(i), i % 2 == 0, 0.5) for i in range(0, N, 3)], now=1000.0, by="me")
        s.delete_many([_pid(i) for i in range(0, N, 17)])
        s.apply_changes(links=[(_pid(1), _pid(2), "contradicts", 0.9)],
                        log=[("prune", _pid(17), None, {"why": "old"})], now=5.0)
        body = s.heads([_pid(3)])[_pid(3)][2]
        s.replica_log([("peer", 1, _pid(3), 1, "", body, None)], now=2.0)
        s.replica_log([], tombstones=[(_pid(10), 1, "")], now=3.0)
        s.checkpoint()


def _state(p):
    return (p.id, p.body_digest(), p.digest(), p.version, p.updated_by, p.last_used_at, p.confidence, p.uses,
            p.successes, p.failures, p.total_reward, p.created_at, p.provenance)


#: The reads whose answers come from pattern rows: every row carries digests of its content and
#: of its outcome statistics, and SQLite's integrity check covers the indexes, so a damaged file
#: either raises or gives these back exactly. The other tables (the deletion log, the replicated
#: write log, tombstones, links, the consolidation log) carry no digests: their values are checked
#: for type only, so damage there must raise a StoreError or nothing, but may pass unnoticed.
PATTERN_READS = ("iter", "len", "index", "get", "get_many", "search", "filtered", "domain", "heads", "revisions",
                 "rowids", "summary", "changed", "seq", "schema")


def _everything(s: PatternStore) -> dict:
    """What every read of the store gives back."""
    ids = [_pid(i) for i in range(N)]
    heads = s.heads(ids)
    return {
        "iter": [_state(p) for p in s],
        "len": len(s),
        "index": len(s.index),
        "get": [None if (p := s.get(i)) is None else _state(p) for i in ids],
        "get_many": sorted(_state(p) for p in s.get_many(ids).values()),
        "search": [[(p.id, round(sim, 5)) for p, sim in s.search(q, 8)] for q in QUERIES],
        "filtered": [[p.id for p, _ in s.search(q, 5, kind="lesson", domain="general", min_confidence=0.3)]
                     for q in QUERIES],
        "domain": [p.id for p in s.iter_patterns(domain="trading", kind="strategy")],
        "heads": heads,
        "revisions": s.revision_records(ids),
        "rowids": s.rowid_of(ids),
        "summary": s.summary(),
        "links": s.links(),
        "log": s.consolidation_log(),
        "seq": s.sequence,
        "changed": [_state(p) for p in s.changed_since(0)[0]],
        "deleted": s.deleted_between(0, 10**9),
        "replica": sorted(s.replica_writes()),
        "after": s.replica_after("peer", 0, 10),
        "recent": s.replica_recent(0, 10),
        "arrivals": s.replica_arrivals(),
        "tombstone": s.replica_oldest_tombstone(),
        "guarded": sorted(s.replica_guarded([(i, "") for i in ids])),
        "held": sorted(s.replica_held([(_pid(3), 1, "")])),
        "carriers": s.replica_carriers(sorted({h[2] for h in heads.values()})[:20]),
        "schema": s.schema_version,
    }


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """The bytes of a checkpointed store file and what reading it gives."""
    path = tmp_path_factory.mktemp("pristine") / "bank.db"
    _build(path)
    data = path.read_bytes()
    with PatternStore(path) as s:
        expected = _everything(s)
    assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
    return data, expected


def _fresh(path: Path, data: bytes) -> Path:
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(data)
    return path


def _outcome(path: Path, expected: dict) -> str:
    """Open and read a (damaged) store: the name of the StoreError it raised, or "intact" when it
    read back exactly the pristine data. Any other exception escapes and fails the test."""
    try:
        with PatternStore(path) as s:
            got = _everything(s)
    except StoreError as e:
        msg = str(e)
        assert "\n" not in msg and str(path) in msg, f"not a one-line message naming the file: {msg!r}"
        return type(e).__name__
    differ = [k for k in PATTERN_READS if got[k] != expected[k]]
    assert not differ, f"opened with altered data and no error: {differ}"
    return "intact"


def test_truncated_files_are_refused_or_read_intact(pristine, tmp_path):
    data, expected = pristine
    page = 4096
    cuts = sorted({1, 15, 16, 50, 99, 100, 101, 512, page - 1, page, page + 1, 2 * page, 3 * page + 100,
                   len(data) // 2, len(data) - page, len(data) - 100, len(data) - 1})
    outcomes = Counter()
    for cut in cuts:
        outcomes[_outcome(_fresh(tmp_path / "bank.db", data[:cut]), expected)] += 1
    assert outcomes["CorruptStoreError"] >= len(cuts) - 2, outcomes  # losing the tail may lose only free pages
    # truncated to nothing: an empty file is a new store, which needs a dimension
    with pytest.raises(StoreError, match="needs an embedding dimension"):
        PatternStore(_fresh(tmp_path / "bank.db", b""))


def _flip_outcomes(data, expected, path, places):
    outcomes = Counter()
    for pos, bit in places:
        damaged = bytearray(data)
        damaged[pos] ^= 1 << bit
        outcomes[_outcome(_fresh(path, bytes(damaged)), expected)] += 1
    return outcomes


def test_bit_flips_anywhere_are_refused_or_read_intact(pristine, tmp_path):
    data, expected = pristine
    rnd = random.Random(20261130)
    places = [(rnd.randrange(len(data)), rnd.randrange(8)) for _ in range(240)]
    outcomes = _flip_outcomes(data, expected, tmp_path / "bank.db", places)
    # under half the bytes are pattern rows and page structure, the rest free space, slack and the
    # empty tables' pages (at seed 20261130: 53 of 240 flips refused, the rest read intact)
    assert outcomes["CorruptStoreError"] >= 45, outcomes


def test_bit_flips_in_the_header_page_are_refused_or_read_intact(pristine, tmp_path):
    data, expected = pristine
    rnd = random.Random(7)
    places = [(pos, rnd.randrange(8)) for pos in range(0, 100, 2)]  # the database header
    places += [(rnd.randrange(100, 4096), rnd.randrange(8)) for _ in range(60)]  # the schema's page
    outcomes = _flip_outcomes(data, expected, tmp_path / "bank.db", places)
    assert outcomes["CorruptStoreError"] >= 20, outcomes


def test_smeared_bytes_are_refused_or_read_intact(pristine, tmp_path):
    data, expected = pristine
    rnd = random.Random(3)
    outcomes = Counter()
    for _ in range(60):
        pos = rnd.randrange(len(data) - 8)
        damaged = bytearray(data)
        damaged[pos:pos + 8] = rnd.randbytes(8)
        outcomes[_outcome(_fresh(tmp_path / "bank.db", bytes(damaged)), expected)] += 1
    assert outcomes["CorruptStoreError"] >= 10, outcomes


def test_zeroed_or_garbage_pages_are_refused_or_read_intact(pristine, tmp_path):
    data, expected = pristine
    page = 4096
    outcomes = Counter()
    for start in range(0, len(data), page):
        for fill in (b"\x00", b"\xa5"):
            damaged = data[:start] + fill * page + data[start + page:]
            outcomes[_outcome(_fresh(tmp_path / "bank.db", damaged), expected)] += 1
    assert outcomes["CorruptStoreError"] >= len(data) // page, outcomes


# ---- values overwritten through plain sqlite3 ------------------------------------------------

ROW = "p0005"
_ROW_DAMAGE = {
    "kind not a kind": "kind = 'bogus'",
    "kind a number": "kind = 7",
    "confidence above 1": "confidence = 1.5",
    "confidence below 0": "confidence = -0.25",
    "confidence text": "confidence = 'high'",
    "confidence changed within range": "confidence = confidence / 2",
    "uses negative": "uses = -1",
    "uses fractional": "uses = 2.5",
    "uses text": "uses = 'many'",
    "total_reward infinite": "total_reward = 9e999",
    "last_used_at text": "last_used_at = 'yesterday'",
    "created_at text": "created_at = 'yesterday'",
    "created_at changed": "created_at = created_at + 1",
    "version negative": "version = -1",
    "version changed": "version = version + 1",
    "updated_by a number": "updated_by = 5",
    "embedding short": "embedding = substr(embedding, 1, 20)",
    "embedding long": "embedding = CAST(embedding || x'00000000' AS BLOB)",
    "embedding text": "embedding = 'abc'",
    "embedding with a NaN": "embedding = CAST(x'0000c07f' || substr(embedding, 5) AS BLOB)",
    "embedding altered": "embedding = CAST(x'0000803f' || substr(embedding, 5) AS BLOB)",
    "title altered": "title = title || '!'",
    "title a blob": "title = CAST(title AS BLOB)",
    "id altered": "id = id || 'x'",
    "domain altered": "domain = 'elsewhere'",
    "action altered": "action = 'hold'",
    "tags not JSON": "tags = '[oops'",
    "tags not text items": "tags = '[1, 2]'",
    "provenance not JSON": "provenance = '{'",
    "provenance forged": "provenance = '[{\"event\": \"forged\"}]'",
    "source altered": "source_agent = 'mallory'",
    "source_reward text": "source_reward = 'x'",
    "body digest altered": "body = 'x'",
    "row digest altered": "row_digest = 'x'",
    "seq text": "seq = 'x'",
}


def _damage(path: Path, *sql: str) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA ignore_check_constraints = 1")
    for statement in sql:
        db.execute(statement)
    db.close()


@pytest.mark.parametrize("case", list(_ROW_DAMAGE))
def test_a_damaged_row_is_refused_naming_the_row(pristine, tmp_path, case):
    data, _ = pristine
    path = _fresh(tmp_path / "bank.db", data)
    _damage(path, f"UPDATE patterns SET {_ROW_DAMAGE[case]} WHERE id = '{ROW}'")
    with pytest.raises(CorruptStoreError) as err, PatternStore(path) as s:
        _everything(s)
    msg = str(err.value)
    assert ROW in msg and str(path) in msg and "\n" not in msg, msg


def test_text_that_is_not_utf8_is_refused(pristine, tmp_path):
    data, _ = pristine
    path = _fresh(tmp_path / "bank.db", data)
    _damage(path, f"UPDATE patterns SET title = CAST(x'fffe41' AS TEXT) WHERE id = '{ROW}'")
    with pytest.raises(CorruptStoreError, match="UTF-8"):
        PatternStore(path)


_FILE_DAMAGE = {
    "meta seq missing": ("DELETE FROM meta WHERE key = 'seq'", CorruptStoreError, "meta 'seq'"),
    "meta seq not a number": ("UPDATE meta SET value = 'abc' WHERE key = 'seq'", CorruptStoreError, "meta 'seq'"),
    "meta dim missing": ("DELETE FROM meta WHERE key = 'dim'", CorruptStoreError, "meta 'dim'"),
    "meta dim not a number": ("UPDATE meta SET value = 'x' WHERE key = 'dim'", CorruptStoreError, "meta 'dim'"),
    "meta dim zero": ("UPDATE meta SET value = '0' WHERE key = 'dim'", CorruptStoreError, "meta 'dim'"),
    "meta dim wrong": ("UPDATE meta SET value = '17' WHERE key = 'dim'", CorruptStoreError, "embedding"),
    "patterns table missing": ("DROP TABLE patterns", CorruptStoreError, "missing table"),
    "meta table missing": ("DROP TABLE meta", CorruptStoreError, "missing table"),
    "links table missing": ("DROP TABLE links", CorruptStoreError, "links"),
    "replica table missing": ("DROP TABLE replica", CorruptStoreError, "replica"),
    "tombstones table missing": ("DROP TABLE tombstones", CorruptStoreError, "tombstones"),
    "deleted table missing": ("DROP TABLE deleted", CorruptStoreError, "deleted"),
    "log table missing": ("DROP TABLE consolidation_log", CorruptStoreError, "consolidation_log"),
    "column missing": ("ALTER TABLE patterns DROP COLUMN row_digest", CorruptStoreError, "row_digest"),
    "column renamed": ("ALTER TABLE patterns RENAME COLUMN title TO name", CorruptStoreError, "title"),
    "replica seq text": ("UPDATE replica SET seq = 'x'", CorruptStoreError, "replica"),
    "tombstone time text": ("UPDATE tombstones SET at = 'x'", CorruptStoreError, "tombstones"),
    "log detail not JSON": ("UPDATE consolidation_log SET detail = '{'", CorruptStoreError, "log"),
    "link similarity text": ("UPDATE links SET similarity = 'x'", CorruptStoreError, "link"),
    "deletion version text": ("UPDATE deleted SET version = 'x'", CorruptStoreError, "deletion"),
    "schema version older": ("PRAGMA user_version = 4", CorruptStoreError, "cannot upgrade schema v4"),
    "schema version newer": ("PRAGMA user_version = 99", SchemaVersionError, "newer"),
    "application id": ("PRAGMA application_id = 1", ForeignStoreError, "not a ReasoningBank store"),
}


@pytest.mark.parametrize("case", list(_FILE_DAMAGE))
def test_a_damaged_table_or_schema_is_refused(pristine, tmp_path, case):
    data, _ = pristine
    sql, error, words = _FILE_DAMAGE[case]
    path = _fresh(tmp_path / "bank.db", data)
    _damage(path, sql)
    with pytest.raises(error) as err, PatternStore(path) as s:
        _everything(s)
    msg = str(err.value)
    assert words in msg and str(path) in msg and "\n" not in msg, msg


def test_an_index_that_lost_a_row_is_refused(pristine, tmp_path):
    """The rows' own checks cannot see an index that no longer finds a row (get() would answer
    None): SQLite's integrity check, run as the store opens, does."""
    data, _ = pristine
    path = _fresh(tmp_path / "bank.db", data)
    db = sqlite3.connect(path)
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'patterns_domain'").fetchone()[0]
    db.close()
    raw = bytearray(path.read_bytes())
    page = raw[(root - 1) * 4096:root * 4096]
    assert page[0] == 0x0A  # a leaf page of an index: the whole index, at this size
    cells = int.from_bytes(page[3:5], "big")
    page[3:5] = (cells - 1).to_bytes(2, "big")  # one entry fewer, behind SQLite's back: a row vanishes from it
    raw[(root - 1) * 4096:root * 4096] = page
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptStoreError, match="integrity check"):
        PatternStore(path)


def test_a_damaged_row_from_another_connection_is_refused_at_every_refresh(tmp_path):
    path = tmp_path / "bank.db"
    s = PatternStore(path, dim=4)
    s.add_many([make_pattern(f"p{i}", np.eye(4)[i % 4]) for i in range(8)])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE meta SET value = value + 1 WHERE key = 'seq'")
    db.execute("UPDATE patterns SET title = 'forged', seq = (SELECT value FROM meta WHERE key = 'seq') WHERE id = 'p3'")
    db.close()
    for _ in range(2):  # a refresh that failed is not taken as done
        with pytest.raises(CorruptStoreError, match=r"'p3'.*altered"):
            s.search(np.eye(4)[3], 2)


def test_a_row_altered_under_an_open_store_is_refused_when_decoded(tmp_path):
    path = tmp_path / "bank.db"
    s = PatternStore(path, dim=4)
    s.add_many([make_pattern(f"p{i}", np.eye(4)[i % 4]) for i in range(8)])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE patterns SET uses = 3 WHERE id = 'p3'")  # no new change number: no refresh reloads it
    db.close()
    with pytest.raises(CorruptStoreError, match=r"'p3'.*row digest"):
        s.get("p3")
    with pytest.raises(CorruptStoreError, match="'p3'"):
        list(s)
    with pytest.raises(CorruptStoreError, match="'p3'"):
        s.record_outcome("p3", True, 1.0, now=1.0)
    assert s.get("p2") is not None  # the other rows still read


# ---- a read-only store ----------------------------------------------------------------------

def _small_store(path: Path, n: int = 30) -> dict:
    with PatternStore(path, dim=8) as s:
        s.add_many([make_pattern(f"p{i}", np.random.default_rng(i).standard_normal(8)) for i in range(n)])
        s.record_outcome("p1", True, 1.0, now=1.0)
        return {p.id: _state(p) for p in s}


def _write_attempts(s: PatternStore):
    p = make_pattern("new", np.ones(8))
    return {
        "add": lambda: s.add(p),
        "put_many": lambda: s.put_many([p]),
        "merge_many": lambda: s.merge_many([p]),
        "delete_many": lambda: s.delete_many(["p1"]),
        "record_outcome": lambda: s.record_outcome("p1", True, 1.0, now=2.0),
        "apply_changes": lambda: s.apply_changes(links=[("p1", "p2", "contradicts", 0.5)]),
        "replica_log": lambda: s.replica_log([("o", 1, "p1", 9, "", "b", None)]),
        "replica_expire": lambda: s.replica_expire(10.0),
    }


def test_a_store_opened_read_only_reads_and_refuses_writes(tmp_path):
    path = tmp_path / "bank.db"
    expected = _small_store(path)
    before = path.read_bytes()
    with PatternStore(path, read_only=True) as s:
        assert s.read_only and "read_only=True" in s.read_only_reason
        assert {p.id: _state(p) for p in s} == expected
        assert s.search(np.random.default_rng(3).standard_normal(8), 1)[0][0].id in expected
        assert s.get("p1").uses == 1 and len(s) == 30
        for name, write in _write_attempts(s).items():
            with pytest.raises(StoreReadOnlyError) as err:
                write()
            msg = str(err.value)
            assert "read-only" in msg and "corrupt" not in msg and "\n" not in msg, (name, msg)
        assert len(s.index) == 30 and s.get("new") is None
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="in-memory"):
        PatternStore(":memory:", dim=4, read_only=True)


def test_a_read_only_store_that_needs_upgrading_says_so(tmp_path):
    path = tmp_path / "bank.db"
    _small_store(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 5")  # as if written by the previous version
    db.commit()
    db.close()
    with pytest.raises(StoreReadOnlyError, match="needs upgrading"):
        PatternStore(path, read_only=True)


_READ_ONLY_CHECK = textwrap.dedent("""
    import sys, numpy as np
    from swarm.memory import PatternStore, StoreReadOnlyError
    from tests.conftest import make_pattern
    s = PatternStore(sys.argv[1])
    assert s.read_only, "a file that cannot be written must open read-only"
    ids = sorted(p.id for p in s)
    hit = s.search(np.random.default_rng(3).standard_normal(8), 1)[0][0].id
    assert s.get("p1").uses == 1 and hit in ids and len(s) == len(ids) == 30
    try:
        s.add(make_pattern("new", np.ones(8)))
    except StoreReadOnlyError as e:
        assert "read-only" in str(e) and "corrupt" not in str(e), str(e)
        print("ok:", s.read_only_reason)
""")


def test_a_file_in_a_read_only_directory_opens_for_reading(tmp_path):
    """No permission to write the file nor its directory (so no WAL index can be made beside
    it): the store opens (as an immutable file), reads, and refuses writes as read-only. As
    root, permissions do not bind: the directory is bind-mounted read-only in a private mount
    namespace instead, where that is allowed."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "bank.db"
    _small_store(path)
    assert not Path(str(path) + "-shm").exists()
    script = tmp_path / "check.py"
    script.write_text(_READ_ONLY_CHECK)
    run = [sys.executable, str(script), str(path)]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("root without unshare: cannot make a directory read-only")
        run = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
               str(folder), *run]
    else:
        path.chmod(0o444)
        folder.chmod(0o555)
    try:
        out = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    if os.geteuid() == 0 and "mount" in out.stderr and out.returncode != 0 and "Traceback" not in out.stderr:
        pytest.skip(f"cannot mount here: {out.stderr.strip()}")
    assert out.returncode == 0 and out.stdout.startswith("ok:"), out.stdout + out.stderr
    assert "immutable" in out.stdout


# ---- a full disk ----------------------------------------------------------------------------

def test_a_full_store_says_so_and_keeps_every_commit(tmp_path):
    path = tmp_path / "bank.db"
    expected = _small_store(path)
    s = PatternStore(path)
    # SQLite's page limit stands in for a full disk: the same error (SQLITE_FULL) mid-write
    s._db.execute(f"PRAGMA max_page_count = {s._db.execute('PRAGMA page_count').fetchone()[0] + 3}")
    committed = []
    with pytest.raises(StoreFullError) as err:
        for b in range(100):
            batch = [make_pattern(f"b{b}-{i}", np.random.default_rng(100 * b + i).standard_normal(8),
                                  content="x" * 400) for i in range(10)]
            s.add_many(batch)
            committed += batch
    msg = str(err.value)
    assert "full" in msg and str(path) in msg and "\n" not in msg, msg
    assert len(s) == len(s.index) == 30 + len(committed)  # the failed batch is in neither
    assert s.get("p1").uses == 1  # the store still reads
    s.close()
    with PatternStore(path) as s:
        got = {p.id: _state(p) for p in s}
    assert got == {**expected, **{p.id: got[p.id] for p in committed}}
    assert all(got[p.id][1] == p.body_digest() for p in committed)


_FILL_TMPFS = textwrap.dedent("""
    import sys, numpy as np
    from swarm.memory import PatternStore, StoreFullError
    from tests.conftest import make_pattern
    path = sys.argv[1]
    s = PatternStore(path, dim=64)
    committed = []
    try:
        for b in range(10_000):
            s.add_many([make_pattern(f"b{b}-{i}", np.random.default_rng(b * 100 + i).standard_normal(64),
                                     content="x" * 300) for i in range(50)])
            committed.append(b)
    except StoreFullError as e:
        assert "full" in str(e) and "\\n" not in str(e), str(e)
    assert committed and len(s) == len(s.index) == 50 * len(committed)
    s.close()
    with PatternStore(path) as s:  # reopened on the full disk: every committed batch, whole
        ids = {p.id for p in s}
    assert ids == {f"b{b}-{i}" for b in committed for i in range(50)}, "a committed pattern was lost"
    print("ok", len(committed))
""")


def test_a_full_disk_says_so_and_keeps_every_commit(tmp_path):
    """A real full disk: a 600 KiB tmpfs mounted in a private mount namespace (root with unshare
    only; skipped elsewhere)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a tiny tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(_FILL_TMPFS)
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=600k tmpfs "$0" && exec "$@"', str(mnt),
         sys.executable, str(script), str(mnt / "bank.db")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=120)
    if out.returncode != 0 and "Traceback" not in out.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stdout + out.stderr


# ---- a lock held by another connection ------------------------------------------------------

def test_a_write_lock_held_too_long_says_so_and_loses_nothing(tmp_path):
    path = tmp_path / "bank.db"
    expected = _small_store(path)
    s = PatternStore(path, busy_timeout_s=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock and does not let go
    for name, write in _write_attempts(s).items():
        with pytest.raises(StoreLockedError) as err:
            write()
        msg = str(err.value)
        assert "locked" in msg and "0.2 s" in msg and "\n" not in msg, (name, msg)
    assert s.get("p1").uses == 1 and len(s.search(np.ones(8), 3)) == 3  # readers are not blocked (WAL)
    other.execute("ROLLBACK")
    s.add(make_pattern("new", np.ones(8)))  # the lock is free again
    s.close()
    other.close()
    with PatternStore(path) as s:
        got = {p.id: _state(p) for p in s}
    assert {k: v for k, v in got.items() if k != "new"} == expected and "new" in got


def test_a_store_locked_exclusively_by_another_connection_says_so(tmp_path):
    path = tmp_path / "bank.db"
    expected = _small_store(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")  # keeps its lock on the file until it closes
    other.execute("BEGIN EXCLUSIVE")
    other.execute("COMMIT")
    with pytest.raises(StoreLockedError, match="locked"):
        PatternStore(path, busy_timeout_s=0.2)
    other.close()
    with PatternStore(path) as s:
        assert {p.id: _state(p) for p in s} == expected
