"""The real-time kernel on anyio: the same agent code on asyncio or trio, over real sockets."""

from __future__ import annotations

import math
import time
from typing import Any, TypeVar, cast
from collections.abc import Awaitable, Callable, Coroutine

from . import Cancelled, EndOfChannel, WouldBlock
from ._iterate import _IterateChannel

T = TypeVar("T")


class _AnyioChannel(_IterateChannel[T]):
    """An anyio memory object stream pair with the kernel's channel methods."""

    def __init__(self, capacity: int | None) -> None:
        import anyio

        send, receive = anyio.create_memory_object_stream[Any](math.inf if capacity is None else capacity)
        self._send, self._receive = send, receive

    def __len__(self) -> int:
        return self._receive.statistics().current_buffer_used

    def send_nowait(self, item: T) -> None:
        import anyio

        try:
            self._send.send_nowait(item)
        except anyio.WouldBlock:
            raise WouldBlock("channel is full") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise EndOfChannel("send on a closed channel") from None

    async def send(self, item: T) -> None:
        import anyio

        try:
            await self._send.send(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise EndOfChannel("send on a closed channel") from None

    async def recv(self) -> T:
        import anyio

        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise EndOfChannel("channel closed") from None

    def close(self) -> None:
        self._send.close()



class _AnyioTaskGroup:
    """anyio's task group plus ``cancel()`` (cancels the children and the body)."""

    def __init__(self) -> None:
        import anyio

        self._tg = anyio.create_task_group()

    async def __aenter__(self) -> _AnyioTaskGroup:
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._tg.__aexit__(*exc)

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> None:
        # The kernel interface admits any awaitable-returning callable; anyio needs a coroutine
        # function (and raises TypeError at run time otherwise), which is what callers pass here.
        self._tg.start_soon(cast(Callable[..., Coroutine[Any, Any, Any]], fn), *args, name=name)

    def cancel(self) -> None:
        self._tg.cancel_scope.cancel()


class _AnyioScope:
    """anyio's ``move_on_after`` / ``fail_after``, usable with ``with`` or ``async with``."""

    def __init__(self, seconds: float, raise_timeout: bool) -> None:
        import anyio

        self._cm = anyio.fail_after(seconds) if raise_timeout else anyio.move_on_after(seconds)
        self._scope: Any = None

    @property
    def cancelled_caught(self) -> bool:
        return bool(self._scope is not None and self._scope.cancelled_caught)

    def __enter__(self) -> _AnyioScope:
        self._scope = self._cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._cm.__exit__(*exc)

    async def __aenter__(self) -> _AnyioScope:
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return self.__exit__(*exc)


class AnyioKernel:
    """Real time on whichever event loop anyio runs (asyncio or trio): the kernel the QUIC bus
    uses, so one transport serves both. ``now()`` counts seconds since first use.

    ``time_scale`` runs swarm time faster than the wall clock: with 0.02, ``sleep(1)`` takes 20 ms
    and ``now()`` advances by 1 every 20 ms, so a swarm written in trading seconds runs quickly on
    real sockets.
    """

    def __init__(self, time_scale: float = 1.0, epoch: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self._t0: float | None = None
        # a wall-clock (time.time) origin shared by several processes, so their clocks agree
        self.epoch = epoch

    @property
    def Cancelled(self) -> type[BaseException]:
        """The running backend's cancellation (outside an event loop nothing can be cancelled, and the
        package's own :class:`Cancelled` stands in)."""
        import anyio

        try:
            return anyio.get_cancelled_exc_class()
        except RuntimeError:  # anyio's NoEventLoopError
            return Cancelled

    def now(self) -> float:
        import anyio

        if self.epoch is not None:
            return (time.time() - self.epoch) / self.time_scale
        try:
            t = anyio.current_time()
        except RuntimeError:  # no event loop yet: the swarm is being built, its clock reads 0
            return 0.0
        if self._t0 is None:
            self._t0 = t
        return (t - self._t0) / self.time_scale

    async def sleep(self, seconds: float) -> None:
        import anyio

        await anyio.sleep(max(0.0, seconds) * self.time_scale)  # a late caller (real time moved on) just yields

    async def sleep_until(self, when: float) -> None:
        """Sleep to a point on this clock, so a schedule does not drift when a wake comes late."""
        await self.sleep(when - self.now())

    async def checkpoint(self) -> None:
        import anyio

        await anyio.lowlevel.checkpoint()

    def channel(self, capacity: int | None = None) -> _AnyioChannel[Any]:
        return _AnyioChannel(capacity)

    def event(self) -> Any:
        import anyio

        return anyio.Event()

    def task_group(self) -> _AnyioTaskGroup:
        return _AnyioTaskGroup()

    def move_on_after(self, seconds: float) -> _AnyioScope:
        return _AnyioScope(seconds * self.time_scale, raise_timeout=False)

    def fail_after(self, seconds: float) -> _AnyioScope:
        return _AnyioScope(seconds * self.time_scale, raise_timeout=True)

    def run(self, main: Callable[..., Awaitable[T]], *args: Any, backend: str = "asyncio") -> T:
        import anyio

        return anyio.run(main, *args, backend=backend)
