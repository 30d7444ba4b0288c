"""An agent trades on a fixed schedule: wakes that come late are caught up, not lost."""

from swarm import kernel as kernel_module
from swarm.deployment import Environment
from swarm.orchestrator import Swarm
from swarm.specs import AgentSpec, SwarmConfig
from swarm.runtime import InProcess
from swarm.transport import SimNetwork

LATE = 0.4  # every wake comes this many seconds after the time asked for (a busy event loop)


class LateKernel(kernel_module.VirtualKernel):
    def sleep(self, seconds: float):  # type: ignore[no-untyped-def]
        return super().sleep_until(self.now() + seconds + LATE)

    def sleep_until(self, when: float):  # type: ignore[no-untyped-def]
        return super().sleep_until(max(when, self.now()) + LATE)


def test_late_wakes_do_not_cost_an_agent_its_trades():
    seen: list[tuple[float, dict[str, int]]] = []

    async def watch(swarm: Swarm) -> None:
        for t in (10.5, 20.5):
            await swarm.kernel.sleep(t - swarm.kernel.now())
            seen.append((swarm.kernel.now(), {a.id: a.cursor for a in swarm.agents.values()}))

    specs = [AgentSpec(f"a{i}", market_seed=i) for i in range(2)]
    cfg = SwarmConfig(episodes=3, transport="sim", settle=1.0)
    late = LateKernel()
    env = Environment(late, SimNetwork(late, cfg.seed, cfg.link), InProcess())
    with Swarm(cfg, specs, controller=watch, env=env) as swarm:
        swarm.run()
        assert all(len(a.log.correct) == 30 for a in swarm.agents.values())
    # slot n (every trade_interval = 1 s) woke at n + LATE: by time t, every slot up to t is traded;
    # sleeping one interval after each late wake would have made only t / (1 + LATE) trades
    for now, cursors in seen:
        assert all(c == int(now - LATE) for c in cursors.values()), (now, cursors)


def test_a_swarm_runs_on_one_blas_thread_and_gives_the_setting_back():
    # a multi-threaded OpenBLAS spinning beside the agents made a 10k x 64 product 14x slower on a
    # busy 2-core machine; the swarm limits BLAS to one thread while it runs, and only then
    import threadpoolctl

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}

    seen: list[set[int]] = []

    async def look(swarm: Swarm) -> None:
        seen.append(blas_threads())

    before = blas_threads()
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        with Swarm(SwarmConfig(episodes=1), [AgentSpec("a0")], controller=look) as swarm:
            swarm.run()
        after = blas_threads()
    assert seen == [{1}]
    assert after == {2} and before  # numpy's BLAS is there to limit, and its setting came back


def test_a_killed_agents_store_closes_when_its_tasks_are_gone_and_it_trades_no_more():
    """On real sockets a task that had already woken (its trade slot, a frame, a timer) when its
    agent was killed ran once more before the cancellation reached it, on a store the kill had
    closed: the mesh fault run over QUIC crashed with "Cannot operate on a closed database". The
    store now closes once the agent's run has ended, and a woken task does nothing."""
    from swarm.memory.errors import StoreError
    import pytest

    seen: dict[str, object] = {}

    async def kill_one(swarm: Swarm) -> None:
        k = swarm.kernel
        await swarm.after_episode(1)
        victim = swarm.agents["a1"]
        store, cursor = victim.store, victim.cursor
        swarm.crash("a1")
        seen["open_at_kill"] = len(store) >= 0  # raises StoreError if the kill closed it under its tasks
        await k.sleep(2.0)
        seen["cursor_moved"] = victim.cursor != cursor
        with pytest.raises(StoreError):
            len(store)  # closed by its run task as it ended
        seen["closed_after"] = True

    specs = [AgentSpec(f"a{i}", market_seed=i) for i in range(3)]
    with Swarm(SwarmConfig(episodes=3, transport="sim", settle=1.0), specs, controller=kill_one) as swarm:
        swarm.run()
        assert len(swarm.agents["a0"].log.correct) == 30
    assert seen == {"open_at_kill": True, "cursor_moved": False, "closed_after": True}
