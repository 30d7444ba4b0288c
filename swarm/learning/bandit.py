"""A standard contextual bandit from a well-kept library: Vowpal Wabbit's ``cb_explore_adf``.

The baseline a practitioner would reach for instead of a memory: SquareCB exploration over
action-dependent features, with quadratic and cubic interactions between the context (the
memory policy's own features on its own scale, :data:`MEMORY_FEATURE_SCALE`) and the
action, bandit feedback only (it sees the P&L of the strategy it played), P&L as reward.
Vowpal Wabbit is in the ``dev`` extra; :func:`available` says whether it is installed.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from ..market import FEATURE_NAMES, STRATEGIES
from .episodes import Context, Outcome
from .memory_policy import MEMORY_FEATURE_SCALE, fold as fold_context
from .policies import REWARD_SCALE, Choice

#: The arguments the baseline runs with (also written to reports, so a reader can rerun it).
VW_ARGS = "--cb_explore_adf --squarecb -q sa --cubic ssa --quiet"


def available() -> bool:
    """Whether the ``vowpalwabbit`` package can be imported."""
    return importlib.util.find_spec("vowpalwabbit") is not None


class ContextualBandit:
    """Vowpal Wabbit contextual bandit over the scaled market features (one model per instance)."""

    def __init__(self, seed: int = 0, args: str = VW_ARGS,
                 feature_scale: tuple[float, ...] = MEMORY_FEATURE_SCALE, fold: bool = False) -> None:
        import vowpalwabbit  # dev extra: imported on use, so the engine runs without it

        self.name = "contextual-bandit-folded" if fold else "contextual-bandit"
        self.fold = fold  # see the features as the memory does (mirror-folded), for a like-for-like check
        self.args = args
        self.vw: Any = vowpalwabbit.Workspace(f"{args} --random_seed {seed}")
        self.rng = np.random.default_rng(seed)
        self.scale = np.asarray(feature_scale, dtype=float)
        self.used = [i for i, s in enumerate(feature_scale) if np.isfinite(s)]
        self._pmf: dict[str, np.ndarray] = {}  # symbol -> the distribution its open trade was drawn from

    def _features(self, context: Context) -> np.ndarray:
        """The features the memory compares, on its scale, clipped to +-5 (NaN as 0)."""
        f = np.asarray(context.features, dtype=float)
        f = fold_context(np.nan_to_num(f, nan=0.0)) if self.fold else f
        x = np.nan_to_num(f[self.used] / self.scale[self.used], nan=0.0)
        return np.clip(x, -5.0, 5.0)

    def _example(self, x: np.ndarray, label: tuple[int, float, float] | None = None) -> list[str]:
        names = [FEATURE_NAMES[i] for i in self.used]
        shared = "shared |s " + " ".join(f"{name}:{v:.6g}" for name, v in zip(names, x))
        lines = [shared]
        for i, strategy in enumerate(STRATEGIES):
            prefix = f"{i}:{label[1]:.6g}:{label[2]:.6g} " if label is not None and label[0] == i else ""
            lines.append(f"{prefix}|a {strategy}")
        return lines

    def choose(self, context: Context) -> Choice:
        """Draw a strategy from VW's exploration distribution for this context."""
        pmf = np.asarray(self.vw.predict(self._example(self._features(context))), dtype=float)
        pmf = pmf / pmf.sum()
        i = int(self.rng.choice(len(STRATEGIES), p=pmf))
        self._pmf[context.symbol] = pmf
        return Choice(STRATEGIES[i], bool(i != int(np.argmax(pmf))), tuple(float(p) for p in pmf))

    def update(self, outcome: Outcome) -> None:
        """Learn the played strategy's cost with the probability it was played with."""
        pmf = self._pmf.pop(outcome.context.symbol)
        i = STRATEGIES.index(outcome.strategy)
        x = self._features(outcome.context)
        cost = -outcome.reward / REWARD_SCALE  # VW minimises cost
        self.vw.learn(self._example(x, (i, cost, float(pmf[i]))))

    def finish(self) -> None:
        """Release the VW workspace (the driver calls this after the last decision)."""
        self.vw.finish()
