import hashlib
import itertools
import json

import numpy as np
import pytest

from swarm.memory import Pattern, Verdict, apply_outcome, merge
from swarm.memory.models import Source
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


@pytest.mark.parametrize("n", [1, 7, 1024, 1025])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_any_non_finite_embedding_value_is_refused_wherever_it_sits(n, bad):
    for pos in {0, n // 2, n - 1}:
        emb = np.full(n, 0.5, dtype=np.float32)
        emb[pos] = bad
        with pytest.raises(ValueError, match="non-finite"):
            Pattern(id="p", title="t", content="c", embedding=emb)
    mixed = np.zeros(n + 2, dtype=np.float32)
    mixed[0], mixed[-1] = np.inf, -np.inf  # opposite infinities must not cancel out of the check
    with pytest.raises(ValueError, match="non-finite"):
        Pattern(id="p", title="t", content="c", embedding=mixed)


def test_huge_finite_embedding_values_are_accepted():
    emb = np.full(64, 1e30, dtype=np.float32)  # the fast check overflows; the element-wise one decides
    with np.errstate(over="ignore"):
        assert Pattern(id="p", title="t", content="c", embedding=emb).dim == 64


def _per_part_digest(parts, embedding):
    """The digests as first defined: one blake2b update per part, each followed by a separator."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode())
        h.update(b"\x1e")
    h.update(embedding.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("fields", [
    dict(),
    dict(title="ünïcode ☃", tags=("a", "b\x1fc"), description="d", action="momentum", confidence=0.25,
         uses=3, successes=2, failures=1, total_reward=-0.0, created_at=12.5, version=4, updated_by="n1",
         source=Source("agent", "traj", "success", 1.5), provenance=({"event": "import", "at": 5.0},)),
])
def test_digests_are_unchanged_by_hashing_the_joined_parts(fields):
    p = Pattern(id="p1", title=fields.pop("title", "t"), content="c",
                embedding=np.random.default_rng(3).standard_normal(32), **fields)
    body = (p.id, p.title, p.description, p.content, p.domain, p.kind, p.action, "\x1f".join(p.tags),
            repr(float(p.created_at) + 0.0), p.source.agent, p.source.trajectory, p.source.outcome,
            "None" if p.source.reward is None else repr(float(p.source.reward) + 0.0),
            json.dumps(p.provenance, sort_keys=True, default=str))
    content = (p.title, p.description, p.content, p.domain, p.kind, p.action, "\x1f".join(p.tags),
               repr(float(p.confidence) + 0.0),
               repr((int(p.uses), int(p.successes), int(p.failures), float(p.total_reward) + 0.0)))
    assert p.body_digest() == _per_part_digest(body, p.embedding)
    assert p.digest() == _per_part_digest(content, p.embedding)
