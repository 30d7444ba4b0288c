"""The virtual kernel's own promises: exact virtual time, deterministic ties, deadlock detection.

What every kernel promises is in ``test_kernel_conformance.py``."""

import asyncio

import pytest

from swarm.kernel import Cancelled, Deadlock, EndOfChannel, VirtualKernel, WouldBlock


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


def test_channel_passes_messages_in_order_and_blocks_receivers():
    k = VirtualKernel()

    async def main():
        ch = k.channel()
        got = []

        async def consumer():
            async for item in ch:
                got.append((k.now(), item))

        async with k.task_group() as tg:
            tg.start_soon(consumer)
            for i in range(3):
                await k.sleep(1)
                ch.send_nowait(i)
            ch.close()
        return got

    assert k.run(main) == [(1.0, 0), (2.0, 1), (3.0, 2)]


def test_bounded_channel_makes_senders_wait():
    k = VirtualKernel()

    async def main():
        ch = k.channel(capacity=1)
        ch.send_nowait("a")
        with pytest.raises(WouldBlock):
            ch.send_nowait("b")
        sent_at = []

        async def sender():
            await ch.send("b")
            sent_at.append(k.now())

        async with k.task_group() as tg:
            tg.start_soon(sender)
            await k.sleep(3)
            assert await ch.recv() == "a"
            assert await ch.recv() == "b"
        return sent_at

    assert k.run(main) == [3.0]


def test_group_waits_for_children_and_cancel_reaches_every_descendant():
    k = VirtualKernel()
    cancelled = []

    async def forever(name):
        try:
            await k.channel().recv()  # nobody will ever send
        except Cancelled:
            cancelled.append(name)
            raise

    async def nested():
        async with k.task_group() as inner:
            inner.start_soon(forever, "grandchild")
            await k.sleep(1000)

    async def main():
        async with k.task_group() as tg:
            tg.start_soon(forever, "child")
            tg.start_soon(nested)
            await k.sleep(10)
            tg.cancel()
        return k.now()

    assert k.run(main) == 10.0
    assert sorted(cancelled) == ["child", "grandchild"]


def test_child_error_cancels_siblings_and_raises_a_group():
    k = VirtualKernel()
    stopped = []

    async def boom():
        await k.sleep(1)
        raise ValueError("bad agent")

    async def sibling():
        try:
            await k.sleep(100)
        finally:
            stopped.append(k.now())

    async def main():
        async with k.task_group() as tg:
            tg.start_soon(boom)
            tg.start_soon(sibling)
            await k.sleep(50)  # the body is cancelled too

    with pytest.raises(ExceptionGroup) as info:
        k.run(main)
    assert [type(e) for e in info.value.exceptions] == [ValueError]
    assert stopped == [1.0]


def test_timeouts():
    k = VirtualKernel()

    async def main():
        with k.move_on_after(2) as scope:
            await k.sleep(10)
        assert scope.cancelled_caught and k.now() == 2.0
        with pytest.raises(TimeoutError):
            async with k.fail_after(1):
                async with k.task_group() as tg:
                    tg.start_soon(k.sleep, 100)
        assert k.now() == 3.0
        with k.move_on_after(5) as quick:
            await k.sleep(1)
        assert not quick.cancelled_caught
        await k.sleep(10)  # the expired scope's timer must not fire later
        return k.now()

    assert k.run(main) == 14.0


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


def test_closed_channel_ends_receivers():
    k = VirtualKernel()

    async def main():
        ch = k.channel()
        ch.close()
        with pytest.raises(EndOfChannel):
            await ch.recv()
        with pytest.raises(EndOfChannel):
            ch.send_nowait(1)
        return True

    assert k.run(main)


def test_kernel_bench_runs_the_same_workload_as_simpy(capsys):
    import json
    import runpy
    bench = runpy.run_path("benchmarks/kernel_bench.py")
    assert bench["main"](["--agents", "50", "--time", "0.5", "--repeat", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kernel"]["messages"] == out["simpy"]["messages"] > 1000  # same semantics, same RNG order
    assert out["ratio_kernel_over_simpy"] > 0
