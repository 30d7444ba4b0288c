"""The in-process runtime: every agent a task of the orchestrator's event loop."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from ..agent import AgentHandle, Host, SwarmAgent
from ..kernel import Kernel
from ..learning.episodes import Decision
from ..specs import AgentSpec


class InProcess:
    """Agents as :class:`~swarm.agent.SwarmAgent` tasks; nothing to launch or reap."""

    def make(self, host: Host, spec: AgentSpec, decisions: Sequence[Decision], index: int) -> AgentHandle:
        return SwarmAgent(host, spec, decisions, index)

    def running(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    async def launch(self, agents: Sequence[AgentHandle], kernel: Kernel) -> None:
        return None

    def shutdown(self, agents: Sequence[AgentHandle]) -> None:
        return None
