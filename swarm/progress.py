"""How far a long run has got, for whoever shows it: episodes done out of the run's total.

Code that runs episodes calls :func:`report`; a display installs a sink with :func:`reporting`
for the duration of a run. No sink (the default) costs one context-variable read. Nothing here
reads a clock or does I/O: the sink decides what to do with a report.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from collections.abc import Callable, Iterator

Sink = Callable[[int, int], None]  # (episodes done, episodes in all)

_sink: ContextVar[Sink | None] = ContextVar("swarm_progress_sink", default=None)


def report(done: int, total: int) -> None:
    """``done`` of ``total`` episodes of the current run are finished."""
    sink = _sink.get()
    if sink is not None:
        sink(done, total)


@contextmanager
def reporting(sink: Sink) -> Iterator[None]:
    """Send this context's progress reports to ``sink``."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)
