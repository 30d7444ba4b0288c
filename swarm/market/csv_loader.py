"""Load real OHLCV price data from CSV (pandas), validated, into a :class:`PricePath`.

Every problem is one line naming the file, the CSV line (the header is line 1) and what is
wrong: missing columns, values that are not numbers, NaNs, non-positive prices, high below
low, dates out of order or repeated, and gaps that are holes in the data.

The date column is ``date``, ``timestamp``, ``time`` or ``datetime``; failing those, an unnamed
first column (what ``df.to_csv(path)`` writes for a DatetimeIndex) whose first value is a date.

Gap rule (markets close; data should not have holes). Each bar belongs to the calendar day of its
own clock (the UTC offset written in the file, if any). Intraday data (a median of two or more bars
a day): the spacing is the median step between bars of the same day; a step inside one day longer
than ``max_gap`` times that spacing is a hole and refused, while a step from one day to a later day
is a closure (overnight, weekend, holiday) and accepted unless more than ``max_gap`` weekdays pass
between the two days. Daily or coarser data: steps are counted in weekdays (Monday to Friday), so
weekends never count; the spacing is the median step in weekdays, and a step of more than
``max_gap`` times it is a hole. With the default ``max_gap=5``, daily data may miss up to four
weekdays in a row (holidays, exceptional closures); a week or more is refused.

The volatility index is realised volatility annualised with ``252 * bars per day`` bars a year
for intraday data (bars per day is the median count of bars per calendar day) and ``252 / weekdays
per bar`` for daily or coarser data (252 for daily bars, as for the synthetic market); the path
carries it as ``bars_per_year``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .synthetic import BARS_PER_YEAR, MarketConfig, PricePath

REQUIRED = ("open", "high", "low", "close", "volume")
DATE_COLUMNS = ("date", "timestamp", "time", "datetime")
#: A zone written after a clock time ("09:30:00-05:00", "09:30Z", "09:30 UTC"); stripped to get the local day.
_OFFSET = r"(\d:\d{2}(?::\d{2}(?:\.\d*)?)?)\s*(?:Z|UTC|GMT)?\s*(?:[+-]\d{2}:?\d{2})?$"


class MarketDataError(ValueError):
    """A price file failed validation."""


def _is_unnamed(col: str) -> bool:
    """pandas names an empty header cell ``Unnamed: <i>``."""
    return col == "" or col.startswith("unnamed:")


def _local_days(raw: pd.Series, utc: pd.Series) -> np.ndarray:
    """Calendar day of each bar on the clock the file was written in, as ``datetime64[D]``.

    Sessions are days on the exchange's clock, not in UTC (a Sydney or extended-hours session
    crosses UTC midnight), so the offset written after each time is dropped; where that does not
    give a sane local time the UTC day is used.
    """
    utc_naive = utc.dt.tz_convert(None)
    try:
        local = pd.to_datetime(raw.str.replace(_OFFSET, r"\1", regex=True), errors="coerce", format="mixed")
        if local.dt.tz is not None:
            local = local.dt.tz_convert(None)
    except (ValueError, TypeError):  # zones the pattern does not know, mixed with others: use UTC days
        return utc_naive.to_numpy().astype("datetime64[D]")
    sane = (local - utc_naive).abs() <= pd.Timedelta(hours=14)
    return local.where(sane, utc_naive).to_numpy().astype("datetime64[D]")


def _span(ns: float) -> str:
    """A duration for a message: ``2h``, ``1h05m``, ``1m30s``, ``3d4h``."""
    s = round(ns / 1e9)
    d, rem = divmod(s, 86_400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m:02d}m" if m and (d or h) else f"{m}m" if m else "",
             f"{sec}s" if sec else ""]
    return "".join(parts) or "0s"


def load_ohlcv(path: str | os.PathLike[str], symbol: str | None = None, max_gap: float = 5.0,
               vix_window: int = 20, bars_per_year: float | None = None) -> PricePath:
    """Read ``path`` into a price path; the volatility index is realised volatility (annualised, %).

    ``max_gap`` bounds holes (see the module docstring; 0 turns the check off); ``bars_per_year``
    overrides the annualisation inferred from the bar spacing (e.g. ``365 * 24`` for hourly crypto).
    """
    p = Path(path)
    name = p.name

    def fail(line: int | None, msg: str) -> MarketDataError:
        return MarketDataError(f"{name} line {line}: {msg}" if line else f"{name}: {msg}")

    if not p.is_file():
        raise MarketDataError(f"{p}: no such file")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise fail(None, "empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise fail(None, f"not a readable CSV ({str(e).splitlines()[0]})") from None
    if not isinstance(df.index, pd.RangeIndex):  # a header one cell short: pandas took column 1 as the index
        df = df.reset_index(names="")
    df.columns = [str(c).strip().lower() for c in df.columns]
    date_col = next((c for c in DATE_COLUMNS if c in df.columns), None)
    unnamed_hint = ""
    if date_col is None and len(df.columns) and _is_unnamed(df.columns[0]) and len(df):
        first = str(df.iloc[0, 0]).strip()
        if not pd.isna(pd.to_datetime(pd.Series([first]), errors="coerce", utc=True, format="mixed")[0]):
            date_col = df.columns[0]
        else:
            unnamed_hint = f" (the unnamed first column holds {first!r}, not a date)"
    missing = [c for c in REQUIRED if c not in df.columns] + ([] if date_col is not None else ["date"])
    if missing:
        raise fail(1, f"missing column(s) {', '.join(missing)}{unnamed_hint}")
    assert date_col is not None  # otherwise "date" was missing and we raised above
    if len(df) < 2:
        raise fail(None, "needs at least two rows of prices")
    values = {}
    for col in REQUIRED:
        raw = df[col].str.strip()
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            what = "is empty or NaN" if raw.iloc[i].lower() in ("", "nan", "na", "null", "none") else \
                f"is not a number ({raw.iloc[i]!r})"
            raise fail(i + 2, f"{col} {what}")
        arr = num.to_numpy(dtype=float)
        if not np.all(np.isfinite(arr)):
            i = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise fail(i + 2, f"{col} is not finite")
        values[col] = arr
    date_label = "date" if _is_unnamed(date_col) else date_col
    raw_dates = df[date_col].str.strip()
    dates = pd.to_datetime(raw_dates, errors="coerce", utc=True, format="mixed")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise fail(i + 2, f"{date_label} {df[date_col].iloc[i]!r} is not a date")
    for col in ("open", "high", "low", "close"):
        bad = values[col] <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise fail(i + 2, f"{col} must be > 0, got {values[col][i]}")
    if (values["volume"] < 0).any():
        raise fail(int(np.flatnonzero(values["volume"] < 0)[0]) + 2, "volume must be >= 0")
    top = np.maximum(values["open"], values["close"])
    bottom = np.minimum(values["open"], values["close"])
    bad = (values["high"] < top) | (values["low"] > bottom)
    if bad.any():
        raise fail(int(np.flatnonzero(bad)[0]) + 2, "high/low do not bracket open and close")
    t = dates.dt.as_unit("ns").astype("int64").to_numpy()  # pandas 3 may store seconds or microseconds
    step = np.diff(t)
    if (step == 0).any():
        raise fail(int(np.flatnonzero(step == 0)[0]) + 3, "repeats the previous row's date")
    if (step < 0).any():
        raise fail(int(np.flatnonzero(step < 0)[0]) + 3, "date is earlier than the previous row's")
    days = _local_days(raw_dates, dates)
    weekdays = np.busday_count(days[:-1], days[1:])  # weekdays from one bar's day to the next's
    per_day = float(np.median(np.unique(days, return_counts=True)[1]))
    same = days[1:] == days[:-1]
    if per_day >= 2 and same.any():  # intraday: spacing within a day; steps between days are closures
        usual = float(np.median(step[same]))
        inferred = BARS_PER_YEAR * per_day
        if max_gap:
            hole = same & (step > max_gap * usual)
            if hole.any():
                i = int(np.flatnonzero(hole)[0])
                raise fail(i + 3, f"gap of {_span(step[i])} inside the {days[i + 1]} session since the previous "
                                  f"row ({step[i] / usual:.1f}x the usual {_span(usual)}; max_gap={max_gap:g})")
            hole = ~same & (weekdays > max_gap)
            if hole.any():
                i = int(np.flatnonzero(hole)[0])
                raise fail(i + 3, f"gap of {weekdays[i]} weekdays since the previous row ({days[i]} to "
                                  f"{days[i + 1]}), too long for a market closure (max_gap={max_gap:g})")
    else:  # daily or coarser: steps in weekdays, so weekends never count
        usual_wd = max(float(np.median(weekdays)), 1.0)
        inferred = BARS_PER_YEAR / usual_wd
        if max_gap and (weekdays > max_gap * usual_wd).any():
            i = int(np.flatnonzero(weekdays > max_gap * usual_wd)[0])
            raise fail(i + 3, f"gap of {weekdays[i]} weekdays since the previous row ({days[i]} to {days[i + 1]}; "
                              f"{weekdays[i] / usual_wd:.1f}x the usual spacing, max_gap={max_gap:g})")
    close = values["close"]
    rets = np.zeros_like(close)
    rets[1:] = np.diff(np.log(close))
    per_year = float(bars_per_year or inferred)
    vix = np.sqrt(pd.Series(rets ** 2).rolling(vix_window, min_periods=1).mean().to_numpy() * per_year) * 100.0
    return PricePath(symbol or p.stem.upper(), close, np.full(close.shape[0], -1, dtype=np.int8), vix,
                     MarketConfig(n_bars=max(50, close.shape[0])), per_year)
