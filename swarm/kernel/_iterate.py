"""``async for`` over a channel, shared by the kernels' channel classes."""

from __future__ import annotations

from typing import Generic, TypeVar
from collections.abc import Awaitable, Callable

from . import EndOfChannel

T = TypeVar("T")


class _IterateChannel(Generic[T]):
    """``async for item in channel`` for every channel kind: receive until it is closed."""

    __slots__ = ()
    recv: Callable[[], Awaitable[T]]  # each channel kind defines it

    def __aiter__(self) -> _IterateChannel[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.recv()
        except EndOfChannel:
            raise StopAsyncIteration from None
