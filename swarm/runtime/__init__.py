"""Where a swarm's agents run, behind one :class:`Runtime` protocol.

* :class:`InProcess` (the default, and the only choice on the simulated network): every agent is
  a task of the orchestrator's event loop, :class:`swarm.agent.SwarmAgent`.
* :class:`ProcessRuntime`: every agent is its own OS process with its own SQLite store and QUIC
  endpoint, :class:`ProcessAgent` on the orchestrator's side. The orchestrator starts, watches,
  kills (SIGKILL) and restarts them, and drives and reads them over a control channel of typed,
  versioned messages (:mod:`swarm.runtime.messages`).
* :class:`E2BRuntime`: every agent in its own E2B sandbox (:mod:`swarm.runtime.e2b`), the
  process runtime's agent with a sandbox for a process and an authenticated WebSocket for a
  control socket.

Pick one with ``SwarmConfig(runtime=...)`` or, for a whole suite, ``deployed(runtime=...)``.
Runtimes know agents and specs, never the orchestrator.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from ..agent import AgentHandle
from ..kernel import Kernel
from ..learning.episodes import Decision
from ..specs import AgentSpec
from .inprocess import InProcess
from .e2b import E2BAgent, E2BRuntime, E2BSettings
from .process import ProcessAgent, ProcessNetwork, ProcessRuntime


class Runtime(Protocol):
    """Where agents run: makes an agent handle per spec, starts them together, and makes sure
    none outlives its swarm."""

    def make(self, host: Any, spec: AgentSpec, decisions: Sequence[Decision], index: int) -> AgentHandle: ...
    def running(self) -> AbstractAsyncContextManager[Any]: ...  # around the whole run, on its event loop
    async def launch(self, agents: Sequence[AgentHandle], kernel: Kernel) -> None: ...
    def shutdown(self, agents: Sequence[AgentHandle]) -> None: ...


__all__ = ["E2BAgent", "E2BRuntime", "E2BSettings", "InProcess", "ProcessAgent", "ProcessNetwork", "ProcessRuntime", "Runtime"]
