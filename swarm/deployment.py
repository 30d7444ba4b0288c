"""Where a swarm runs: its clock (kernel), its network and its runtime, chosen from its config
or from the ambient deployment a runner sets around a whole suite (``--transport``, ``--runtime``).

The orchestrator is given an :class:`Environment`; :func:`environment` builds the one a config
asks for, so a test or a user can hand a swarm any other (a late clock, a lossy network)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .kernel import AnyioKernel, Kernel, VirtualKernel
from .runtime import E2BRuntime, E2BSettings, InProcess, Runtime
from .runtime.process import ProcessNetwork, ProcessRuntime
from .specs import WIRES, SwarmConfig
from .transport import Endpoint, SimNetwork
from .transport.quic import QuicEndpoint, QuicNetwork
from .transport.websocket import WebSocketEndpoint
from .transport.sim import LinkProfile


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where swarms run unless their config says otherwise: the runner's ``--transport`` and
    ``--runtime``, set around a whole suite with :func:`deployed`."""

    transport: str = "sim"
    runtime: str = "in-process"
    e2b: E2BSettings | None = None  # the e2b runtime's sandboxes (None: from the environment variables)


_DEPLOYMENT: ContextVar[Deployment] = ContextVar("swarm_deployment", default=Deployment())  # noqa: B039 (frozen)


@contextlib.contextmanager
def deployed(transport: str = "sim", runtime: str = "in-process", e2b: E2BSettings | None = None) -> Iterator[Deployment]:
    """Run the swarms made inside this block on ``transport`` and ``runtime`` by default (on the
    sandboxes ``e2b`` describes, for the e2b runtime)."""
    d = Deployment(transport, runtime, e2b)
    SwarmConfig(transport=transport, runtime=runtime)  # validates the pair
    token = _DEPLOYMENT.set(d)
    try:
        yield d
    finally:
        _DEPLOYMENT.reset(token)


def resolve(config: SwarmConfig) -> SwarmConfig:
    """``config`` with transport and runtime filled in from the ambient deployment. A swarm
    without gossip has no traffic to put on a wire, so it always runs simulated, in-process."""
    if not config.sync:
        return replace(config, transport="sim", runtime="in-process")
    d = _DEPLOYMENT.get()
    runtime = config.runtime or d.runtime
    if runtime == "e2b":
        transport = "websocket"  # the only bus a sandbox accepts
    else:
        transport = config.transport or ("quic" if runtime == "process" and d.transport not in WIRES else d.transport)
    return replace(config, transport=transport, runtime=runtime)


class Network(Protocol):
    """What the orchestrator does to a network: attach nodes, inject faults, read traffic."""

    def endpoint(self, node: str) -> Endpoint: ...
    def crash(self, node: str) -> None: ...
    def partition(self, *groups: set[str]) -> None: ...
    def heal(self) -> None: ...
    def set_default(self, profile: LinkProfile) -> None: ...
    def link_stats(self) -> Mapping[tuple[str, str], Any]: ...
    def totals(self) -> dict[str, int]: ...


@dataclass(slots=True)
class Environment:
    """A swarm's clock, network and runtime, and how to run a coroutine on that clock."""

    kernel: Kernel
    network: Network
    runtime: Runtime
    backend: str = "asyncio"  # real time: the event loop anyio runs on

    def run(self, main: Callable[[], Awaitable[None]]) -> None:
        if isinstance(self.kernel, VirtualKernel):
            self.kernel.run(main)
        elif isinstance(self.kernel, AnyioKernel):
            self.kernel.run(main, backend=self.backend)
        else:
            raise TypeError(f"no way to run a swarm on {type(self.kernel).__name__}")


def environment(config: SwarmConfig) -> Environment:
    """The environment a resolved ``config`` asks for: virtual time on the simulated network;
    real time on QUIC or WebSocket, agents in-process or as OS processes (each binds the
    endpoint its transport names), or in E2B sandboxes on WebSocket."""
    if config.runtime == "e2b":
        net = ProcessNetwork()
        settings = _DEPLOYMENT.get().e2b or E2BSettings.from_env()
        return Environment(AnyioKernel(config.time_scale, epoch=None), net, E2BRuntime(net, settings), config.backend)
    if config.runtime == "process":
        net = ProcessNetwork()
        # the epoch is set when every agent process has started (ProcessRuntime.launch)
        return Environment(AnyioKernel(config.time_scale, epoch=None), net, ProcessRuntime(net), config.backend)
    if config.transport in WIRES:
        endpoints = WebSocketEndpoint if config.transport == "websocket" else QuicEndpoint
        return Environment(AnyioKernel(config.time_scale), QuicNetwork(endpoint_type=endpoints), InProcess(),
                           config.backend)
    kernel = VirtualKernel()
    return Environment(kernel, SimNetwork(kernel, config.seed, config.link), InProcess())
