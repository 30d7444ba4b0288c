"""One suite, every kernel: what agent code may rely on whichever kernel runs it.

The virtual kernel runs in virtual seconds; the anyio kernel (on asyncio and on trio) runs the
same code with ``time_scale`` 0.001, so a "second" takes a real millisecond. Assertions on time
are about order and lower bounds, never about how fast a machine is; on the virtual kernel, where
time is exact, they also pin the exact virtual times.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import pytest

from swarm.kernel import AnyioKernel, EndOfChannel, Kernel, VirtualKernel, WouldBlock

Runner = Callable[[Callable[..., Awaitable[Any]]], Any]

#: Real clocks may wake a timer within their resolution of its deadline (asyncio does): lower
#: bounds on real time allow this much (in swarm seconds; a microsecond at time_scale 0.001).
EPS = 1e-3


@pytest.fixture(params=["virtual", "anyio-asyncio", "anyio-trio"])
def kernel(request: pytest.FixtureRequest) -> tuple[Kernel, Runner]:
    """A fresh kernel and a function that runs ``main(kernel)`` on it to completion."""
    if request.param == "virtual":
        k: Any = VirtualKernel()
        return k, lambda main: k.run(main, k)
    a = AnyioKernel(time_scale=0.001)
    backend = request.param.split("-")[1]
    return a, lambda main: a.run(main, a, backend=backend)


def exact(k: Kernel) -> bool:
    """Whether ``k`` keeps exact time (the virtual kernel), so tests may pin times to the tick."""
    return isinstance(k, VirtualKernel)


def test_every_kernel_satisfies_the_protocol(kernel):
    k, _ = kernel
    assert isinstance(k, Kernel)


def test_sleep_moves_the_clock_forward(kernel):
    k, run = kernel

    async def main(k):
        t0 = k.now()
        await k.sleep(5)
        t1 = k.now()
        await k.sleep_until(t1 + 2)
        await k.checkpoint()
        return t0, t1, k.now()

    t0, t1, t2 = run(main)
    assert t1 - t0 >= 5 - EPS and t2 - t1 >= 2 - EPS


def test_channel_delivers_in_order_then_ends(kernel):
    k, run = kernel

    async def main(k):
        ch = k.channel()
        got = []

        async def consumer():
            async for item in ch:
                got.append((k.now(), item))

        async with k.task_group() as tg:
            tg.start_soon(consumer)
            for i in range(5):
                await k.sleep(1)
                ch.send_nowait(i)
            ch.close()
        with pytest.raises(EndOfChannel):
            ch.send_nowait(9)
        with pytest.raises(EndOfChannel):
            await ch.recv()
        return got

    got = run(main)
    assert [item for _, item in got] == [0, 1, 2, 3, 4]
    if exact(k):  # each item is received the moment it is sent
        assert [t for t, _ in got] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_bounded_channel_refuses_or_waits_when_full(kernel):
    k, run = kernel

    async def main(k):
        ch = k.channel(capacity=1)
        ch.send_nowait("a")
        with pytest.raises(WouldBlock):
            ch.send_nowait("b")
        order = []

        async def sender():
            await ch.send("b")  # waits until "a" is taken
            order.append(f"sent b at {k.now():g}" if exact(k) else "sent b")

        async with k.task_group() as tg:
            tg.start_soon(sender)
            await k.sleep(3)
            order.append("recv " + await ch.recv())
            order.append("recv " + await ch.recv())
        return order

    order = run(main)
    assert order[0] == "recv a" and sorted(order)[:2] == ["recv a", "recv b"]
    assert ("sent b at 3" if exact(k) else "sent b") in order


def test_event_wakes_every_waiter(kernel):
    k, run = kernel

    async def main(k):
        ev = k.event()
        woke = []

        async def waiter(i):
            await ev.wait()
            woke.append(i)

        async with k.task_group() as tg:
            for i in range(3):
                tg.start_soon(waiter, i)
            await k.sleep(1)
            assert not woke and not ev.is_set()
            ev.set()
        return sorted(woke), ev.is_set()

    assert run(main) == ([0, 1, 2], True)


def test_cancelling_a_group_reaches_every_descendant(kernel):
    k, run = kernel

    async def main(k):
        cancelled = []

        async def forever(name):
            try:
                await k.channel().recv()  # nobody will ever send
            except k.Cancelled:
                cancelled.append(name)
                raise

        async def nested():
            async with k.task_group() as inner:
                inner.start_soon(forever, "grandchild")
                await k.sleep(1000)

        async with k.task_group() as tg:
            tg.start_soon(forever, "child")
            tg.start_soon(nested)
            await k.sleep(10)
            tg.cancel()
        return sorted(cancelled), k.now()

    cancelled, at = run(main)
    assert cancelled == ["child", "grandchild"]
    assert at == 10.0 or not exact(k)  # the group returns as soon as its children are gone


def test_a_child_error_cancels_its_siblings_and_raises_a_group(kernel):
    k, run = kernel
    stopped = []

    async def main(k):
        async def boom():
            await k.sleep(1)
            raise ValueError("bad agent")

        async def sibling():
            try:
                await k.sleep(10_000)
            finally:
                stopped.append(k.now())

        async with k.task_group() as tg:
            tg.start_soon(boom)
            tg.start_soon(sibling)
            await k.sleep(5_000)  # the body is cancelled too

    with pytest.raises(ExceptionGroup) as info:
        run(main)
    assert [type(e) for e in info.value.exceptions] == [ValueError]
    assert len(stopped) == 1 and (stopped == [1.0] or not exact(k))  # stopped when its sibling failed


def test_deadlines_move_on_or_fail(kernel):
    k, run = kernel

    async def main(k):
        start = k.now()
        async with k.move_on_after(2) as scope:
            await k.sleep(10_000)
        assert scope.cancelled_caught
        moved_on = k.now() - start
        with pytest.raises(TimeoutError):
            async with k.fail_after(1):
                async with k.task_group() as tg:
                    tg.start_soon(k.sleep, 10_000)
        failed = k.now() - start
        async with k.move_on_after(5_000) as quick:
            await k.sleep(1)
        assert not quick.cancelled_caught
        await k.sleep(10)  # an expired scope must not fire later
        return moved_on, failed, k.now() - start

    times = run(main)
    assert times[0] >= 2 - EPS and times[1] - times[0] >= 1 - EPS
    if exact(k):
        assert times == (2.0, 3.0, 14.0)


def test_the_same_agent_code_gives_the_same_conversation(kernel):
    k, run = kernel

    async def ping_pong(k):
        a, b = k.channel(), k.channel()
        log = []

        async def player(name, inbox, outbox):
            async for n in inbox:
                log.append(f"{name}{n}")
                if n >= 4:
                    outbox.close()
                    return
                await k.sleep(1)
                outbox.send_nowait(n + 1)

        async with k.task_group() as tg:
            tg.start_soon(player, "a", a, b)
            tg.start_soon(player, "b", b, a)
            a.send_nowait(0)
        return log

    assert run(ping_pong) == ["a0", "b1", "a2", "b3", "a4"]
