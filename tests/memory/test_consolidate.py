import numpy as np
import pytest

from swarm.memory import ConsolidationPolicy, PatternStore, consolidate_store
from swarm.memory.retrieval import DAY
from tests.conftest import make_pattern, unit

NOW = 100 * DAY


def _store(*patterns):
    s = PatternStore(":memory:", dim=4)
    s.add_many(list(patterns))
    return s


def test_near_duplicates_merge_with_counts_and_the_merge_recorded():
    strong = make_pattern("strong", [1, 0, 0, 0], action="momentum", uses=5, successes=4, failures=1,
                          confidence=0.8, total_reward=3.0, tags=("x",), created_at=NOW)
    weak = make_pattern("weak", [1, 0.05, 0, 0], action="momentum", uses=1, successes=1,
                        confidence=0.6, total_reward=1.0, tags=("y",), created_at=NOW)
    other_action = make_pattern("other", [1, 0.05, 0, 0], action="breakout", uses=1, created_at=NOW)
    s = _store(strong, weak, other_action)
    report = consolidate_store(s, ConsolidationPolicy(duplicate_similarity=0.95), NOW)
    assert [(a, b) for a, b, _ in report.merged] == [("strong", "weak")]
    assert report.before == 3 and report.after == 2 and report.shrink_ratio == pytest.approx(1 / 3)
    merged = s.get("strong")
    assert (merged.uses, merged.successes, merged.failures, merged.total_reward) == (6, 5, 1, 4.0)
    assert merged.confidence == pytest.approx((0.8 * 6 + 0.6 * 2) / 8)
    assert merged.tags == ("x", "y")
    assert merged.provenance[-1]["absorbed"] == "weak"
    assert s.get("weak") is None and s.get("other") is not None
    assert [(e.action, e.pattern_id, e.other_id) for e in s.consolidation_log()] == [("merge", "strong", "weak")]
    assert len(s.index) == 2


def test_contradictions_are_linked_not_deleted():
    good = make_pattern("good", [1, 0, 0, 0], kind="strategy", action="momentum", created_at=NOW)
    bad = make_pattern("bad", [1, 0.3, 0, 0], kind="lesson", action="momentum", created_at=NOW)
    unrelated = make_pattern("far", [0, 0, 1, 0], kind="lesson", action="momentum", created_at=NOW)
    s = _store(good, bad, unrelated)
    report = consolidate_store(s, ConsolidationPolicy(contradiction_similarity=0.9), NOW)
    assert [(a, b) for a, b, _ in report.linked] == [("bad", "good")]
    assert [(l.a, l.b, l.relation) for l in s.links()] == [("bad", "good", "contradicts")]
    assert len(s) == 3


def test_prune_only_unused_old_and_low_confidence():
    v = [unit(np.eye(4)[i]) for i in range(4)]
    s = _store(
        make_pattern("dead", v[0], confidence=0.1, created_at=0.0),
        make_pattern("young", v[1], confidence=0.1, created_at=NOW - DAY),
        make_pattern("used", v[2], confidence=0.1, created_at=0.0, uses=2, successes=1, failures=1),
        make_pattern("trusted", v[3], confidence=0.9, created_at=0.0),
    )
    report = consolidate_store(s, ConsolidationPolicy(), NOW)
    assert report.pruned == ["dead"]
    assert {p.id for p in s} == {"young", "used", "trusted"}


def test_library_form_prunes_proven_bad_and_stale_unproven():
    v = [unit(np.eye(4)[i]) for i in range(4)]
    s = _store(
        make_pattern("bad", v[0], confidence=0.6, created_at=NOW, uses=5, successes=1, failures=4),
        make_pattern("good", v[1], confidence=0.6, created_at=NOW, uses=5, successes=4, failures=1),
        make_pattern("stale", v[2], confidence=0.6, created_at=NOW - 60 * DAY),
        make_pattern("fresh", v[3], confidence=0.6, created_at=NOW - DAY),
    )
    from swarm.memory import ReasoningBank
    bank = ReasoningBank(s, _Fixed(4), clock=lambda: NOW)
    report = bank.consolidate(min_success_rate=0.5, min_uses=3, lookback_days=30)
    assert sorted(report.pruned) == ["bad", "stale"]
    assert {p.id for p in s} == {"good", "fresh"}


class _Fixed:
    def __init__(self, dim):
        self.dim = dim

    def embed(self, item):
        return unit(np.ones(self.dim))


def test_cap_removes_the_weakest_first():
    v = [unit(np.eye(4)[i]) for i in range(4)]
    s = _store(*[make_pattern(f"p{i}", v[i], confidence=c, created_at=NOW)
                 for i, c in enumerate([0.9, 0.2, 0.5, 0.7])])
    report = consolidate_store(s, ConsolidationPolicy(max_patterns=2), NOW)
    assert sorted(report.capped) == ["p1", "p2"]
    assert {p.id for p in s} == {"p0", "p3"}


def test_nothing_to_do_changes_nothing():
    s = _store(make_pattern("a", [1, 0, 0, 0], created_at=NOW), make_pattern("b", [0, 1, 0, 0], created_at=NOW))
    report = consolidate_store(s, ConsolidationPolicy(), NOW)
    assert not report.changed and report.after == 2
    assert s.consolidation_log() == []
