import numpy as np
import pytest

from swarm.memory import VectorIndex
from swarm.memory.index import Filter
from tests.conftest import clustered


def _fill(idx, x, domains=None, kinds=None, confs=None):
    n = len(x)
    idx.upsert(list(range(1, n + 1)), x,
               domains or ["d"] * n, kinds or ["strategy"] * n, confs if confs is not None else [0.5] * n)


def _truth(x, q, k, mask=None):
    sims = x.astype(np.float64) @ q.astype(np.float64)
    if mask is not None:
        sims[~mask] = -np.inf
    return set((np.argsort(-sims, kind="stable")[:k] + 1).tolist())


def test_exact_search_matches_brute_force():
    x = clustered(3000, 32, seed=1)
    idx = VectorIndex(32, mode="exact")
    _fill(idx, x)
    for q in clustered(20, 32, seed=2):
        keys, sims = idx.search(q, 10)
        assert set(keys.tolist()) == _truth(x, q, 10)
        assert np.all(np.diff(sims) <= 1e-7)


def test_ann_recall_is_measured_and_high_on_clustered_data():
    x = clustered(6000, 64, clusters=30, seed=3)
    idx = VectorIndex(64, mode="ann", fold_every=512)
    _fill(idx, x)
    queries = clustered(100, 64, clusters=30, seed=3)[:100]
    recall = np.mean([len(set(idx.search(q, 10)[0].tolist()) & _truth(x, q, 10)) / 10 for q in queries])
    assert recall >= 0.95
    # the index's own audit of live queries agrees with the recall measured here
    assert idx.measured_recall is not None and abs(idx.measured_recall - recall) < 0.05
    assert idx.build_sample_recall is not None and idx.build_sample_recall >= 0.9


def test_ann_mode_filters_deletes_and_tail():
    x = clustered(4000, 32, seed=4)
    domains = ["a" if i % 10 == 0 else "b" for i in range(len(x))]
    confs = [0.9 if i % 2 else 0.1 for i in range(len(x))]
    idx = VectorIndex(32, mode="ann", fold_every=100_000)
    _fill(idx, x, domains=domains, confs=confs)
    q = x[10]
    keys, _ = idx.search(q, 10, Filter(domain="a"))
    assert len(keys) == 10 and all(domains[k - 1] == "a" for k in keys)
    keys, _ = idx.search(q, 10, Filter(min_confidence=0.5))
    assert all(confs[k - 1] == 0.9 for k in keys)
    # deletion removes the row from the graph, and new rows are found through the tail
    idx.remove([11])
    assert 11 not in idx.search(q, 10)[0].tolist()
    idx.upsert([99_999], q[None, :], ["b"], ["strategy"], [0.5])
    assert idx.search(q, 1)[0].tolist() == [99_999]


def test_auto_mode_switches_at_threshold_and_results_agree():
    x = clustered(500, 16, seed=5)
    idx = VectorIndex(16, mode="auto", ann_threshold=300)
    _fill(idx, x[:200])
    assert not idx.uses_ann
    idx.upsert(list(range(201, 501)), x[200:], ["d"] * 300, ["strategy"] * 300, [0.5] * 300)
    assert idx.uses_ann
    assert idx.search(x[42], 1)[0].tolist() == [43]


def test_compaction_keeps_results_right():
    x = clustered(3000, 16, seed=6)
    idx = VectorIndex(16, mode="exact")
    _fill(idx, x)
    idx.remove(list(range(1, 2500)))
    assert len(idx) == 501
    q = x[2800]
    assert idx.search(q, 1)[0].tolist() == [2801]
    keys, sims = idx.search_many(x[2990:2992], 1)
    assert keys[:, 0].tolist() == [2991, 2992]


def test_bad_queries_are_rejected():
    idx = VectorIndex(4)
    _fill(idx, np.eye(4))
    with pytest.raises(ValueError):
        idx.search(np.zeros(4), 1)
    with pytest.raises(ValueError):
        idx.search(np.ones(5), 1)


def test_auto_mode_falls_back_to_exact_when_measured_recall_is_low():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 512)).astype(np.float32)  # unclustered: hard for HNSW
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    idx = VectorIndex(512, mode="auto", ann_threshold=1000, ef_search=16, min_recall=0.95)
    _fill(idx, x)
    assert idx.uses_ann
    for q in x[:20]:
        keys, _ = idx.search(q, 10)
        assert set(keys.tolist()) == _truth(x, q, 10)
    assert not idx.uses_ann and "recall@10" in idx.ann_disabled
    forced = VectorIndex(512, mode="ann", ef_search=16, min_recall=0.95)  # "ann" means ann, and says how well
    _fill(forced, x)
    forced.search(x[0], 10)
    assert forced.uses_ann and forced.build_sample_recall < 0.95
