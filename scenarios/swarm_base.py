"""What the deployment-pattern scenarios share: running swarms, and turning them into figures."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from swarm.learning import metrics as m
from swarm.learning.session import RunLog
from swarm.learning.summary import Scoring, summarise
from swarm.orchestrator import Swarm, SwarmAgent

from .base import baselines


def pooled_log(agents: Sequence[SwarmAgent]) -> RunLog:
    """All agents' decisions in one log, episode by episode (agent order within an episode)."""
    out = RunLog("swarm")
    for a in agents:
        out.extend(a.log)
    return out


def mean_episode_accuracy(agents: Sequence[SwarmAgent], per_episode: int) -> list[float]:
    """Per episode, the mean over agents of their episode accuracy (agents that traded it)."""
    curves = [m.episode_accuracy(a.log.correct, per_episode) for a in agents if a.log.correct]
    if not curves:
        return []
    n = max(len(c) for c in curves)
    return [round(float(np.mean([c[i] for c in curves if i < len(c)])), 4) for i in range(n)]


def mean_accuracy(agents: Sequence[SwarmAgent]) -> float:
    accs = [float(np.mean(a.log.correct)) for a in agents if a.log.correct]
    return float(np.mean(accs)) if accs else float("nan")


def swarm_figures(swarm: Swarm, scoring: Scoring) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[float]]:
    """Learning, trading and performance sections of a swarm run, and its mean learning curve."""
    agents = list(swarm.agents.values())
    curve = mean_episode_accuracy(agents, scoring.trades_per_episode)
    conv = m.convergence_episode(curve, scoring.target, scoring.window)
    pooled = summarise(pooled_log(agents), scoring)
    live = swarm.live()
    learning = {
        "agents": len(agents),
        "decisions": pooled["decisions"],
        "accuracy": round(mean_accuracy(agents), 4),
        "accuracy_per_agent": {a.id: round(float(np.mean(a.log.correct)), 4) for a in agents if a.log.correct},
        "convergence_episodes": conv.to_json(),
        "final_accuracy": round(float(np.mean(curve[-scoring.window:])), 4) if curve else None,
        "pattern_count": int(np.mean([len(a.store) for a in live])) if live else 0,
        "memory_size_bytes": int(sum(a.store.size_bytes() for a in live)),
        "replication_consistency": round(swarm.replication_consistency(), 4),
    }
    trading = {k: pooled[k] for k in ("win_rate", "avg_return", "sharpe_ratio", "max_drawdown")}
    traffic = swarm.traffic()
    performance = {
        "decision_latency_ms": pooled["decision_latency_ms"],
        "learning_overhead_ms": pooled["learning_overhead_ms"],
        "sync_latency_ms": swarm.sync_latency_ms(),
        "frames_sent": traffic.get("messages", 0),
        "bytes_sent": traffic.get("bytes", 0),
        "virtual_seconds": round(swarm.kernel.now(), 3),
        "wall_seconds": round(swarm.wall_s, 3),
    }
    return learning, trading, performance, curve


def swarm_baselines(swarm: Swarm, seed: int, scoring: Scoring, lr: float,
                    isolated: Swarm | None = None) -> dict[str, dict[str, Any]]:
    """The standard baselines on the decisions of the first agent that traded; plus the same
    agents without sharing, when that run exists."""
    first = next(a for a in swarm.agents.values() if a.log.correct)
    out = baselines(first.decisions[: len(first.log)], seed, scoring, lr)
    if isolated is not None:
        agents = list(isolated.agents.values())
        out["isolated agents (no sharing)"] = {
            "accuracy": round(mean_accuracy(agents), 4),
            "accuracy_per_agent": {a.id: round(float(np.mean(a.log.correct)), 4) for a in agents if a.log.correct},
            "episode_accuracy": mean_episode_accuracy(agents, scoring.trades_per_episode),
        }
    return out

