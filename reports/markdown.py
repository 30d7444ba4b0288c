"""``LEARNING_PATTERNS_COMPARISON.md``: every figure in it is read from this run's metrics files."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from . import charts
from .metrics import read_metrics

REPORT_NAME = "LEARNING_PATTERNS_COMPARISON.md"
LEARNING_SCENARIOS = ("cold-start", "warm-start", "transfer-learning", "continual-learning", "catastrophic-forgetting")
BASELINES = ("random", "best-fixed", "no-memory", "oracle")


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _acc(doc: dict[str, Any], name: str) -> Any:
    return (doc["baselines"].get(name) or {}).get("accuracy")


def _conv(doc: dict[str, Any]) -> Any:
    lr = doc["learning"]
    return lr.get("convergence_episodes", lr.get("convergence_episode"))


def _table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _guide(patterns: list[dict[str, Any]]) -> list[str]:
    """Recommendations ranked from the measured figures of the deployment patterns."""
    ok = [d for d in patterns if d["status"] == "passed"]
    lines: list[str] = []

    def best(label: str, key: Callable[[dict[str, Any]], Any], fmt: Callable[[Any], str], low: bool = False) -> None:
        scored = [(key(d), d["pattern"]) for d in ok if key(d) is not None]
        if not scored:
            return
        scored.sort(key=lambda t: t[0], reverse=not low)
        value, name = scored[0]
        runner = f"; next: {scored[1][1]} ({fmt(scored[1][0])})" if len(scored) > 1 else ""
        lines.append(f"- **{label}:** {name} ({fmt(value)}){runner}.")

    best("Highest learning accuracy", lambda d: d["learning"].get("accuracy"), lambda v: f"accuracy {v:.3f}")
    best("Fastest convergence", lambda d: _conv(d) if isinstance(_conv(d), int) else None,
         lambda v: f"episode {v}", low=True)
    best("Best risk-adjusted trading", lambda d: d["trading"].get("sharpe_ratio"), lambda v: f"Sharpe {v:.2f}")
    best("Fastest pattern sync", lambda d: (d["performance"].get("sync_latency_ms") or {}).get("p50"),
         lambda v: f"p50 {v:.0f} virtual ms", low=True)
    best("Least network traffic per decision",
         lambda d: (d["performance"].get("bytes_sent") / d["learning"]["decisions"])
         if d["performance"].get("bytes_sent") and d["learning"].get("decisions") else None,
         lambda v: f"{v:,.0f} bytes per decision", low=True)
    failed = [d["pattern"] for d in patterns if d["status"] != "passed"]
    if failed:
        lines.append(f"- **Failed a check in this run (see below before choosing):** {', '.join(failed)}.")
    if not lines:
        lines.append("- No deployment pattern passed all its checks in this run, so none is recommended.")
    return lines


def write_report(out: str | os.PathLike[str], *, seed: int | None = None, command: str = "") -> Path:
    """Read every metrics file in ``out`` and write the comparison report and its charts there."""
    out = Path(out)
    docs = read_metrics(out)
    learning = [d for d in docs if d["pattern"] in LEARNING_SCENARIOS]
    patterns = [d for d in docs if d["pattern"] not in LEARNING_SCENARIOS]
    env = docs[0]["environment"] if docs else {}
    passed = sum(d["status"] == "passed" for d in docs)
    lines = ["# Learning patterns comparison", ""]
    lines.append(f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
                 + (f" by `{command}`" if command else "") + (f", seed {seed}" if seed is not None else "")
                 + f"; transport {env.get('transport', '—')}, runtime {env.get('runtime', '—')}, "
                 f"Python {env.get('python', '—')}, {env.get('cpus', '—')} CPUs.")
    lines += ["", f"**{passed} of {len(docs)} patterns passed all their checks.** Every figure below was "
              "measured in this run; accuracy is the share of decisions that picked the hindsight-best "
              "strategy, and each learner stands beside the random, best-fixed, no-memory and oracle baselines "
              "on the same decisions.", ""]
    if patterns:
        lines += ["## Deployment patterns", ""]
        rows = []
        for d in patterns:
            lr, tr, pf = d["learning"], d["trading"], d["performance"]
            ok = sum(c["passed"] for c in d["checks"])
            rows.append([d["pattern"], d["status"], f"{ok}/{len(d['checks'])}", _f(lr.get("accuracy")),
                         *(_f(_acc(d, b)) for b in BASELINES), _f(lr.get("final_accuracy")), _f(_conv(d)),
                         _f(tr.get("sharpe_ratio"), 2), _f(tr.get("win_rate")),
                         _f((pf.get("sync_latency_ms") or {}).get("p50"), 0), _f(lr.get("replication_consistency"))])
        lines += _table(["pattern", "status", "checks", "accuracy", "random", "best fixed", "no-memory", "oracle",
                         "final acc.", "convergence ep.", "Sharpe", "win rate", "sync p50 (virtual ms)",
                         "replication"], rows)
        lines.append("")
    if learning:
        lines += ["## Learning scenarios", ""]
        rows = []
        for d in learning:
            lr, tr = d["learning"], d["trading"]
            key = lr.get("retention_rate", lr.get("accuracy_mean_over_runs"))
            rows.append([d["pattern"], d["status"], f"{sum(c['passed'] for c in d['checks'])}/{len(d['checks'])}",
                         _f(lr.get("accuracy")), *(_f(_acc(d, b)) for b in BASELINES), _f(_conv(d)),
                         _f(tr.get("sharpe_ratio"), 2), _f(key)])
        lines += _table(["scenario", "status", "checks", "accuracy", "random", "best fixed", "no-memory", "oracle",
                         "convergence ep.", "Sharpe", "retention / mean over runs"], rows)
        lines.append("")
    lines += ["## Pattern selection guide", "", "Ranked from this run's figures (patterns that passed all checks):",
              ""] + _guide(patterns) + [""]
    chart_dir = out / "charts"
    made = [("Learning curves", charts.learning_curves(docs, chart_dir / "learning_curves.png")),
            ("Convergence", charts.convergence(docs, chart_dir / "convergence.png")),
            ("Sync latency", charts.sync_latency(docs, chart_dir / "sync_latency.png"))]
    made = [(t, p) for t, p in made if p is not None]
    if made:
        lines += ["## Charts", ""] + [f"![{t}](charts/{p.name})" for t, p in made] + [""]
    lines += ["## Checks", ""]
    for d in docs:
        lines.append(f"### {d['pattern']} — {d['status']}")
        lines.append("")
        for c in d["checks"]:
            lines.append(f"- {'PASS' if c['passed'] else 'FAIL'} **{c['name']}**: {c['detail']}")
        lines.append("")
    path = out / REPORT_NAME
    path.write_text("\n".join(lines))
    return path
