"""Helpers the real-socket transport tests share (QUIC, WebSocket)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import numpy as np

from swarm.memory.models import Pattern, make_pattern_id

DIM = 16


def patterns(origin: str, n: int) -> list[Pattern]:
    """``n`` small distinct patterns written by ``origin``."""
    rng = np.random.default_rng(abs(hash(origin)) % 2**32)
    out = []
    for i in range(n):
        v = rng.standard_normal(DIM).astype(np.float32)
        out.append(Pattern(id=make_pattern_id(origin, str(i)), title=f"{origin}{i}", description="", content="",
                           domain="d", kind="strategy", action="momentum", embedding=v / np.linalg.norm(v),
                           created_at=float(i)))
    return out


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)
