import json
import math
from dataclasses import replace
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from swarm.memory import (
    CorruptStoreError,
    DimensionMismatchError,
    ForeignStoreError,
    Pattern,
    PatternStore,
    SchemaVersionError,
    StoreError,
)
from swarm.memory.models import Source
from swarm.memory.store import APPLICATION_ID, SCHEMA_VERSION, _MIGRATIONS
from tests.conftest import make_pattern


def _vec(i, dim=16):
    return np.random.default_rng(i).standard_normal(dim)


def test_round_trip_preserves_every_field(tmp_path):
    path = tmp_path / "bank.db"
    p = make_pattern("p1", _vec(1), description="when trending", domain="trading", tags=("a", "b"),
                     kind="lesson", action="momentum", confidence=0.3, uses=4, successes=1, failures=3,
                     total_reward=-1.5, created_at=10.0, last_used_at=20.0, version=7, updated_by="agent-1",
                     provenance=({"event": "import", "at": 5.0},))
    with PatternStore(path, dim=16) as s:
        s.add(p)
    with PatternStore(path) as s:
        q = s.get("p1")
    assert q.digest() == p.digest()
    assert (q.version, q.updated_by, q.last_used_at, q.created_at, q.provenance) == \
        (7, "agent-1", 20.0, 10.0, ({"event": "import", "at": 5.0},))
    assert q.embedding.dtype == np.float32 and np.array_equal(q.embedding, p.embedding)


def test_file_store_uses_wal_and_current_schema(tmp_path):
    path = tmp_path / "bank.db"
    PatternStore(path, dim=8).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_migration_from_v1_keeps_data_and_adds_v2_tables(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    _MIGRATIONS[1](db)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO meta VALUES ('dim', '4')")
    emb = np.array([1, 0, 0, 0], dtype="<f4").tobytes()
    db.execute("INSERT INTO patterns (id, title, description, content, domain, tags, kind, action, confidence,"
               " uses, successes, failures, total_reward, created_at, last_used_at, source_agent,"
               " source_trajectory, source_outcome, version, updated_by, embedding, seq)"
               " VALUES ('old', 't', '', 'c', 'general', '[]', 'strategy', '', 0.5, 0, 0, 0, 0, 1.0,"
               " NULL, '', '', '', 1, '', ?, 1)", (emb,))
    db.close()
    with PatternStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.get("old").provenance == ()
        assert s.search(np.array([1, 0, 0, 0]), 1)[0][0].id == "old"
        assert s.links() == [] and s.consolidation_log() == []
        assert s.heads(["old"])["old"][2] == s.get("old").body_digest()  # v5 filled in the body digest


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.db"
    PatternStore(path, dim=4).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(SchemaVersionError, match="newer"):
        PatternStore(path)


def test_garbage_file_is_refused_and_left_intact(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database at all" * 100)
    before = path.read_bytes()
    with pytest.raises(CorruptStoreError, match="junk.db"):
        PatternStore(path, dim=4)
    assert path.read_bytes() == before


def test_damaged_pages_give_a_clear_error(tmp_path):
    path = tmp_path / "bank.db"
    with PatternStore(path, dim=64) as s:
        s.add_many([make_pattern(f"p{i}", _vec(i, 64)) for i in range(400)])
        s.checkpoint()
    raw = bytearray(path.read_bytes())
    page = 16384
    for off in range(page * 2, len(raw), page):  # trash every page after the first two
        raw[off:off + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptStoreError) as err:
        PatternStore(path)
    assert "bank.db" in str(err.value) and "\n" not in str(err.value)


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (name TEXT)")
    db.execute("INSERT INTO customers VALUES ('ada')")
    db.commit()
    db.close()
    with pytest.raises(ForeignStoreError, match="not a ReasoningBank store"):
        PatternStore(path, dim=4)
    db = sqlite3.connect(path)
    assert db.execute("SELECT name FROM customers").fetchall() == [("ada",)]


def test_dimension_is_fixed_per_store(tmp_path):
    path = tmp_path / "bank.db"
    with PatternStore(path, dim=8) as s:
        with pytest.raises(DimensionMismatchError):
            s.add(make_pattern("x", _vec(0, 4)))
    with pytest.raises(DimensionMismatchError):
        PatternStore(path, dim=16)


def test_failed_batch_writes_nothing():
    s = PatternStore(":memory:", dim=8)
    s.add(make_pattern("dup", _vec(0, 8)))
    with pytest.raises(ValueError):
        s.add_many([make_pattern("fresh", _vec(1, 8)), make_pattern("dup", _vec(2, 8))])
    assert len(s) == 1 and s.get("fresh") is None
    assert len(s.index) == 1


def test_batches_of_every_size_mirror_their_own_vectors_into_the_index(tmp_path):
    """A write's embeddings pass through a matrix the store keeps for the next write: batches
    larger and smaller than the last, a failed one, repeated ids and two writes in one
    transaction each leave every row's own vector in the index and on disk."""
    s = PatternStore(tmp_path / "b.db", dim=8)
    want = {}

    def write(batch, put=False):
        (s.put_many if put else s.add_many)(batch)
        want.update({p.id: p.embedding for p in batch})

    write([make_pattern(f"a{i}", _vec(i, 8)) for i in range(10)])
    write([make_pattern(f"b{i}", _vec(100 + i, 8)) for i in range(3)])
    with pytest.raises(ValueError):
        s.add_many([make_pattern("c0", _vec(200, 8)), make_pattern("a0", _vec(201, 8))])
    write([make_pattern(f"d{i}", _vec(300 + i, 8)) for i in range(25)])
    write([make_pattern("a1", _vec(400, 8)), make_pattern("e0", _vec(401, 8)), make_pattern("a1", _vec(402, 8))],
          put=True)
    s.apply_changes(puts=[make_pattern("f0", _vec(500, 8))], deletes=["b0"])
    want["f0"] = make_pattern("f0", _vec(500, 8)).embedding
    del want["b0"]
    assert len(s) == len(s.index) == len(want) and s.get("c0") is None
    for pid, emb in want.items():
        assert np.array_equal(s.get(pid).embedding, emb)
        found = s.search(emb, 1)[0]
        assert found[0].id == pid and found[1] == pytest.approx(1.0, abs=1e-5)
    s.close()
    with PatternStore(tmp_path / "b.db") as again:
        assert {p.id for p in again} == set(want)


def test_search_filters_and_exact_order():
    s = PatternStore(":memory:", dim=3)
    s.add_many([
        make_pattern("a", [1, 0, 0], domain="x", kind="strategy", confidence=0.9),
        make_pattern("b", [0.9, 0.1, 0], domain="x", kind="lesson", confidence=0.9),
        make_pattern("c", [0.8, 0.2, 0], domain="y", kind="strategy", confidence=0.2),
        make_pattern("d", [0, 0, 1], domain="y", kind="strategy", confidence=0.9),
    ])
    q = np.array([1.0, 0, 0])
    assert [p.id for p, _ in s.search(q, 4)] == ["a", "b", "c", "d"]
    assert [p.id for p, _ in s.search(q, 4, domain="y")] == ["c", "d"]
    assert [p.id for p, _ in s.search(q, 4, kind="lesson")] == ["b"]
    assert [p.id for p, _ in s.search(q, 4, min_confidence=0.5)] == ["a", "b", "d"]
    assert s.search(q, 4, domain="nowhere") == []
    sims = [x for _, x in s.search(q, 4)]
    assert sims[0] == pytest.approx(1.0) and sims == sorted(sims, reverse=True)


def test_record_outcome_persists_and_updates_the_index_confidence(tmp_path):
    path = tmp_path / "bank.db"
    with PatternStore(path, dim=4) as s:
        s.add(make_pattern("p", [1, 0, 0, 0], confidence=0.5))
        s.record_outcome("p", True, 1.0, now=5.0, lr=0.5)
        assert [p.id for p, _ in s.search(np.array([1, 0, 0, 0]), 1, min_confidence=0.7)] == ["p"]
        with pytest.raises(KeyError):
            s.record_outcome("missing", True, 1.0, now=5.0)
    with PatternStore(path) as s:
        p = s.get("p")
    assert (p.confidence, p.uses, p.successes, p.last_used_at) == (0.75, 1, 1, 5.0)


def test_merge_many_keeps_the_deterministic_winner():
    s = PatternStore(":memory:", dim=4)
    base = make_pattern("p", [1, 0, 0, 0], confidence=0.5)
    s.add(base)
    newer = base.bumped("peer", confidence=0.9)
    assert [p.id for p in s.merge_many([newer])] == ["p"]
    assert s.get("p").confidence == 0.9
    assert s.merge_many([base]) == []  # an older copy changes nothing
    assert s.get("p").confidence == 0.9


def test_reader_in_another_connection_sees_commits_and_deletions(tmp_path):
    path = tmp_path / "bank.db"
    writer, reader = PatternStore(path, dim=4), PatternStore(path)
    writer.add(make_pattern("a", [1, 0, 0, 0]))
    assert [p.id for p, _ in reader.search(np.array([1, 0, 0, 0]), 5)] == ["a"]
    writer.delete_many(["a"])
    assert reader.search(np.array([1, 0, 0, 0]), 5) == []
    reader.add(make_pattern("b", [0, 1, 0, 0]))  # the reader may write too; the writer catches up
    assert [p.id for p, _ in writer.search(np.array([0, 1, 0, 0]), 5)] == ["b"]


def _statements(store):
    """The SQL statements ``store``'s connection runs, as a list that fills as they run."""
    ran = []
    store._db.set_trace_callback(ran.append)
    return ran


def _idle(store, q):
    """Search until the store reads the WAL index header (it looks for SQLite's descriptor once
    it has searched twice with no commit of its own in between), and once more to mark it."""
    for _ in range(3):
        store.search(q, 5)
    assert store._watch.attached


def test_an_idle_store_searches_without_asking_sqlite_and_still_sees_every_other_commit(tmp_path):
    """A store that nothing has committed to since its last look searches without a statement
    (``PRAGMA data_version`` took a read lock: most of a decision's SQLite time); every commit of
    another connection, including those after a checkpoint has restarted the WAL, still reaches
    its next search."""
    path = tmp_path / "bank.db"
    here, other = PatternStore(path, dim=4), PatternStore(path)
    here.add(make_pattern("own", [1, 0, 0, 0]))
    q = np.array([0, 1, 0, 0])
    _idle(here, q)
    assert os.readlink(f"/proc/self/fd/{here._watch._fd}") == os.path.realpath(path) + "-shm"
    ran = _statements(here)
    assert [p.id for p, _ in here.search(q, 5)] == ["own"]
    assert ran == []  # nothing committed since: no statement at all
    for step in range(6):
        if step >= 3:  # the next commit restarts the WAL: the same frame count as the last time
            other._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        other.add(make_pattern(f"o{step}", [0, 1, 0, step / 10]))
        assert {p.id for p, _ in here.search(q, 10)} == {"own"} | {f"o{i}" for i in range(step + 1)}
        assert "PRAGMA data_version" in ran  # a commit elsewhere: asked, and loaded
        ran.clear()
        here.search(q, 10)
        assert ran == []
    other.delete_many(["o0"])
    assert "o0" not in {p.id for p, _ in here.search(q, 10)}


def test_a_commit_landing_just_after_the_change_check_reaches_the_next_search(tmp_path):
    """The header is read before ``PRAGMA data_version``: a commit landing between the PRAGMA and
    the end of the refresh leaves the header changed from the mark kept, so the next search asks
    again and loads it (a mark read after the PRAGMA would hide it for good)."""
    path = tmp_path / "bank.db"
    here, other = PatternStore(path, dim=4), PatternStore(path)
    q = np.array([0, 1, 0, 0])
    here.add(make_pattern("own", [1, 0, 0, 0]))
    _idle(here, q)
    here.add(make_pattern("own2", [0, 0, 1, 0]))  # the header moves; data_version does not
    ask = here._pragma

    def ask_then_commit_elsewhere(name):
        answer = ask(name)
        if name == "data_version" and not landed:
            landed.append(other.add(make_pattern("late", [0, 1, 0, 0])))
        return answer
    landed: list = []
    here._pragma = ask_then_commit_elsewhere
    here.search(q, 5)
    assert landed
    here._pragma = ask
    assert "late" in {p.id for p, _ in here.search(q, 5)}
    assert "late" in {p.id for p, _ in here.search(q, 5)}


def test_a_store_that_cannot_read_the_header_asks_sqlite_every_time(tmp_path, monkeypatch):
    """Where the process's open files are not listed (not Linux), the store cannot find SQLite's
    descriptor of the WAL index: it runs the PRAGMA at every search, and misses nothing."""
    from swarm.memory import walwatch
    monkeypatch.setattr(walwatch, "_OPEN_FILES", str(tmp_path / "no-such-dir"))
    path = tmp_path / "bank.db"
    here, other = PatternStore(path, dim=4), PatternStore(path)
    here.add(make_pattern("own", [1, 0, 0, 0]))
    q = np.array([0, 1, 0, 0])
    for _ in range(3):
        here.search(q, 5)
    assert not here._watch.attached and here._watch.failed
    ran = _statements(here)
    for step in range(3):
        other.add(make_pattern(f"o{step}", [0, 1, 0, step / 10]))
        assert f"o{step}" in {p.id for p, _ in here.search(q, 5)}
        here.search(q, 5)
    assert ran.count("PRAGMA data_version") == 6


_PROBE_WRITER = textwrap.dedent("""
    import sqlite3, sys
    c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
    try:
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO probe VALUES ('other process')")
        c.execute("COMMIT")
        print("committed")
    except sqlite3.OperationalError as e:
        print(e)
""")


def test_closing_a_store_leaves_the_locks_of_other_connections_in_the_process(tmp_path):
    """SQLite locks the WAL index with POSIX record locks, which any close of a descriptor of the
    file drops for the whole process: a store that read the header must not close one, or another
    connection's write lock vanishes and a second process's commit is lost under it."""
    path = tmp_path / "bank.db"
    here = PatternStore(path, dim=4)
    here.add(make_pattern("own", [1, 0, 0, 0]))
    _idle(here, np.array([0, 1, 0, 0]))
    plain = sqlite3.connect(path, isolation_level=None, timeout=0)
    plain.execute("CREATE TABLE probe (x TEXT)")
    plain.execute("BEGIN IMMEDIATE")
    plain.execute("INSERT INTO probe VALUES ('this process')")
    here.close()
    script = tmp_path / "probe.py"
    script.write_text(_PROBE_WRITER)
    out = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "database is locked"
    plain.execute("COMMIT")
    assert plain.execute("SELECT x FROM probe").fetchall() == [("this process",)]
    plain.close()


_OPEN_WRITE_CLOSE = textwrap.dedent("""
    import sqlite3, sys
    c = sqlite3.connect(sys.argv[1], isolation_level=None)
    c.execute("INSERT INTO probe VALUES ('other process')")
    c.close()
""")


def test_opening_a_second_store_on_a_file_keeps_the_first_ones_claim_on_it(tmp_path):
    """Every WAL connection holds a shared lock on the database file, and a process closing its
    last connection deletes the WAL index only if it can take that lock exclusively. Opening a
    second store on the file in this process must not drop the first one's lock (reading the
    file's header through a descriptor of its own and closing it would: POSIX locks are the
    process's), or another process's close deletes the WAL index under both."""
    path = tmp_path / "bank.db"
    first = PatternStore(path, dim=4)
    first.add(make_pattern("own", [1, 0, 0, 0]))
    first._db.execute("CREATE TABLE probe (x TEXT)")
    second = PatternStore(path)
    script = tmp_path / "other.py"
    script.write_text(_OPEN_WRITE_CLOSE)
    subprocess.run([sys.executable, str(script), str(path)], check=True, timeout=60)
    assert (tmp_path / "bank.db-shm").exists()
    assert [p.id for p, _ in second.search(np.array([1, 0, 0, 0]), 5)] == ["own"]
    first.close()
    second.close()


def test_opening_a_store_by_another_name_of_an_open_file_keeps_the_claim_on_it(tmp_path):
    """The same through a hard link: the file is matched by its inode, not its name."""
    path, alias = tmp_path / "bank.db", tmp_path / "alias.db"
    first = PatternStore(path, dim=4)
    first.add(make_pattern("own", [1, 0, 0, 0]))
    first._db.execute("CREATE TABLE probe (x TEXT)")
    os.link(path, alias)
    try:
        PatternStore(alias).close()
    except StoreError:
        pass  # SQLite may refuse a second name of a file it holds; the lock must survive either way
    script = tmp_path / "other.py"
    script.write_text(_OPEN_WRITE_CLOSE)
    subprocess.run([sys.executable, str(script), str(path)], check=True, timeout=60)
    assert (tmp_path / "bank.db-shm").exists()
    first.close()


def test_a_foreign_file_put_in_place_of_an_open_store_is_still_refused(tmp_path):
    """A file replaced under an open store's name is another inode: its header is read and a
    file that is not SQLite is refused unchanged, though the old store's WAL index is open."""
    path = tmp_path / "bank.db"
    first = PatternStore(path, dim=4)
    first.add(make_pattern("own", [1, 0, 0, 0]))
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"not": "a store"}' * 300)
    os.replace(foreign, path)
    before = path.read_bytes()
    with pytest.raises(CorruptStoreError):
        PatternStore(path)
    assert path.read_bytes() == before
    first.close()


def test_the_header_is_read_only_through_the_one_descriptor_sqlite_holds(tmp_path):
    """A second descriptor of the WAL index (code of another kind holding it open) could be
    closed and its number reused for another file: the store then does not read the header,
    and asks SQLite at every search."""
    path = tmp_path / "bank.db"
    here, other = PatternStore(path, dim=4), PatternStore(path)
    here.add(make_pattern("own", [1, 0, 0, 0]))
    extra = os.open(str(path) + "-shm", os.O_RDONLY)
    try:
        q = np.array([0, 1, 0, 0])
        for _ in range(3):
            here.search(q, 5)
        assert not here._watch.attached
        other.add(make_pattern("o", [0, 1, 0, 0]))
        assert "o" in {p.id for p, _ in here.search(q, 5)}
        here.close()
        other.close()
    finally:
        os.close(extra)  # after the stores: closing it drops the process's locks on the file


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from swarm.memory import PatternStore, Pattern
    path, batches, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    s = PatternStore(path, dim=256, synchronous="FULL")
    rng = np.random.default_rng(0)
    for b in range(batches):
        s.add_many([Pattern(id=f"b{b}-{i}", title="t", content="c" * 200,
                            embedding=rng.standard_normal(256)) for i in range(size)])
        print(f"committed {b}", flush=True)
""")


def test_sigkill_mid_batch_keeps_every_committed_pattern_and_none_of_the_rest(tmp_path):
    path = tmp_path / "bank.db"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    size = 20_000  # ~0.1-0.2 s per batch, so the kill below lands inside one
    proc = subprocess.Popen([sys.executable, str(script), str(path), "1000", str(size)],
                            stdout=subprocess.PIPE, text=True, cwd=os.getcwd(),
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    committed = []
    while len(committed) < 3:
        line = proc.stdout.readline()
        assert line, "writer died before committing three batches"
        committed.append(int(line.split()[1]))
    time.sleep(0.05)  # land somewhere inside a later batch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reported = committed + [int(line.split()[1]) for line in proc.stdout.read().splitlines() if line]
    with PatternStore(path) as s:
        ids = {p.id for p in s}
        assert len(s.index) == len(ids)
    batches = {}
    for pid in ids:
        b = int(pid.split("-")[0][1:])
        batches[b] = batches.get(b, 0) + 1
    assert all(n == size for n in batches.values()), "a batch was partly written"
    assert set(reported) <= set(batches), "a batch reported as committed was lost"
    assert sorted(batches) == list(range(len(batches))), "batches must be a prefix"
    assert len(batches) <= max(reported) + 2  # at most the batch committed as the kill landed


_READER = textwrap.dedent("""
    import sys, time, numpy as np
    from swarm.memory import Pattern, PatternStore
    from swarm.memory import walwatch
    if sys.argv[2] == "asks-sqlite":  # no list of open files: the PRAGMA at every search
        walwatch._OPEN_FILES = "/no-such-dir"
    s = PatternStore(sys.argv[1])
    for _ in range(3):
        s.search(np.eye(8)[3], 1)
    assert s._watch.attached == (sys.argv[2] == "reads-header")
    print("ready", flush=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        hits = s.search(np.eye(8)[3], 1)
        if hits and hits[0][0].id == "late":
            print("seen", len(s), flush=True)
            break
        time.sleep(0.01)
""")


@pytest.mark.parametrize("reader", ["asks-sqlite", "reads-header"])
def test_writer_and_reader_in_two_processes(tmp_path, reader):
    """A commit in one process reaches another's searches, whether that one asks SQLite at every
    search or reads the WAL index header first."""
    path = tmp_path / "bank.db"
    script = tmp_path / "reader.py"
    script.write_text(_READER)
    with PatternStore(path, dim=8) as s:
        s.add_many([make_pattern(f"p{i}", np.eye(8)[i % 3]) for i in range(50)])
        proc = subprocess.Popen([sys.executable, str(script), str(path), reader], stdout=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # the reader is searching, idle, by now
        s.add(make_pattern("late", np.eye(8)[3]))
        out, _ = proc.communicate(timeout=90)
    assert out.strip() == "seen 51"


def test_record_outcomes_is_all_or_nothing(tmp_path):
    from swarm.memory import PatternStore
    from tests.conftest import make_pattern
    with PatternStore(tmp_path / "o.db", dim=8) as s:
        a, b = make_pattern("a", [1.0] + [0.0] * 7), make_pattern("b", [0.0, 1.0] + [0.0] * 6)
        s.add_many([a, b])
        with pytest.raises(KeyError):
            s.record_outcomes([("a", True, 1.0), ("missing", True, 1.0)], now=1.0)
        assert s.get("a").uses == 0
        out = s.record_outcomes([("a", True, 1.0), ("b", False, -1.0)], now=2.0, lr=0.5)
        assert [p.uses for p in out] == [1, 1] and s.get("a").confidence > a.confidence > s.get("b").confidence


def test_a_pattern_hashes_the_same_after_a_trip_through_the_store(tmp_path):
    """SQLite gives -0.0 back as 0.0 (and ints in REAL columns as floats): the body digest a
    replica compares must not change across a store, or revisions over it never resolve."""
    from dataclasses import replace

    from swarm.memory.models import Source

    s = PatternStore(tmp_path / "s.db", dim=4)
    p = make_pattern("p", [1, 0, 0, 0])
    p = replace(p, created_at=3, source=Source(agent="a", trajectory="t", outcome="failure", reward=-0.0))
    s.put_many([p])
    back = s.get("p")
    assert back.body_digest() == p.body_digest() == s.heads(["p"])["p"][2]
    assert back.digest() == p.digest()


def test_searches_never_return_a_stale_cached_row(tmp_path):
    """Searches keep decoded rows; every kind of change, here or through another connection,
    must show in the next search."""
    path = tmp_path / "bank.db"
    s, other = PatternStore(path, dim=4), PatternStore(path)
    q = np.array([1, 0, 0, 0])
    s.add_many([make_pattern("p", [1, 0, 0, 0], confidence=0.5), make_pattern("r", [1, 0.2, 0, 0])])
    first = s.search(q, 2)
    assert first[0][0].embedding.flags.writeable is False  # shared with later searches
    with pytest.raises(ValueError):
        first[0][0].embedding[0] = 7.0
    s.record_outcome("p", True, 1.0, now=5.0, lr=0.5)  # own write
    assert s.search(q, 1)[0][0].uses == 1
    other.record_outcome("p", False, -1.0, now=6.0, lr=0.5)  # another connection's write
    assert (s.search(q, 1)[0][0].uses, s.search(q, 1)[0][0].failures) == (2, 1)
    other.put_many([make_pattern("p", [1, 0, 0, 0], title="rewritten")])
    assert s.search(q, 1)[0][0].title == "rewritten"
    other.delete_many(["p"])
    assert [p.id for p, _ in s.search(q, 2)] == ["r"]
    s.put_many([make_pattern("r", [1, 0.2, 0, 0], title="mine")])
    assert s.search(q, 1)[0][0].title == "mine"


def _fields(p):
    """Every field of a pattern, the embedding as bytes, with each value's type."""
    from dataclasses import fields
    return [(f.name, type(v), v.tobytes() if f.name == "embedding" else v)
            for f in fields(p) for v in [getattr(p, f.name)]]


def test_a_recorded_outcome_replaces_the_cached_row_with_what_a_read_returns(tmp_path):
    """After an outcome the cached copy is the updated pattern (not dropped, so the next search
    does not read it from SQLite again), and it is field for field, types included, what reading
    the row decodes to: with and without others' contributions, and with an integer time."""
    s = PatternStore(tmp_path / "bank.db", dim=4)
    q = np.array([1, 0, 0, 0])
    s.add_many([make_pattern("p", [1, 0, 0, 0], confidence=0.5), make_pattern("r", [1, 0.2, 0, 0], author="b"),
                make_pattern("m", [1, 0.1, 0, 0], author="a")])
    s.search(q, 3)
    seen = s.record_outcomes([("p", True, 1.5), ("r", False, -2.0)], now=7, lr=0.5, by="a")
    last = s.record_outcome("p", False, -0.5, now=8, lr=0.5, by="a")
    s.record_outcome("r", True, 1.0, now=9.0, lr=0.5, by="c")  # another's contribution: a new reader's view
    s.record_outcome("m", True, 3.0, now=10.0, lr=0.5, by="c")  # c's contribution to a's pattern
    s.search(q, 3)
    mine = s.record_outcome("m", False, -1.0, now=11.0, lr=0.5, by="a")  # a's own outcome, over c's
    cached = dict((p.id, p) for p, _ in s.search(q, 3))
    assert cached["p"] is last and last is not seen[0] and last.uses == 2  # the cached copy was replaced
    assert cached["m"] is mine and mine.uses == 2 and mine.total_reward == 2.0  # with c's contribution
    assert s.get_many(["p"])["p"] is cached["p"]  # served from the cache
    fresh = PatternStore(tmp_path / "bank.db")
    for pid in ("p", "r", "m"):
        assert _fields(cached[pid]) == _fields(fresh.get(pid))
    assert type(cached["p"].last_used_at) is float
    assert math.copysign(1.0, s.record_outcome("p", True, 1.0, now=-0.0).last_used_at) == 1.0  # as SQLite gives it back
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="finite time"):
            s.record_outcome("p", True, 1.0, now=bad)


def test_peers_contributions_and_revisions_replace_the_cached_rows_with_what_a_read_returns(tmp_path):
    """A frame from a peer that changes only outcome figures (another agent's contribution, a new
    version over a body held) replaces the cached copies (not dropped: a gossiping agent's next
    decisions retrieve them) with, field for field, what reading each row decodes to."""
    from swarm.memory.models import REVISION_FIELDS, Contribution

    s = PatternStore(tmp_path / "bank.db", dim=4)
    q = np.array([1, 0, 0, 0])
    s.add_many([make_pattern("p", [1, 0, 0, 0], author="a"), make_pattern("r", [1, 0.2, 0, 0], author="b"),
                make_pattern("m", [1, 0.1, 0, 0], author="a")])
    before = dict((p.id, p) for p, _ in s.search(q, 3))
    s.replica_log([], contributions=[Contribution("p", "c", 2, 1, 1, 0.5, 3.0), Contribution("r", "c", 1, 1, 0, 2, None)])
    assert set(s._row_ids) == {"p", "r", "m"}  # replaced in the cache, not dropped
    after = dict((p.id, p) for p, _ in s.search(q, 3))
    assert after["p"] is not before["p"] and after["p"].uses == before["p"].uses + 2
    assert after["m"] is before["m"]
    _, body, _, _ = s.version_signatures(["r"])["r"]
    revision = dict(zip(REVISION_FIELDS, (0.75, 5, 4, 1, 3.5, 4.0, before["r"].version + 1, "b")))
    s.replica_log([], revisions=[{"id": "r", "body": body, **revision}])
    assert set(s._row_ids) == {"p", "r", "m"}
    revised = dict((p.id, p) for p, _ in s.search(q, 3))["r"]
    assert revised is not after["r"] and (revised.version, revised.uses, revised.confidence) == (
        before["r"].version + 1, 5 + 1, 0.75)  # the revision's figures plus c's contribution
    fresh = PatternStore(tmp_path / "bank.db")
    for pid in ("p", "r", "m"):
        assert _fields(s.get_many([pid])[pid]) == _fields(fresh.get(pid))


def test_figures_changed_under_a_cached_row_never_serve_damage(tmp_path):
    """The cached copy's figures are rebuilt from the row as read back: a row whose figures are
    damaged (on disk, or by a direct caller's impossible revision, which gossip's decoding would
    have refused) is dropped, and the next read names the damage, rather than served; the other
    rows of the same transaction are still brought up to date."""
    from swarm.memory.models import REVISION_FIELDS, Contribution

    path = tmp_path / "bank.db"
    s = PatternStore(path, dim=4)
    q = np.array([1, 0, 0, 0])
    s.add_many([make_pattern("p", [1, 0, 0, 0], author="a"), make_pattern("r", [1, 0.2, 0, 0], author="b")])
    s.search(q, 2)
    bodies = {i: s.version_signatures([i])[i][1] for i in ("p", "r")}
    bad = {"id": "p", "body": bodies["p"], **dict(zip(REVISION_FIELDS, (0.5, -1, 0, 0, 0.0, None, 2, "x")))}
    good = {"id": "r", "body": bodies["r"], **dict(zip(REVISION_FIELDS, (0.9, 4, 4, 0, 3.0, 1.0, 2, "x")))}
    s.replica_log([], revisions=[bad, good])
    assert s.get_many(["r"])["r"].version == 2  # the sound one is current in the cache
    with pytest.raises(CorruptStoreError, match="uses -1 is not a count"):
        s.get_many(["p"])
    t = PatternStore(tmp_path / "t.db", dim=4)
    t.add_many([make_pattern("p", [1, 0, 0, 0], author="a")])
    t.search(q, 1)
    db = sqlite3.connect(tmp_path / "t.db")
    db.execute("UPDATE patterns SET successes = 2.5 WHERE id = 'p'")  # damage the row on disk
    db.commit()
    db.close()
    t.replica_log([], contributions=[Contribution("p", "c", 1, 1, 0, 1.0, 2.0)])
    with pytest.raises(CorruptStoreError, match="successes 2.5 is not a count"):
        t.get_many(["p"])


def test_a_commit_landing_right_after_ours_is_still_loaded(tmp_path):
    """Another connection's commit that lands the moment ours is done (before this store next
    looks at the database) must show in the next search: the store may not take it as seen."""
    path = tmp_path / "bank.db"
    s, other = PatternStore(path, dim=4), PatternStore(path)
    q = np.array([1, 0, 0, 0])
    landed = []

    def land_after_commit(sql: str) -> None:  # SQLite's statement trace: runs as each statement starts
        # the first time this store reads the data version outside a transaction after our
        # commit (whether to remember it as seen, or to look for others' commits), theirs lands
        if not landed and not s._db.in_transaction and sql.startswith("PRAGMA data_version"):
            landed.append(True)
            other.add(make_pattern("theirs", [1, 0, 0, 0]))
    s.add(make_pattern("mine", [0, 1, 0, 0]))
    s._db.set_trace_callback(land_after_commit)
    s.add(make_pattern("mine2", [0, 0, 1, 0]))
    found = [p.id for p, _ in s.search(q, 3)]
    s._db.set_trace_callback(None)
    assert landed and "theirs" in found


def test_lookups_by_id_use_the_row_cache_and_never_return_a_stale_row(tmp_path):
    """get_many serves the rows searches cached (a learner looks up the patterns that informed
    its decision), and every change, here or through another connection, shows."""
    path = tmp_path / "bank.db"
    s, other = PatternStore(path, dim=4), PatternStore(path)
    q = np.array([1, 0, 0, 0])
    s.add_many([make_pattern("p", [1, 0, 0, 0], confidence=0.5), make_pattern("r", [1, 0.2, 0, 0])])
    found = dict((p.id, p) for p, _ in s.search(q, 2))
    got = s.get_many(["p", "r", "missing"])
    assert set(got) == {"p", "r"} and got["p"] is found["p"] and got["r"] is found["r"]  # from the cache
    assert s.get_many(["p"], base=True)["p"] is not found["p"]  # authors' figures alone: read from SQLite
    s.record_outcome("p", True, 1.0, now=5.0, lr=0.5)
    assert s.get_many(["p"])["p"].uses == 1
    other.record_outcome("p", False, -1.0, now=6.0, lr=0.5)
    assert (s.get_many(["p"])["p"].uses, s.get_many(["p"])["p"].failures) == (2, 1)
    s.search(q, 2)
    other.delete_many(["p"])
    other.add_many([make_pattern("p", [0, 1, 0, 0], title="again")])  # the same id at another rowid
    assert s.get_many(["p", "r"])["p"].title == "again"
    s.search(q, 2)
    other.put_many([make_pattern("r", [1, 0.2, 0, 0], title="rewritten")])
    assert s.get_many(["r"])["r"].title == "rewritten"


def test_signing_versions_forgets_only_the_rows_it_changed(tmp_path):
    """A signature recorded changes its pattern's author as readers see it: that row's cached
    copy goes, and the other rows' stay (a swarm signs versions after every trade, and dropping
    every cached row each time made decisions read their rows from SQLite again)."""
    s = PatternStore(tmp_path / "bank.db", dim=4)
    s.add_many([make_pattern("p", [1, 0, 0, 0]), make_pattern("r", [1, 0.2, 0, 0])])
    q = np.array([1, 0, 0, 0])
    before = dict((p.id, p) for p, _ in s.search(q, 2))
    assert before["p"].author == ""
    author, body, digest, _ = s.version_signatures(["p"])["p"]
    s.sign_versions([("p", "a", digest, b"s" * 64)])
    after = dict((p.id, p) for p, _ in s.search(q, 2))
    assert after["p"].author == "a"  # the change shows
    assert after["r"] is before["r"]  # the untouched row is still served from the cache
    signings = s._meta_int("signed")
    s.sign_versions([("p", "a", digest, b"t" * 64)])  # signed again by the same author: nothing read changes
    assert dict((p.id, p) for p, _ in s.search(q, 2))["p"] is after["p"]
    assert s._meta_int("signed") == signings  # other connections keep their cached rows too
    stale = s.version_signatures(["r"])["r"][2]
    s.put_many([make_pattern("r", [1, 0.2, 0, 0], title="changed")])
    s.sign_versions([("r", "a", stale, b"s" * 64)])  # signs a version that is no longer current
    assert dict((p.id, p) for p, _ in s.search(q, 2))["r"].author == ""
    other = PatternStore(tmp_path / "bank.db")  # another connection's cached copies see a signature
    assert dict((p.id, p) for p, _ in other.search(q, 2))["r"].author == ""
    s.sign_versions([("r", "b", s.version_signatures(["r"])["r"][2], b"s" * 64)])  # no change number
    assert other.get_many(["r"])["r"].author == "b"
    assert dict((p.id, p) for p, _ in other.search(q, 2))["r"].author == "b"


def test_the_row_cache_stays_within_its_budget():
    dim = 8
    budget_rows = 5
    s = PatternStore(":memory:", dim=dim, row_cache_bytes=budget_rows * (4 * dim + 1024))
    s.add_many([make_pattern(f"p{i}", _vec(i, dim)) for i in range(50)])
    for i in range(50):
        assert s.search(_vec(100 + i, dim), 10)
        assert len(s._rows) <= budget_rows
    off = PatternStore(":memory:", dim=dim, row_cache_bytes=0)
    off.add_many([make_pattern(f"p{i}", _vec(i, dim)) for i in range(5)])
    assert len(off.search(_vec(1, dim), 3)) == 3 and not off._rows
    with pytest.raises(ValueError, match="row_cache_bytes"):
        PatternStore(":memory:", dim=dim, row_cache_bytes=-1)


def test_the_stored_body_digest_is_the_patterns_body_digest(tmp_path):
    """Rows are checked against their body digest computed from the columns (without building
    the pattern): it must agree with Pattern.body_digest for every kind of value."""
    from dataclasses import replace

    from swarm.memory.models import Source
    from swarm.memory.store import _COLUMNS, _row_damage, _stored_body_digest

    base = make_pattern("p", _vec(1, 8))
    patterns = [
        base,
        replace(base, id="tags", tags=("b", "a", "ünï\x1f")),
        replace(base, id="prov", provenance=({"event": "merge", "at": 2, "nested": {"z": [1, 2.5], "a": None}},
                                             {"é": "x"})),
        replace(base, id="src", created_at=3, source=Source(agent="a", trajectory="t\n", outcome="failure",
                                                            reward=-0.0)),
        replace(base, id="reward", source=Source(reward=7), total_reward=-0.0, confidence=1, last_used_at=4),
        replace(base, id="text", title="", description="line\nbreak", content="\x1e" * 3, action="ü"),
        Pattern(id="big", title="t", content="c", embedding=np.arange(8, dtype=np.float32) * 1e17, kind="lesson"),
    ]
    with PatternStore(tmp_path / "s.db", dim=8) as s:
        s.add_many(patterns)
        s.record_outcome("reward", False, 0.25, now=9.0)
        rows = {r[0]: r for r in s._db.execute(f"SELECT {_COLUMNS} FROM patterns")}
        for p in patterns:
            assert _stored_body_digest(rows[p.id]) == p.body_digest() == s.get(p.id).body_digest(), p.id
            assert _row_damage(rows[p.id], 4 * 8) is None, p.id


def test_migration_to_v6_stamps_every_row_with_its_row_digest(tmp_path):
    path = tmp_path / "v5.db"
    with PatternStore(path, dim=8) as s:
        s.add_many([make_pattern(f"p{i}", _vec(i, 8)) for i in range(20)])
        s.record_outcome("p3", True, 1.0, now=2.0)
        before = {p.id: (p.digest(), p.version, p.last_used_at) for p in s}
    db = sqlite3.connect(path)  # back to v5: no row digests
    _back_to_v6(db)
    db.execute("ALTER TABLE patterns DROP COLUMN row_digest")
    db.execute("PRAGMA user_version = 5")
    db.commit()
    db.close()
    with PatternStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert {p.id: (p.digest(), p.version, p.last_used_at) for p in s} == before
        s.record_outcome("p3", False, 0.0, now=3.0)
    with PatternStore(path) as s:  # reopened: every row passes its checks
        assert s.get("p3").uses == 2 and len(s.index) == 20


def _back_to_v7(db: sqlite3.Connection) -> None:
    """Undo the v8 migration: no contributions."""
    db.execute("DROP TABLE contributions")
    db.execute("ALTER TABLE patterns DROP COLUMN contributed")
    db.execute("PRAGMA user_version = 7")


def test_migration_to_v8_keeps_every_pattern_and_drops_signatures_of_bodies(tmp_path):
    path = tmp_path / "v7.db"
    with PatternStore(path, dim=8) as s:
        s.add_many([replace(make_pattern(f"p{i}", _vec(i, 8)), author="a") for i in range(4)])
        s.record_outcome("p1", True, 0.5, now=2.0, by="a")
        s._db.execute("UPDATE patterns SET body_sig = x'00', signed_body = body")  # a v7 body signature
        before = {p.id: p.digest() for p in s}
    db = sqlite3.connect(path)
    _back_to_v7(db)
    db.commit()
    db.close()
    with PatternStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION and {p.id: p.digest() for p in s} == before
        assert all(sig is None for _, _, _, sig in s.version_signatures([f"p{i}" for i in range(4)]).values())
        s.record_outcomes([("p1", False, -1.0)], 3.0, by="b")  # another agent's use: its contribution
        assert s.get("p1").uses == 2 and [c.contributor for c in s.contributions("p1")] == ["b"]


def _back_to_v6(db: sqlite3.Connection) -> None:
    """Undo the v7 and v8 migrations: no authors, signatures, deletion proofs or contributions."""
    _back_to_v7(db)
    db.execute("DROP INDEX patterns_author")
    for table, column in (("patterns", "author"), ("patterns", "body_sig"), ("patterns", "signed_body"),
                          ("replica", "sig"), ("tombstones", "deleter"), ("deleted", "author")):
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.execute("DROP TABLE deletions")
    db.execute("PRAGMA user_version = 6")


def test_migration_to_v7_names_each_pattern_its_distillers_as_author(tmp_path):
    path = tmp_path / "v6.db"
    with PatternStore(path, dim=8) as s:
        s.add_many([replace(make_pattern(f"p{i}", _vec(i, 8)), source=Source(agent=f"agent-{i % 2}"))
                    for i in range(6)])
        before = {p.id: p.digest() for p in s}
    db = sqlite3.connect(path)
    _back_to_v6(db)
    db.commit()
    db.close()
    with PatternStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert {p.id: p.author for p in s} == {f"p{i}": f"agent-{i % 2}" for i in range(6)}
        assert {p.id: p.digest() for p in s} == before
        assert s.version_signatures(["p0"])["p0"][3] is None  # nothing signed yet: signed when published


_TWO_WRITERS = textwrap.dedent("""
    import json, sys, time, numpy as np
    from swarm.memory import PatternStore, Pattern
    path, name, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = PatternStore(path, busy_timeout_s=60)
    rng = np.random.default_rng(ord(name))
    for b in range(batches):
        if b <= 5:  # the first five batches in turns (the test alternates the writers), then freely
            sys.stdin.readline()
        own = [Pattern(id=f"{name}{b}-{i}", title="t", content=name, embedding=rng.standard_normal(32))
               for i in range(20)]
        shared = Pattern(id=f"shared-{b % 5}", title=name, content=f"{name}{b}", embedding=rng.standard_normal(32))
        s.put_many(own + [shared])
        s.record_outcomes([(f"{name}{b}-0", True, 1.0)], now=float(b), by=name)
        if b < 5:
            print("ok", flush=True)
        time.sleep(0.002)
    print("done", flush=True)
    sys.stdin.readline()  # both are done: refresh, and answer the same queries
    s.refresh()
    qs = np.random.default_rng(42).standard_normal((10, 32))
    print(json.dumps({"n": len(s), "index": len(s.index),
                      "hits": [[(p.id, p.version, p.title, round(x, 5)) for p, x in s.search(q, 10)] for q in qs]}),
          flush=True)
""")


def test_two_writer_processes_on_one_file_serialise_and_agree(tmp_path):
    """WAL + BEGIN IMMEDIATE + the busy timeout: two processes writing interleaved batches to one
    file each commit whole transactions in turn; every row is there once, and after a refresh both
    stores answer searches alike (and like a store opened afresh)."""
    path = tmp_path / "bank.db"
    PatternStore(path, dim=32).close()
    script = tmp_path / "writer.py"
    script.write_text(_TWO_WRITERS)
    batches = 20
    procs = [subprocess.Popen([sys.executable, str(script), str(path), name, str(batches)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
             for name in "ab"]
    for _ in range(5):  # five batches each in turns: the interleaving does not hang on scheduling
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
            assert p.stdout.readline().strip() == "ok"
    for p in procs:  # then both at once, contending for the write lock
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        assert p.stdout.readline().strip() == "done"
    answers = []
    for p in procs:
        out, _ = p.communicate("go\n", timeout=120)
        assert p.returncode == 0
        answers.append(json.loads(out))
    expected_ids = {f"{n}{b}-{i}" for n in "ab" for b in range(batches) for i in range(20)}
    expected_ids |= {f"shared-{k}" for k in range(5)}
    with PatternStore(path) as fresh:
        ids = [p.id for p in fresh]
        assert len(ids) == len(set(ids)) == len(expected_ids) and set(ids) == expected_ids
        assert all(fresh.get(f"{n}{b}-0").uses == 1 for n in "ab" for b in range(batches))
        qs = np.random.default_rng(42).standard_normal((10, 32))
        hits = [[[p.id, p.version, p.title, round(x, 5)] for p, x in fresh.search(q, 10)] for q in qs]
        owners = [r[0] for r in fresh._db.execute("SELECT content FROM patterns WHERE id NOT LIKE 'shared%'"
                                                    " ORDER BY seq")]
    for a in answers:
        assert a["n"] == a["index"] == len(expected_ids)  # no row twice in either index
        assert a["hits"] == hits
    switches = sum(x != y for x, y in zip(owners, owners[1:]))
    assert switches >= 2, "the two writers' batches did not interleave"


_CHURN = textwrap.dedent("""
    import sys, numpy as np
    from swarm.memory import PatternStore, Pattern
    s = PatternStore(sys.argv[1])
    rng = np.random.default_rng(5)
    n = 0
    for step in range(int(sys.argv[2])):
        s.add_many([Pattern(id=f"w{n + i}", title="t", content="c", embedding=rng.standard_normal(16))
                    for i in range(5)])
        n += 5
        if step % 3 == 0:
            s.delete_many([f"w{n - 7}"])
        if step % 2 == 0:
            s.record_outcome(f"w{n - 3}", step % 4 == 0, 1.0, now=float(step))
        if step % 5 == 0:
            s.put_many([Pattern(id=f"w{n - 4}", title="rewritten", content="c", embedding=rng.standard_normal(16))])
    print("done", flush=True)
""")


def _index_matches_table(s: PatternStore) -> None:
    rows = s._db.execute("SELECT rowid, confidence, embedding FROM patterns").fetchall()
    index = s.index
    assert set(index._slot) == {r[0] for r in rows}, "the index and the table hold different rows"
    for rowid, conf, emb in rows:
        slot = index._slot[rowid]
        vec = np.frombuffer(emb, dtype="<f4")
        assert index._conf[slot] == np.float32(conf)
        assert np.allclose(index._vecs[slot], vec / np.linalg.norm(vec), atol=1e-6)


def test_readers_refreshing_while_a_writer_commits_end_with_every_committed_row(tmp_path):
    """A writer process inserts, updates and deletes in many small commits while two readers
    refresh and search as fast as they can; after a last refresh, each reader's index mirrors
    the table exactly (the counter, rows and deletions are read in one snapshot)."""
    path = tmp_path / "bank.db"
    PatternStore(path, dim=16).close()
    readers = [PatternStore(path), PatternStore(path)]
    script = tmp_path / "churn.py"
    script.write_text(_CHURN)
    proc = subprocess.Popen([sys.executable, str(script), str(path), "300"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    refreshes = 0
    q = np.ones(16)
    while proc.poll() is None:
        for r in readers:
            r.refresh()
            assert all(p.id.startswith("w") for p, _ in r.search(q, 5))
            refreshes += 1
    assert proc.stdout.read().strip() == "done" and proc.returncode == 0
    assert refreshes > 10
    for r in readers:
        r.refresh()
        _index_matches_table(r)
        deleted = sum(1 for step in range(300) if step % 3 == 0 and step > 0)  # step 0 deletes nothing
        assert len(r.index) == len(r) == 300 * 5 - deleted


def test_neighbours_name_what_a_search_returns_for_rows_from_every_path(tmp_path):
    """A decision weighs the index's columns instead of the rows: for rows written here, by
    another connection (read back from SQLite), merged from a peer and deleted, the columns must
    be each row's own action and source reward, in :meth:`search`'s order."""
    path = tmp_path / "bank.db"
    here, other = PatternStore(path, dim=16), PatternStore(path)

    def pattern(i, **kw):
        reward = None if i % 4 == 0 else float(i) - 7.5
        return make_pattern(f"p{i}", _vec(i), domain="trading", action=f"s{i % 5}",
                            source=Source(agent="a", reward=reward), **kw)

    here.add_many([pattern(i) for i in range(0, 30)])
    other.add_many([pattern(i) for i in range(30, 60)])  # reaches `here` through its refresh
    assert here.neighbours(_vec(1), 3, domain="trading").keys  # both have indexed every row now
    # newer versions with another action and reward, of rows each side has indexed: merged here,
    # and put by the other connection (reaching `here` through its refresh)
    here.merge_many([replace(pattern(i), version=5, updated_by="peer", action="changed",
                             source=Source(agent="a", reward=100.0 + i)) for i in range(10, 20)])
    other.put_many([replace(pattern(i), version=6, updated_by="other", action="put",
                            source=Source(agent="a", reward=None)) for i in range(30, 36)])
    other.delete_many([f"p{i}" for i in range(40, 45)])
    for store in (here, other):
        for i in range(0, 60, 3):
            q = _vec(1000 + i)
            hits = store.search(q, 12, domain="trading")
            near = store.neighbours(q, 12, domain="trading")
            rows = store.at_keys(near.keys)
            assert [rows[k].id for k in near.keys] == [p.id for p, _ in hits]
            assert near.similarity == [s for _, s in hits]
            assert near.action == [p.action for p, _ in hits]
            assert [None if r != r else r for r in near.reward] == [p.source.reward for p, _ in hits]
            assert not {f"p{i}" for i in range(40, 45)} & {rows[k].id for k in near.keys}
        near = store.neighbours(_vec(1), 60, domain="trading")
        actions = dict(zip((store.at_keys(near.keys)[k].id for k in near.keys), near.action))
        assert {actions[f"p{i}"] for i in range(10, 20)} == {"changed"}
        assert {actions[f"p{i}"] for i in range(30, 36)} == {"put"}
    assert store.neighbours(_vec(1), 5, domain="elsewhere").keys == []
