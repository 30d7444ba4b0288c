import itertools

import numpy as np
import pytest

from swarm.memory import Pattern, Verdict, apply_outcome, merge
from tests.conftest import make_pattern


def test_apply_outcome_moves_confidence_by_the_learning_rate():
    p = make_pattern("a", [1, 0, 0, 0], confidence=0.5)
    up = apply_outcome(p, success=True, reward=2.0, now=100.0, lr=0.1)
    assert up.confidence == pytest.approx(0.55)  # 0.5 + 0.1 * (1 - 0.5)
    assert (up.uses, up.successes, up.failures) == (1, 1, 0)
    assert up.total_reward == 2.0 and up.last_used_at == 100.0
    assert up.version == p.version + 1
    down = apply_outcome(up, success=False, reward=-1.0, now=101.0, lr=0.5)
    assert down.confidence == pytest.approx(0.275)  # 0.55 + 0.5 * (0 - 0.55)
    assert (down.uses, down.successes, down.failures) == (2, 1, 1)
    assert down.total_reward == pytest.approx(1.0)


def test_apply_outcome_stays_in_unit_interval_and_rejects_bad_input():
    p = make_pattern("a", [1, 0], confidence=0.99)
    for _ in range(50):
        p = apply_outcome(p, True, 1.0, 0.0, lr=1.0)
    assert p.confidence == 1.0
    with pytest.raises(ValueError):
        apply_outcome(p, True, 1.0, 0.0, lr=0.0)
    with pytest.raises(ValueError):
        apply_outcome(p, True, float("nan"), 0.0)


def test_merge_is_commutative_associative_idempotent():
    base = make_pattern("x", [1, 0, 0], confidence=0.5)
    copies = [
        base.bumped("node-a", confidence=0.6),
        base.bumped("node-b", confidence=0.7),
        base.bumped("node-b", confidence=0.7).bumped("node-a", uses=3),
        base,
    ]
    winners = set()
    for perm in itertools.permutations(copies):
        acc = perm[0]
        for c in perm[1:]:
            acc = merge(acc, c)
        winners.add((acc.version, acc.updated_by, acc.digest()))
    assert len(winners) == 1
    w = copies[2]
    assert winners == {(w.version, w.updated_by, w.digest())}
    for c in copies:
        assert merge(c, c) is c
        assert merge(c, copies[1]).digest() == merge(copies[1], c).digest()


def test_merge_ties_on_version_and_updater_break_on_content():
    a = make_pattern("x", [1, 0], confidence=0.2, version=3, updated_by="n")
    b = make_pattern("x", [1, 0], confidence=0.8, version=3, updated_by="n")
    assert merge(a, b).digest() == merge(b, a).digest()
    with pytest.raises(ValueError):
        merge(a, make_pattern("y", [1, 0]))


@pytest.mark.parametrize("bad", [
    dict(confidence=1.5), dict(confidence=float("nan")), dict(kind="hunch"), dict(uses=-1),
    dict(embedding=np.array([np.nan, 1.0])), dict(embedding=np.zeros((2, 2))), dict(id=""),
])
def test_pattern_validates_its_fields(bad):
    fields = dict(id="p", title="t", content="c", embedding=np.array([1.0, 0.0]))
    fields.update(bad)
    with pytest.raises(ValueError):
        Pattern(**fields)


def test_verdict_validates():
    assert Verdict("success", 0.7).success
    with pytest.raises(ValueError):
        Verdict("maybe", 0.5)
    with pytest.raises(ValueError):
        Verdict("failure", 1.2)
