"""The market agents trade in: a synthetic regime-switching market, or real OHLCV data from CSV."""

from .csv_loader import MarketDataError, load_ohlcv
from .features import FEATURE_NAMES, FEATURE_SCALE, WARMUP, compute_features
from .strategies import BUILT_FOR, STRATEGIES, TradeCosts, forward_returns, pnl_table, positions
from .synthetic import REGIMES, MarketConfig, PricePath, generate_market, generate_path

__all__ = [
    "BUILT_FOR",
    "FEATURE_NAMES",
    "FEATURE_SCALE",
    "MarketConfig",
    "MarketDataError",
    "PricePath",
    "REGIMES",
    "STRATEGIES",
    "TradeCosts",
    "WARMUP",
    "compute_features",
    "forward_returns",
    "generate_market",
    "generate_path",
    "load_ohlcv",
    "pnl_table",
    "positions",
]
