"""Real price files for tests, from matplotlib's sample data (no network), written as OHLCV CSVs.

* ``goog`` — Google daily bars 2004-08-19 .. 2008-10-13 (1047 bars, ``goog.npz``);
* ``msft`` — Microsoft daily bars 2003-06-19 .. 2003-09-19 (65 bars, ``msft.csv``, newest first there);
* ``stock(ticker)`` — month-start closes 1990-2022 from ``Stocks.csv`` (close only, so open = high =
  low = close; the file's blank mid-month rows are dropped);
* ``hourly`` — a synthetic but realistic hourly series: 09:30-15:30 New York sessions, overnight and
  weekend closures and a holiday.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import cbook

COLUMNS = ["date", "open", "high", "low", "close", "volume"]


def goog(directory: Path) -> Path:
    data = np.load(cbook.get_sample_data("goog.npz", asfileobj=False))["price_data"]
    path = Path(directory) / "goog.csv"
    pd.DataFrame({c: data[c] for c in COLUMNS}).to_csv(path, index=False)
    return path


def msft(directory: Path) -> Path:
    df = pd.read_csv(cbook.get_sample_data("msft.csv", asfileobj=False))
    df["Date"] = pd.to_datetime(df["Date"], format="%d-%b-%y")
    path = Path(directory) / "msft.csv"
    df.sort_values("Date")[["Date", "Open", "High", "Low", "Close", "Volume"]].to_csv(path, index=False)
    return path


def stock(directory: Path, ticker: str) -> Path:
    df = pd.read_csv(cbook.get_sample_data("Stocks.csv", asfileobj=False), comment="#")
    close = df[["Date", ticker]].dropna()
    path = Path(directory) / f"{ticker.strip('^').lower()}.csv"
    pd.DataFrame({"date": close["Date"], "open": close[ticker], "high": close[ticker], "low": close[ticker],
                  "close": close[ticker], "volume": 0}).to_csv(path, index=False)
    return path


def hourly(directory: Path, days: int = 120, seed: int = 0) -> Path:
    """Hourly bars of ``days`` weekdays (one a holiday), 7 a session, written by pandas with UTC offsets."""
    dates = pd.bdate_range("2024-01-02", periods=days + 1)
    dates = dates[dates != pd.Timestamp("2024-01-15")][:days]  # Martin Luther King day: closed
    stamps = pd.DatetimeIndex([pd.Timestamp(f"{d.date()} {h:02d}:30") for d in dates for h in range(9, 16)])
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, len(stamps))))
    opens = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.002, len(stamps)))
    df = pd.DataFrame({"open": opens, "high": np.maximum(opens, close) * (1 + spread),
                       "low": np.minimum(opens, close) * (1 - spread), "close": close,
                       "volume": rng.integers(1_000, 5_000, len(stamps))},
                      index=stamps.tz_localize("America/New_York"))
    path = Path(directory) / "spy_1h.csv"
    df.to_csv(path)  # an unnamed date column: "2024-01-02 09:30:00-05:00"
    return path
