"""Shared test helpers."""

from __future__ import annotations

import os

import numpy as np
import pytest

from swarm.memory import Pattern

#: How much longer fault tests (kill loops, fuzzing) run: 1 in ``make test``, more in the weekly job.
FAULT_SCALE = max(1, int(os.environ.get("SWARM_FAULT_SCALE", "1")))


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def make_pattern(pid: str, embedding, **kw) -> Pattern:
    fields = dict(title=f"title {pid}", content=f"content {pid}")
    fields.update(kw)
    return Pattern(id=pid, embedding=unit(embedding), **fields)


def clustered(n: int, dim: int, clusters: int = 20, noise: float = 0.6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centers[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
