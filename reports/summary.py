"""The summary table of a results directory as markdown, for CI job summaries.

    python -m reports.summary results >> "$GITHUB_STEP_SUMMARY"
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .aggregate import is_figure, show
from .metrics import read_metrics


#: The summary's columns: headline figures first (risk-adjusted return, regret), then cost.
ROW_HEADER = ("pattern", "status", "checks", "agents x episodes", "Sharpe", "best fixed", "no-memory",
              "VW bandit", "regret (bp)", "sync p50", "wall s")


def row(d: dict[str, Any]) -> list[str]:
    """One pattern's summary cells (a crashed pattern counts as failed, and says so)."""
    b = d["budget"]
    sync = d["performance"].get("sync_latency_ms")
    sync_cell = "—"
    if isinstance(sync, dict) and is_figure(sync.get("p50")):
        sync_cell = f"{show(sync['p50'], 0)} {'virtual ms' if sync.get('clock') == 'virtual' else 'ms'}"
    base = {k: (d["baselines"].get(k) or {}).get("sharpe_ratio") for k in ("best-fixed", "no-memory", "contextual-bandit")}
    return [d["pattern"], d["status"], f"{sum(c['passed'] for c in d['checks'])}/{len(d['checks'])}",
            f"{b.get('agents') or '—'} x {b.get('episodes') or '—'}", show(d["trading"].get("sharpe_ratio")),
            show(base["best-fixed"]), show(base["no-memory"]), show(base["contextual-bandit"]),
            show(d["learning"].get("regret"), 1, 1e4), sync_cell, wall_cell(d)]


#: Written beside the metrics when a run was stopped (SIGINT, SIGTERM) before every selected pattern ran.
INTERRUPTED_NAME = "interrupted.json"


def write_interruption(out: str | os.PathLike[str], signal: str | None, not_run: Sequence[str]) -> Path:
    """Mark ``out`` as an interrupted run's: what stopped it, and the selected patterns that never finished."""
    path = Path(out) / INTERRUPTED_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"signal": signal, "not_run": list(not_run)}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_interruption(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``{"signal": "SIGINT" | None, "not_run": [pattern ids]}`` if the run in ``out`` was interrupted, else None."""
    try:
        info = json.loads((Path(out) / INTERRUPTED_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    not_run = info.get("not_run")
    return {"signal": info.get("signal") if isinstance(info.get("signal"), str) else None,
            "not_run": [str(p) for p in not_run] if isinstance(not_run, list) else []}


def interrupted_line(info: dict[str, Any], finished: int) -> str:
    """One sentence: the run was stopped, what it covers, and what was not run (never counted as failed)."""
    by = f" by {info['signal']}" if info.get("signal") else ""
    not_run = info["not_run"]
    return (f"Interrupted{by}: this covers the {finished} pattern{'s' if finished != 1 else ''} that finished "
            f"before it; not run: {', '.join(not_run) if not_run else 'none'}.")


def not_run_row(pattern: str) -> list[str]:
    """A selected pattern the interrupted run never finished: no figures, and not a failure."""
    return [pattern, "not run"] + ["—"] * (len(ROW_HEADER) - 2)


def wall_cell(d: dict[str, Any]) -> str:
    """The pattern's wall seconds over all its seeds (measured by the plugin), or a dash."""
    wall = d["performance"].get("pattern_wall_seconds")
    return f"{wall['total']:.0f}" if isinstance(wall, dict) and isinstance(wall.get("total"), (int, float)) else "—"


def cost_cell(d: dict[str, Any]) -> str:
    """The pattern's sandbox cost (e2b runtime: USD estimate and sandbox-seconds), or why there is none."""
    cost = d["performance"].get("sandbox_cost")
    if not isinstance(cost, dict):
        return "—"
    if not isinstance(cost.get("usd"), (int, float)):
        return f"— ({cost.get('reason') or 'not measured'})"
    return f"${cost['usd']:.4f} ({cost['sandbox_seconds']:.0f} sandbox-s)"


def summary_markdown(out: str | Path) -> str:
    docs = read_metrics(out)
    interrupted = read_interruption(out)
    lines = ["| " + " | ".join(ROW_HEADER) + " |", "|" + "---|" * len(ROW_HEADER)]
    lines += ["| " + " | ".join(row(d)) + " |" for d in docs]
    if interrupted:
        lines += ["| " + " | ".join(not_run_row(p)) + " |" for p in interrupted["not_run"]]
    passed = sum(d["status"] == "passed" for d in docs)
    crashed = [d["pattern"] for d in docs if d["status"] == "crashed"]
    seeds = sorted({s for d in docs for s in d["seeds"]})
    head = f"### Learning patterns: {passed}/{len(docs)} passed" + (f" ({len(crashed)} crashed)" if crashed else "")
    note = ""
    if interrupted:
        head += " (interrupted)"
        note = f"**{interrupted_line(interrupted, len(docs))}**\n\n"
    return (f"{head}\n\n{note}Seeds {', '.join(map(str, seeds))}; figures are means with 95% CIs over seeds.\n\n"
            + "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "results")
    if not out.is_dir():
        print(f"reports.summary: {out} is not a results directory", file=sys.stderr)
        return 2
    print(summary_markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
