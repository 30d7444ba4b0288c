"""The market agents trade in: a synthetic regime-switching market, or real OHLCV data from CSV."""

from .csv_loader import MarketDataError, load_ohlcv
from .features import FEATURE_NAMES, FEATURE_SCALE, WARMUP, compute_features
from .strategies import BUILT_FOR, STRATEGIES, TradeRules, directions, trade_table
from .synthetic import BARS_PER_YEAR, REGIMES, MarketConfig, PricePath, generate_market, generate_path

__all__ = [
    "BARS_PER_YEAR",
    "BUILT_FOR",
    "FEATURE_NAMES",
    "FEATURE_SCALE",
    "REGIMES",
    "STRATEGIES",
    "WARMUP",
    "MarketConfig",
    "MarketDataError",
    "PricePath",
    "TradeRules",
    "compute_features",
    "directions",
    "generate_market",
    "generate_path",
    "load_ohlcv",
    "trade_table",
]
