"""Every pattern of the suite by id, with how to run it for a seed (``quick`` shortens the run)."""

from __future__ import annotations

from collections.abc import Callable

from swarm.learning.markets import MarketSource, using

from .base import ScenarioResult

Runner = Callable[[int, bool], ScenarioResult]


def _cold_start(seed: int, quick: bool) -> ScenarioResult:
    from . import cold_start
    return cold_start.run(cold_start.ColdStartConfig(seed=seed, n_bars=2500 if quick else 4000))


def _warm_start(seed: int, quick: bool) -> ScenarioResult:
    from . import warm_start
    return warm_start.run(warm_start.WarmStartConfig(seed=seed))


def _transfer(seed: int, quick: bool) -> ScenarioResult:
    from . import transfer
    return transfer.run(transfer.TransferConfig(seed=seed, targets=2 if quick else 3))


def _continual(seed: int, quick: bool) -> ScenarioResult:
    from . import continual
    return continual.run(continual.ContinualConfig(seed=seed, runs=3 if quick else 5))


def _forgetting(seed: int, quick: bool) -> ScenarioResult:
    from . import forgetting
    return forgetting.run(forgetting.ForgettingConfig(seed=seed))


def _mesh(seed: int, quick: bool) -> ScenarioResult:
    from . import mesh
    return mesh.run(mesh.MeshScenarioConfig(seed=seed, episodes=20 if quick else 30))


def _hierarchical(seed: int, quick: bool) -> ScenarioResult:
    from . import hierarchical
    return hierarchical.run(hierarchical.HierarchicalConfig(seed=seed, episodes=20 if quick else 30))


def _star(seed: int, quick: bool) -> ScenarioResult:
    from . import star
    return star.run(star.StarConfig(seed=seed, episodes=20 if quick else 30))


def _ring(seed: int, quick: bool) -> ScenarioResult:
    from . import ring
    return ring.run(ring.RingConfig(seed=seed, handoff_every=10 if quick else 15))


def _auto_scale(seed: int, quick: bool) -> ScenarioResult:
    from . import auto_scale
    return auto_scale.run(auto_scale.AutoScaleConfig(seed=seed, episodes=20 if quick else 30))


def _multi_strategy(seed: int, quick: bool) -> ScenarioResult:
    from . import multi_strategy
    return multi_strategy.run(multi_strategy.MultiStrategyConfig(seed=seed, episodes=45 if quick else 60))


def _blue_green(seed: int, quick: bool) -> ScenarioResult:
    from . import blue_green
    return blue_green.run(blue_green.BlueGreenConfig(seed=seed, episodes=20 if quick else 30))


def _canary(seed: int, quick: bool) -> ScenarioResult:
    from . import canary
    return canary.run(canary.CanaryConfig(seed=seed))


PATTERNS: dict[str, Runner] = {
    "mesh-distributed-learning": _mesh,
    "hierarchical-centralized-learning": _hierarchical,
    "ring-sequential-learning": _ring,
    "star-hub-learning": _star,
    "auto-scale-adaptive-learning": _auto_scale,
    "multi-strategy-meta-learning": _multi_strategy,
    "blue-green-knowledge-transfer": _blue_green,
    "canary-incremental-learning": _canary,
    "cold-start": _cold_start,
    "warm-start": _warm_start,
    "transfer-learning": _transfer,
    "continual-learning": _continual,
    "catastrophic-forgetting": _forgetting,
}


def run_pattern(pattern: str, seed: int = 0, quick: bool = False,
                market: MarketSource | str | None = None) -> ScenarioResult:
    """Run ``pattern`` for ``seed`` on ``market``: a source, a ``--market`` value (``synthetic``,
    ``csv:PATH[,PATH...]``) or None for the active one (synthetic unless a ``using`` block says
    otherwise). The result's config records the market (``"market"``: ``synthetic`` or
    ``csv:<files>``; for real data ``market_detail``: the files and what did not apply to them)."""
    try:
        runner = PATTERNS[pattern]
    except KeyError:
        raise KeyError(f"unknown pattern {pattern!r}; known: {', '.join(PATTERNS)}") from None
    with using(market) as use:
        result = runner(seed, quick)
    result.config.update(use.describe())
    return result
