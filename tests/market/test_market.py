import numpy as np
import pytest

from swarm.market import (
    BUILT_FOR,
    FEATURE_NAMES,
    REGIMES,
    STRATEGIES,
    WARMUP,
    MarketConfig,
    MarketDataError,
    compute_features,
    generate_market,
    generate_path,
    load_ohlcv,
    TradeRules,
    trade_table,
)


def test_one_seed_one_path_and_assets_differ():
    cfg = MarketConfig(n_bars=500)
    a, b = generate_path(cfg, 7), generate_path(cfg, 7)
    assert np.array_equal(a.close, b.close) and np.array_equal(a.regime, b.regime) and np.array_equal(a.vix, b.vix)
    assert not np.array_equal(a.close, generate_path(cfg, 8).close)
    m = generate_market(cfg, 7, ("AAA", "BBB"))
    assert not np.array_equal(m["AAA"].close, m["BBB"].close)
    assert np.array_equal(m["AAA"].close, generate_market(cfg, 7, ("AAA",))["AAA"].close)


def test_regimes_persist_and_switch_as_configured():
    sticky = generate_path(MarketConfig(n_bars=20_000, persistence=0.98), 1)
    switches = np.mean(sticky.regime[1:] != sticky.regime[:-1])
    assert switches == pytest.approx(0.02, abs=0.005)
    assert set(np.unique(sticky.regime)) == set(range(len(REGIMES)))
    only = generate_path(MarketConfig(n_bars=2000, regime_mix=(0, 0, 1, 0)), 1)
    assert set(np.unique(only.regime)) == {REGIMES.index("ranging")}


def test_volatility_index_is_higher_in_the_volatile_regime():
    p = generate_path(MarketConfig(n_bars=20_000), 2)
    vol = REGIMES.index("volatile")
    assert np.nanmean(p.vix[p.regime == vol]) > 1.5 * np.nanmean(p.vix[p.regime != vol])


def test_features_use_only_the_past():
    p = generate_path(MarketConfig(n_bars=400), 3)
    full = compute_features(p)
    assert full.shape == (400, len(FEATURE_NAMES))
    assert np.isnan(full[:WARMUP]).all() and not np.isnan(full[WARMUP:]).any()
    cut = type(p)(p.symbol, p.close[:300], p.regime[:300], p.vix[:300], p.config)
    assert np.allclose(compute_features(cut)[WARMUP:], full[WARMUP:300])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_strategy_wins_in_the_regime_it_is_built_for(seed):
    p = generate_path(MarketConfig(n_bars=15_000), seed)
    x = compute_features(p)
    pnl = trade_table(x, p.log_close)
    ok = ~np.isnan(pnl).any(axis=1)
    covered = [r for regimes in BUILT_FOR.values() for r in regimes]
    assert sorted(covered) == sorted(REGIMES)  # every regime has a strategy built for it
    for strategy, regimes in BUILT_FOR.items():
        for regime in regimes:
            rows = ok & (p.regime == REGIMES.index(regime))
            means = pnl[rows].mean(axis=0)
            assert STRATEGIES[int(np.argmax(means))] == strategy, (regime, dict(zip(STRATEGIES, means)))


def test_trades_follow_their_exit_rules():
    # a hand-made path: flat history, then +1% a bar for 3 bars, then -2% a bar
    lp = np.log(100.0) + np.concatenate([np.zeros(30), np.cumsum([0.01] * 3 + [-0.02] * 7)])
    x = np.zeros((lp.size, len(FEATURE_NAMES)))
    f = {n: i for i, n in enumerate(FEATURE_NAMES)}
    x[:, f["ret_20"]] = 0.05      # momentum: long
    x[:, f["zscore"]] = 1.0       # mean reversion: short, target 2 * 1 * sigma = 0.02 down
    x[:, f["channel"]] = 1.5      # breakout: long
    x[:, f["volatility"]] = 0.01  # trailing stop 1 sigma = 0.01
    rules = TradeRules(horizon=10, round_trip_cost=0.001)
    t = trade_table(x, lp, rules)[29]  # enter at bar 29, the last flat bar
    path = lp[29:40] - lp[29]
    assert t[0] == pytest.approx(path[10] - 0.001)               # momentum holds 10 bars
    # short: path is +.01 +.02 +.03 +.01 -.01 -.03: the fall reaches 0.02 below entry at bar 6
    assert t[1] == pytest.approx(0.03 - 0.001) and -path[6] >= 0.02 > -path[5]
    # long breakout: best +0.03 at bar 3, the retrace exceeds 0.01 at bar 4 (0.02 off the best)
    assert t[2] == pytest.approx(path[4] - 0.001)
    assert t[3] == 0.0
    assert np.isnan(trade_table(x, lp, rules)[-5:]).all()  # horizon runs past the end


def _csv(tmp_path, rows, header="date,open,high,low,close,volume"):
    path = tmp_path / "prices.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


GOOD = [f"2024-01-{d:02d},{100 + d},{101 + d},{99 + d},{100.5 + d},1000" for d in range(1, 29)]


def test_csv_loads_valid_data(tmp_path):
    p = load_ohlcv(_csv(tmp_path, GOOD), symbol="SPY")
    assert p.symbol == "SPY" and len(p) == 28 and p.close[0] == 101.5
    assert (p.regime == -1).all() and np.isfinite(p.vix).all()


@pytest.mark.parametrize("rows, header, needle", [
    (GOOD, "date,open,high,low,volume", "line 1: missing column(s) close"),
    (GOOD[:5] + ["2024-01-06,106,107,105,,1000"] + GOOD[6:], None, "line 7: close is empty or NaN"),
    (GOOD[:5] + ["2024-01-06,106,107,105,abc,1000"] + GOOD[6:], None, "line 7: close is not a number"),
    (GOOD[:5] + ["2024-01-06,106,107,105,NaN,1000"] + GOOD[6:], None, "line 7: close is empty or NaN"),
    (GOOD[:5] + ["2024-01-06,106,107,105,-3,1000"] + GOOD[6:], None, "line 7: close must be > 0"),
    (GOOD[:5] + ["2024-01-06,106,100,105,106,1000"] + GOOD[6:], None, "line 7: high/low do not bracket"),
    (GOOD[:5] + ["2024-01-03,106,107,105,106,1000"] + GOOD[6:], None, "line 7: date is earlier"),
    (GOOD[:5] + ["2024-01-05,106,107,105,106,1000"] + GOOD[6:], None, "line 7: repeats the previous row's date"),
    (GOOD[:5] + ["not-a-date,106,107,105,106,1000"] + GOOD[6:], None, "line 7: date 'not-a-date' is not a date"),
    (GOOD[:5] + ["2024-03-06,106,107,105,106,1000"], None, "line 7: gap of"),
])
def test_csv_errors_name_file_line_and_problem(tmp_path, rows, header, needle):
    path = _csv(tmp_path, rows, header or "date,open,high,low,close,volume")
    with pytest.raises(MarketDataError) as err:
        load_ohlcv(path)
    msg = str(err.value)
    assert msg.startswith("prices.csv") and needle in msg and "\n" not in msg


def test_csv_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(MarketDataError, match="empty.csv: empty file"):
        load_ohlcv(empty)
    with pytest.raises(MarketDataError, match="no such file"):
        load_ohlcv(tmp_path / "nope.csv")
