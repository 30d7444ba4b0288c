import subprocess
import sys

import numpy as np
import pytest

from swarm.memory import ContextEmbedder, HashingTextEmbedder


def test_text_embedder_is_unit_length_deterministic_and_similarity_tracks_overlap():
    e = HashingTextEmbedder(dim=512)
    a = e.embed("strong uptrend with low volatility, momentum works")
    b = e.embed("strong uptrend with low volatility, breakout works")
    c = e.embed("the cat sat on the mat")
    assert a.dtype == np.float32 and a.shape == (512,)
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    assert np.array_equal(a, HashingTextEmbedder(dim=512).embed("strong uptrend with low volatility, momentum works"))
    assert float(a @ b) > 0.6 > 0.2 > float(a @ c)


def test_text_embedder_is_stable_across_processes():
    """Python's str hash is salted per process; ours must not be."""
    code = ("from swarm.memory import HashingTextEmbedder;"
            "print(HashingTextEmbedder(64).embed('gossip replicates patterns').tobytes().hex())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    here = HashingTextEmbedder(64).embed("gossip replicates patterns").tobytes().hex()
    assert outs == {here + "\n"}


def test_word_pairs_make_order_matter():
    e = HashingTextEmbedder(dim=1024)
    assert float(e.embed("buy low sell high") @ e.embed("sell low buy high")) < 0.999


def test_context_embedder_similarity_falls_with_distance():
    e = ContextEmbedder(n_features=3, dim=512, bandwidth=1.0, seed=7)
    x = np.array([0.1, -0.2, 0.3])
    near, mid, far = x + 0.05, x + 0.8, x + 5.0
    sims = [float(e.embed(x) @ e.embed(y)) for y in (near, mid, far)]
    assert sims[0] > 0.95
    assert sims[0] > sims[1] > sims[2]
    assert sims[2] < 0.3
    # unlike raw cosine, scaling a context changes its embedding
    assert float(e.embed(x) @ e.embed(4 * x)) < 0.9


def test_context_embedder_batch_matches_single_and_validates():
    e = ContextEmbedder(n_features=2, dim=64, scale=[1.0, 10.0], seed=1)
    xs = np.array([[0.0, 1.0], [2.0, -3.0]])
    assert np.allclose(e.embed_many(xs), np.stack([e.embed(r) for r in xs]), atol=1e-6)
    with pytest.raises(ValueError):
        e.embed([1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        e.embed([np.inf, 0.0])
    with pytest.raises(ValueError):
        ContextEmbedder(2, scale=[1.0, 0.0])
