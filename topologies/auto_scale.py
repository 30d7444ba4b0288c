"""Auto-scale: start small, add agents when knowledge or volatility surges, remove one when
consolidation shows the memory is redundant, let the learning rate follow the volatility index,
and give more trading (compute) to the agents that perform better."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm.agent import AgentHandle
from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.metrics import skill
from swarm.market import FEATURE_NAMES
from swarm.memory.consolidate import ConsolidationPolicy
from swarm.orchestrator import Swarm
from swarm.specs import AgentSpec
from swarm.topology import Topology

VIX = FEATURE_NAMES.index("vix")


@dataclass(frozen=True, slots=True)
class ScalingRules:
    start: int = 2
    max_agents: int = 10
    min_agents: int = 2
    scale_up_patterns: int = 20  # new patterns in the swarm since the last scale-up
    vix_high: float = 25.0  # mean volatility index of the last episode that also triggers a scale-up
    # a consolidation removing this share of memory triggers a scale-down: the mean, over the live
    # members, of the share of its own patterns each found redundant (a member consolidates only
    # what it authored, see swarm.gossip.identity; when each consolidated everyone's copies, the
    # threshold was 30% of the whole store, which own patterns alone rarely reach)
    shrink_down: float = 0.25
    consolidate_every: int = 5  # episodes
    allocate_every: int = 5  # episodes
    vix_reference: float = 15.0  # lr = base * clip(vix / reference, lr_floor, lr_cap)
    lr_floor: float = 0.5
    lr_cap: float = 2.0
    low_quota: float = 0.5  # trades per slot for the weaker half of the agents


def agent(seed: int, index: int, memory: MemoryConfig = MemoryConfig()) -> AgentSpec:
    return AgentSpec(f"auto-{index}", role="elastic", market_seed=seed * 100 + index, memory=memory)


def learning_rate(base: float, vix: float, rules: ScalingRules) -> float:
    """The learning rate for an agent whose recent contexts had volatility index ``vix``."""
    return float(base * np.clip(vix / rules.vix_reference, rules.lr_floor, rules.lr_cap))


def should_scale_up(new_patterns: int, vix: float, live: int, rules: ScalingRules) -> str | None:
    """Why to add an agent now ("patterns" or "volatility"), or None."""
    if live >= rules.max_agents:
        return None
    if new_patterns >= rules.scale_up_patterns:
        return "patterns"
    if vix >= rules.vix_high:
        return "volatility"
    return None


def quotas(recent_skill: dict[str, float], rules: ScalingRules) -> dict[str, float]:
    """Full trading for the better half by recent skill (ties by id), ``low_quota`` for the rest."""
    ranked = sorted(recent_skill, key=lambda a: (-recent_skill[a], a))
    top = set(ranked[: (len(ranked) + 1) // 2])
    return {a: (1.0 if a in top else rules.low_quota) for a in ranked}


def _recent(agent: AgentHandle, trades: int) -> tuple[float | None, float | None]:
    """Skill (1 - regret / a random pick's regret; see :func:`skill`) and mean volatility index
    over an agent's last ``trades`` decisions."""
    if not agent.log.regrets:
        return None, None
    n = min(trades, len(agent.log.regrets))
    done = agent.decisions[agent.cursor - n:agent.cursor]
    score = skill(agent.log.regrets[-n:], [float(d.pnl.max() - d.pnl.mean()) for d in done])
    vix = float(np.mean([d.context.features[VIX] for d in done]))
    return score, vix


@dataclass(eq=False)
class Scaler:
    """The auto-scaler, at the end of every episode: learning rates follow each agent's volatility
    index; a surge of new patterns (or of volatility) adds an agent; every ``consolidate_every``
    episodes each agent consolidates, and a large shrink retires the weakest; every
    ``allocate_every`` episodes the better half gets full trading. Keeps a log for the checks."""

    episodes: int
    seed: int = 0
    memory: MemoryConfig = field(default_factory=MemoryConfig)  # new agents' memory; its lr is the base rate
    rules: ScalingRules = field(default_factory=ScalingRules)
    duplicate_similarity: float = 0.9
    log: dict[str, list[Any]] = field(default_factory=lambda: {"size": [], "up": [], "down": [], "lr": [], "alloc": []})

    async def __call__(self, swarm: Swarm) -> None:
        rules, log, per = self.rules, self.log, swarm.config.trades_per_episode
        seen = len(swarm.first_seen)
        index = len(swarm.agents)
        for e in range(1, self.episodes + 1):
            await swarm.after_episode(e)
            live = [a for a in swarm.live() if a.log.correct]
            recent: dict[str, tuple[float, float]] = {}
            for a in live:
                score, vix = _recent(a, per)
                assert score is not None and vix is not None  # live agents have traded: their logs are not empty
                recent[a.id] = score, vix
            # learning rate follows each agent's volatility index
            for a in live:
                _, vix = recent[a.id]
                lr = learning_rate(self.memory.lr, vix, rules)
                a.set_learning_rate(lr)
                log["lr"].append((vix, lr))
            # scale up on new patterns or high volatility
            new = len(swarm.first_seen) - seen
            vix_now = float(np.mean([recent[a.id][1] for a in live])) if live else 0.0
            why = should_scale_up(new, vix_now, len(swarm.live()), rules)
            if why and e < self.episodes:
                swarm.add_agent(agent(self.seed, index, self.memory))
                index += 1
                seen = len(swarm.first_seen)
                log["up"].append({"episode": e, "trigger": why, "new_patterns": new, "vix": round(vix_now, 2)})
            # consolidate; scale down when it shows the memory was redundant
            if e % rules.consolidate_every == 0:
                ratios = []
                for a in swarm.live():
                    if not len(a.store):  # nothing to consolidate (a new agent's process may not run yet)
                        continue
                    # a member consolidates what it authored (see swarm.gossip.identity): the
                    # share of its own memory the consolidation found redundant
                    report = a.consolidate(ConsolidationPolicy(duplicate_similarity=self.duplicate_similarity))
                    if report.before:
                        ratios.append(1 - report.after / report.before)
                shrink = float(np.mean(ratios)) if ratios else 0.0
                if shrink >= rules.shrink_down and len(swarm.live()) > rules.min_agents and e < self.episodes:
                    weakest = min((a for a in live if not a.retired), key=lambda a: (recent[a.id][0], a.id))
                    swarm.retire(weakest.id)
                    log["down"].append({"episode": e, "shrink": round(shrink, 4), "retired": weakest.id})
            # performance allocation: close the last window (the trades made under the quotas it
            # set), then set quotas for the next; none at the last episode, as no window follows it
            if e % rules.allocate_every == 0:
                for row in log["alloc"]:
                    if "trades_after" not in row:
                        row["trades_after"] = len(swarm.agents[row["agent"]].log.correct) - row["trades_before"]
            if e % rules.allocate_every == 0 and e < self.episodes:
                skills = {a.id: recent[a.id][0] for a in live if not a.retired}
                for aid, q in quotas(skills, rules).items():
                    log["alloc"].append({"episode": e, "agent": aid, "recent_skill": skills[aid], "quota": q,
                                         "trades_before": len(swarm.agents[aid].log.correct)})
                    swarm.agents[aid].quota = q
            log["size"].append(len(swarm.live()))


def starting_agents(seed: int, rules: ScalingRules = ScalingRules(), memory: MemoryConfig = MemoryConfig()) -> list[AgentSpec]:
    """The swarm the scaler starts from: ``rules.start`` agents."""
    return [agent(seed, i, memory) for i in range(rules.start)]


TOPOLOGY = Topology(
    name="auto-scale-adaptive-learning",
    summary="the swarm grows on new knowledge or volatility, shrinks when consolidation shows redundancy",
    agents=starting_agents, controller=Scaler)
