"""Per-pattern metrics files: ``<out>/<pattern-id>-metrics.json``, validated by a shipped schema.

One file per pattern holds every seed it ran (``per_seed``) and their summary (means with 95%
CIs, check verdicts; see :mod:`reports.aggregate`). Learning, trading and baseline figures are
deterministic for a seed in the simulated mode; wall-clock figures live only in ``performance``
(and ``environment`` names the machine), so two runs with the same seeds write identical
``learning`` sections.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import jsonschema

from scenarios.base import ScenarioResult

from .aggregate import summarise_runs

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).with_name("schema") / "metrics.schema.json"
PACKAGES = ("numpy", "pandas", "aioquic", "websockets", "matplotlib", "pytest", "usearch")


def jsonable(x: Any) -> Any:
    """Plain JSON values: dataclasses, tuples, numpy scalars; NaN and infinities become None."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return jsonable(dataclasses.asdict(x))
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        items = sorted(x) if isinstance(x, (set, frozenset)) else x
        return [jsonable(v) for v in items]
    if hasattr(x, "item") and callable(x.item):  # numpy scalar
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def environment(transport: str = "sim", runtime: str = "in-process") -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "transport": transport, "runtime": runtime, "versions": versions}


def seed_json(result: ScenarioResult) -> dict[str, Any]:
    """One seed's result as plain JSON values."""
    return jsonable({
        "seed": result.seed,
        "status": result.status,
        "checks": [c.to_json() for c in result.checks],
        "config": result.config,
        "learning": result.learning,
        "trading": result.trading,
        "performance": result.performance,
        "baselines": result.baselines,
        "series": result.series,
    })


def to_metrics(results: ScenarioResult | Sequence[ScenarioResult], env: dict[str, Any], *,
               crashes: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The metrics document of one pattern over its seeds (one result is one seed)."""
    runs = [results] if isinstance(results, ScenarioResult) else list(results)
    pattern = runs[0].pattern if runs else str(crashes[0]["pattern"])
    doc = summarise_runs(pattern, [seed_json(r) for r in runs],
                         [{"seed": c["seed"], "error": str(c["error"])} for c in crashes], env)
    return jsonable({"schema_version": SCHEMA_VERSION, **doc})


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate(doc: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` if ``doc`` does not follow the metrics schema."""
    jsonschema.validate(doc, schema())


def write_metrics(results: ScenarioResult | Sequence[ScenarioResult], out: str | os.PathLike[str],
                  env: dict[str, Any], *, crashes: Sequence[dict[str, Any]] = ()) -> Path:
    """Validate and write one pattern's metrics file (atomically); returns its path."""
    return save_metrics(to_metrics(results, env, crashes=crashes), out)


def save_metrics(doc: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """Validate and write a :func:`to_metrics` document (atomically); returns its path."""
    validate(doc)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{doc['pattern']}-metrics.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def read_metrics(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every metrics file in ``out``, validated, in pattern order."""
    docs = []
    for p in sorted(Path(out).glob("*-metrics.json")):
        doc = json.loads(p.read_text())
        validate(doc)
        docs.append(doc)
    return docs
