"""Real exports: pandas' unnamed date column, market closures versus holes, intraday annualisation."""

import numpy as np
import pandas as pd
import pytest

from swarm.market import BARS_PER_YEAR, MarketDataError, load_ohlcv

HOURS = [f"{h:02d}:30" for h in range(9, 16)]  # a 09:30-15:30 session: 7 hourly bars


def _frame(index: pd.DatetimeIndex, seed: int = 0) -> pd.DataFrame:
    """Valid OHLCV bars on ``index`` (a random walk, so the volatility index is not constant)."""
    close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, len(index))))
    return pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                         "volume": 1000.0}, index=index)


def _hourly(days: pd.DatetimeIndex, tz: str = "America/New_York") -> pd.DatetimeIndex:
    stamps = [f"{d.date()} {h}" for d in days for h in HOURS]
    return pd.DatetimeIndex(pd.to_datetime(stamps)).tz_localize(tz)


def _lines(path) -> list[str]:
    return path.read_text().splitlines()


def _bdays(start: str, end: str, holidays: tuple[str, ...] = ()) -> pd.DatetimeIndex:
    days = pd.bdate_range(start, end)
    return days[~days.isin(pd.to_datetime(list(holidays)))]


def test_pandas_unnamed_date_column_loads(tmp_path):
    path = tmp_path / "spy.csv"
    _frame(_bdays("2024-01-02", "2024-02-29")).to_csv(path)
    assert _lines(path)[0] == ",open,high,low,close,volume"
    p = load_ohlcv(path)
    assert p.symbol == "SPY" and len(p) == len(_bdays("2024-01-02", "2024-02-29"))


def test_header_one_cell_short_takes_the_first_column_as_dates(tmp_path):
    path = tmp_path / "spy.csv"
    _frame(_bdays("2024-01-02", "2024-01-31")).to_csv(path)
    lines = _lines(path)
    path.write_text("\n".join([lines[0].lstrip(","), *lines[1:]]) + "\n")
    assert len(load_ohlcv(path)) == len(lines) - 1


def test_unnamed_first_column_that_is_not_dates_is_refused(tmp_path):
    path = tmp_path / "spy.csv"
    _frame(_bdays("2024-01-02", "2024-01-31")).reset_index(drop=True).to_csv(path)  # a 0, 1, 2 ... index
    with pytest.raises(MarketDataError) as err:
        load_ohlcv(path)
    assert str(err.value).startswith("spy.csv line 1: missing column(s) date") and "'0'" in str(err.value)


def test_bad_date_in_an_unnamed_column_names_the_line(tmp_path):
    path = tmp_path / "spy.csv"
    _frame(_bdays("2024-01-02", "2024-01-31")).to_csv(path)
    lines = _lines(path)
    lines[4] = "garbage" + lines[4][lines[4].index(","):]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MarketDataError, match=r"^spy.csv line 5: date 'garbage' is not a date$"):
        load_ohlcv(path)


def test_hourly_data_with_overnight_weekend_and_holiday_closures_loads(tmp_path):
    # 2024-01-02 .. 2024-01-19, no weekends, Martin Luther King day (Mon 15th) closed
    days = _bdays("2024-01-02", "2024-01-19", holidays=("2024-01-15",))
    path = tmp_path / "spy_1h.csv"
    _frame(_hourly(days)).to_csv(path)  # pandas writes "2024-01-02 09:30:00-05:00"
    p = load_ohlcv(path)
    assert len(days) == 13 and len(p) == 13 * 7
    assert np.array_equal(p.close, pd.read_csv(path)["close"].to_numpy())


def test_session_crossing_utc_midnight_is_one_session(tmp_path):
    # Sydney 10:00-16:00 local is 23:00-05:00 UTC: the overnight closure falls inside one UTC day
    days = _bdays("2024-01-02", "2024-01-12")
    stamps = [f"{d.date()} {h:02d}:00" for d in days for h in range(10, 17)]
    path = tmp_path / "bhp.csv"
    _frame(pd.DatetimeIndex(pd.to_datetime(stamps)).tz_localize("Australia/Sydney")).to_csv(path)
    assert len(load_ohlcv(path)) == len(days) * 7


def test_missing_hour_inside_a_session_is_refused_naming_the_line(tmp_path):
    days = _bdays("2024-01-02", "2024-01-12")
    index = _hourly(days)
    drop = 7 * 3 + 4  # 2024-01-05 13:30
    path = tmp_path / "spy_1h.csv"
    _frame(index.delete(drop)).to_csv(path)
    with pytest.raises(MarketDataError) as err:
        load_ohlcv(path, max_gap=1.5)
    msg = str(err.value)
    # header is line 1, bar k is line k + 2; the bar after the hole was bar `drop`, now at line drop + 2
    assert msg.startswith(f"spy_1h.csv line {drop + 2}: gap of 2h inside the 2024-01-05 session")
    assert "\n" not in msg and "2.0x the usual 1h" in msg
    assert len(load_ohlcv(path)) == len(index) - 1  # one missing bar is within the default max_gap=5


def test_missing_hour_of_five_minute_bars_is_refused_by_default(tmp_path):
    days = _bdays("2024-01-02", "2024-01-05")
    index = pd.DatetimeIndex([t for d in days for t in pd.date_range(f"{d.date()} 09:30", f"{d.date()} 15:55",
                                                                      freq="5min")])
    hole = (index >= "2024-01-03 11:00") & (index < "2024-01-03 12:00")
    path = tmp_path / "es_5m.csv"
    _frame(index[~hole]).to_csv(path, index_label="timestamp")
    line = int(np.flatnonzero(index[~hole] == pd.Timestamp("2024-01-03 12:00"))[0]) + 2
    with pytest.raises(MarketDataError, match=rf"^es_5m.csv line {line}: gap of 1h05m inside the 2024-01-03 "
                                              r"session .*13.0x the usual 5m"):
        load_ohlcv(path)


def test_weeks_missing_between_intraday_sessions_are_a_hole(tmp_path):
    days = _bdays("2024-01-02", "2024-02-29")
    days = days[(days < "2024-01-22") | (days >= "2024-02-12")]  # three weeks gone
    path = tmp_path / "spy_1h.csv"
    _frame(_hourly(days)).to_csv(path)
    with pytest.raises(MarketDataError, match=r"line \d+: gap of 16 weekdays since the previous row "
                                              r"\(2024-01-19 to 2024-02-12\)"):
        load_ohlcv(path)


def test_daily_data_with_weekends_and_holidays_loads(tmp_path):
    holidays = ("2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27", "2024-07-04", "2024-09-02",
                "2024-11-28", "2024-12-25", "2024-12-24", "2024-12-26", "2024-12-27")  # ends: 4 weekdays shut
    days = _bdays("2024-01-02", "2024-12-31", holidays)
    path = tmp_path / "spy.csv"
    _frame(days).to_csv(path, index_label="Date", date_format="%Y-%m-%d")
    assert len(load_ohlcv(path)) == len(days)


def test_three_week_hole_in_daily_data_is_refused(tmp_path):
    days = _bdays("2024-01-02", "2024-03-29")
    days = days[(days < "2024-02-05") | (days >= "2024-02-26")]
    path = tmp_path / "spy.csv"
    _frame(days).to_csv(path, index_label="date", date_format="%Y-%m-%d")
    line = int(np.flatnonzero(days == pd.Timestamp("2024-02-26"))[0]) + 2
    with pytest.raises(MarketDataError) as err:
        load_ohlcv(path)
    assert str(err.value) == (f"spy.csv line {line}: gap of 16 weekdays since the previous row "
                              "(2024-02-02 to 2024-02-26; 16.0x the usual spacing, max_gap=5)")


def test_a_full_week_closed_in_daily_data_is_a_hole_by_default(tmp_path):
    days = _bdays("2024-01-02", "2024-03-29")
    days = days[(days < "2024-02-05") | (days >= "2024-02-12")]  # Mon 5th .. Fri 9th missing
    path = tmp_path / "spy.csv"
    _frame(days).to_csv(path, index_label="date", date_format="%Y-%m-%d")
    with pytest.raises(MarketDataError, match="gap of 6 weekdays"):
        load_ohlcv(path)
    assert len(load_ohlcv(path, max_gap=6)) == len(days)


def _realised(close: np.ndarray, bars_per_year: float, window: int = 20) -> np.ndarray:
    rets = np.zeros_like(close)
    rets[1:] = np.diff(np.log(close))
    return np.sqrt(pd.Series(rets ** 2).rolling(window, min_periods=1).mean().to_numpy() * bars_per_year) * 100


def test_intraday_vix_is_annualised_with_bars_per_day_times_252(tmp_path):
    days = _bdays("2024-01-02", "2024-03-29")
    hourly = _frame(_hourly(days), seed=5)
    daily = hourly.copy()
    daily.index = _bdays("2024-01-02", "2025-12-31")[:len(hourly)]  # the same closes, one a weekday
    hpath, dpath = tmp_path / "h.csv", tmp_path / "d.csv"
    hourly.to_csv(hpath)
    daily.to_csv(dpath, date_format="%Y-%m-%d")
    h, d = load_ohlcv(hpath), load_ohlcv(dpath)
    assert np.array_equal(h.close, d.close)
    assert np.allclose(h.vix[1:] / d.vix[1:], np.sqrt(7))
    assert np.array_equal(d.vix, _realised(d.close, BARS_PER_YEAR))  # daily: unchanged, 252 a year
    assert np.allclose(h.vix, _realised(h.close, 7 * BARS_PER_YEAR))
    assert np.allclose(load_ohlcv(hpath, bars_per_year=365 * 24).vix, _realised(h.close, 365 * 24))


def test_weekly_vix_is_annualised_with_weekly_bars(tmp_path):
    weeks = pd.date_range("2020-01-03", periods=120, freq="W-FRI")
    frame = _frame(weeks, seed=3)
    path = tmp_path / "w.csv"
    frame.to_csv(path, index_label="date", date_format="%Y-%m-%d")
    p = load_ohlcv(path)
    assert np.allclose(p.vix, _realised(p.close, BARS_PER_YEAR / 5))
