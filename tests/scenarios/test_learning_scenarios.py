"""Each learning scenario passes, and its check fails when its mechanism is switched off."""

import pytest

from scenarios import cold_start, transfer, warm_start
from swarm.memory import ReasoningBank


def failed(result) -> set[str]:
    return {c.name for c in result.checks if not c.passed}


def test_cold_start_learns_from_nothing():
    r = cold_start.run(cold_start.ColdStartConfig(seed=0))
    assert r.passed, r.checks
    assert r.learning["pattern_count"] > 0 and r.learning["memory_size_bytes"] > 0
    assert {"random", "best-fixed", "no-memory", "oracle", "q-learning", "sarsa", "actor-critic"} <= set(r.baselines)
    assert r.performance["decision_latency_ms"]["p50"] > 0


def test_cold_start_without_learning_fails_its_checks():
    r = cold_start.run(cold_start.ColdStartConfig(seed=0, learn=False))
    assert "improves with experience" in failed(r)


def test_cold_start_is_deterministic_per_seed():
    a = cold_start.run(cold_start.ColdStartConfig(seed=5, n_bars=1500, held_out_bars=500))
    b = cold_start.run(cold_start.ColdStartConfig(seed=5, n_bars=1500, held_out_bars=500))
    assert a.series == b.series and a.learning["accuracy"] == b.learning["accuracy"]
    assert a.trading == b.trading


def test_warm_start_beats_cold_and_not_without_its_pack():
    assert warm_start.run(warm_start.WarmStartConfig(seed=0)).passed
    off = warm_start.run(warm_start.WarmStartConfig(seed=0, use_pack=False))
    assert "converges faster than cold start" in failed(off)


def test_warm_start_reads_a_pack_file_made_by_the_pack_generator(tmp_path):
    from scenarios.packs import main
    pack = tmp_path / "pack.jsonl"
    assert main([str(pack), "--seed", "1001", "--bars", "2000"]) == 0
    with ReasoningBank.open(tmp_path / "check.db", embedder=None) as bank:  # text embedder: dims differ
        with pytest.raises(Exception):
            bank.import_(pack)
    r = warm_start.run(warm_start.WarmStartConfig(seed=1, pack=str(pack)))
    assert r.learning["patterns_preloaded"] > 0


def test_transfer_full_and_selective_beat_cold_and_not_without_transfer():
    r = transfer.run(transfer.TransferConfig(seed=0))
    assert r.passed, r.checks
    assert 0 < r.learning["imported_selective"] < r.learning["imported_full"]
    off = transfer.run(transfer.TransferConfig(seed=0, transfer=False))
    assert {"full transfer converges faster than cold start",
            "selective transfer converges faster than cold start"} <= failed(off)
