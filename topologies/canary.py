"""Canary: a new version takes a growing share of the agents, 10% -> 25% -> 50% -> 100%, moving on
only while it performs within a tolerance of the stable version; otherwise every agent rolls back.
Switching version keeps an agent's memory: only its policy changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarm.agent import AgentHandle
from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.metrics import skill
from swarm.learning.policies import Exploration
from swarm.orchestrator import Swarm
from swarm.specs import AgentSpec
from swarm.topology import Topology

AGENTS = 10
STAGES: tuple[float, ...] = (0.10, 0.25, 0.50, 1.00)
STABLE = MemoryConfig()  # v1
CANARY = MemoryConfig(k=48, sharpness=3.0)  # v2
#: A broken v2 for the rollback drill: it almost always explores, i.e. trades at random.
BROKEN = MemoryConfig(exploration=Exploration(start=0.9, decay=1.0, floor=0.9))


@dataclass(frozen=True, slots=True)
class Gate:
    """Promote to the next stage while the canary's skill is within ``tolerance`` of the stable
    version's over the stage. Skill is ``1 - regret / random regret`` on an agent's own decisions
    (1 = the hindsight-best strategy every time, 0 = no better than picking at random), so agents
    trading markets of different difficulty can be compared."""

    tolerance: float = 0.5  # one canary agent over one stage is noisy; a broken version loses ~0.6

    def healthy(self, canary_skill: float, stable_skill: float) -> bool:
        return canary_skill >= stable_skill - self.tolerance


def agents(seed: int, n: int = AGENTS) -> list[AgentSpec]:
    return [AgentSpec(f"node-{i}", role="fleet", market_seed=seed * 100 + i, memory=STABLE) for i in range(n)]


def on_canary(n: int, share: float) -> int:
    """How many of ``n`` agents run the canary at ``share`` of the traffic (at least one)."""
    return max(1, round(share * n))


def _window(agent: AgentHandle, start: int, n: int) -> tuple[list[float], list[float]]:
    """An agent's regrets over ``n`` trades from ``start``, and a random pick's regrets there."""
    regrets = agent.log.regrets[start:start + n]
    decisions = agent.decisions[start:start + len(regrets)]
    return regrets, [float(d.pnl.max() - d.pnl.mean()) for d in decisions]


@dataclass(eq=False)
class Rollout:
    """After ``warmup_episodes`` on v1, move a growing share of the fleet (``STAGES``) to ``v2``,
    one stage every ``stage_episodes``; at each stage's end compare the canary's skill with the
    stable agents' over the stage, and roll every canary back to v1 when the gate says so.
    Keeps the stages for the checks."""

    v2: MemoryConfig
    warmup_episodes: int = 5
    stage_episodes: int = 5
    gate: Gate = field(default_factory=Gate)
    stages: list[dict[str, Any]] = field(default_factory=list)
    rolled_back: bool = False
    share: list[float] = field(default_factory=lambda: [0.0])  # the canary's share after each step

    async def __call__(self, swarm: Swarm) -> None:
        ids = list(swarm.agents)
        per = swarm.config.trades_per_episode * self.stage_episodes
        t = self.warmup_episodes
        await swarm.after_episode(t)
        for share in STAGES:
            canary = ids[: on_canary(len(ids), share)]
            for a in canary:
                swarm.agents[a].use_memory_config(self.v2)
            marks = {a: len(swarm.agents[a].log.regrets) for a in ids}
            swarm.log_event("stage", share=share, canary=len(canary))
            t += self.stage_episodes
            await swarm.after_episode(t)
            window = {a: _window(swarm.agents[a], marks[a], per) for a in ids}
            c_skill = skill(*([x for a in canary for x in window[a][j]] for j in (0, 1)))
            stable = [a for a in ids if a not in canary]
            s_skill = skill(*([x for a in stable for x in window[a][j]] for j in (0, 1))) if stable else None
            ok = share == 1.0 or (s_skill is not None and self.gate.healthy(c_skill, s_skill))
            self.stages.append({"share": share, "canary_agents": len(canary), "canary_skill": round(c_skill, 4),
                                "stable_skill": None if s_skill is None else round(s_skill, 4), "passed_gate": ok})
            if not ok:
                for a in canary:
                    swarm.agents[a].use_memory_config(STABLE)
                self.rolled_back = True
                self.share.append(0.0)
                swarm.log_event("rollback", share=share)
                return
            self.share.append(share)


#: The fleet gossips as a mesh.
TOPOLOGY = Topology(
    name="canary-incremental-learning",
    summary="a new learner version takes 10% -> 25% -> 50% -> 100% of the fleet while it keeps up; else all roll back",
    agents=agents, controller=Rollout)
