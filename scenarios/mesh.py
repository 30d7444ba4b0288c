"""Mesh distributed learning: five peers gossip patterns directly.

Behaviours measured: pattern sharing (peers learn more than the same peers in isolation),
consensus decisions (a 0.67 majority of peers' votes is more often right than a single peer),
pattern replication (every peer ends with every pattern; sync latency), and fault tolerance (a
peer crashed mid-run restarts from its SQLite file, loses nothing it committed, and catches up).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.summary import Scoring
from swarm.orchestrator import Swarm, SwarmConfig, agent_decisions
from topologies import mesh

from .base import HELD_OUT, Check, ScenarioResult
from .swarm_base import mean_accuracy, swarm_baselines, swarm_figures

PATTERN = "mesh-distributed-learning"
CONSENSUS_TOLERANCE = 0.01


@dataclass(frozen=True, slots=True)
class MeshScenarioConfig:
    seed: int = 0
    agents: int = mesh.AGENTS
    episodes: int = 30
    consensus: float = mesh.CONSENSUS
    votes_per_episode: int = 10  # held-out contexts the swarm decides on after each episode
    crash_episode: int = 10  # fault run: a peer crashes after this episode...
    down_episodes: int = 5  # ...and restarts this many episodes later, while the others are partitioned
    message_loss: float = 0.1  # fault run: share of frames lost throughout
    sync: bool = True  # False: peers do not gossip (sharing and replication must then fail)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    scoring: Scoring = field(default_factory=Scoring)


def _swarm_config(config: MeshScenarioConfig, **kw: Any) -> SwarmConfig:
    return SwarmConfig(seed=config.seed, episodes=config.episodes, trades_per_episode=config.scoring.trades_per_episode,
                       sync=config.sync, **kw)


def run(config: MeshScenarioConfig = MeshScenarioConfig()) -> ScenarioResult:
    specs = mesh.agents(config.seed, config.agents, config.memory)
    cfg = _swarm_config(config)
    held_out = agent_decisions(replace(specs[0], market_seed=config.seed + HELD_OUT), cfg,
                               config.episodes * config.votes_per_episode)
    ballots: list[dict[str, Any]] = []

    async def voting(swarm: Swarm) -> None:
        k = swarm.kernel
        for e in range(config.episodes):
            await k.sleep((e + 1) * cfg.episode_seconds + 0.5 - k.now())
            for d in held_out[e * config.votes_per_episode:(e + 1) * config.votes_per_episode]:
                votes = [a.vote(d.context) for a in swarm.live()]
                decided = mesh.consensus(votes, config.consensus)
                right = [v in d.best for v in votes if v is not None]
                ballots.append({"episode": e + 1, "decided": decided,
                                "correct": None if decided is None else bool(decided in d.best),
                                "individual_accuracy": float(np.mean(right)) if right else None})

    with Swarm(cfg, specs, contacts=mesh.contacts, controller=voting) as shared, \
            Swarm(replace(cfg, sync=False), specs) as isolated:
        shared.run()
        isolated.run()
        learning, trading, performance, curve = swarm_figures(shared, config.scoring)
        base = swarm_baselines(shared, config.seed, config.scoring, config.memory.lr, isolated)
        acc_alone = mean_accuracy(list(isolated.agents.values()))
        on_wire = shared.config.transport == "quic"
        acc_shared = mean_accuracy(list(shared.agents.values()))
        wire = _wire_figures(shared) if on_wire else None
    if wire is None:  # the sharing check always runs over real QUIC: run the same swarm on it
        with Swarm(replace(cfg, transport="quic", runtime=None if cfg.runtime == "process" else "in-process"),
                   specs, contacts=mesh.contacts) as real:
            real.run()
            wire = _wire_figures(real)
    performance["sharing_over_quic"] = wire
    fault = _fault_run(config, specs)

    decided = [b for b in ballots if b["decided"] is not None]
    cons_acc = float(np.mean([b["correct"] for b in decided])) if decided else float("nan")
    indiv = [b["individual_accuracy"] for b in decided if b["individual_accuracy"] is not None]
    indiv_acc = float(np.mean(indiv)) if indiv else float("nan")
    trading["consensus_accuracy"] = round(cons_acc, 4) if decided else None
    trading["consensus_rate"] = round(len(decided) / len(ballots), 4) if ballots else None
    trading["individual_vote_accuracy"] = round(indiv_acc, 4) if indiv else None
    performance["fault_tolerance"] = fault
    learning["accuracy_isolated"] = round(acc_alone, 4)
    checks = [
        Check("pattern sharing", wire["accuracy"] > acc_alone and wire["replication_consistency"] >= 0.999,
              f"over real QUIC ({wire['runtime']}): mean peer accuracy {wire['accuracy']:.3f} with gossip vs "
              f"{acc_alone:.3f} for the same peers in isolation, replication {wire['replication_consistency']:.4f}, "
              f"{wire['bytes_sent']} bytes, sync p50 {wire['sync_latency_ms']['p50']} wall ms"
              + ("" if on_wire else f" (on the simulated network: {acc_shared:.3f})")),
        Check("consensus decisions", bool(decided) and cons_acc >= indiv_acc - CONSENSUS_TOLERANCE,
              f"{len(decided)}/{len(ballots)} votes reached {config.consensus:.0%} agreement; those decisions were "
              f"right {cons_acc:.3f} of the time vs {indiv_acc:.3f} for a single peer's vote (peers that share "
              f"memory vote alike, so a majority is checked to be at least as right, within {CONSENSUS_TOLERANCE})"),
        Check("pattern replication", learning["replication_consistency"] >= 0.999,
              f"replication consistency {learning['replication_consistency']:.4f} after the run; sync latency "
              f"{performance['sync_latency_ms']} ms"),
        Check("fault tolerance", fault["committed_patterns_lost"] == 0 and fault["replication_consistency"] >= 0.999
              and fault["recovered_patterns"] >= fault["committed_before_crash"],
              f"with {config.message_loss:.0%} of frames lost ({fault['frames_lost']}), {fault['agent']} crashed after "
              f"episode {config.crash_episode} with {fault['committed_before_crash']} committed patterns while the "
              f"rest were partitioned in two for {config.down_episodes} episodes; it restarted with "
              f"{fault['recovered_patterns']}; patterns lost {fault['committed_patterns_lost']}; consistency "
              f"afterwards {fault['replication_consistency']:.4f}"),
    ]
    cfg_out = asdict(config)
    return ScenarioResult(PATTERN, config.seed, cfg_out, checks, learning, trading, performance, base,
                          {"episode_accuracy": curve,
                           "isolated_episode_accuracy": base["isolated agents (no sharing)"]["episode_accuracy"],
                           "consensus_accuracy_by_episode": _by_episode(ballots, config.episodes)})


def _wire_figures(swarm: Swarm) -> dict[str, Any]:
    """What a swarm on the real bus measured: learning, replication, traffic and wire latency."""
    traffic = swarm.traffic()
    return {"runtime": swarm.config.runtime, "accuracy": round(mean_accuracy(list(swarm.agents.values())), 4),
            "replication_consistency": round(swarm.replication_consistency(), 4),
            "sync_latency_ms": swarm.sync_latency_ms(), "frames_sent": traffic.get("messages", 0),
            "bytes_sent": traffic.get("bytes", 0), "refused": traffic.get("refused", 0),
            "wall_seconds": round(swarm.wall_s, 3)}


def _by_episode(ballots: list[dict[str, Any]], episodes: int) -> list[float | None]:
    out = []
    for e in range(1, episodes + 1):
        got = [b["correct"] for b in ballots if b["episode"] == e and b["correct"] is not None]
        out.append(round(float(np.mean(got)), 4) if got else None)
    return out


def _fault_run(config: MeshScenarioConfig, specs: list) -> dict[str, Any]:
    """Crash one peer after ``crash_episode``, restart it ``down_episodes`` later, and check that
    nothing it committed was lost and the swarm converges again."""
    cfg = _swarm_config(config)
    victim = specs[1].id
    before: dict[str, Any] = {}

    async def faults(swarm: Swarm) -> None:
        k = swarm.kernel
        swarm.degrade(replace(cfg.link, loss=config.message_loss, distribution="lognormal"))
        await k.sleep(config.crash_episode * cfg.episode_seconds + 0.5 - k.now())
        before["ids"] = swarm.agents[victim].pattern_ids()
        swarm.crash(victim)
        ids = list(swarm.agents)
        swarm.partition(ids[: len(ids) // 2], ids[len(ids) // 2:])  # and the rest split in two
        await k.sleep(config.down_episodes * cfg.episode_seconds)
        swarm.heal()
        agent = swarm.restart(victim)
        before["recovered"] = len(agent.pattern_ids() & before["ids"])

    with Swarm(cfg, specs, contacts=mesh.contacts, controller=faults) as swarm:
        swarm.run()
        live = swarm.live()
        held = set().union(*(a.pattern_ids() for a in live))
        lost = [pid for pid in swarm.first_seen if pid not in held]
        return {"agent": victim, "crash_after_episode": config.crash_episode, "message_loss": config.message_loss,
                "partitioned_episodes": config.down_episodes, "frames_lost": swarm.traffic().get("lost", 0),
                "down_episodes": config.down_episodes, "committed_before_crash": len(before.get("ids", ())),
                "recovered_patterns": before.get("recovered", 0), "committed_patterns_lost": len(lost),
                "replication_consistency": round(swarm.replication_consistency(), 4),
                "accuracy_during_run": round(mean_accuracy(live), 4)}
