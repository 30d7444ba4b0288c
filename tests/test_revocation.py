"""Revoking a member from a running swarm: the CA's list spreads by gossip, every honest agent
refuses the member and quarantines what it authored, on the simulated network, over real QUIC
and with agents as OS processes."""

from __future__ import annotations

import pytest

from swarm.orchestrator import Swarm
from swarm.specs import AgentSpec, SwarmConfig

SPECS = [AgentSpec(f"r{i}", market_seed=300 + i) for i in range(4)]


def _revoke_midway(cfg: SwarmConfig) -> tuple[Swarm, dict]:
    seen: dict = {}

    async def revoke(swarm: Swarm) -> None:
        k = swarm.kernel
        await k.sleep(2 * cfg.episode_seconds + 0.5 - k.now())
        seen["held"] = {a.id: {p.id for p in a.store.iter_patterns() if p.author == "r3"}
                        for a in swarm.agents.values() if a.id != "r3"}
        swarm.revoke("r3")

    swarm = Swarm(cfg, SPECS, controller=revoke)
    swarm.run()
    return swarm, seen


@pytest.mark.parametrize("transport, runtime", [("sim", "in-process"), ("quic", "in-process"),
                                                ("quic", "process")])
def test_a_revoked_member_is_quarantined_everywhere(transport, runtime):
    cfg = SwarmConfig(episodes=5, transport=transport, runtime=runtime)
    swarm, seen = _revoke_midway(cfg)
    with swarm:
        assert all(seen["held"].values())  # before: every agent held r3's patterns
        for a in swarm.agents.values():
            if a.id == "r3":
                continue
            authored = {p.id for p in a.store.iter_patterns() if p.author == "r3"}
            assert authored == set(), a.id  # quarantined, and none of its later writes taken
            assert "r3" not in a.digest()
        assert [e for e in swarm.events if e["event"] == "agent_revoked"]
