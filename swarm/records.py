"""What a swarm's agents did that its figures are made from: publications, arrivals, membership
changes and controller events. Agents write here through :class:`Recorder`; the orchestrator reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Recorder(Protocol):
    """Where an agent writes what happened to it (in a swarm, or in an agent process that reports
    its records back in batches)."""

    def record_publication(self, pattern_id: str, agent_id: str, at: float) -> None: ...
    def record_arrival(self, pattern_id: str, agent_id: str, at: float) -> None: ...
    def record_membership(self, at: float, agent_id: str, node: str, status: str) -> None: ...


@dataclass(slots=True)
class SwarmRecords:
    """A swarm's records, in one place."""

    first_seen: dict[str, tuple[str, float]] = field(default_factory=dict)  # pattern -> (its maker, when)
    arrived: dict[tuple[str, str], float] = field(default_factory=dict)  # (pattern, agent) -> first arrival
    membership_log: list[tuple[float, str, str, str]] = field(default_factory=list)  # (when, agent, node, status)
    events: list[dict[str, Any]] = field(default_factory=list)  # what the controller did, for the report

    def record_publication(self, pattern_id: str, agent_id: str, at: float) -> None:
        """An agent shipped a pattern; the earliest shipment names its maker (agent processes
        report in batches, not in time order)."""
        seen = self.first_seen.get(pattern_id)
        if seen is None or at < seen[1]:
            self.first_seen[pattern_id] = (agent_id, at)

    def record_arrival(self, pattern_id: str, agent_id: str, at: float) -> None:
        self.arrived.setdefault((pattern_id, agent_id), at)

    def record_membership(self, at: float, agent_id: str, node: str, status: str) -> None:
        self.membership_log.append((at, agent_id, node, status))

    def log_event(self, at: float, kind: str, **detail: Any) -> None:
        self.events.append({"t": round(at, 3), "event": kind, **detail})

    @property
    def arrivals(self) -> dict[tuple[str, str], float]:
        """(pattern id, agent) -> seconds from the pattern's first publication to its first
        arrival at that agent (an agent's own patterns do not count)."""
        out = {}
        for (pid, agent), at in self.arrived.items():
            origin = self.first_seen.get(pid)
            if origin is not None and origin[0] != agent:
                out[(pid, agent)] = at - origin[1]
        return out
