"""Context features for each decision bar, computed from the past only (no look-ahead)."""

from __future__ import annotations

import numpy as np

from .synthetic import BARS_PER_YEAR, PricePath

FEATURE_NAMES: tuple[str, ...] = (
    "ret_1", "ret_5", "ret_20", "volatility", "trend_strength", "zscore", "channel", "vix",
)
#: Typical size of each feature, so that a unit of distance means the same for all of them.
FEATURE_SCALE: tuple[float, ...] = (0.01, 0.02, 0.05, 0.01, 1.0, 1.0, 0.5, 20.0)
WARMUP = 21


def _rolling(x: np.ndarray, w: int, fn) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] >= w:
        win = np.lib.stride_tricks.sliding_window_view(x, w)
        out[w - 1:] = fn(win, axis=1)
    return out


def compute_features(path: PricePath) -> np.ndarray:
    """An ``(n_bars, len(FEATURE_NAMES))`` array; rows before :data:`WARMUP` are NaN.

    Row ``t`` uses bars ``<= t`` only: returns over 1, 5 and 20 bars; realised volatility (20);
    trend strength (20-bar return over its expected noise, a t-statistic); z-score of log price
    against its 20-bar mean; position in the previous 10-bar close channel (-1 at the low, +1 at
    the high, above 1 on a breakout); and the volatility index.
    """
    lp = path.log_close
    n = lp.shape[0]
    ret1 = np.full(n, np.nan)
    ret1[1:] = np.diff(lp)

    def lag_ret(h: int) -> np.ndarray:
        out = np.full(n, np.nan)
        out[h:] = lp[h:] - lp[:-h]
        return out

    ret5, ret20 = lag_ret(5), lag_ret(20)
    vol = _rolling(np.nan_to_num(ret1), 20, np.std)
    trend = ret20 / np.maximum(vol * np.sqrt(20), 1e-9)
    mean20 = _rolling(lp, 20, np.mean)
    std20 = _rolling(lp, 20, np.std)
    z = (lp - mean20) / np.maximum(std20, 1e-9)
    prev_hi = np.full(n, np.nan)
    prev_lo = np.full(n, np.nan)
    prev_hi[10:] = _rolling(lp, 10, np.max)[9:-1]
    prev_lo[10:] = _rolling(lp, 10, np.min)[9:-1]
    mid, half = (prev_hi + prev_lo) / 2, np.maximum((prev_hi - prev_lo) / 2, 1e-9)
    channel = (lp - mid) / half
    feats = np.column_stack([ret1, ret5, ret20, vol, trend, z, channel, path.vix])
    feats[:WARMUP] = np.nan
    return feats


def annualised(vol_per_bar: float, bars_per_year: float = BARS_PER_YEAR) -> float:
    """Per-bar volatility as a yearly figure (``PricePath.bars_per_year``: 252 for daily bars)."""
    return float(vol_per_bar * np.sqrt(bars_per_year))
