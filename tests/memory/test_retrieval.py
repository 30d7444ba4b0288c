import pytest

from swarm.memory import ScoreWeights, SearchHit, composite_score, mmr, rank
from swarm.memory.retrieval import DAY
from tests.conftest import make_pattern


def test_composite_score_hand_computed():
    w = ScoreWeights(similarity=0.7, confidence=0.2, recency=0.1, half_life=10.0)
    p = make_pattern("a", [1, 0], confidence=0.5, created_at=0.0, last_used_at=80.0)
    # age 20 = two half-lives -> recency 0.25
    assert composite_score(p, 0.8, now=100.0, weights=w) == pytest.approx(0.7 * 0.8 + 0.2 * 0.5 + 0.1 * 0.25)
    never_used = make_pattern("b", [1, 0], confidence=1.0, created_at=100.0)
    assert composite_score(never_used, 0.0, now=100.0, weights=w) == pytest.approx(0.2 + 0.1)


def test_rank_prefers_confident_pattern_at_equal_similarity_and_breaks_ties_by_id():
    now = 10 * DAY
    lo = make_pattern("lo", [1, 0], confidence=0.2, created_at=now)
    hi = make_pattern("hi", [1, 0], confidence=0.9, created_at=now)
    assert [h.pattern.id for h in rank([(lo, 0.9), (hi, 0.9)], now)] == ["hi", "lo"]
    twin_a = make_pattern("a", [1, 0], confidence=0.5, created_at=now)
    twin_b = make_pattern("b", [1, 0], confidence=0.5, created_at=now)
    assert [h.pattern.id for h in rank([(twin_b, 0.5), (twin_a, 0.5)], now)] == ["a", "b"]


def _hit(pid, emb, score):
    return SearchHit(make_pattern(pid, emb), similarity=score, score=score)


def test_mmr_hand_checked_example():
    # A and B are near-duplicates; C is different and slightly less relevant.
    a = _hit("A", [1.0, 0.0], 0.90)
    b = _hit("B", [0.995, 0.0998], 0.89)
    c = _hit("C", [0.0, 1.0], 0.80)
    hits = [a, b, c]
    # lambda = 1: plain relevance order
    assert [h.pattern.id for h in mmr(hits, 2, 1.0)] == ["A", "B"]
    # lambda = 0.5: after A, B scores 0.5*0.89 - 0.5*0.995 = -0.0525, C scores 0.5*0.8 - 0 = 0.4
    assert [h.pattern.id for h in mmr(hits, 2, 0.5)] == ["A", "C"]
    # lambda = 0.95: B = 0.8455 - 0.04975 = 0.796, C = 0.76 -> B still wins
    assert [h.pattern.id for h in mmr(hits, 2, 0.95)] == ["A", "B"]
    assert mmr(hits, 0, 0.5) == []
    with pytest.raises(ValueError):
        mmr(hits, 2, 1.5)
