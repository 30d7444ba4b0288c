"""The virtual kernel's own promises: exact virtual time, deterministic ties, deadlock detection.

What every kernel promises is in ``test_kernel_conformance.py``."""

import asyncio

import pytest

from swarm.kernel import Deadlock, VirtualKernel


def test_sleep_advances_virtual_time_only():
    k = VirtualKernel()
    seen = []

    async def main():
        await k.sleep(5)
        seen.append(k.now())
        await k.sleep(0.5)
        return k.now()

    assert k.run(main) == 5.5 and seen == [5.0]


def test_ties_wake_in_scheduling_order_and_runs_are_identical():
    def trace():
        k = VirtualKernel()
        out = []

        async def worker(name, delays):
            for d in delays:
                await k.sleep(d)
                out.append((k.now(), name))

        async def main():
            async with k.task_group() as tg:
                for i in range(5):
                    tg.start_soon(worker, f"w{i}", [1, 0, 2, 1])
        k.run(main)
        return out

    a = trace()
    assert a == trace()
    assert [n for t, n in a if t == 1.0][:5] == ["w0", "w1", "w2", "w3", "w4"]


def test_deadlock_is_reported_and_until_stops_a_run():
    k = VirtualKernel()

    async def stuck():
        await k.event().wait()

    with pytest.raises(Deadlock):
        k.run(stuck)

    k2 = VirtualKernel()
    ticks = []

    async def ticking():
        while True:
            await k2.sleep(1)
            ticks.append(k2.now())

    k2.run(ticking, until=5.5)
    assert ticks == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_awaiting_a_foreign_awaitable_is_a_clear_error():
    k = VirtualKernel()

    async def main():
        await asyncio.sleep(0)

    with pytest.raises(TypeError, match="not a kernel operation"):
        k.run(main)


def test_kernel_bench_runs_the_same_workload_as_simpy(capsys):
    import json
    import runpy
    bench = runpy.run_path("benchmarks/kernel_bench.py")
    assert bench["main"](["--agents", "50", "--time", "0.5", "--repeat", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kernel"]["messages"] == out["simpy"]["messages"] > 1000  # same semantics, same RNG order
    assert out["ratio_kernel_over_simpy"] > 0


def test_a_run_abandoned_by_ctrl_c_leaves_no_coroutine_that_errs_when_collected(monkeypatch):
    """KeyboardInterrupt (a signal handler's) out of ``run``: the suspended tasks' coroutines are
    closed without their task groups trying to await on a kernel that no longer runs (which
    printed "Exception ignored ... kernel operations must be awaited inside a task")."""
    import gc
    import sys

    from swarm.kernel import VirtualKernel

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    k = VirtualKernel()

    def ctrl_c() -> None:
        raise KeyboardInterrupt

    async def worker() -> None:
        async with k.task_group() as tg:
            tg.start_soon(k.sleep, 100)
            await k.sleep(100)

    async def main() -> None:
        k.call_at(5, ctrl_c)
        async with k.task_group() as tg:
            tg.start_soon(worker)
            tg.start_soon(worker)

    try:
        k.run(main)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interruption was swallowed")
    del k
    gc.collect()
    assert unraisable == []
