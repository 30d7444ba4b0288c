"""Hierarchical: one leader and workers. Workers push to the leader only; the leader aggregates,
consolidates, and its consolidated patterns flow back down. Workers specialise by asset."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from swarm.gossip import Entry
from swarm.learning.memory_policy import MemoryConfig
from swarm.specs import AgentSpec, rule

WORKERS = 4
LEADER = "leader"
ASSETS: tuple[str, ...] = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH", "III", "JJJ", "KKK", "LLL",
                           "MMM", "NNN", "OOO", "PPP")
CONSOLIDATE_EVERY = 5  # episodes


def agents(seed: int, workers: int = WORKERS, memory: MemoryConfig = MemoryConfig()) -> list[AgentSpec]:
    """The leader (it trades nothing) and one worker per asset, all on one seeded market."""
    if not 1 <= workers <= len(ASSETS):
        raise ValueError(f"workers must be between 1 and {len(ASSETS)}")
    out = [AgentSpec(LEADER, role="leader", market_seed=seed, memory=memory)]
    out += [AgentSpec(f"worker-{ASSETS[i]}", role="worker", market_seed=seed, symbols=(ASSETS[i],), memory=memory)
            for i in range(workers)]
    return out


@rule
def share_rule(me: str) -> Callable[[str, Entry], bool]:
    """What ``me`` may pass on: a worker, anything; the leader, only its own (consolidated)
    writes and a worker's own patterns back to it, so raw worker patterns never go sideways."""
    def share(peer: str, entry: Entry) -> bool:
        if me != LEADER:
            return True
        return entry.origin.split("~")[0] in (LEADER, peer)
    return share


@rule
def contacts(me: str, live: Sequence[str]) -> list[str]:
    """Workers talk to the leader only; the leader talks to every worker."""
    if me == LEADER:
        return list(live)
    return [m for m in live if m == LEADER]
