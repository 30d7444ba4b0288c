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
