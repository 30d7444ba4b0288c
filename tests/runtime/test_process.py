"""Agents as OS processes on the real QUIC bus: SIGKILL, restart from the store, partitions."""

from __future__ import annotations

import os
import signal

import pytest

from swarm.orchestrator import Swarm
from swarm.specs import AgentSpec, SwarmConfig

SPECS = [AgentSpec(f"p{i}", market_seed=100 + i) for i in range(3)]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_killed_agent_process_restarts_from_its_store_and_catches_up(backend):
    cfg = SwarmConfig(episodes=5, runtime="process", backend=backend)
    seen: dict = {}

    async def faults(swarm: Swarm) -> None:
        k = swarm.kernel
        await k.sleep(2 * cfg.episode_seconds + 0.5 - k.now())
        victim = swarm.agents["p1"]
        seen["pids"] = {a.id: a.pid for a in swarm.agents.values()}
        seen["before"] = victim.pattern_ids()
        swarm.crash("p1")
        seen["exit"] = victim.exitcode
        await k.sleep(cfg.episode_seconds)
        seen["recovered"] = swarm.restart("p1").pattern_ids() & seen["before"]  # read from its SQLite file

    with Swarm(cfg, SPECS, controller=faults) as swarm:
        swarm.run()
        assert len(set(seen["pids"].values()) | {os.getpid()}) == 4  # three processes of their own
        assert seen["exit"] == -signal.SIGKILL
        assert seen["before"] and seen["recovered"] == seen["before"]  # nothing committed was lost
        assert swarm.agents["p1"].boots == 1 and swarm.agents["p1"].pid not in seen["pids"].values()
        assert swarm.replication_consistency() == 1.0  # and it caught up with what it missed
        assert all(len(a.log.correct) == 50 for a in swarm.agents.values())
        assert swarm.sync_latency_ms()["clock"] == "wall"
        assert not [e for e in swarm.events if e["event"] == "agent_died"]


def test_a_partition_between_agent_processes_heals_and_converges():
    cfg = SwarmConfig(episodes=5, runtime="process")
    during: dict = {}

    async def split(swarm: Swarm) -> None:
        k = swarm.kernel
        await k.sleep(cfg.episode_seconds + 0.5 - k.now())
        swarm.partition(["p0"], ["p1", "p2"])
        await k.sleep(2 * cfg.episode_seconds)
        during["p0"] = swarm.agents["p0"].pattern_ids()
        during["p2"] = swarm.agents["p2"].pattern_ids()
        during["blocked"] = swarm.traffic()["blocked"]
        swarm.heal()

    with Swarm(cfg, SPECS, controller=split) as swarm:
        swarm.run()
        made_by_p2 = {pid for pid, (origin, t) in swarm.first_seen.items() if origin == "p2"}
        assert during["blocked"] > 0
        assert made_by_p2 - during["p0"], "p0 got p2's new patterns through the partition"
        assert swarm.replication_consistency() == 1.0


def test_an_agent_process_that_dies_on_its_own_is_reported_and_the_swarm_carries_on():
    cfg = SwarmConfig(episodes=4, runtime="process")

    async def sabotage(swarm: Swarm) -> None:
        k = swarm.kernel
        await k.sleep(cfg.episode_seconds + 0.5 - k.now())
        os.kill(swarm.agents["p2"].pid, signal.SIGTERM)  # not the orchestrator's doing

    with Swarm(cfg, SPECS, controller=sabotage) as swarm:
        swarm.run()
        died = [e for e in swarm.events if e["event"] == "agent_died"]
        assert [e["agent"] for e in died] == ["p2"] and swarm.agents["p2"].crashed
        assert [len(swarm.agents[a].log.correct) for a in ("p0", "p1")] == [40, 40]
        assert swarm.replication_consistency() == 1.0  # over the live agents


def test_a_cancelled_request_to_an_agent_process_does_not_wait_for_its_answer():
    """A run stopped while an agent process is still importing (it answers its first request only
    after its imports, seconds under load) stops without waiting for that answer: the request is
    abandoned, and the reaping that follows ends the blocked read. Here the answer never comes until
    a safety timer hangs up the far end; the cancelled request must have returned before that."""
    import socket
    import threading
    from multiprocessing.connection import Connection

    import anyio

    from swarm.runtime import messages as msg
    from swarm.runtime.process import AgentProcessError, ProcessAgent

    ours, theirs = socket.socketpair()
    agent = ProcessAgent.__new__(ProcessAgent)  # only what a request uses: no process, no swarm
    agent.id, agent._lock, agent._conn, agent._trusted = "p0", threading.Lock(), Connection(ours.detach()), []
    hung_up = threading.Event()

    def hang_up() -> None:  # what reaping does to the channel (and the old code's only way out)
        hung_up.set()
        theirs.close()

    safety = threading.Timer(30.0, hang_up)
    safety.start()

    async def main() -> tuple[bool, bool]:
        with anyio.move_on_after(0.3) as scope:
            await agent.arequest(msg.Hello())
        returned_before_hang_up = not hung_up.is_set()
        return scope.cancelled_caught, returned_before_hang_up

    try:
        cancelled, returned_before_hang_up = anyio.run(main)
    finally:
        safety.cancel()
        if not hung_up.is_set():
            hang_up()
    assert cancelled and returned_before_hang_up
    with pytest.raises(AgentProcessError, match="gone"):  # the abandoned read ended with the channel
        agent.request(msg.Hello())
