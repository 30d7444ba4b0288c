"""What the deployment-pattern scenarios share: running swarms, and turning them into figures."""

from __future__ import annotations

from typing import Any
from collections.abc import Sequence

import numpy as np

from swarm.learning import metrics as m
from swarm.learning.episodes import Decision
from swarm.learning.session import RunLog, merge_in_time
from swarm.learning.summary import Scoring, summarise
from swarm.agent import AgentHandle
from swarm.orchestrator import Swarm

from .base import baselines, rounded


def pooled_log(agents: Sequence[AgentHandle]) -> RunLog:
    """All agents' decisions in one log, in time order (agent order on ties): the swarm's book."""
    return merge_in_time([a.log for a in agents])


def traded_decisions(agents: Sequence[AgentHandle]) -> list[list[Decision]]:
    """Per agent, the decisions it actually traded (what its figures cover)."""
    return [a.decisions[: len(a.log)] for a in agents if len(a.log)]


def mean_sharpe(agents: Sequence[AgentHandle], scoring: Scoring) -> float:
    """The swarm's risk-adjusted return: Sharpe of all agents' trades pooled in time order."""
    log = pooled_log([a for a in agents if len(a.log)])
    return m.sharpe_ratio(log.rewards, scoring.periods_per_year) if len(log) else float("nan")


def mean_regret(agents: Sequence[AgentHandle]) -> float:
    """Mean P&L per decision the agents gave up to the hindsight-best strategy."""
    regrets = [r for a in agents for r in a.log.regrets]
    return float(np.mean(regrets)) if regrets else float("nan")


def mean_episode_accuracy(agents: Sequence[AgentHandle], per_episode: int) -> list[float]:
    """Per episode, the mean over agents of their episode accuracy (agents that traded it)."""
    curves = [m.episode_accuracy(a.log.correct, per_episode) for a in agents if a.log.correct]
    if not curves:
        return []
    n = max(len(c) for c in curves)
    return [round(float(np.mean([c[i] for c in curves if i < len(c)])), 4) for i in range(n)]


def mean_episode_regret(agents: Sequence[AgentHandle], per_episode: int) -> list[float]:
    """Per episode, the mean regret per decision over all agents' trades in it (the learning curve
    in what a decision costs, not in how often it was right)."""
    curves = [m.episode_mean(a.log.regrets, per_episode) for a in agents if a.log.regrets]
    if not curves:
        return []
    n = max(len(c) for c in curves)
    return [round(float(np.mean([c[i] for c in curves if i < len(c)])), 6) for i in range(n)]


def mean_accuracy(agents: Sequence[AgentHandle]) -> float:
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
        "accuracy": rounded(pooled["accuracy"]),
        "tie_share": rounded(pooled["tie_share"]),
        "regret": rounded(pooled["regret"], 6),
        "accuracy_per_agent": {a.id: round(float(np.mean(a.log.correct)), 4) for a in agents if a.log.correct},
        "convergence_episodes": conv.to_json(),
        "final_accuracy": round(float(np.mean(curve[-scoring.window:])), 4) if curve else None,
        "pattern_count": int(np.mean([len(a.store) for a in live])) if live else 0,
        **_memory_bytes(live),
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
    """The standard baselines on exactly the decisions the swarm's figures cover (every agent's,
    pooled in time order); plus the same agents without sharing, when that run exists."""
    out = baselines(traded_decisions(list(swarm.agents.values())), seed, scoring, lr)
    if isolated is not None:
        agents = list(isolated.agents.values())
        alone = summarise(pooled_log(agents), scoring)
        out["isolated agents (no sharing)"] = {
            "accuracy": rounded(alone["accuracy"]), "regret": rounded(alone["regret"], 6),
            "sharpe_ratio": rounded(alone["sharpe_ratio"]), "avg_return": rounded(alone["avg_return"], 6),
            "accuracy_per_agent": {a.id: round(float(np.mean(a.log.correct)), 4) for a in agents if a.log.correct},
            "episode_accuracy": mean_episode_accuracy(agents, scoring.trades_per_episode),
        }
    return out



def _memory_bytes(agents: Sequence[AgentHandle]) -> dict[str, int]:
    """The stores' real footprint: database files after a checkpoint, and the WAL reported apart."""
    db = wal = 0
    for a in agents:
        a.store.checkpoint()
        size = a.store.size_bytes()
        wal_size = a.store.wal_bytes()
        db += size - wal_size
        wal += wal_size
    return {"memory_size_bytes": int(db), "memory_wal_bytes": int(wal)}
