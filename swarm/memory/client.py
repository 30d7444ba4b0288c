"""A cached client over a ReasoningBank that degrades gracefully.

Agents hold a :class:`CachedBankClient` rather than a bank: answers are cached for ``ttl``
seconds (cachetools' TTLCache, on an injected clock), a bank can be connected or disconnected
at run time, and with no bank — or a failing one — the client answers "no recommendation" and
queues outcomes (up to ``max_pending``) to replay on the next connect, instead of raising.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections import deque
from typing import Any
from collections.abc import Callable

import numpy as np
from cachetools import TTLCache

from .bank import Recommendation, ReasoningBank
from .errors import MemoryEngineError
from .retrieval import SearchHit

_BANK_ERRORS = (MemoryEngineError, sqlite3.Error, OSError)


def _key(obj: object) -> str:
    if isinstance(obj, str):
        return "s:" + obj
    arr = np.asarray(obj, dtype=np.float64)
    return "v:" + hashlib.blake2b(arr.tobytes() + str(arr.shape).encode(), digest_size=16).hexdigest()


class CachedBankClient:
    def __init__(self, bank: ReasoningBank | None = None, *, ttl: float = 30.0, maxsize: int = 4096,
                 max_pending: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._bank = bank
        self._cache: TTLCache[tuple[Any, ...], Any] = TTLCache(maxsize=maxsize, ttl=ttl, timer=clock)
        self._pending: deque[tuple[str, bool, float]] = deque(maxlen=max_pending)
        self.hits = 0
        self.misses = 0
        self.dropped_outcomes = 0
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self._bank is not None

    def connect(self, bank: ReasoningBank) -> int:
        """Attach a bank, clear the cache, replay queued outcomes; returns how many replayed."""
        self._bank = bank
        self._cache.clear()
        replayed = 0
        while self._pending:
            pid, success, reward = self._pending.popleft()
            try:
                bank.record_outcome(pid, success, reward)
                replayed += 1
            except KeyError:
                self.dropped_outcomes += 1  # the pattern is gone (consolidated away): nothing to credit
            except _BANK_ERRORS as e:
                self._pending.appendleft((pid, success, reward))
                self._fail(e)
                break
        return replayed

    def disconnect(self) -> None:
        self._bank = None
        self._cache.clear()

    def _fail(self, e: BaseException) -> None:
        self.last_error = f"{type(e).__name__}: {e}"

    def _cached(self, key: tuple[Any, ...], compute: Callable[[ReasoningBank], Any], fallback: Any) -> Any:
        bank = self._bank
        if bank is None:
            return fallback
        if key in self._cache:
            self.hits += 1
            return self._cache[key]
        self.misses += 1
        try:
            value = compute(bank)
        except _BANK_ERRORS as e:
            self._fail(e)
            return fallback
        self._cache[key] = value
        return value

    def recommend(self, context: object, *, domain: str | None = None, k: int = 10) -> Recommendation:
        if self._bank is None:
            return Recommendation.none("no bank connected")
        return self._cached(("rec", _key(context), domain, k),
                            lambda b: b.recommend(context, domain=domain, k=k),
                            Recommendation.none("bank unavailable: " + (self.last_error or "")))

    def search(self, query: object, k: int = 5, **filters: Any) -> list[SearchHit]:
        key = ("search", _key(query), k, tuple(sorted(filters.items())))
        return self._cached(key, lambda b: b.search(query, k, **filters), [])

    def record_outcome(self, pattern_id: str, success: bool, reward: float = 0.0) -> bool:
        """Apply now if a bank is connected (True); otherwise queue it for the next connect (False)."""
        bank = self._bank
        if bank is not None:
            try:
                bank.record_outcome(pattern_id, success, reward)
                self._cache.clear()  # confidences changed: cached rankings are stale
                return True
            except _BANK_ERRORS as e:
                self._fail(e)
        if len(self._pending) == self._pending.maxlen:
            self.dropped_outcomes += 1
        self._pending.append((pattern_id, success, reward))
        return False

    @property
    def pending_outcomes(self) -> int:
        return len(self._pending)
