"""A kill loop: a writer process is SIGKILLed at random moments while it inserts batches,
records outcomes, consolidates and imports pattern packs into one store file; after every kill
the file opens and holds every committed change whole and no partial one.

``make test`` runs a few kills (about half a minute); the weekly job sets ``SWARM_FAULT_SCALE``
(e.g. 20) for hundreds."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from swarm.memory import PatternStore
from tests.conftest import FAULT_SCALE

pytestmark = pytest.mark.fault

_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from swarm.memory import Pattern, PatternStore, export_patterns, import_patterns
    from swarm.memory.consolidate import ConsolidationPolicy
    from swarm.memory.bank import consolidate_store
    path, pack, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = PatternStore(path, dim=32, synchronous="FULL")
    rng = np.random.default_rng(start)
    base = rng.standard_normal((20, 32)).astype(np.float32)
    def batch(tag, n):  # near-duplicates of a few directions: consolidation has work
        return [Pattern(id=f"{tag}-{i}", title=tag, content="c" * 300, domain="d",
                        embedding=base[i % 20] + 0.01 * rng.standard_normal(32).astype(np.float32))
                for i in range(n)]
    print("ready", flush=True)
    for n in range(start, start + 10_000):
        op = n % 4
        if op == 0:
            store.add_many(batch(f"b{n}", 400))
        elif op == 1:
            ids = [p.id for p in store.iter_patterns()][:200]
            store.record_outcomes([(i, bool(k % 2), 0.5) for k, i in enumerate(ids)], now=float(n))
        elif op == 2:
            consolidate_store(store, ConsolidationPolicy(duplicate_similarity=0.99), now=float(n))
        else:
            export_patterns(batch(f"i{n}", 300), pack, 32, now=float(n))
            import_patterns(store, pack, now=float(n))
        print("done", n, flush=True)
""")


def _check(path, reported: set[int]) -> None:
    """The store opens; every batch and pack is whole or absent; what was reported is there;
    every pattern the consolidation log says it removed is gone (log and change commit together)."""
    with PatternStore(path) as s:
        ids = {p.id for p in s}
        assert len(s.index) == len(ids)
        groups: dict[str, int] = {}
        for pid in ids:
            tag = pid.split("-")[0]
            groups[tag] = groups.get(tag, 0) + 1
        log = s.consolidation_log()  # what consolidation removed: merged away, pruned, capped
        absorbed = ({e.other_id for e in log if e.action == "merge"}
                    | {e.pattern_id for e in log if e.action in ("prune", "cap")})
        for tag, count in groups.items():
            lost = sum(1 for i in absorbed if i and i.startswith(tag + "-"))
            full = 400 if tag[0] == "b" else 300
            assert count + lost == full or count == full, f"{tag}: {count} of {full} present, a partial write"
        for n in reported:
            if n % 4 == 0:
                assert f"b{n}" in groups or any(i and i.startswith(f"b{n}-") for i in absorbed), f"batch {n} lost"
            if n % 4 == 3:
                assert f"i{n}" in groups or any(i and i.startswith(f"i{n}-") for i in absorbed), f"pack {n} lost"
        assert not ids & absorbed, "a pattern the log says was removed is still there"


def test_sigkill_at_random_moments_loses_no_committed_change_and_leaves_no_partial_one(tmp_path):
    path, pack = tmp_path / "bank.db", tmp_path / "pack.jsonl"
    rng = random.Random(7)
    start, reported, kills = 0, set(), 0
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for _ in range(6 * FAULT_SCALE):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(pack), str(start)],
                                stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.0))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, "the writer died before the kill"
        done = [int(line.split()[1]) for line in proc.stdout.read().splitlines() if line.startswith("done")]
        kills += 1
        reported |= set(done)
        _check(path, reported)
        start = (max(done) + 1) if done else start + 1  # a fresh range of batch numbers
        start += 4 - start % 4  # every writer starts on an insert
    assert kills == 6 * FAULT_SCALE
    assert {n % 4 for n in reported} == {0, 1, 2, 3}  # inserts, outcomes, consolidations, imports all ran
    with PatternStore(path) as s:
        assert any(e.action == "merge" for e in s.consolidation_log())
