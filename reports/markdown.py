"""``LEARNING_PATTERNS_COMPARISON.md``: every figure in it is read from this run's metrics files.

Headline figures are the ones a user acts on: risk-adjusted return (Sharpe of the swarm's trades
pooled in time order) and regret to the hindsight oracle, each a mean with its 95% CI over the
run's seeds, beside the baselines on exactly the same decisions. Patterns are ranked by them, and
called "tied" where their intervals overlap.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from . import charts
from .aggregate import is_figure, show, value
from .metrics import read_metrics
from .summary import cost_cell, interrupted_line, read_interruption, wall_cell

REPORT_NAME = "LEARNING_PATTERNS_COMPARISON.md"
LEARNING_SCENARIOS = ("cold-start", "warm-start", "transfer-learning", "continual-learning", "catastrophic-forgetting",
                      "poisoning-defence")
#: Baselines shown beside each learner, by their name in the metrics files.
BASELINES = (("best-fixed", "best fixed"), ("no-memory", "no-memory"), ("contextual-bandit", "VW bandit"),
             ("regime-rule", "regime rule"), ("oracle", "oracle"))


def _base(doc: dict[str, Any], name: str, key: str = "sharpe_ratio") -> Any:
    b = doc["baselines"].get(name) or {}
    return b.get(key)


def _table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _checks(doc: dict[str, Any]) -> str:
    return f"{sum(c['passed'] for c in doc['checks'])}/{len(doc['checks'])}"


def _budget(doc: dict[str, Any]) -> str:
    b = doc["budget"]
    agents = b.get("agents")
    episodes = b.get("episodes")
    per = f"{agents} x {episodes}" if agents and episodes else "—"
    return f"{per} ({value(b.get('decisions')) or '—'} decisions)"


def _sync(doc: dict[str, Any]) -> str:
    s = doc["performance"].get("sync_latency_ms")
    if not isinstance(s, dict) or s.get("p50") is None:
        return "—"
    unit = "virtual ms" if s.get("clock") == "virtual" else "ms"
    return f"{show(s['p50'], 0)} {unit}"


def _bytes_per_decision(doc: dict[str, Any]) -> Any:
    sent, dec = value(doc["performance"].get("bytes_sent")), value(doc["learning"].get("decisions"))
    return sent / dec if sent and dec else None


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two figures' 95% intervals overlap (one seed: only equal means "overlap")."""
    if a.get("ci_low") is None or b.get("ci_low") is None:
        return a.get("mean") == b.get("mean")
    return a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"]


def _rank(docs: list[dict[str, Any]], label: str, get: Any, *, low: bool = False, fmt: Any = show) -> list[str]:
    """One guide line: the best pattern on a figure, and every pattern tied with it."""
    scored = [(get(d), d["pattern"]) for d in docs]
    scored = [(f, name) for f, name in scored if is_figure(f) and f["mean"] is not None]
    if not scored:
        return []
    scored.sort(key=lambda t: t[0]["mean"], reverse=not low)
    top, name = scored[0]
    tied = [n for f, n in scored[1:] if _overlap(f, top)]
    line = f"- **{label}:** {name} ({fmt(top)})"
    if tied:
        line += f"; tied with {', '.join(tied)} (95% intervals overlap)"
    elif len(scored) > 1:
        line += f"; clearly ahead of {scored[1][1]} ({fmt(scored[1][0])})"
    return [line + "."]


def _guide(patterns: list[dict[str, Any]]) -> list[str]:
    """Recommendations from the measured figures, P&L and regret first; failed patterns apart."""
    ok = [d for d in patterns if d["status"] == "passed"]
    lines: list[str] = []
    lines += _rank(ok, "Best risk-adjusted return (Sharpe)", lambda d: d["trading"].get("sharpe_ratio"))
    lines += _rank(ok, "Least regret to the oracle (bp per decision)", lambda d: d["learning"].get("regret"),
                   low=True, fmt=lambda f: show(f, 1, 1e4))
    clocks = {(d["performance"].get("sync_latency_ms") or {}).get("clock") for d in ok} - {None}
    unit = "virtual ms" if clocks == {"virtual"} else "ms" if clocks == {"wall"} else "ms (virtual and wall mixed)"
    lines += _rank(ok, "Fastest pattern sync (p50)",
                   lambda d: (d["performance"].get("sync_latency_ms") or {}).get("p50"), low=True,
                   fmt=lambda f: f"{show(f, 0)} {unit}")
    cheap = [(_bytes_per_decision(d), d["pattern"]) for d in ok if _bytes_per_decision(d)]
    if cheap:
        cheap.sort()
        lines.append(f"- **Least network traffic:** {cheap[0][1]} ({cheap[0][0]:,.0f} bytes per decision).")
    bad = [f"{d['pattern']} ({d['status']})" for d in patterns if d["status"] != "passed"]
    if bad:
        lines.append(f"- **Not recommended from this run (a check failed or a run crashed):** {', '.join(bad)}.")
    if not ok:
        lines.append("- No deployment pattern passed all its checks in this run, so none is recommended.")
    return lines


def _learning_rows(docs: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for d in docs:
        lr, tr = d["learning"], d["trading"]
        rows.append([d["pattern"], d["status"], _checks(d), _budget(d), show(tr.get("sharpe_ratio")),
                     show(lr.get("regret"), 1, 1e4), *(show(_base(d, b)) for b, _ in BASELINES),
                     show(lr.get("accuracy")), show(lr.get("tie_share")), wall_cell(d), cost_cell(d)])
    return rows


def write_report(out: str | os.PathLike[str], *, seed: int | None = None, command: str = "") -> Path:
    """Read every metrics file in ``out`` and write the comparison report and its charts there."""
    out = Path(out)
    docs = read_metrics(out)
    learning = [d for d in docs if d["pattern"] in LEARNING_SCENARIOS]
    patterns = [d for d in docs if d["pattern"] not in LEARNING_SCENARIOS]
    env = docs[0]["environment"] if docs else {}
    seeds = sorted({s for d in docs for s in d["seeds"]})
    passed = sum(d["status"] == "passed" for d in docs)
    crashed = [d["pattern"] for d in docs if d["status"] == "crashed"]
    interrupted = read_interruption(out)  # the run was stopped (SIGINT, SIGTERM) before it ran everything
    lines = ["# Learning patterns comparison" + (" (interrupted)" if interrupted else ""), ""]
    if interrupted:
        lines += [f"**{interrupted_line(interrupted, len(docs))}** What was not run is not counted as failed.", ""]
    lines.append(f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
                 + (f" by `{command}`" if command else "")
                 + f"; seeds {', '.join(map(str, seeds)) or '—'}; transport {env.get('transport', '—')}, runtime "
                 f"{env.get('runtime', '—')}, Python {env.get('python', '—')}, {env.get('cpus', '—')} CPUs.")
    lines += ["", f"**{passed} of {len(docs)} patterns passed all their checks**"
              + (f"; crashed: {', '.join(crashed)}" if crashed else "") + ". "
              "Every figure below was measured in this run. Figures are means over the seeds with their 95% "
              "confidence interval in brackets (a t-interval; none from a single seed). Sharpe is the annualised "
              "risk-adjusted return of all agents' trades pooled in time order; regret is the P&L per decision "
              "given up to the hindsight-best strategy (basis points); accuracy counts only decisions with a single "
              "best strategy (ties are their own share). Every baseline ran on exactly the decisions the learner's "
              "figure covers.", ""]
    header = ["status", "checks", "agents x episodes", "Sharpe", "regret (bp)",
              *(f"{label} Sharpe" for _, label in BASELINES), "accuracy", "tie share", "wall s (all seeds)",
              "sandbox cost (all seeds)"]
    if patterns:
        lines += ["## Deployment patterns", ""]
        rows = _learning_rows(patterns)
        for row, d in zip(rows, patterns):
            row += [_sync(d), show(d["learning"].get("replication_consistency"), 3)]
        lines += _table(["pattern", *header, "sync p50", "replication"], rows)
        lines.append("")
    if learning:
        lines += ["## Learning scenarios", ""]
        lines += _table(["scenario", *header], _learning_rows(learning))
        lines.append("")
    lines += ["## Pattern selection guide", "",
              "Ranked from this run's figures, among the deployment patterns that passed every check:", ""]
    lines += _guide(patterns) + [""]
    chart_dir = out / "charts"
    made = [("Learning curves (regret per decision, mean and 95% band over seeds)",
             charts.learning_curves(docs, chart_dir / "learning_curves.png")),
            ("Risk-adjusted return beside the baselines", charts.sharpe_bars(docs, chart_dir / "sharpe.png")),
            ("Convergence", charts.convergence(docs, chart_dir / "convergence.png")),
            ("Sync latency", charts.sync_latency(docs, chart_dir / "sync_latency.png"))]
    drawn = [(t, p) for t, p in made if p is not None]
    if drawn:
        lines += ["## Charts", ""] + [f"![{t}](charts/{p.name})" for t, p in drawn] + [""]
    lines += ["## Checks", "", "A check that compares two learners passes over several seeds only when its "
              "improvement's one-sided 95% lower confidence bound lies above zero (\"better\"); otherwise it reads "
              "\"tied\" or \"worse\". Other checks must pass on every seed.", ""]
    for d in docs:
        lines.append(f"### {d['pattern']} — {d['status']}")
        lines.append("")
        for c in d["crashed"]:
            lines.append(f"- CRASHED on seed {c['seed']}: {c['error']}")
        for c in d["checks"]:
            tag = "PASS" if c["passed"] else "FAIL"
            lines.append(f"- {tag} **{c['name']}** ({c['passed_seeds']}/{c['seeds']} seeds, {c['verdict']}): "
                         f"{c['detail']}")
        lines.append("")
    for pattern in interrupted["not_run"] if interrupted else ():
        lines += [f"### {pattern} — not run", "", "- NOT RUN: the run was interrupted before this pattern finished.", ""]
    path = out / REPORT_NAME
    path.write_text("\n".join(lines))
    return path
