"""The summary table of a results directory as markdown, for CI job summaries.

    python -m reports.summary results >> "$GITHUB_STEP_SUMMARY"
"""

from __future__ import annotations

import sys
from pathlib import Path

from .metrics import read_metrics


def summary_markdown(out: str | Path) -> str:
    docs = read_metrics(out)
    lines = ["| pattern | status | checks | accuracy | no-memory | random | convergence |", "|---|---|---|---|---|---|---|"]
    for d in docs:
        lr = d["learning"]
        conv = lr.get("convergence_episodes", lr.get("convergence_episode"))
        acc = lr.get("accuracy")
        nm = d["baselines"].get("no-memory", {}).get("accuracy")
        rnd = d["baselines"].get("random", {}).get("accuracy")
        ok = sum(c["passed"] for c in d["checks"])
        lines.append(f"| {d['pattern']} | {d['status']} | {ok}/{len(d['checks'])} | "
                     f"{'—' if acc is None else f'{acc:.3f}'} | {'—' if nm is None else f'{nm:.3f}'} | "
                     f"{'—' if rnd is None else f'{rnd:.3f}'} | {conv} |")
    passed = sum(d["status"] == "passed" for d in docs)
    return f"### Learning patterns: {passed}/{len(docs)} passed\n\n" + "\n".join(lines) + "\n"


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
