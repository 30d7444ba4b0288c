"""Each learning scenario passes, and its check fails when its mechanism is switched off."""

import pytest

from scenarios import cold_start, continual, forgetting, transfer, warm_start
from swarm.memory import ReasoningBank


def failed(result) -> set[str]:
    return {c.name for c in result.checks if not c.passed}


def test_cold_start_learns_from_nothing(pattern_result):
    r = pattern_result("cold-start")  # the suite's run (seed 0), shared with tests/patterns
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


def test_warm_start_beats_cold_and_not_without_its_pack(pattern_result):
    assert pattern_result("warm-start").passed
    off = warm_start.run(warm_start.WarmStartConfig(seed=0, use_pack=False))
    assert {"learns faster than cold start", "better early risk-adjusted return than cold start"} <= failed(off)


def test_warm_start_reads_a_pack_file_made_by_the_pack_generator(tmp_path):
    from scenarios.packs import main
    pack = tmp_path / "pack.jsonl"
    assert main([str(pack), "--seed", "1001", "--bars", "2000"]) == 0
    with ReasoningBank.open(tmp_path / "check.db", embedder=None) as bank:  # text embedder: dims differ
        with pytest.raises(Exception):
            bank.import_(pack)
    r = warm_start.run(warm_start.WarmStartConfig(seed=1, pack=str(pack)))
    assert r.learning["patterns_preloaded"] > 0


def test_transfer_full_and_selective_beat_cold_and_not_without_transfer(pattern_result):
    r = pattern_result("transfer-learning")
    assert r.passed, r.checks
    assert 0 < r.learning["imported_selective"] < r.learning["imported_full"]
    off = transfer.run(transfer.TransferConfig(seed=0, transfer=False))
    assert {"full transfer learns faster than cold start",
            "selective transfer learns faster than cold start"} <= failed(off)


def test_continual_recovers_after_each_drift_and_not_when_frozen(pattern_result):
    r = pattern_result("continual-learning")
    assert r.passed, r.checks
    assert [row["drift_day"] for row in r.learning["recovery"]] == [10, 20]
    assert len(r.series["daily_regret"]) == 30
    # the drifts are real: a memory frozen at the first gives up far more after it than before it,
    # and the learner, settled by day 20, gives up more just after the second drift
    frozen = r.baselines["frozen after phase 1"]["recovery"][0]
    assert frozen["first_days_after"] > 1.5 * frozen["before"]
    second = r.learning["recovery"][1]
    assert second["first_days_after"] > second["before"]
    off = continual.run(continual.ContinualConfig(seed=0, learn_after_first_phase=False))
    assert "recovers after the drift at day 10" in failed(off)
    assert "keeps learning beats learning frozen at the first drift" in failed(off)


def test_continual_rejects_drift_days_outside_the_run():
    with pytest.raises(ValueError, match="drift days"):
        continual.ContinualConfig(drift_days=(10, 40))
    with pytest.raises(ValueError, match="one more"):
        continual.ContinualConfig(drift_days=(10,))


def test_forgetting_consolidation_retains_and_bounded_fifo_does_not(pattern_result):
    r = pattern_result("catastrophic-forgetting")
    assert r.passed, r.checks
    assert r.learning["retention_rate"] >= 0.8
    assert r.learning["retention_without_consolidation"] < r.learning["retention_rate"]
    assert r.learning["pattern_count"] <= 800
    assert {"retention", "accuracy_a_after_b"} <= set(r.baselines["q-learning"])
    off = forgetting.run(forgetting.ForgettingConfig(seed=0, consolidate=False))
    assert {"retains A after learning B (target 0.8)",
            "consolidation retains more than bounded memory without it"} <= failed(off)
