"""One pattern over several seeds: every figure as a mean with its 95% CI, every check as a verdict.

A metrics file holds the per-seed results (``per_seed``) and, in ``learning``, ``trading``,
``performance`` and ``baselines``, their summary: each number becomes a *figure*
``{"mean", "ci_low", "ci_high", "n"}`` (the t-interval over seeds; no interval from one seed), a
value every seed agrees on stays as it is, and values that differ and cannot be averaged are kept
as ``{"per_seed": [...]}``. Series (learning curves) get a mean and a band per point.

Checks: one that compares two learners carries a per-seed ``delta`` (how much better the learner
it vouches for did); over two or more seeds it passes only when the delta's one-sided 95% lower
confidence bound is above zero ("better": the claim is directional, so the bound is one-sided),
and reads "tied" or "worse" otherwise, whatever a single seed said. Any other check
passes only when it passed on every seed. A seed whose run crashed fails the pattern.
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Sequence

from swarm.learning.metrics import mean_ci, one_sided_bounds

FIGURE_KEYS = frozenset({"mean", "ci_low", "ci_high", "n"})


def is_figure(x: Any) -> bool:
    """Whether ``x`` is a summarised figure (a mean with its interval)."""
    return isinstance(x, dict) and set(x) == FIGURE_KEYS


def value(x: Any) -> Any:
    """The number to rank or print for ``x``: a figure's mean, or ``x`` itself."""
    return x["mean"] if is_figure(x) else x


def show(x: Any, digits: int = 2, scale: float = 1.0) -> str:
    """A figure as ``mean [low, high]`` (the bare mean from one seed), a plain number as itself;
    "—" when not measured."""
    if is_figure(x):
        if x["mean"] is None:
            return "—"
        m = f"{x['mean'] * scale:.{digits}f}"
        return m if x["ci_low"] is None else f"{m} [{x['ci_low'] * scale:.{digits}f}, {x['ci_high'] * scale:.{digits}f}]"
    if x is None:
        return "—"
    if _number(x):
        return f"{x * scale:.{digits}f}"
    return str(x)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def combine(values: Sequence[Any]) -> Any:
    """The summary of one field over seeds (see the module docstring)."""
    present = [v for v in values if v is not None]
    if present and all(_number(v) for v in present):
        return mean_ci([float(v) for v in present if math.isfinite(float(v))])
    if present and all(isinstance(v, dict) for v in present):
        keys = list(dict.fromkeys(k for v in present for k in v))
        return {k: combine([v.get(k) for v in present]) for k in keys}
    if all(v == values[0] for v in values):
        return values[0]
    return {"per_seed": list(values)}


def combine_series(series: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per named series, the mean over seeds at each point with its 95% band."""
    out: dict[str, Any] = {}
    names = list(dict.fromkeys(k for s in series for k in s))
    for name in names:
        found = [s.get(name) for s in series]
        runs: list[list[Any]] = [r for r in found if isinstance(r, list)]
        if not runs or not all(all(x is None or _number(x) for x in r) for r in runs):
            out[name] = runs[0] if len(runs) == 1 else {"per_seed": runs}
            continue
        length = max(len(r) for r in runs)
        points = [mean_ci([r[i] for r in runs if i < len(r) and r[i] is not None]) for i in range(length)]
        out[name] = {"mean": [p["mean"] for p in points], "ci_low": [p["ci_low"] for p in points],
                     "ci_high": [p["ci_high"] for p in points], "n": [p["n"] for p in points]}
    return out


def verdict(delta: dict[str, Any]) -> str:
    """"better" when the improvement's one-sided 95% lower bound is above zero, "worse" when its
    upper bound is below zero, "tied" otherwise (one seed: its sign, with no confidence claimed)."""
    if delta["n"] == 0 or delta["mean"] is None:
        return "not measured"
    bounds = one_sided_bounds(delta)
    if bounds is None:
        return "better" if delta["mean"] > 0 else "worse"
    if bounds[0] > 0:
        return "better"
    return "worse" if bounds[1] < 0 else "tied"


def combine_checks(per_seed: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One verdict per check name over the seeds that ran."""
    names = list(dict.fromkeys(c["name"] for checks in per_seed for c in checks))
    out = []
    for name in names:
        runs = [next((c for c in checks if c["name"] == name), None) for checks in per_seed]
        got = [c for c in runs if c is not None]
        passed_seeds = sum(c["passed"] for c in got)
        entry: dict[str, Any] = {"name": name, "passed_seeds": passed_seeds, "seeds": len(runs),
                                 "details": [None if c is None else c["detail"] for c in runs]}
        deltas = [c.get("delta") for c in got]
        if got and all(d is not None for d in deltas):
            d = mean_ci(deltas)
            entry["delta"] = d
            entry["verdict"] = verdict(d)
            single = len(runs) == 1
            entry["passed"] = (got[0]["passed"] if single else entry["verdict"] == "better") and len(got) == len(runs)
        else:
            entry["delta"] = None
            entry["passed"] = passed_seeds == len(runs)
            entry["verdict"] = "passed" if entry["passed"] else "failed"
        entry["detail"] = _detail(entry, runs)
        out.append(entry)
    return out


def _detail(entry: dict[str, Any], runs: Sequence[dict[str, Any] | None]) -> str:
    if len(runs) == 1:
        return runs[0]["detail"] if runs[0] is not None else "not measured: the run crashed"
    head = f"passed on {entry['passed_seeds']} of {entry['seeds']} seeds"
    d = entry.get("delta")
    if d is not None and d["mean"] is not None:
        bounds = one_sided_bounds(d)
        ci = "" if bounds is None else (f", 95% lower bound {bounds[0]:.4g} (one-sided; two-sided 95% CI "
                                         f"[{d['ci_low']:.4g}, {d['ci_high']:.4g}])")
        head += f"; improvement {d['mean']:.4g}{ci} over {d['n']} seeds -> {entry['verdict']}"
    first = next((c["detail"] for c in runs if c is not None), "")
    return f"{head}. First seed: {first}"


SECTIONS = ("learning", "trading", "performance", "baselines")


def summarise_runs(pattern: str, runs: Sequence[dict[str, Any]], crashes: Sequence[dict[str, Any]],
                   env: dict[str, Any]) -> dict[str, Any]:
    """A pattern's metrics document from its per-seed results (``to_json`` dicts) and crashes
    (``{"seed", "error"}``)."""
    doc: dict[str, Any] = {"pattern": pattern, "environment": env,
                           "seeds": sorted([r["seed"] for r in runs] + [c["seed"] for c in crashes]),
                           "per_seed": list(runs), "crashed": list(crashes)}
    doc["checks"] = combine_checks([r["checks"] for r in runs] + [[] for _ in crashes])
    for section in SECTIONS:
        doc[section] = combine([r[section] for r in runs]) if runs else {}
    doc["series"] = combine_series([r["series"] for r in runs]) if runs else {}
    doc["config"] = runs[0]["config"] if runs else {}
    doc["budget"] = _budget(runs)
    if crashes:
        doc["status"] = "crashed"
    else:
        doc["status"] = "passed" if doc["checks"] and all(c["passed"] for c in doc["checks"]) else "failed"
    return doc


def _budget(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Agents, episodes and decisions per seed: patterns are compared on these."""
    if not runs:
        return {"agents": None, "episodes": None, "decisions": None}
    lr, cfg = runs[0]["learning"], runs[0]["config"]
    return {"agents": lr.get("agents", 1), "episodes": lr.get("episodes", cfg.get("episodes")),
            "decisions": lr.get("decisions")}
