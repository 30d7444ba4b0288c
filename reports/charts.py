"""PNG charts for the comparison report (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def learning_curves(docs: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Episode accuracy of every pattern that has one, with the target line."""
    curves = [(d["pattern"], d["series"].get("episode_accuracy")) for d in docs]
    curves = [(p, c) for p, c in curves if c]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(9, 5))
    for name, c in curves:
        ax.plot(range(1, len(c) + 1), [float("nan") if v is None else v for v in c], label=name, linewidth=1.2)
    ax.axhline(0.7, color="grey", linestyle="--", linewidth=0.8, label="target 0.7")
    ax.set_xlabel("episode (10 trades)")
    ax.set_ylabel("accuracy (hindsight-best strategy picked)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Learning curves")
    return _save(fig, path)


def _bar(names: list[str], values: list[float], path: Path, title: str, ylabel: str,
         notes: list[str] | None = None) -> Path | None:
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bars = ax.bar(range(len(names)), values, color="#4c72b0")
    for b, note in zip(bars, notes or [""] * len(names)):
        if note:
            ax.text(b.get_x() + b.get_width() / 2, b.get_height(), note, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(fig, path)


def convergence(docs: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Convergence episode per pattern; patterns that did not reach the target are marked."""
    names, values, notes = [], [], []
    for d in docs:
        conv = d["learning"].get("convergence_episodes", d["learning"].get("convergence_episode"))
        if conv is None:
            continue
        episodes = len(d["series"].get("episode_accuracy") or []) or 1
        names.append(d["pattern"])
        if conv == "not reached":
            values.append(episodes)
            notes.append("not reached")
        else:
            values.append(int(conv))
            notes.append("")
    return _bar(names, values, path, "Convergence episode (rolling accuracy >= 0.7)", "episode", notes)


def sync_latency(docs: Sequence[dict[str, Any]], path: Path) -> Path | None:
    names, values = [], []
    for d in docs:
        s = d["performance"].get("sync_latency_ms")
        if s:
            names.append(d["pattern"])
            values.append(s["p50"])
    return _bar(names, values, path, "Pattern sync latency p50 (virtual ms, write to arrival at a peer)", "ms")


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
