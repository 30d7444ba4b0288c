"""Poisoning: one of five gossiping peers, a member in good standing, floods the swarm with
confident wrong advice; how much of their risk-adjusted return do the honest peers keep?

The attacker trades like the others but stores every trade with its reward sign-flipped and
``poison`` times larger, ``poison_copies`` times over: strategies that lost become confident
strategies, strategies that paid become lessons, and gossip spreads them like any other writes.
Four meshes run, the honest peers trading the same decisions in each: clean (the honest peers
alone: no attacker), clean with the defence, attacked without it, and attacked with it. The defence is the memory policy's ``trust``: each
author's patterns are weighed by how well its past claims matched the outcomes this peer saw
(:class:`~swarm.learning.memory_policy.AuthorTrust`), and a claim counts at most ``claim_cap``.
Figures are the honest peers' only (the attacker's trades are not theirs), with the standard
baselines on exactly the honest peers' decisions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from swarm.learning import metrics as m
from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.summary import Scoring, summarise
from swarm.orchestrator import Swarm
from swarm.specs import AgentSpec, SwarmConfig
from topologies import mesh

from .base import Check, ScenarioResult, baselines, rounded
from .swarm_base import mean_episode_accuracy, mean_regret, mean_sharpe, pooled_log, traded_decisions

PATTERN = "poisoning-defence"


@dataclass(frozen=True, slots=True)
class PoisoningConfig:
    """The swarm (a mesh), the attacker's strength, and the bar."""

    seed: int = 0
    agents: int = mesh.AGENTS  # the last one attacks
    episodes: int = 30
    poison: float = 5.0  # the attacker's rewards: sign-flipped, this much larger
    poison_copies: int = 3  # the attacker's patterns per trade
    keep: float = 0.9  # bar: with the defence, honest peers keep this share of their clean Sharpe
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    scoring: Scoring = field(default_factory=Scoring)


#: The suite runs this pattern as ``run(CONFIG(seed=...))``; ``--quick`` adds these overrides.
CONFIG = PoisoningConfig
QUICK: dict[str, Any] = {"episodes": 20}


def _specs(config: PoisoningConfig, attacked: bool, defended: bool) -> list[AgentSpec]:
    """The honest peers (the same ones in every run), and the attacker when there is one."""
    honest = replace(config.memory, trust=defended)
    specs = mesh.agents(config.seed, config.agents, honest)
    if not attacked:
        return specs[:-1]
    evil = replace(config.memory, poison=config.poison, poison_copies=config.poison_copies)
    return [*specs[:-1], replace(specs[-1], memory=evil)]


def _run(config: PoisoningConfig, attacked: bool, defended: bool) -> dict[str, Any]:
    """One mesh; the honest peers' figures."""
    cfg = SwarmConfig(seed=config.seed, episodes=config.episodes,
                      trades_per_episode=config.scoring.trades_per_episode)
    with Swarm.of(mesh.TOPOLOGY, cfg, _specs(config, attacked, defended)) as swarm:
        swarm.run()
        honest = list(swarm.agents.values())[: config.agents - 1]
        pooled = summarise(pooled_log(honest), config.scoring)
        return {"sharpe": mean_sharpe(honest, config.scoring), "regret": mean_regret(honest),
                "accuracy": pooled["accuracy"], "tie_share": pooled["tie_share"], "decisions_n": pooled["decisions"],
                "win_rate": pooled["win_rate"], "avg_return": pooled["avg_return"],
                "max_drawdown": pooled["max_drawdown"],
                "curve": mean_episode_accuracy(honest, config.scoring.trades_per_episode),
                "decisions": traded_decisions(honest), "wall_seconds": swarm.wall_s,
                "pattern_count": round(sum(len(a.store) for a in honest) / len(honest)),
                "bytes_sent": swarm.traffic().get("bytes", 0)}


def run(config: PoisoningConfig = PoisoningConfig()) -> ScenarioResult:
    """Run the four meshes; the honest peers' Sharpe in each, and the two checks."""
    runs = {name: _run(config, attacked, defended) for name, attacked, defended in (
        ("clean", False, False), ("clean_defended", False, True),
        ("attacked", True, False), ("attacked_defended", True, True))}
    clean, attacked, defended = runs["clean"]["sharpe"], runs["attacked"]["sharpe"], runs["attacked_defended"]["sharpe"]
    bar = config.keep * clean
    base = baselines(runs["attacked_defended"]["decisions"], config.seed, config.scoring, config.memory.lr)
    learning: dict[str, Any] = {
        "agents": config.agents, "attackers": 1,
        "honest_decisions": sum(len(d) for d in runs["clean"]["decisions"]),
        **{f"sharpe_{name}": rounded(r["sharpe"]) for name, r in runs.items()},
        **{f"regret_{name}": rounded(r["regret"], 6) for name, r in runs.items()},
        **{f"accuracy_{name}": rounded(r["accuracy"]) for name, r in runs.items()},
        "kept_share_defended": rounded(defended / clean) if clean else None,
        "kept_share_undefended": rounded(attacked / clean) if clean else None,
        "accuracy": rounded(runs["attacked_defended"]["accuracy"]),
        "decisions": runs["attacked_defended"]["decisions_n"],  # the honest peers' (what the figures cover)
        "tie_share": rounded(runs["attacked_defended"]["tie_share"]),
        "pattern_count": runs["attacked_defended"]["pattern_count"],
        "convergence_episodes": m.convergence_episode(runs["attacked_defended"]["curve"], config.scoring.target,
                                                      config.scoring.window).to_json(),
        "regret": rounded(runs["attacked_defended"]["regret"], 6),
    }
    d = runs["attacked_defended"]
    trading = {"sharpe_ratio": rounded(d["sharpe"]), "win_rate": rounded(d["win_rate"]),
               "avg_return": rounded(d["avg_return"], 6), "max_drawdown": rounded(d["max_drawdown"])}
    performance = {"wall_seconds": round(sum(r["wall_seconds"] for r in runs.values()), 3),
                   "bytes_sent": {name: r["bytes_sent"] for name, r in runs.items()}}
    checks = [
        Check("the attack bites", attacked < bar,
              f"undefended, the honest peers' Sharpe fell from {clean:.2f} (clean) to {attacked:.2f} with one of "
              f"{config.agents} peers poisoning (bar {bar:.2f}: an attack that does not push them below it "
              "tests no defence)", delta=bar - attacked),
        Check("bounded influence", defended >= bar,
              f"with the defence the honest peers' Sharpe is {defended:.2f} under attack against {clean:.2f} clean "
              f"({defended / clean:.0%} kept; bar {config.keep:.0%}); the defence alone, unattacked: "
              f"{runs['clean_defended']['sharpe']:.2f}"),  # a bar each seed must pass, not a comparison
    ]
    series = {f"{name}_episode_accuracy": r["curve"] for name, r in runs.items()}
    return ScenarioResult(PATTERN, config.seed, asdict(config), checks, learning, trading, performance, base,
                          {"episode_accuracy": d["curve"], **series})
