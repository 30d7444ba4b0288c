"""Where a run's prices come from: the synthetic market (the default) or real OHLCV files.

Every scenario gets its decisions from the *active* source (:func:`active`): ``scenarios.base``
(``market_decisions``, ``phased_decisions``) and ``swarm.orchestrator.agent_decisions`` ask it, so
one ``with using(source):`` block moves a whole run onto real data (``run_learning_tests.py
--market`` and ``run_pattern(..., market=...)`` do that). :func:`parse` reads a ``--market`` value:
``synthetic`` or ``csv:PATH[,PATH...]``; every problem is one line (a :class:`MarketDataError`).

CSV windows (:class:`CsvSource`). Each file is loaded and validated once. The ``k``-th symbol a
scenario asks for reads file ``k mod len(files)``; the symbols that share a file take turns on its
decisions in calendar order, so together they trade the file once and never the same bar twice. A
file read by ``c`` symbols gives a window of ``c * (n_bars - WARMUP) + WARMUP`` bars (what ``c``
synthetic assets of ``n_bars`` would give), or the whole allowed range when that is shorter: then
the run gets fewer decisions than it asked for (the result's notes say so); only a market or phase
left with no decision at all is an error (one line). The window starts at an offset
drawn uniformly from the allowed range by numpy's generator seeded with the seed and the names of
the symbols reading the file (as the synthetic market seeds its paths), so different seeds, agents
(``market_seed``) and symbols see different stretches, and the same ones on every run. Held-out
markets (seeds >= :data:`HELD_OUT_SEED`, the harness's ``seed + HELD_OUT``) draw only from the last
quarter of each file and every other seed only from the rest, so a held-out test is never on bars
a learner trained on (a held-out window reaches up to ``WARMUP`` bars back for its features; no
trade's outcome crosses the cut; swarm agents' ``market_seed`` is ``seed * 100 + i``, so this holds
for run seeds below 100). Phased markets are consecutive stretches of one window. Real data has no
hidden regime (``regime == -1``), and a :class:`MarketConfig`'s regime settings do not apply to it.
The run's :meth:`MarketUse.describe` records all of that, and flags seeds whose windows overlapped
(a file shorter than the windows: a pack's or a peer's "other market" is then partly the same bars).
"""

from __future__ import annotations

import contextvars
from abc import ABC, abstractmethod
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from collections.abc import Iterator, Sequence

import numpy as np

from ..market import BARS_PER_YEAR, MarketConfig, PricePath, TradeRules, generate_market
from ..market.csv_loader import MarketDataError, load_ohlcv
from ..market.features import WARMUP
from .episodes import Context, Decision, decisions_for, interleave

#: Seeds from here on are held-out markets (``scenarios.base.HELD_OUT``): they read the held-out part.
HELD_OUT_SEED = 10_000
#: Share of each file (its end) kept for held-out markets.
HELD_OUT_SHARE = 0.25
_DEFAULT_REGIMES = MarketConfig()


class MarketSource(ABC):
    """Makes the decisions of a market: ``seed`` picks it, ``symbols`` names its assets."""

    label = "?"
    bars_per_year: float = BARS_PER_YEAR  # what annualises its Sharpe ratios

    @abstractmethod
    def decisions(self, config: MarketConfig, seed: int, symbols: Sequence[str],
                  rules: TradeRules = TradeRules()) -> list[Decision]:
        """The market's decisions, all assets interleaved in time order."""

    def describe(self) -> dict[str, Any]:
        return {}


class SyntheticSource(MarketSource):
    """The seeded regime-switching market of :mod:`swarm.market.synthetic` (unchanged figures)."""

    label = "synthetic"

    def decisions(self, config: MarketConfig, seed: int, symbols: Sequence[str],
                  rules: TradeRules = TradeRules()) -> list[Decision]:
        return interleave(generate_market(config, seed, tuple(symbols)), rules)

    def __repr__(self) -> str:
        return "SyntheticSource()"


SYNTHETIC = SyntheticSource()


class CsvSource(MarketSource):
    """Real OHLCV files, read as described in the module docstring."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, max_gap: float = 5.0,
                 bars_per_year: float | None = None, rules: TradeRules = TradeRules()) -> None:
        if not paths:
            raise MarketDataError("csv: name at least one file (csv:PATH[,PATH...])")
        self.files = tuple(Path(p) for p in paths)
        self.series: tuple[PricePath, ...] = tuple(
            load_ohlcv(p, max_gap=max_gap, bars_per_year=bars_per_year) for p in self.files)
        self.label = "csv:" + ",".join(f.name for f in self.files)
        # hourly bars trade 7x as often as daily ones: Sharpe ratios annualise by the data's own clock
        self.bars_per_year = float(np.median([s.bars_per_year for s in self.series]))
        for f, s in zip(self.files, self.series):
            need = self.min_bars(rules)
            if len(s) < need:
                raise MarketDataError(f"{f.name}: {len(s)} bars are too few: a trade needs {WARMUP} bars of history and "
                                      f"{rules.horizon} ahead in both the training and the held-out part "
                                      f"(the last {HELD_OUT_SHARE:.0%}); give at least {need}")

    @staticmethod
    def min_bars(rules: TradeRules = TradeRules()) -> int:
        """The shortest file that gives one decision in each part (training and held-out)."""
        n = WARMUP + rules.horizon + 1
        while True:
            cut = _cut(n)
            if cut >= WARMUP + rules.horizon + 1 and n - cut >= rules.horizon + 1:
                return n
            n += 1

    def _range(self, file: int, seed: int) -> tuple[int, int]:
        """Bars ``[lo, hi)`` of ``file`` a window for ``seed`` may use."""
        n = len(self.series[file])
        cut = _cut(n)
        return (max(0, cut - WARMUP), n) if seed >= HELD_OUT_SEED else (0, cut)

    def window(self, file: int, seed: int, names: Sequence[str], n_bars: int) -> tuple[int, int, int]:
        """``(start, stop, asked)``: the bars of ``file`` the symbols ``names`` read for ``seed``."""
        lo, hi = self._range(file, seed)
        asked = len(names) * (max(n_bars, WARMUP + 1) - WARMUP) + WARMUP
        w = min(asked, hi - lo)
        rng = np.random.default_rng(np.random.SeedSequence([seed, *"|".join(names).encode()]))
        start = lo + int(rng.integers(0, hi - lo - w + 1))
        return start, start + w, asked

    def decisions(self, config: MarketConfig, seed: int, symbols: Sequence[str],
                  rules: TradeRules = TradeRules()) -> list[Decision]:

        symbols = tuple(symbols)
        if len(set(symbols)) != len(symbols) or not symbols:
            raise ValueError("symbols must be non-empty and distinct")
        if replace(config, n_bars=_DEFAULT_REGIMES.n_bars) != _DEFAULT_REGIMES:
            note("regimes", "the scenario's market settings (regime mix, drift, noise...) do not apply to real "
                            "data: every market is a stretch of the files")
        m = len(self.files)
        order = {s: k for k, s in enumerate(symbols)}
        out: list[Decision] = []
        for f in range(min(m, len(symbols))):
            names = symbols[f::m]
            start, stop, asked = self.window(f, seed, names, config.n_bars)
            if stop - start < asked:
                note(f"short:{f}", f"{self.files[f].name}: windows are capped at the data ({len(self.series[f])} bars, "
                                   f"{HELD_OUT_SHARE:.0%} of them held out); runs that asked for more get fewer "
                                   "decisions")
            _read(self.files[f].name, seed, start + WARMUP, stop)
            path = self.series[f].window(start, stop)
            for j, d in enumerate(decisions_for(path, rules)):
                name = names[j % len(names)]
                c = d.context
                out.append(Decision(Context(name, c.bar, c.time, c.features), d.pnl, d.regime))
        if not out:
            raise MarketDataError(f"{self.label}: no decision for seed {seed} in {self._part(seed)} of the data "
                                  f"(a trade needs {WARMUP} bars of history and {rules.horizon} ahead); use longer files")
        out.sort(key=lambda d: (d.context.bar, order[d.context.symbol]))
        return out

    @staticmethod
    def _part(seed: int) -> str:
        return "the held-out part" if seed >= HELD_OUT_SEED else "the training part"

    def describe(self) -> dict[str, Any]:
        return {"files": [{"file": f.name, "bars": len(s), "bars_per_year": round(s.bars_per_year, 2)}
                          for f, s in zip(self.files, self.series)],
                "held_out_share": HELD_OUT_SHARE}

    def __repr__(self) -> str:
        return f"CsvSource({[str(f) for f in self.files]!r})"


def _cut(n: int) -> int:
    """First bar of a file's held-out part."""
    return n - max(1, round(HELD_OUT_SHARE * n))


@dataclass(slots=True)
class MarketUse:
    """A source in use for one block: what ran on it and what did not apply (its notes)."""

    source: MarketSource
    notes: dict[str, str] = field(default_factory=dict)
    reads: dict[str, set[tuple[int, int, int]]] = field(default_factory=dict)  # file -> (seed, first, stop) bars traded

    @property
    def label(self) -> str:
        return self.source.label

    def shared(self) -> list[tuple[str, int, int]]:
        """``(file, seed, other seed)`` for every two seeds whose trades cover some of the same bars: markets
        a scenario treats as independent (a pack's, a transfer source's, another peer's) that share data."""
        out = []
        for name, reads in self.reads.items():
            rs = sorted(reads)
            pairs = {(a[0], b[0]) for i, a in enumerate(rs) for b in rs[i + 1:]
                     if a[0] != b[0] and a[1] < b[2] and b[1] < a[2]}
            out += [(name, x, y) for x, y in sorted(pairs)]
        return out

    def describe(self) -> dict[str, Any]:
        """What a result's config records: ``{"market": label}``, and for real data its files and notes."""
        out: dict[str, Any] = {"market": self.label}
        detail = self.source.describe()
        notes = list(self.notes.values())
        shared = self.shared()
        if shared:
            name, x, y = shared[0]
            notes.append(f"{len(shared)} pairs of seeds traded overlapping bars (e.g. seeds {x} and {y} on {name}): "
                         "markets the scenario treats as independent (packs, transfer sources, peers) share data, "
                         "so figures comparing or pooling them can be optimistic; longer or more files avoid it")
        if detail or notes:
            out["market_detail"] = {**detail, "notes": notes}
        return out


# The default use is never mutated: notes and reads are recorded only for non-synthetic sources.
_USE: contextvars.ContextVar[MarketUse] = contextvars.ContextVar("market_source", default=MarketUse(SYNTHETIC))  # noqa: B039


def active() -> MarketSource:
    """The source markets come from here (the synthetic market unless a :func:`using` block says otherwise)."""
    return _USE.get().source


def note(key: str, text: str) -> None:
    """Record, once per block, something about the run's market (e.g. a setting that did not apply)."""
    use = _USE.get()
    if not isinstance(use.source, SyntheticSource):
        use.notes.setdefault(key, text)


def _read(name: str, seed: int, first: int, stop: int) -> None:
    """Record that ``seed`` traded bars ``[first, stop)`` of file ``name`` (decisions and their outcomes)."""
    use = _USE.get()
    if not isinstance(use.source, SyntheticSource):
        use.reads.setdefault(name, set()).add((seed, first, stop))


@contextmanager
def using(source: MarketSource | str | None) -> Iterator[MarketUse]:
    """Markets come from ``source`` (a source, or a ``--market`` value) inside the block; None keeps
    the active one. Yields the block's :class:`MarketUse` (its notes fill in as scenarios run)."""
    src = active() if source is None else parse(source) if isinstance(source, str) else source
    token = _USE.set(MarketUse(src))
    try:
        yield _USE.get()
    finally:
        _USE.reset(token)


_LOADED: dict[tuple[Any, ...], CsvSource] = {}


def parse(spec: str) -> MarketSource:
    """``synthetic`` or ``csv:PATH[,PATH...]`` -> a source; files are loaded once per process (until they
    change). Raises :class:`MarketDataError` with one line for a bad value or a bad file."""
    spec = spec.strip()
    if spec == "synthetic":
        return SYNTHETIC
    kind, sep, rest = spec.partition(":")
    if kind != "csv" or not sep:
        raise MarketDataError(f"--market must be 'synthetic' or 'csv:PATH[,PATH...]', not {spec!r}")
    paths = [Path(p.strip()).expanduser() for p in rest.split(",") if p.strip()]
    if not paths:
        raise MarketDataError("--market csv: names no file (csv:PATH[,PATH...])")
    if len({p.resolve() for p in paths}) != len(paths):
        raise MarketDataError(f"--market {spec}: a file is named twice")
    key = tuple((str(p.resolve()), *(_stamp(p))) for p in paths)
    if key not in _LOADED:
        _LOADED[key] = CsvSource(paths)
    return _LOADED[key]


def _stamp(p: Path) -> tuple[int, int]:
    try:
        st = p.stat()
    except OSError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


__all__ = [
    "HELD_OUT_SEED",
    "HELD_OUT_SHARE",
    "SYNTHETIC",
    "CsvSource",
    "MarketDataError",
    "MarketSource",
    "MarketUse",
    "SyntheticSource",
    "active",
    "note",
    "parse",
    "using",
]
