"""Every pattern of the suite by id, with how to run it for a seed (``quick`` shortens the run).

Derived from the modules: each scenario module names its ``PATTERN``, its ``CONFIG`` class and the
``QUICK`` overrides, and runs with ``run(CONFIG(seed=...))``; a user's own topologies (registered
with :func:`swarm.topology.register` or an entry point) run with the checks of
:mod:`scenarios.custom`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from types import ModuleType

from swarm.learning.markets import MarketSource, using
from swarm.topology import Topology, registered
from topologies import TOPOLOGIES

from . import custom
from .base import ScenarioResult

Runner = Callable[[int, bool], ScenarioResult]

#: Seeds per pattern in a suite run that names no count: the fewest that give an interval worth
#: printing. A scenario module whose verdict needs more to be decided sets its own ``SEEDS``.
DEFAULT_SEEDS = 3

#: The scenario modules, deployment patterns first (one per topology), then the learning scenarios.
MODULES: tuple[str, ...] = (*TOPOLOGIES, "cold_start", "warm_start", "transfer", "continual", "forgetting",
                            "poisoning")


def _run_module(module: ModuleType, seed: int, quick: bool) -> ScenarioResult:
    result: ScenarioResult = module.run(module.CONFIG(seed=seed, **(module.QUICK if quick else {})))
    return result


def _run_custom(topology: Topology, seed: int, quick: bool) -> ScenarioResult:
    return custom.run(topology, custom.CustomConfig(seed=seed, **(custom.QUICK if quick else {})))


def builtin() -> dict[str, Runner]:
    """The project's own patterns, in suite order."""
    out: dict[str, Runner] = {}
    for name in MODULES:
        module = importlib.import_module(f"scenarios.{name}")
        out[module.PATTERN] = partial(_run_module, module)
    return out


def default_seeds(pattern: str) -> int:
    """How many seeds ``pattern`` runs when the run names no count: its module's ``SEEDS``, or
    :data:`DEFAULT_SEEDS` (a user's topology too)."""
    for name in MODULES:
        module = importlib.import_module(f"scenarios.{name}")
        if pattern == module.PATTERN:
            return int(getattr(module, "SEEDS", DEFAULT_SEEDS))
    return DEFAULT_SEEDS


def patterns() -> dict[str, Runner]:
    """Every pattern: the built-in ones, then the user's topologies."""
    out = builtin()
    for name, topology in registered().items():
        if name in out:
            raise ValueError(f"a user topology may not take the built-in pattern name {name!r}")
        out[name] = partial(_run_custom, topology)
    return out


def run_pattern(pattern: str, seed: int = 0, quick: bool = False,
                market: MarketSource | str | None = None) -> ScenarioResult:
    """Run ``pattern`` for ``seed`` on ``market``: a source, a ``--market`` value (``synthetic``,
    ``csv:PATH[,PATH...]``) or None for the active one (synthetic unless a ``using`` block says
    otherwise). The result's config records the market (``"market"``: ``synthetic`` or
    ``csv:<files>``; for real data ``market_detail``: the files and what did not apply to them)."""
    known = patterns()
    try:
        runner = known[pattern]
    except KeyError:
        raise KeyError(f"unknown pattern {pattern!r}; known: {', '.join(known)}") from None
    with using(market) as use:
        result = runner(seed, quick)
    result.config.update(use.describe())
    return result
