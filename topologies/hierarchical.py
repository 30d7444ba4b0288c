"""Hierarchical: one leader and workers. Workers push to the leader only; the leader aggregates,
consolidates, and its consolidated patterns flow back down. Workers specialise by asset."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from swarm.learning.memory_policy import MemoryConfig
from swarm.memory.consolidate import ConsolidationPolicy
from swarm.orchestrator import Swarm
from swarm.specs import AgentSpec, rule
from swarm.topology import Topology

WORKERS = 4
LEADER = "leader"
ASSETS: tuple[str, ...] = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH", "III", "JJJ", "KKK", "LLL",
                           "MMM", "NNN", "OOO", "PPP")
CONSOLIDATE_EVERY = 5  # episodes


def agents(seed: int, workers: int = WORKERS, memory: MemoryConfig = MemoryConfig()) -> list[AgentSpec]:
    """The leader (it trades nothing) and one worker per asset, all on one seeded market."""
    if not 1 <= workers <= len(ASSETS):
        raise ValueError(f"workers must be between 1 and {len(ASSETS)}")
    out = [AgentSpec(LEADER, role="leader", market_seed=seed, memory=memory, trades=False, curator=True)]
    out += [AgentSpec(f"worker-{ASSETS[i]}", role="worker", market_seed=seed, symbols=(ASSETS[i],), memory=memory)
            for i in range(workers)]
    return out


@rule
def share_rule(me: str) -> Callable[[str, str], bool]:
    """Whose writes ``me`` may pass on: a worker, anyone's; the leader, only its own (consolidated)
    writes and a worker's own back to it, so raw worker patterns never go sideways."""
    def share(peer: str, origin: str) -> bool:
        return me != LEADER or origin.split("~")[0] in (LEADER, peer)
    return share


@rule
def contacts(me: str, live: Sequence[str]) -> list[str]:
    """Workers talk to the leader only; the leader talks to every worker."""
    if me == LEADER:
        return list(live)
    return [m for m in live if m == LEADER]


@dataclass(eq=False)
class LeaderLoop:
    """The leader's loop: every ``every`` episodes it consolidates its memory (merging near-duplicate
    patterns); consolidation publishes, so the merged survivors' new versions flow back down.
    Keeps what it did for the checks."""

    episodes: int
    every: int = CONSOLIDATE_EVERY
    duplicate_similarity: float = 0.95
    aggregation_ms: list[float] = field(default_factory=list)  # wall time of each consolidation
    absorbed: set[str] = field(default_factory=set)  # patterns merged into another
    leader_versions: dict[str, int] = field(default_factory=dict)  # the leader's consolidated survivors' versions
    consolidations: int = 0

    async def __call__(self, swarm: Swarm) -> None:
        for e in range(self.every, self.episodes + 1, self.every):
            await swarm.after_episode(e)
            agent = swarm.agents[LEADER]
            t0 = time.perf_counter()
            report = agent.consolidate(ConsolidationPolicy(duplicate_similarity=self.duplicate_similarity))
            self.aggregation_ms.append((time.perf_counter() - t0) * 1e3)
            self.absorbed.update(b for _, b, _ in report.merged)
            self.consolidations += 1
            for b in self.absorbed:  # merged away since: no longer a survivor
                self.leader_versions.pop(b, None)
            for p in agent.store.iter_patterns():
                if p.updated_by == LEADER:
                    self.leader_versions[p.id] = p.version
            swarm.log_event("consolidated", merged=len(report.merged), before=report.before, after=report.after)


TOPOLOGY = Topology(
    name="hierarchical-centralized-learning",
    summary="a leader aggregates and consolidates its workers' patterns and sends the consolidated ones back down",
    agents=agents, contacts=contacts, share=share_rule, controller=LeaderLoop)
