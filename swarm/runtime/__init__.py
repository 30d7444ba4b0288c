"""Where a swarm's agents run.

* In-process (the default, and the only choice on the simulated network): every agent is a task
  of the orchestrator's event loop, :class:`swarm.orchestrator.SwarmAgent`.
* Process: every agent is its own OS process with its own SQLite store and QUIC endpoint,
  :class:`swarm.runtime.process.ProcessAgent` on the orchestrator's side. The orchestrator starts,
  watches, kills (SIGKILL) and restarts them, and drives and reads them over a control channel.

Pick one with ``SwarmConfig(runtime=...)`` or, for a whole suite, ``deployed(runtime=...)``.
"""

from .process import ProcessAgent

__all__ = ["ProcessAgent"]
