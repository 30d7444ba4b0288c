"""PNG charts for the comparison report (matplotlib, headless).

Each chart function takes the run's metrics documents (schema v2, see :mod:`reports.aggregate`)
and a path, writes one PNG and returns its path, or returns None when there is nothing to draw.
The ``*_rows``/``sharpe_order``/``split_convergence`` helpers are pure: they pick and order what
a chart draws, so tests can check the ordering without reading pixels.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .aggregate import is_figure

Doc = dict[str, Any]
#: Baselines drawn beside each pattern's Sharpe bar: (name in the metrics file, legend label, marker).
SHARPE_BASELINES = (("best-fixed", "best fixed", "D"), ("no-memory", "no-memory", "s"),
                    ("contextual-bandit", "VW bandit", "^"), ("regime-rule", "regime rule", "v"))
# qualitative: one colour per legend entry. The stubs type get_cmap() as the base Colormap (tab10 is a
# ListedColormap, whose colors are a tuple of RGB tuples).
PALETTE: tuple[tuple[float, float, float], ...] = plt.get_cmap("tab10").colors  # type: ignore[attr-defined]
LEARNER = PALETTE[0]
#: How a pattern without a Sharpe bar is marked: label -> (marker, colour).
NO_BAR = {"not measured": ("o", PALETTE[5]), "crashed": ("X", PALETTE[7])}
SMOOTH = 3  # episodes in the rolling mean of a learning curve


# ---- small helpers ---------------------------------------------------------------------------

def _mean(x: Any) -> float | None:
    """A figure's mean or a bare finite number; None otherwise."""
    v = x["mean"] if is_figure(x) else x
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def _ci(x: Any) -> tuple[float, float] | None:
    """A figure's 95% interval, or None (one seed, or not a figure)."""
    if is_figure(x) and x["ci_low"] is not None and x["ci_high"] is not None:
        return float(x["ci_low"]), float(x["ci_high"])
    return None


def _floats(xs: Sequence[Any], scale: float = 1.0) -> np.ndarray:
    """A list with None in it as floats (None -> NaN), times ``scale``."""
    return np.array([np.nan if v is None else float(v) * scale for v in xs], dtype=float)


def _rolling(y: np.ndarray, k: int = SMOOTH) -> np.ndarray:
    """Centred rolling mean over ``k`` points, ignoring NaN (a point with no data stays NaN)."""
    out = np.full(y.shape, np.nan)
    for i in range(y.size):
        w = y[max(0, i - k // 2): i + k // 2 + 1]
        w = w[np.isfinite(w)]
        if w.size and np.isfinite(y[i]):
            out[i] = w.mean()
    return out


def _round_ticks(axis: Any) -> None:
    """Tick labels rounded: whole numbers from 100 up, else at most three significant digits."""
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"))


def _seeds_text(counts: Sequence[int]) -> str:
    """"3 seeds", "1 seed" or "1-3 seeds"."""
    lo, hi = min(counts), max(counts)
    n = str(lo) if lo == hi else f"{lo}-{hi}"
    return f"{n} seed" + ("" if n == "1" else "s")


def _scoring(doc: Doc) -> dict[str, Any]:
    """The run's scoring settings (target, window, trades per episode), or {}."""
    s = (doc.get("config") or {}).get("scoring")
    return s if isinstance(s, dict) else {}


def _outside_legend(ax: Any, handles: list[Any]) -> None:
    """One legend to the right of the plot, so it never hides a row."""
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _save(fig: Any, path: Path) -> Path:
    """Write the figure as a PNG and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- learning curves -------------------------------------------------------------------------

class Curve(NamedTuple):
    pattern: str
    mean: np.ndarray  # bp per decision, per episode
    low: np.ndarray | None  # 95% band (None with one seed)
    high: np.ndarray | None
    seeds: int


def curve_rows(docs: Sequence[Doc]) -> list[Curve]:
    """Each pattern's regret-per-decision curve in bp (patterns without a numeric one are left out)."""
    rows = []
    for d in docs:
        s = (d.get("series") or {}).get("episode_regret")
        if not isinstance(s, dict) or not isinstance(s.get("mean"), list):
            continue
        mean = _floats(s["mean"], 1e4)
        if not np.isfinite(mean).any():
            continue
        seeds = max([n for n in s.get("n") or [] if isinstance(n, int)] or [1])
        low = high = None
        if seeds >= 2 and isinstance(s.get("ci_low"), list) and isinstance(s.get("ci_high"), list):
            low, high = _floats(s["ci_low"], 1e4), _floats(s["ci_high"], 1e4)
        rows.append(Curve(d["pattern"], mean, low, high, seeds))
    return rows


def learning_curves(docs: Sequence[Doc], path: Path) -> Path | None:
    """Small multiples: regret per decision (bp) by episode per pattern, mean line and 95% band."""
    rows = curve_rows(docs)
    if not rows:
        return None
    ncols = min(4, len(rows))
    nrows = math.ceil(len(rows) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.5 * nrows + 0.6), sharey=True, squeeze=False)
    varied = len({c.seeds for c in rows}) > 1
    for ax, c in zip(axes.flat, rows):
        x = np.arange(1, c.mean.size + 1)
        if c.low is not None and c.high is not None:
            ax.fill_between(x, _rolling(c.low), _rolling(c.high), color=LEARNER, alpha=0.25, linewidth=0)
        ax.plot(x, _rolling(c.mean), color=LEARNER, linewidth=1.5)
        ax.set_title(c.pattern + (f" ({_seeds_text([c.seeds])})" if varied else ""), fontsize=8)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, nbins=5))
        _round_ticks(ax.yaxis)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("regret (bp / decision)", fontsize=8)
    for i, ax in enumerate(axes.flat[:len(rows)]):
        if i + ncols >= len(rows):  # no panel below this one
            ax.set_xlabel("episode", fontsize=8)
    fig.suptitle(f"Regret to the hindsight oracle per decision: mean over {_seeds_text([c.seeds for c in rows])}"
                 f" (rolling mean of {SMOOTH} episodes), band = 95% CI", fontsize=9)
    return _save(fig, path)


# ---- Sharpe beside the baselines -------------------------------------------------------------

class SharpeRow(NamedTuple):
    pattern: str
    mean: float | None  # None: crashed or not measured (drawn as a marker, not a bar)
    ci: tuple[float, float] | None
    crashed: bool
    baselines: dict[str, float]  # baseline name -> Sharpe mean


def sharpe_order(docs: Sequence[Doc]) -> list[SharpeRow]:
    """Patterns top to bottom: highest Sharpe first, then unmeasured, then crashed."""
    rows = []
    for d in docs:
        crashed = d.get("status") == "crashed"
        sharpe = (d.get("trading") or {}).get("sharpe_ratio")
        base = {}
        for name, _, _ in SHARPE_BASELINES:
            b = (d.get("baselines") or {}).get(name)
            v = _mean(b.get("sharpe_ratio")) if isinstance(b, dict) else None
            if v is not None:
                base[name] = v
        mean = None if crashed else _mean(sharpe)
        rows.append(SharpeRow(d["pattern"], mean, None if mean is None else _ci(sharpe), crashed, base))
    return sorted(rows, key=lambda r: (r.crashed, r.mean is None, -(r.mean or 0.0)))


def sharpe_bars(docs: Sequence[Doc], path: Path) -> Path | None:
    """Horizontal Sharpe bars sorted by value, 95% CI, baselines as markers on each row."""
    rows = sharpe_order(docs)
    if not any(r.mean is not None or r.crashed or r.baselines for r in rows):
        return None
    fig, ax = plt.subplots(figsize=(10.5, 1.6 + 0.42 * len(rows)))
    ys = np.arange(len(rows))[::-1]  # first row on top
    legend: dict[str, Any] = {}
    for y, r in zip(ys, rows):
        if r.mean is not None:
            err = None if r.ci is None else [[r.mean - r.ci[0]], [r.ci[1] - r.mean]]
            ax.barh(y, r.mean, height=0.6, color=LEARNER, alpha=0.8, xerr=err, capsize=3,
                    error_kw={"elinewidth": 1, "ecolor": "black"})
            legend["pattern"] = Patch(color=LEARNER, alpha=0.8, label="pattern\n(bar: mean, whisker: 95% CI)")
        else:
            label = "crashed" if r.crashed else "not measured"
            marker, colour = NO_BAR[label]
            ax.plot(0, y, marker=marker, color=colour, markersize=9, linestyle="none", zorder=3)
            ax.annotate(label, (0, y), xytext=(8, 0), textcoords="offset points", va="center", fontsize=8,
                        color=colour)
            legend[label] = Line2D([], [], marker=marker, color=colour, linestyle="none", label=label)
        for i, (name, label, marker) in enumerate(SHARPE_BASELINES):
            if name in r.baselines:
                colour = PALETTE[i + 1]
                ax.plot(r.baselines[name], y, marker=marker, color=colour, markeredgecolor="black",
                        markeredgewidth=0.5, markersize=7, linestyle="none", zorder=4)
                legend[name] = Line2D([], [], marker=marker, color=colour, markeredgecolor="black",
                                      markeredgewidth=0.5, linestyle="none", label=label)
    order = ["pattern", *(n for n, _, _ in SHARPE_BASELINES), "not measured", "crashed"]
    _outside_legend(ax, [legend[k] for k in order if k in legend])
    ax.axvline(0, color="black", linewidth=0.7)
    ax.set_yticks(ys, [r.pattern for r in rows], fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    _round_ticks(ax.xaxis)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("annualised Sharpe ratio of the swarm's trades")
    seeds = [len(d.get("seeds") or []) or 1 for d in docs]
    ax.set_title(f"Risk-adjusted return beside the baselines (mean over {_seeds_text(seeds)}, sorted)", fontsize=10)
    return _save(fig, path)


# ---- convergence -----------------------------------------------------------------------------

class Reached(NamedTuple):
    pattern: str
    mean: float  # mean episode over the seeds that reached the target
    ci: tuple[float, float] | None
    reached: int  # seeds that reached it
    seeds: int  # seeds with a result


def _conv(doc: Doc) -> Any:
    """The combined convergence episode (either key name), or None."""
    lr = doc.get("learning") or {}
    return lr.get("convergence_episodes", lr.get("convergence_episode"))


def _is_int(x: Any) -> bool:
    """Whether ``x`` is a finite episode number (not a bool, not "not reached")."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def split_convergence(docs: Sequence[Doc]) -> tuple[list[Reached], list[str]]:
    """(patterns that reached the target, fastest first; patterns no seed of which reached it)."""
    reached, missed = [], []
    for d in docs:
        c = _conv(d)
        if is_figure(c) and c["mean"] is not None:
            reached.append(Reached(d["pattern"], float(c["mean"]), _ci(c), c["n"], c["n"]))
        elif _is_int(c):
            reached.append(Reached(d["pattern"], float(c), None, 1, 1))
        elif c == "not reached":
            missed.append(d["pattern"])
        elif isinstance(c, dict) and isinstance(c.get("per_seed"), list):
            ints = [float(v) for v in c["per_seed"] if _is_int(v)]
            if ints:
                reached.append(Reached(d["pattern"], float(np.mean(ints)), None, len(ints), len(c["per_seed"])))
            else:
                missed.append(d["pattern"])
    return sorted(reached, key=lambda r: (r.mean, r.pattern)), missed


def _target_text(docs: Sequence[Doc]) -> str:
    """The convergence rule from the runs' scoring settings (several when patterns differ)."""
    rules = sorted({(s.get("target"), s.get("window")) for s in map(_scoring, docs) if s.get("target") is not None},
                   key=str)
    if not rules:
        return "rolling accuracy reaches the run's target"
    text = " or ".join(f"{t:g}" for t, _ in rules)
    windows = {w for _, w in rules if w is not None}
    over = f" over {windows.pop()} episodes" if len(windows) == 1 else ""
    return f"rolling accuracy{over} >= {text}" + (" (per pattern's settings)" if len(rules) > 1 else "")


def _episodes(doc: Doc) -> int:
    """Episodes per seed in the run (0 when unknown)."""
    b = (doc.get("budget") or {}).get("episodes")
    if isinstance(b, int):
        return b
    s = (doc.get("series") or {}).get("episode_accuracy")
    return len(s["mean"]) if isinstance(s, dict) and isinstance(s.get("mean"), list) else 0


def convergence(docs: Sequence[Doc], path: Path) -> Path | None:
    """Episodes to reach the accuracy target, sorted; "not reached" as a marker, partial seeds annotated."""
    reached, missed = split_convergence(docs)
    if not reached and not missed:
        return None
    n = len(reached) + len(missed)
    runs = {d["pattern"]: _episodes(d) for d in docs}
    edge = max([r.ci[1] if r.ci else r.mean for r in reached], default=0.0) * 1.2
    edge = edge or max([*runs.values(), 1])  # nothing reached: the axis spans the longest run
    fig, ax = plt.subplots(figsize=(10.5, 1.4 + 0.42 * n))
    ys = np.arange(n)[::-1]
    legend: dict[str, Any] = {}
    for y, r in zip(ys, reached):
        full = r.reached == r.seeds
        err = None if r.ci is None else [[r.mean - r.ci[0]], [r.ci[1] - r.mean]]
        ax.barh(y, r.mean, height=0.6, color=LEARNER if full else PALETTE[1], xerr=err, capsize=3,
                hatch=None if full else "//", edgecolor="white", error_kw={"elinewidth": 1, "ecolor": "black"})
        key = "all" if full else "some"
        legend[key] = Patch(facecolor=LEARNER if full else PALETTE[1], hatch=None if full else "//",
                            edgecolor="white", label="every seed reached it\n(mean, 95% CI)" if full
                            else "some seeds reached it\n(mean of those)")
        note = f"{r.mean:.3g}" + ("" if full else f"  ({r.reached}/{r.seeds} seeds reached)")
        ax.annotate(note, (r.ci[1] if r.ci else r.mean, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=7)
    for y, name in zip(ys[len(reached):], missed):
        ax.plot(edge, y, marker="x", color=PALETTE[3], markersize=9, markeredgewidth=2, linestyle="none",
                clip_on=False, zorder=3)
        within = f" in {runs[name]} episodes" if runs.get(name) else ""
        ax.annotate(f"not reached{within}", (edge, y), xytext=(-9, 0), textcoords="offset points", ha="right",
                    va="center", fontsize=7, color=PALETTE[3])
        legend["missed"] = Line2D([], [], marker="x", color=PALETTE[3], markeredgewidth=2, linestyle="none",
                                  label="no seed reached it\n(marker at the axis edge)")
    _outside_legend(ax, [legend[k] for k in ("all", "some", "missed") if k in legend])
    ax.set_yticks(ys, [r.pattern for r in reached] + missed, fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(0, edge)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    _round_ticks(ax.xaxis)
    ax.grid(axis="x", alpha=0.3)
    per = {s.get("trades_per_episode") for s in map(_scoring, docs)} - {None}
    ax.set_xlabel("episode" + (f" ({per.pop()} trades each)" if len(per) == 1 else ""))
    ax.set_title(f"Convergence: first episode where {_target_text(docs)} (sorted, fastest on top)", fontsize=10)
    return _save(fig, path)


# ---- sync latency ----------------------------------------------------------------------------

class Latency(NamedTuple):
    pattern: str
    p50: float
    p99: float | None
    p50_ci: tuple[float, float] | None
    p99_ci: tuple[float, float] | None
    clock: str  # "virtual", "wall", or "" when not recorded


def sync_rows(docs: Sequence[Doc]) -> list[Latency]:
    """Patterns with a measured sync latency, fastest p50 first."""
    rows = []
    for d in docs:
        s = (d.get("performance") or {}).get("sync_latency_ms")
        if not isinstance(s, dict) or (p50 := _mean(s.get("p50"))) is None:
            continue
        raw_clock = s.get("clock")
        clock = raw_clock if isinstance(raw_clock, str) else ""
        rows.append(Latency(d["pattern"], p50, _mean(s.get("p99")), _ci(s["p50"]), _ci(s.get("p99")), clock))
    return sorted(rows, key=lambda r: (r.p50, r.pattern))


def _unit(clocks: set[str]) -> str:
    """The latency unit for the clocks drawn: virtual ms, wall ms, or a mixed-clock note."""
    if clocks == {"virtual"}:
        return "virtual ms"
    return "ms" if clocks == {"wall"} else "ms, virtual or wall clock as labelled"


def sync_latency(docs: Sequence[Doc], path: Path) -> Path | None:
    """p50 and p99 pattern sync latency per pattern, sorted by p50, in the clock's unit."""
    rows = sync_rows(docs)
    if not rows:
        return None
    clocks = {r.clock for r in rows}
    mixed = len(clocks) > 1
    fig, ax = plt.subplots(figsize=(10.5, 1.4 + 0.42 * len(rows)))
    ys = np.arange(len(rows))[::-1]
    marks = (("p50", "o", PALETTE[0]), ("p99", "^", PALETTE[3]))
    for y, r in zip(ys, rows):
        if r.p99 is not None:
            ax.plot([r.p50, r.p99], [y, y], color="#bbbbbb", linewidth=1, zorder=1)
        for (_name, marker, colour), v, ci in zip(marks, (r.p50, r.p99), (r.p50_ci, r.p99_ci)):
            if v is None:
                continue
            err = None if ci is None else [[v - ci[0]], [ci[1] - v]]
            ax.errorbar(v, y, xerr=err, marker=marker, color=colour, markersize=7, linestyle="none", capsize=3,
                        elinewidth=1, zorder=3)
    values = [v for r in rows for v in (r.p50, r.p99) if v is not None and v > 0]
    if values and max(values) / min(values) > 50:
        ax.set_xscale("log")
    else:
        ax.set_xlim(left=0)
    _round_ticks(ax.xaxis)
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    labels = [f"{r.pattern} [{r.clock or '?'}]" if mixed else r.pattern for r in rows]
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    _outside_legend(ax, [Line2D([], [], marker=m, color=c, linestyle="none", label=f"{n}\n(95% CI over seeds)")
                         for n, m, c in marks])
    ax.set_xlabel(f"sync latency, write to arrival at a peer ({_unit(clocks)})")
    title = "Pattern sync latency, sorted by p50"
    if mixed:
        title += "\nmixed clocks: virtual ms (simulated network) and wall ms (real sockets) are not comparable"
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
