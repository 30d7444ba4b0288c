"""A topology of your own: two teams gossip inside themselves; a scout talks to both and, every
10 episodes, consolidates what it carries. ``python run_learning_tests.py --topology examples/two_teams.py``."""

from collections.abc import Sequence
from dataclasses import dataclass

from swarm.memory.consolidate import ConsolidationPolicy
from swarm.orchestrator import Swarm
from swarm.specs import AgentSpec, rule
from swarm.topology import Topology, register


def agents(seed: int) -> list[AgentSpec]:
    teams = [AgentSpec(f"{team}-{i}", role=team, market_seed=seed * 100 + 10 * k + i)
             for k, team in enumerate(("red", "blue")) for i in range(2)]
    return [*teams, AgentSpec("scout", role="scout", market_seed=seed * 100 + 99)]


@rule  # rules travel to agent processes by name: mark the ones a topology uses
def contacts(me: str, live: Sequence[str]) -> list[str]:
    return [m for m in live if "scout" in (me, m) or m.split("-")[0] == me.split("-")[0]]


@dataclass(eq=False)
class Scout:
    episodes: int  # the run's length, given by the harness

    async def __call__(self, swarm: Swarm) -> None:
        for e in range(10, self.episodes + 1, 10):
            await swarm.after_episode(e)
            swarm.agents["scout"].consolidate(ConsolidationPolicy(duplicate_similarity=0.95))
            swarm.log_event("scout consolidated", episode=e)


TOPOLOGY = register(Topology(
    name="two-teams-and-a-scout", summary="two teams gossip inside themselves; a scout carries patterns between them",
    agents=agents, contacts=contacts, controller=Scout))
