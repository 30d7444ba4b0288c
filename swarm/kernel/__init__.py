"""The event kernel: runs plain ``async def`` agent code in virtual time, or in real time.

Two kernels, one interface (:class:`Kernel`): ``now()``, ``sleep()``, ``sleep_until()``,
``checkpoint()``, ``channel()``, ``event()``, ``task_group()``, ``move_on_after()`` /
``fail_after()``. Agent code receives a kernel and uses only that interface, so the same coroutine
runs in a deterministic simulation (:class:`VirtualKernel`) and against real sockets
(:class:`AnyioKernel`, on asyncio or trio). ``tests/test_kernel_conformance.py`` runs one suite
against both.

Structured concurrency, as in trio: every task belongs to a task group whose ``async with`` block
waits for it; cancelling a group cancels every task in it, nested groups included; a child's
error cancels its siblings and the group's body, and the group raises an ``ExceptionGroup``.
Cancellation is delivered once, at the task's next wait (edge-triggered), as the kernel's
``Cancelled`` (a ``BaseException``, so ``except Exception`` does not swallow it).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable
from collections.abc import Awaitable, Callable

T = TypeVar("T")


class Cancelled(BaseException):
    """Raised inside a task of the virtual kernel when it is cancelled (the anyio kernel raises its
    backend's cancellation instead; agent code catches ``kernel.Cancelled``)."""

    def __init__(self, origin: object = None) -> None:
        super().__init__("cancelled")
        self.origin = origin  # the task group or cancel scope that cancelled


class Deadlock(RuntimeError):
    """Every task waits on something no one will provide, and no timer is pending."""


class EndOfChannel(Exception):
    """The channel was closed and its buffer is empty."""


class WouldBlock(Exception):
    """A non-blocking channel operation could not complete."""


# ---- the interface agent code uses ------------------------------------------------------------


class Channel(Protocol[T]):
    """A FIFO of messages between tasks; ``async for`` receives until it is closed."""

    async def send(self, item: T) -> None: ...
    def send_nowait(self, item: T) -> None: ...
    async def recv(self) -> T: ...
    def close(self) -> None: ...
    def __len__(self) -> int: ...
    def __aiter__(self) -> Any: ...


class Event(Protocol):
    """A one-shot flag tasks can wait for."""

    def set(self) -> None: ...
    def is_set(self) -> bool: ...
    async def wait(self) -> None: ...


class TaskGroup(Protocol):
    """Owns the tasks started in it: its ``async with`` block waits for them all."""

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> Any: ...
    def cancel(self) -> None: ...
    async def __aenter__(self) -> Any: ...
    async def __aexit__(self, *exc: Any) -> bool | None: ...


class CancelScope(Protocol):
    """A deadline around a block (``async with kernel.move_on_after(s) as scope``)."""

    @property
    def cancelled_caught(self) -> bool: ...
    async def __aenter__(self) -> Any: ...
    async def __aexit__(self, *exc: Any) -> bool | None: ...


@runtime_checkable
class Kernel(Protocol):
    """What agent code may use. ``Cancelled`` is the kernel's cancellation exception type."""

    @property
    def Cancelled(self) -> type[BaseException]: ...

    def now(self) -> float: ...
    def sleep(self, seconds: float) -> Awaitable[None]: ...
    def sleep_until(self, when: float) -> Awaitable[None]: ...
    def checkpoint(self) -> Awaitable[None]: ...
    def channel(self, capacity: int | None = None) -> Channel[Any]: ...
    def event(self) -> Event: ...
    def task_group(self) -> TaskGroup: ...
    def move_on_after(self, seconds: float) -> CancelScope: ...
    def fail_after(self, seconds: float) -> CancelScope: ...


# The kernels import the names above, so they come last.
from ._anyio import AnyioKernel  # noqa: E402
from ._virtual import Task, VirtualChannel, VirtualEvent, VirtualKernel  # noqa: E402

__all__ = ["AnyioKernel", "CancelScope", "Cancelled", "Channel", "Deadlock", "EndOfChannel", "Event", "Kernel", "Task",
           "TaskGroup", "VirtualChannel", "VirtualEvent", "VirtualKernel", "WouldBlock"]
