"""Ring: agents in a cycle; every ``HANDOFF_EVERY`` episodes each passes its memory to the next,
as a pack file (export, then validated import): a learning pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarm.learning.memory_policy import MemoryConfig
from swarm.memory import ImportPolicy
from swarm.orchestrator import Swarm
from swarm.specs import AgentSpec
from swarm.topology import Topology

AGENTS = 4
HANDOFF_EVERY = 15  # episodes


def agents(seed: int, n: int = AGENTS, memory: MemoryConfig = MemoryConfig()) -> list[AgentSpec]:
    return [AgentSpec(f"ring-{i}", role="stage", market_seed=seed * 100 + i, memory=memory) for i in range(n)]


def successor(agent_ids: list[str], agent_id: str) -> str:
    """The next agent around the ring."""
    i = agent_ids.index(agent_id)
    return agent_ids[(i + 1) % len(agent_ids)]


@dataclass(eq=False)
class Handoffs:
    """Every ``every`` episodes, for ``laps`` laps: everyone exports a pack, then each imports its
    predecessor's (one step around the ring). With ``handoffs`` False it only counts what the ring
    holds (the same agents learning alone). Keeps what travelled for the checks."""

    every: int = HANDOFF_EVERY
    laps: int = 3
    handoffs: bool = True
    imported: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # agent -> pattern -> (uses, version) on arrival
    log: list[dict[str, Any]] = field(default_factory=list)  # one row per hand-off
    union: list[int] = field(default_factory=list)  # distinct patterns across the ring before each lap's hand-off

    async def __call__(self, swarm: Swarm) -> None:
        ids = list(swarm.agents)
        for lap in range(1, self.laps + 1):
            await swarm.after_episode(lap * self.every)
            self.union.append(len(set().union(*(a.pattern_ids() for a in swarm.agents.values()))))
            if not self.handoffs:
                continue
            packs = {}
            for a in ids:  # everyone exports first, then everyone imports: one step around the ring
                packs[a] = swarm.store_dir / f"{a}-lap{lap}.jsonl"
                swarm.agents[a].export_pack(packs[a])
            for a in ids:
                nxt = swarm.agents[successor(ids, a)]
                report = nxt.import_pack(packs[a], ImportPolicy(on_conflict="merge"))
                for p in nxt.store.iter_patterns():
                    if p.id not in self.imported.get(nxt.id, {}) and swarm.first_seen.get(p.id, (nxt.id,))[0] != nxt.id:
                        self.imported.setdefault(nxt.id, {})[p.id] = (p.uses, p.version)
                self.log.append({"lap": lap, "from": a, "to": nxt.id, "imported": report.imported})
            swarm.log_event("handoff", lap=lap)


#: Ring agents do not gossip; knowledge moves only at hand-offs.
TOPOLOGY = Topology(
    name="ring-sequential-learning",
    summary="agents in a cycle, each handing its memory to the next as a pack: a learning pipeline",
    agents=agents, controller=Handoffs, gossip=False)
