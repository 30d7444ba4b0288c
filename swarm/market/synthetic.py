"""A synthetic market with hidden regimes that persist and switch by a Markov chain.

Each regime has its own return process (log returns per bar):

* ``trend_up`` / ``trend_down`` — a steady drift of +/-``drift`` with low noise;
* ``ranging`` — log price pulled back to a slowly wandering anchor (an Ornstein-Uhlenbeck
  process with strength ``reversion``);
* ``volatile`` — high noise plus short-lived bursts: a hidden local drift that decays by
  ``burst_persistence`` each bar and is kicked by large shocks, so moves continue for a while.

The regime stays with probability ``persistence`` each bar and otherwise jumps to one of the
others uniformly. A volatility index (VIX-like) is the annualised realised volatility of the last
``vix_window`` bars times log-normal noise. One seed fixes the whole path; each asset draws its
own path from a seed derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

REGIMES: tuple[str, ...] = ("trend_up", "trend_down", "ranging", "volatile")
BARS_PER_YEAR = 252


@dataclass(frozen=True, slots=True)
class MarketConfig:
    n_bars: int = 3000
    persistence: float = 0.995
    drift: float = 0.0025
    trend_noise: float = 0.004
    reversion: float = 0.3
    range_noise: float = 0.008
    anchor_noise: float = 0.001
    volatile_noise: float = 0.01
    burst_persistence: float = 0.93
    burst_shock: float = 0.004
    vix_window: int = 20
    vix_noise: float = 0.1
    vix_lead: float = 1.0  # weight of the regime's own volatility in the index (forward-looking), vs realised
    start_price: float = 100.0
    regime_mix: tuple[float, float, float, float] | None = None  # stationary weights; None = uniform

    def __post_init__(self) -> None:
        if not -1.0 < self.burst_persistence < 1.0:
            raise ValueError("burst_persistence must be in (-1, 1)")
        if self.n_bars < 50:
            raise ValueError("n_bars must be >= 50")
        if not 0.0 <= self.reversion < 2.0:
            raise ValueError("reversion must be in [0, 2) (outside it the range explodes)")
        if not 0.0 <= self.vix_lead <= 1.0:
            raise ValueError("vix_lead must be in [0, 1]")
        if not 0.0 <= self.persistence < 1.0:
            raise ValueError("persistence must be in [0, 1)")
        if self.regime_mix is not None:
            mix = np.asarray(self.regime_mix, dtype=float)
            if mix.shape != (len(REGIMES),) or np.any(mix < 0) or mix.sum() <= 0:
                raise ValueError(f"regime_mix needs {len(REGIMES)} non-negative weights")

    def regime_variance(self) -> np.ndarray:
        """Each regime's stationary variance of one bar's log return (REGIMES order)."""
        burst = self.burst_shock ** 2 / (1.0 - self.burst_persistence ** 2)
        ranging = self.range_noise ** 2 * 2.0 / (2.0 - self.reversion) if self.reversion > 0 else self.range_noise ** 2
        return np.array([self.trend_noise ** 2, self.trend_noise ** 2, ranging, self.volatile_noise ** 2 + burst])

    def transition_matrix(self) -> np.ndarray:
        """Stay with ``persistence``; otherwise move to another regime in proportion to the mix."""
        k = len(REGIMES)
        mix = np.ones(k) if self.regime_mix is None else np.asarray(self.regime_mix, dtype=float)
        p = np.zeros((k, k))
        for i in range(k):
            others = mix.copy()
            others[i] = 0.0
            if others.sum() == 0:
                p[i, i] = 1.0
                continue
            p[i] = (1 - self.persistence) * others / others.sum()
            p[i, i] = self.persistence
        return p


@dataclass(frozen=True, slots=True)
class PricePath:
    """One asset's bars: close prices, the hidden regime of each bar, and the volatility index.

    ``bars_per_year`` is the bar spacing as an annualisation (252 for daily bars, the synthetic
    market; a CSV file's is inferred from its dates, e.g. ``252 * 7`` for hourly stock bars).
    """

    symbol: str
    close: np.ndarray
    regime: np.ndarray  # index into REGIMES; -1 = unknown (real data)
    vix: np.ndarray
    config: MarketConfig = field(repr=False, default=MarketConfig())
    bars_per_year: float = BARS_PER_YEAR

    def window(self, start: int, stop: int, symbol: str | None = None) -> PricePath:
        """Bars ``[start, stop)`` as a path of their own (optionally renamed)."""
        if not 0 <= start < stop <= len(self):
            raise ValueError(f"window [{start}, {stop}) is outside the {len(self)} bars of {self.symbol}")
        return PricePath(symbol or self.symbol, self.close[start:stop], self.regime[start:stop],
                         self.vix[start:stop], replace(self.config, n_bars=max(50, stop - start)),
                         self.bars_per_year)

    def __len__(self) -> int:
        return int(self.close.shape[0])

    @property
    def log_close(self) -> np.ndarray:
        return np.log(self.close)


def _asset_seed(seed: int, symbol: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, *symbol.encode()])


def generate_path(config: MarketConfig, seed: int, symbol: str = "SYN") -> PricePath:
    """Simulate one asset for ``config.n_bars`` bars."""
    rng = np.random.default_rng(_asset_seed(seed, symbol))
    n = config.n_bars
    trans = config.transition_matrix()
    cum = np.cumsum(trans, axis=1)
    mix = np.ones(len(REGIMES)) if config.regime_mix is None else np.asarray(config.regime_mix, float)
    regime = np.empty(n, dtype=np.int8)
    regime[0] = rng.choice(len(REGIMES), p=mix / mix.sum())
    u = rng.random(n)
    for t in range(1, n):
        regime[t] = int(np.searchsorted(cum[regime[t - 1]], u[t], side="right"))
    eps = rng.standard_normal(n)
    shocks = rng.standard_normal(n)
    logp = np.empty(n)
    logp[0] = np.log(config.start_price)
    anchor = logp[0]
    burst = 0.0
    rets = np.zeros(n)
    for t in range(1, n):
        r = REGIMES[regime[t]]
        if r == "ranging":
            anchor += config.anchor_noise * shocks[t]  # the range wanders slowly
            ret = -config.reversion * (logp[t - 1] - anchor) + config.range_noise * eps[t]
        else:
            anchor = logp[t - 1]  # a range that starts later starts around the current price
            if r == "volatile":
                burst = config.burst_persistence * burst + config.burst_shock * shocks[t]
                ret = burst + config.volatile_noise * eps[t]
            else:
                sign = 1.0 if r == "trend_up" else -1.0
                ret = sign * config.drift + config.trend_noise * eps[t]
        if r != "volatile":
            burst = 0.0
        rets[t] = ret
        logp[t] = logp[t - 1] + ret
    realised = np.sqrt(
        np.convolve(rets ** 2, np.ones(config.vix_window) / config.vix_window, mode="full")[:n]
        * BARS_PER_YEAR) * 100.0
    implied = np.sqrt(config.regime_variance()[regime] * BARS_PER_YEAR) * 100.0
    blend = config.vix_lead * implied + (1.0 - config.vix_lead) * realised
    vix = blend * np.exp(config.vix_noise * rng.standard_normal(n))
    return PricePath(symbol, np.exp(logp), regime, vix, config)


def generate_market(config: MarketConfig, seed: int, symbols: tuple[str, ...] = ("SYN",)) -> dict[str, PricePath]:
    """One independent path per symbol, all fixed by ``seed``."""
    if len(set(symbols)) != len(symbols) or not symbols:
        raise ValueError("symbols must be non-empty and distinct")
    return {s: generate_path(config, seed, s) for s in symbols}
