"""The report's charts: each writes a PNG from synthetic metrics documents, or None with nothing to draw,
and the pure helpers behind them order and split patterns as the charts promise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reports import charts
from reports.aggregate import combine, combine_series

SCORING = {"target": 0.65, "window": 4, "trades_per_episode": 10}


def doc(pattern: str, seeds: int = 3, *, sharpe: list[float] | None = None, conv: list[Any] | None = None,
        clock: str | None = "virtual", p50: float = 100.0, status: str = "passed", regret: bool = True,
        episodes: int = 12) -> dict[str, Any]:
    """A metrics document as reports.aggregate would write it, from made-up per-seed values."""
    sharpe = sharpe or [1.0 + 0.1 * i for i in range(seeds)]
    conv = conv or [3 + i for i in range(seeds)]
    runs = []
    for i in range(seeds):
        series = {"episode_accuracy": [min(1.0, 0.3 + 0.05 * e + 0.01 * i) for e in range(episodes)],
                  "lessons": ["x"] * episodes}
        if regret:
            series["episode_regret"] = [0.004 / (e + 1) + 0.0002 * i for e in range(episodes)]
        runs.append({
            "learning": {"convergence_episodes": conv[i], "regret": 0.001 + 0.0001 * i},
            "trading": {"sharpe_ratio": sharpe[i]},
            "performance": {"sync_latency_ms": None if clock is None else
                            {"p50": p50 + i, "p99": 3 * p50 + 5 * i, "clock": clock}},
            "baselines": {"best-fixed": {"sharpe_ratio": 0.5 + 0.05 * i}, "no-memory": {"sharpe_ratio": 0.2},
                          "contextual-bandit": {"sharpe_ratio": 0.8 - 0.02 * i},
                          "regime-rule": {"null_reason": "no regimes in this market"}, "oracle": {"sharpe_ratio": 4.0}},
            "series": series})
    d: dict[str, Any] = {"pattern": pattern, "status": status, "seeds": list(range(seeds)),
                         "config": {"episodes": episodes, "scoring": SCORING},
                         "budget": {"agents": 3, "episodes": episodes, "decisions": None}}
    for section in ("learning", "trading", "performance", "baselines"):
        d[section] = combine([r[section] for r in runs])
    d["series"] = combine_series([r["series"] for r in runs])
    return d


def crashed(pattern: str) -> dict[str, Any]:
    return {"pattern": pattern, "status": "crashed", "seeds": [0], "config": {}, "budget": {},
            "learning": {}, "trading": {}, "performance": {}, "baselines": {}, "series": {}}


@pytest.fixture
def docs() -> list[dict[str, Any]]:
    return [doc("mesh", sharpe=[1.4, 1.5, 1.6]),
            doc("star", seeds=1, sharpe=[2.2], conv=["not reached"], clock="virtual", p50=400.0),
            doc("ring", sharpe=[0.1, 0.3, 0.2], conv=[4, "not reached", 6], p50=50.0),
            doc("hub", sharpe=[0.9, 1.0, 1.1], conv=[6, 7, 8], regret=False, p50=250.0),
            crashed("canary")]


def png(path: Path | None) -> bool:
    return path is not None and path.exists() and path.stat().st_size > 1000 and \
        path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_synthetic_docs_have_the_shapes_the_charts_read(docs):
    assert docs[0]["learning"]["convergence_episodes"]["n"] == 3
    assert docs[1]["learning"]["convergence_episodes"] == "not reached"
    assert docs[2]["learning"]["convergence_episodes"] == {"per_seed": [4, "not reached", 6]}
    assert docs[1]["series"]["episode_regret"]["ci_low"][0] is None
    assert docs[0]["performance"]["sync_latency_ms"]["clock"] == "virtual"


def test_every_chart_writes_a_png(docs, tmp_path):
    for name in ("learning_curves", "sharpe_bars", "convergence", "sync_latency"):
        assert png(getattr(charts, name)(docs, tmp_path / f"{name}.png")), name


def test_nothing_to_draw_gives_none_and_no_file(tmp_path):
    empty = [crashed("canary")]
    for fn in (charts.learning_curves, charts.convergence, charts.sync_latency):
        assert fn(empty, tmp_path / "x.png") is None
        assert fn([], tmp_path / "x.png") is None
    assert charts.sharpe_bars([], tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()
    # a pattern without regret or sync figures draws nothing in those charts
    bare = [doc("hub", regret=False, clock=None)]
    assert charts.learning_curves(bare, tmp_path / "l.png") is None
    assert charts.sync_latency(bare, tmp_path / "s.png") is None


def test_a_crashed_pattern_alone_is_still_shown_in_the_sharpe_chart(tmp_path):
    assert png(charts.sharpe_bars([crashed("canary")], tmp_path / "s.png"))


def test_sharpe_rows_are_sorted_by_value_with_crashed_last(docs):
    rows = charts.sharpe_order(docs)
    assert [r.pattern for r in rows] == ["star", "mesh", "hub", "ring", "canary"]
    assert rows[-1].crashed and rows[-1].mean is None
    assert rows[0].ci is None and rows[1].ci is not None and rows[1].ci[0] < 1.5 < rows[1].ci[1]
    # null baselines and the oracle are not drawn; the others are, by mean
    assert set(rows[1].baselines) == {"best-fixed", "no-memory", "contextual-bandit"}
    assert rows[1].baselines["best-fixed"] == pytest.approx(0.55)


def test_convergence_splits_reached_from_not_reached(docs):
    reached, missed = charts.split_convergence(docs)
    assert missed == ["star"]  # no bar for a pattern no seed of which reached the target
    assert [r.pattern for r in reached] == ["mesh", "ring", "hub"]  # fastest first
    ring = reached[1]
    assert (ring.mean, ring.reached, ring.seeds, ring.ci) == (5.0, 2, 3, None)
    assert reached[0].reached == reached[0].seeds == 3 and reached[0].mean == 4.0


def test_convergence_title_uses_the_runs_target(docs):
    assert "0.65" in charts._target_text(docs) and "4 episodes" in charts._target_text(docs)
    assert "0.7" not in charts._target_text(docs)
    assert charts._target_text([crashed("canary")]) == "rolling accuracy reaches the run's target"


def test_sync_rows_sorted_by_p50_and_unit_follows_the_clock(docs, tmp_path):
    rows = charts.sync_rows(docs)
    assert [r.pattern for r in rows] == ["ring", "mesh", "hub", "star"]
    assert charts._unit({"virtual"}) == "virtual ms" and charts._unit({"wall"}) == "ms"
    assert "virtual or wall clock" in charts._unit({"virtual", "wall"})
    mixed = docs + [doc("quic-mesh", clock="wall", p50=3.0)]
    assert [r.clock for r in charts.sync_rows(mixed)][0] == "wall"
    assert png(charts.sync_latency(mixed, tmp_path / "mixed.png"))
    assert png(charts.sync_latency([doc("quic-mesh", clock="wall", p50=3.0)], tmp_path / "wall.png"))


def test_learning_curves_band_only_with_several_seeds(docs):
    rows = {c.pattern: c for c in charts.curve_rows(docs)}
    assert set(rows) == {"mesh", "star", "ring"}  # hub has no episode_regret, canary crashed
    assert rows["star"].low is None and rows["mesh"].low is not None
    assert rows["mesh"].mean[0] == pytest.approx(42.0)  # bp: 0.004 + mean(0, 2, 4) * 1e-4


def test_rolling_mean_is_centred_and_skips_gaps():
    import numpy as np
    y = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    out = charts._rolling(y, 3)
    assert out[0] == 1.5 and out[1] == 2.0 and out[2] == 2.5 and np.isnan(out[3]) and out[4] == 5.0
