"""The market source: synthetic by default (figures unchanged), or windows of real OHLCV files.

Real files come from matplotlib's sample data (tests/realdata.py): Google daily bars, Microsoft's
three months, Stocks.csv month-start closes, and a synthetic hourly series with closures.
"""

from __future__ import annotations

import numpy as np
import pytest

from scenarios.base import HELD_OUT, SYMBOLS, market_decisions, phased_decisions
from swarm.learning.episodes import interleave
from swarm.market import MarketConfig, MarketDataError, compute_features, generate_market, load_ohlcv
from swarm.learning import markets as ms
from swarm.market.features import WARMUP
from swarm.agent import agent_decisions
from swarm.specs import AgentSpec, SwarmConfig
from tests import realdata


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("prices")
    return {"goog": realdata.goog(d), "msft": realdata.msft(d), "ibm": realdata.stock(d, "IBM"),
            "gspc": realdata.stock(d, "^GSPC"), "hourly": realdata.hourly(d)}


@pytest.fixture(scope="module")
def goog(files):
    return ms.parse(f"csv:{files['goog']}")


def _bars(decisions):
    return [d.context.bar for d in decisions]


def test_held_out_seed_is_the_harness_convention():
    assert ms.HELD_OUT_SEED == HELD_OUT


def test_synthetic_is_the_default_and_unchanged():
    assert ms.active() is ms.SYNTHETIC
    want = interleave(generate_market(MarketConfig(n_bars=300), 7, SYMBOLS))
    got = market_decisions(7, 300)
    assert [(d.context.symbol, d.context.bar, d.regime) for d in got] == \
        [(d.context.symbol, d.context.bar, d.regime) for d in want]
    assert all(np.array_equal(a.pnl, b.pnl) for a, b in zip(got, want))


def test_csv_decisions_come_from_the_file_with_unknown_regime(files, goog):
    path = load_ohlcv(files["goog"])
    with ms.using(goog):
        got = market_decisions(0, 400)
    assert got and {d.regime for d in got} == {-1}
    assert {d.context.symbol for d in got} == set(SYMBOLS)
    # every context is the file's own features at some bar of the seed's window
    start, stop, _ = goog.window(0, 0, SYMBOLS, 400)
    feats = compute_features(path.window(start, stop))
    for d in got:
        assert np.allclose(d.context.features, feats[d.context.bar], equal_nan=True)


def test_seeds_pick_different_windows_deterministically(goog):
    with ms.using(goog):
        a, b, c = market_decisions(0, 150), market_decisions(0, 150), market_decisions(1, 150)
    assert [x.pnl.tolist() for x in a] == [x.pnl.tolist() for x in b]
    assert [x.pnl.tolist() for x in a] != [x.pnl.tolist() for x in c]
    starts = {goog.window(0, s, SYMBOLS, 150)[0] for s in range(10)}
    assert len(starts) == 10


def test_agents_and_symbols_see_different_stretches(goog):
    cfg = SwarmConfig(episodes=3)
    with ms.using(goog):
        hub = agent_decisions(AgentSpec("hub", market_seed=0), cfg)
        spoke = agent_decisions(AgentSpec("spoke", market_seed=1), cfg)
        worker_a = agent_decisions(AgentSpec("a", symbols=("AAA",)), cfg)
        worker_b = agent_decisions(AgentSpec("b", symbols=("BBB",)), cfg)
    assert len(hub) == cfg.trades and {d.regime for d in hub} == {-1}
    assert [d.pnl.tolist() for d in hub] != [d.pnl.tolist() for d in spoke]
    assert [d.pnl.tolist() for d in worker_a] != [d.pnl.tolist() for d in worker_b]


def test_symbols_sharing_a_file_take_turns_and_never_trade_the_same_bar(files):
    two = ms.CsvSource([files["ibm"], files["gspc"]])
    with ms.using(two):
        got = market_decisions(3, 120, symbols=("AAA", "BBB", "CCC", "DDD"))
    by = {s: _bars([d for d in got if d.context.symbol == s]) for s in ("AAA", "BBB", "CCC", "DDD")}
    # AAA and CCC read ibm.csv, BBB and DDD gspc.csv: on one file the turns alternate, bars never repeat
    for x, y in (("AAA", "CCC"), ("BBB", "DDD")):
        assert by[x] and by[y] and not set(by[x]) & set(by[y])
        assert sorted(by[x] + by[y]) == sorted(set(by[x] + by[y]))
    assert _bars(got) == sorted(_bars(got))


def test_held_out_seeds_read_only_the_last_quarter(goog):
    n = len(goog.series[0])
    cut = n - round(ms.HELD_OUT_SHARE * n)
    for seed in range(5):
        start, stop, _ = goog.window(0, seed, SYMBOLS, 200)
        assert stop <= cut  # a training window's trades end before the held-out part
        start, stop, _ = goog.window(0, seed + HELD_OUT, SYMBOLS, 200)
        assert start >= cut - WARMUP and stop <= n  # held-out decisions (bar >= WARMUP) are past the cut
        assert start + WARMUP >= cut


def test_short_data_gives_fewer_decisions_and_says_so(files):
    src = ms.parse(f"csv:{files['msft']}")
    with ms.using(src) as use:
        got = market_decisions(0, 2500)
    assert 0 < len(got) < 10
    assert any("fewer decisions" in n for n in use.notes.values())
    assert use.describe()["market"] == "csv:msft.csv"


def test_seeds_that_share_bars_are_flagged(goog):
    with ms.using(goog) as use:
        market_decisions(0, 2500)
        market_decisions(HELD_OUT, 2500)  # held out: a disjoint part of the file
    assert use.shared() == [] and not any("overlapping" in n for n in use.describe()["market_detail"]["notes"])
    with ms.using(goog) as use:
        market_decisions(0, 2500)
        market_decisions(1000, 2500)  # a pack's market: on a short file, the same bars
    assert use.shared() == [("goog.csv", 0, 1000)]
    assert any("seeds 0 and 1000" in n for n in use.describe()["market_detail"]["notes"])


def test_phases_are_consecutive_stretches_of_real_data(goog):
    phases = [(MarketConfig(regime_mix=(1, 1, 0, 0)), 30), (MarketConfig(regime_mix=(0, 0, 1, 1)), 30)]
    with ms.using(goog) as use:
        a, b = phased_decisions(0, phases, start=100.0)
    assert len(a) == 30 and len(b) == 30
    assert a[-1].context.time <= b[0].context.time and a[0].context.time >= 100.0
    assert "phases" in use.notes and "do not apply" in use.notes["phases"]
    with ms.using(ms.parse(f"csv:{goog.files[0]}")):  # too much asked: each phase gets its share
        a, b = phased_decisions(0, [(MarketConfig(), 500), (MarketConfig(), 1500)])
    assert 0 < len(a) < len(b) < 1500


def test_hourly_file_with_closures_trades_and_annualises_by_its_spacing(files):
    src = ms.parse(f"csv:{files['hourly']}")
    assert src.series[0].bars_per_year == 252 * 7
    with ms.using(src):
        got = market_decisions(0, 200)
    assert got and {d.regime for d in got} == {-1}
    vix = np.array([d.context.features[-1] for d in got])
    assert 5 < np.median(vix) < 20  # 0.4% an hour is ~17% a year on 1764 bars a year, not ~6% on 252
    from swarm.learning.summary import Scoring
    assert Scoring().periods_per_year == 252 / 10  # the synthetic market's clock outside the block
    with ms.using(src):
        assert Scoring().periods_per_year == 252 * 7 / 10  # Sharpe annualises by the file's own bars


def test_bad_values_are_one_line_errors(tmp_path, files):
    with pytest.raises(MarketDataError, match=r"^--market must be 'synthetic' or 'csv:PATH\[,PATH\.\.\.\]', not 'bogus'$"):
        ms.parse("bogus")
    with pytest.raises(MarketDataError, match="names no file"):
        ms.parse("csv:")
    bad = tmp_path / "bad.csv"
    bad.write_text("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,100\n2024-01-03,1,2,0.5,oops,100\n")
    with pytest.raises(MarketDataError) as err:
        ms.parse(f"csv:{bad}")
    assert str(err.value) == "bad.csv line 3: close is not a number ('oops')"
    with pytest.raises(MarketDataError, match="no such file"):
        ms.parse(f"csv:{tmp_path / 'missing.csv'}")
    short = tmp_path / "short.csv"
    rows = load_ohlcv(files["msft"])
    lines = files["msft"].read_text().splitlines()
    short.write_text("\n".join(lines[:40]) + "\n")
    assert len(rows) > ms.CsvSource.min_bars() > 39
    with pytest.raises(MarketDataError, match=r"^short.csv: 39 bars are too few"):
        ms.parse(f"csv:{short}")


def test_files_load_once(files):
    a = ms.parse(f"csv:{files['goog']}")
    assert ms.parse(f" csv:{files['goog']} ") is a


def test_using_nests_and_restores():
    src = ms.SyntheticSource()
    with ms.using(src):
        assert ms.active() is src
        with ms.using(None):
            assert ms.active() is src
    assert ms.active() is ms.SYNTHETIC
