import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm.memory import VectorIndex
from swarm.memory.index import Filter, _at_least_kth, projected_recall
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


def _random_unit(n, dim, seed):
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_auto_mode_decides_by_a_recall_sample_and_never_builds_a_graph_it_would_drop():
    x = _random_unit(8000, 384, seed=7)  # unclustered, high-dimensional: HNSW misses neighbours
    idx = VectorIndex(384, mode="auto", ann_threshold=1000, pilot_size=2000)
    _fill(idx, x)
    assert idx.stats()["index"] == "pending"  # nothing decided before a search needs it
    for q in x[:5]:
        assert set(idx.search(q, 10)[0].tolist()) == _truth(x, q, 10)
    st = idx.stats()
    assert st["index"] == "exact" and not idx.uses_ann and idx.graph is None
    assert "sample recall@10" in st["index_reason"] and "never built" in st["index_reason"]
    pilot = idx.pilot
    assert pilot is not None and not pilot.build and pilot.rows == len(x) and min(pilot.recalls) < 0.9
    # what was built is the sample at most: the full graph was never started
    assert st["graph_rows_built"] == pilot.sizes[-1] <= 2000 < len(x) and st["graph_rows"] == 0
    assert st["index_pilot"]["recalls"] == pilot.recalls
    idx.search(x[7], 10)  # later searches do not sample again
    assert idx.graph_rows_built == st["graph_rows_built"]
    again = VectorIndex(384, mode="auto", ann_threshold=1000, pilot_size=2000)
    _fill(again, x)
    again.search(x[0], 10)
    assert again.pilot is not None and again.pilot.recalls == pilot.recalls  # the same data, the same decision


def test_auto_mode_grows_the_sample_graph_into_the_full_one_on_clustered_data():
    x = clustered(6000, 64, clusters=30, seed=3)
    idx = VectorIndex(64, mode="auto", ann_threshold=1000, pilot_size=2000)
    _fill(idx, x)
    queries = clustered(50, 64, clusters=30, seed=3)
    recall = np.mean([len(set(idx.search(q, 10)[0].tolist()) & _truth(x, q, 10)) / 10 for q in queries])
    st = idx.stats()
    assert st["index"] == "hnsw" and idx.uses_ann and recall >= 0.95
    assert idx.pilot is not None and idx.pilot.build and idx.pilot.sizes == (500, 2000)
    assert idx.pilot.projected >= 0.9 and "hnsw graph built" in st["index_reason"]
    # every row went into the graph once: the sample's graph was kept and grown, not rebuilt
    assert st["graph_rows"] == st["graph_rows_built"] == len(x)


def test_sample_projection_carries_the_loss_per_doubling_to_the_full_size():
    assert projected_recall((500, 2000), (0.99, 0.95), 32_000) == pytest.approx(0.95 - 0.02 * 4)
    assert projected_recall((500, 2000), (0.97, 0.99), 10**6) == pytest.approx(0.99)  # noise, not a gain
    assert projected_recall((2500,), (0.85,), 10**6) == 0.85  # stopped at the first size
    assert projected_recall((500, 2000), (0.99, 0.95), 1500) == 0.95


def test_auto_mode_refuses_a_graph_whose_sample_passes_but_projection_fails(monkeypatch):
    x = clustered(4000, 32, seed=8)
    idx = VectorIndex(32, mode="auto", ann_threshold=1000, pilot_size=1000, min_recall=0.9)
    _fill(idx, x)
    projected = []

    def pessimistic(sizes, recalls, rows):  # the samples pass; the projection at 4,000 rows does not
        projected.append((tuple(sizes), min(recalls), rows))
        return 0.5

    monkeypatch.setattr("swarm.memory.index.projected_recall", pessimistic)
    assert set(idx.search(x[1], 10)[0].tolist()) == _truth(x, x[1], 10)
    assert projected == [((250, 1000), pytest.approx(min(idx.pilot.recalls)), 4000)] and min(idx.pilot.recalls) >= 0.9
    assert idx.graph is None and idx.graph_rows_built == 1000 and idx.stats()["index"] == "exact"
    assert "projected 0.500 at 4,000 rows < 0.9" in idx.index_reason


def test_audits_run_off_the_query_path_and_measure_the_recall_of_live_queries():
    x = _random_unit(3000, 256, seed=9)
    idx = VectorIndex(256, mode="ann", ef_search=10, audit_every=1, audit_batch=8)
    _fill(idx, x)
    queries = _random_unit(40, 256, seed=10)
    recall = np.mean([len(set(idx.search(q, 10)[0].tolist()) & _truth(x, q, 10)) / 10 for q in queries])
    assert recall < 0.95  # a graph that misses neighbours, so the audit has something to measure
    # searches only kept the last audit_batch queries; no exact scan ran on the query path
    assert idx.recall_so_far is None and len(idx._pending) == 8
    audited = idx.audit()
    assert idx.stats()["ann_audited_queries"] == 8 and not idx._pending
    kept = queries[-8:]
    expected = np.mean([len(set(idx.search(q, 10)[0].tolist()) & _truth(x, q, 10)) / 10 for q in kept])
    assert audited == pytest.approx(expected)
    assert idx.uses_ann  # "ann" mode reports its recall and keeps the graph


def test_a_failed_audit_drops_the_graph_in_auto_mode():
    x = clustered(3000, 32, seed=11)
    idx = VectorIndex(32, mode="auto", ann_threshold=500, pilot_size=1000, audit_every=1)
    _fill(idx, x)
    for q in x[:10]:
        idx.search(q, 10)
    assert idx.uses_ann and idx.graph is not None
    idx.min_recall = 1.01  # no graph can pass: the next audit must drop it
    assert idx.stats()["index"] == "exact" and "audited recall@10" in idx.ann_disabled and idx.graph is None
    assert set(idx.search(x[3], 10)[0].tolist()) == _truth(x, x[3], 10)


def test_exact_many_matches_single_exact_scans_with_filters_and_dead_rows():
    x = clustered(5000, 24, seed=12)
    idx = VectorIndex(24, mode="exact")
    domains = ["a" if i % 3 == 0 else "b" for i in range(len(x))]
    _fill(idx, x, domains=domains)
    idx.remove(list(range(1, 400)))
    qs = clustered(6, 24, seed=13)
    flts = [Filter(), Filter(domain="a"), Filter(), Filter(domain="b"), Filter(domain="zzz"), Filter()]
    masks = [None if f.empty else idx._mask(f) for f in flts]
    got = idx._exact_many(qs, 10, masks)
    for q, f, keys in zip(qs, flts, got):
        assert keys.tolist() == idx.search(q, 10, f)[0].tolist()


def test_graph_bookkeeping_follows_upserts_removes_and_folds():
    x = clustered(3000, 16, seed=14)
    idx = VectorIndex(16, mode="ann", fold_every=200)
    _fill(idx, x[:2000])
    idx.search(x[0], 5)
    idx.upsert(list(range(10, 60)), x[2000:2050], ["d"] * 50, ["strategy"] * 50, [0.5] * 50)  # replace graph rows
    idx.remove(list(range(100, 150)))
    idx.upsert(list(range(5000, 5300)), x[2100:2400], ["d"] * 300, ["strategy"] * 300, [0.5] * 300)
    in_graph = int((idx._alive[: idx._n] & idx._in_ann[: idx._n]).sum())
    assert idx._n_in_ann == in_graph and idx._live - idx._n_in_ann == 350
    idx.search(x[5], 5)  # the tail has passed fold_every: folded in
    assert idx._n_in_ann == idx._live == len(idx.graph)
    assert idx.search(x[2150], 1)[0].tolist() == [5050]


def test_upsert_normalises_and_a_key_repeated_in_a_batch_keeps_its_last_vector():
    x = clustered(40, 16, seed=15) * 3.0
    idx = VectorIndex(16, mode="exact")
    _fill(idx, x[:10])
    idx.upsert([5, 5, 100, 200, 200], x[10:15], ["d"] * 5, ["strategy"] * 5, [0.5] * 5)
    assert len(idx) == 12
    for key, row in ((5, 11), (100, 12), (200, 14), (1, 0)):
        assert np.allclose(idx._vecs[idx._slot[key]], x[row] / np.linalg.norm(x[row]), atol=1e-6)


@given(st.integers(1, 3000), st.integers(1, 80), st.integers(0, 2**32 - 1), st.sampled_from([None, 1, 2]))
@settings(max_examples=150, deadline=None)
def test_the_top_k_selection_keeps_exactly_the_values_at_or_above_the_kth(n, k, seed, rounding):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(n + 1).astype(np.float32)
    if rounding is not None:  # many ties
        values = np.round(values, rounding)
    values[rng.random(n + 1) < 0.3] = -np.inf
    k = min(k, n)
    kth = np.sort(values)[::-1][k - 1]
    assert set(_at_least_kth(values, k).tolist()) == set(np.flatnonzero(values >= kth).tolist())


def test_equally_similar_rows_make_the_cut_by_smaller_key_whatever_their_order():
    """Identical embeddings (agents trading the same bar) tie exactly: which of them a search
    returns must not depend on the order they were written in."""
    dim = 8
    same = np.ones(dim, np.float32)
    other = clustered(3000, dim, seed=5)
    for order in (1, -1):
        idx = VectorIndex(dim, mode="exact")
        keys = list(range(1, 41))[::order]
        idx.upsert(keys, np.tile(same, (40, 1)), ["d"] * 40, ["strategy"] * 40, [0.5] * 40)
        idx.upsert(list(range(100, 3100)), other, ["d"] * 3000, ["strategy"] * 3000, [0.5] * 3000)
        found, _ = idx.search(same, 10)
        assert found.tolist() == list(range(1, 11))


@given(st.integers(1, 4000), st.integers(1, 64), st.integers(0, 2**32 - 1), st.booleans(), st.booleans())
@settings(max_examples=60, deadline=None)
def test_the_unfiltered_fast_path_returns_what_the_masked_scan_returns(n, k, seed, tied, shuffled):
    """A search every row passes skips the mask and the exact k-th selection; it must return the
    same keys in the same order (ties by smaller key) as the general scan, ties at the cut included."""
    rng = np.random.default_rng(seed)
    dim = 8
    x = rng.standard_normal((n, dim)).astype(np.float32)
    if tied:  # 26 distinct rows: exact ties everywhere, at the k-th place too
        x = rng.integers(-1, 2, (n, dim)).astype(np.float32)
        x[:, 3:] = 0.0
        x[np.all(x == 0, axis=1), 0] = 1.0
    keys = list(range(1, n + 1))
    if shuffled:
        rng.shuffle(keys)
    idx = VectorIndex(dim, mode="exact")
    idx.upsert(keys, x, ["d"] * n, ["strategy"] * n, [0.5] * n)
    q = idx._unit_query(x[rng.integers(n)] if tied else rng.standard_normal(dim).astype(np.float32))
    assert idx._passes_all(Filter("d")) and idx._passes_all(Filter())
    fast_keys, fast_sims = idx._exact_all(q, k)
    keys_, sims_ = idx._exact(q, k, idx._mask(Filter("d")))
    assert fast_keys.tolist() == keys_.tolist() and fast_sims.tolist() == sims_.tolist()


@given(st.lists(st.tuples(st.booleans(), st.lists(st.integers(1, 3000), min_size=1, max_size=40)),
                min_size=1, max_size=5),
       st.integers(1, 20), st.booleans(), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_ties_go_by_smaller_key_whether_keys_were_added_in_order_or_not(steps, k, many, seed):
    """Rows added in key order are ranked by a stable sort of their slots; keys added out of
    order (a smaller key after a larger, a replaced, removed or re-added key) must still rank
    ties by key, through the unfiltered scan, the masked scan (a dead slot) and, with ``many``
    rows, the sampled threshold."""
    rng = np.random.default_rng(seed)
    dim = 8

    def tied(m: int) -> np.ndarray:  # few distinct rows: exact ties everywhere
        x = rng.integers(-1, 2, (m, dim)).astype(np.float32)
        x[:, 3:] = 0.0
        x[np.all(x == 0, axis=1), 0] = 1.0
        return x

    idx = VectorIndex(dim, mode="exact")
    rows: dict[int, np.ndarray] = {}
    if many:  # enough rows for the sampled threshold (n > 64 k)
        base = list(range(5000, 6500))
        x = tied(len(base))
        idx.upsert(base, x, ["d"] * len(base), ["strategy"] * len(base), [0.5] * len(base))
        rows.update(zip(base, x))
    for remove, batch in steps:
        keys = list(dict.fromkeys(batch))
        if remove:
            idx.remove(keys)
            for key in keys:
                rows.pop(key, None)
        else:
            x = tied(len(keys))
            idx.upsert(keys, x, ["d"] * len(keys), ["strategy"] * len(keys), [0.5] * len(keys))
            rows.update(zip(keys, x))
        if not rows:
            continue
        q = idx._unit_query(rows[next(iter(rows))])
        sims = {key: float(idx._vecs[idx._slot[key]] @ q) for key in rows}
        expected = sorted(rows, key=lambda key: (-sims[key], key))[:k]
        assert idx.search(q, k)[0].tolist() == expected
        assert idx.search(q, k, Filter("d"))[0].tolist() == expected


def test_the_fast_path_is_not_taken_when_a_row_could_fail_the_filter():
    idx = VectorIndex(4, mode="exact")
    x = np.eye(4, dtype=np.float32)
    idx.upsert([1, 2], x[:2], ["a", "a"], ["strategy", "strategy"], [0.5, 0.5])
    assert idx._passes_all(Filter("a")) and not idx._passes_all(Filter("b"))
    assert not idx._passes_all(Filter("a", kind="lesson")) and not idx._passes_all(Filter(min_confidence=0.1))
    idx.upsert([3], x[2:3], ["b"], ["strategy"], [0.5])
    assert not idx._passes_all(Filter("a")) and idx._passes_all(Filter())
    assert idx.search(x[2], 3, Filter("a"))[0].tolist() in ([1, 2], [2, 1])
    idx.remove([1])  # a dead slot: the scan must skip it
    assert not idx._passes_all(Filter())
    assert idx.search(x[0], 3)[0].tolist()[0] != 1


@pytest.mark.parametrize("mode", ["exact", "ann"])
def test_search_columns_name_each_rows_own_action_and_reward_through_replacements_and_compaction(mode):
    """The columns a decision weighs follow their row through upserts, replacements, growth and
    compaction, in every mode: a column left behind by a slot move would name another row's."""
    rng = np.random.default_rng(7)
    x = clustered(3000, 16, seed=3)
    idx = VectorIndex(16, mode=mode, ann_threshold=10)
    keys = list(range(1, 3001))
    action = {k: f"a{k % 7}" for k in keys}
    reward = {k: (None if k % 11 == 0 else float(k) / 3) for k in keys}
    domain = {k: "even" if k % 2 == 0 else "odd" for k in keys}
    for start in range(0, 3000, 500):  # in batches: the arrays grow several times
        batch = keys[start:start + 500]
        idx.upsert(batch, x[start:start + 500], [domain[k] for k in batch], ["strategy"] * 500, [0.5] * 500,
                   [action[k] for k in batch], [reward[k] for k in batch])
        idx.search_columns(x[start], 5)  # in ann mode, the graph exists before the replacements
    replaced = keys[::5]
    for k in replaced:
        action[k], reward[k] = "replaced", -float(k)
    idx.upsert(replaced, x[[k - 1 for k in replaced]], [domain[k] for k in replaced], ["lesson"] * len(replaced),
               [0.9] * len(replaced), ["replaced"] * len(replaced), [-float(k) for k in replaced])
    gone = [k for k in keys if k % 3 != 0]  # two thirds go: the index compacts
    idx.remove(gone)
    assert idx._n < 3000  # compacted
    live = [k for k in keys if k % 3 == 0]
    for q in x[rng.choice(3000, 20, replace=False)]:
        for flt in (Filter(), Filter("even"), Filter(kind="lesson")):  # every row, and masked scans
            found, sims, actions, rewards = idx.search_columns(q, 10, flt)
            keys_only, sims_only = idx.search(q, 10, flt)
            assert found == keys_only.tolist() and sims == sims_only.tolist()
            assert set(found) <= set(live) and len(found) == 10
            assert actions == [action[k] for k in found]
            assert [None if r != r else r for r in rewards] == [reward[k] for k in found]
            assert flt.domain is None or {domain[k] for k in found} == {flt.domain}
