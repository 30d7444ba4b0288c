"""Load real OHLCV price data from CSV (pandas), validated, into a :class:`PricePath`.

Every problem is one line naming the file, the CSV line (the header is line 1) and what is
wrong: missing columns, values that are not numbers, NaNs, non-positive prices, high below
low, dates out of order or repeated, and gaps longer than ``max_gap`` times the usual spacing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .synthetic import BARS_PER_YEAR, MarketConfig, PricePath

REQUIRED = ("open", "high", "low", "close", "volume")
DATE_COLUMNS = ("date", "timestamp", "time", "datetime")


class MarketDataError(ValueError):
    """A price file failed validation."""


def load_ohlcv(path: str | os.PathLike[str], symbol: str | None = None, max_gap: float = 5.0,
               vix_window: int = 20) -> PricePath:
    """Read ``path`` into a price path; the volatility index is realised volatility (annualised, %)."""
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
    df.columns = [str(c).strip().lower() for c in df.columns]
    date_col = next((c for c in DATE_COLUMNS if c in df.columns), None)
    missing = [c for c in REQUIRED if c not in df.columns] + ([] if date_col else ["date"])
    if missing:
        raise fail(1, f"missing column(s) {', '.join(missing)}")
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
    dates = pd.to_datetime(df[date_col].str.strip(), errors="coerce", utc=True, format="mixed")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise fail(i + 2, f"{date_col} {df[date_col].iloc[i]!r} is not a date")
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
    t = dates.astype("int64").to_numpy()
    step = np.diff(t)
    if (step == 0).any():
        raise fail(int(np.flatnonzero(step == 0)[0]) + 3, "repeats the previous row's date")
    if (step < 0).any():
        raise fail(int(np.flatnonzero(step < 0)[0]) + 3, "date is earlier than the previous row's")
    usual = float(np.median(step))
    if max_gap and (step > max_gap * usual).any():
        i = int(np.flatnonzero(step > max_gap * usual)[0])
        raise fail(i + 3, f"gap of {step[i] / usual:.1f}x the usual spacing since the previous row")
    close = values["close"]
    rets = np.zeros_like(close)
    rets[1:] = np.diff(np.log(close))
    vix = np.sqrt(pd.Series(rets ** 2).rolling(vix_window, min_periods=1).mean().to_numpy()
                  * BARS_PER_YEAR) * 100.0
    return PricePath(symbol or p.stem.upper(), close, np.full(close.shape[0], -1, dtype=np.int8), vix,
                     MarketConfig(n_bars=max(50, close.shape[0])))
