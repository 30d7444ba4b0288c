"""A deployment topology as one value: its roles and agents, whom each contacts, what each
shares, and its controller. ``topologies/`` holds the eight built-in ones; a user's own registers
with one call (:func:`register`) or an entry point in the ``reasoningbank_swarm.topologies``
group, and then runs in the suite and the report like the built-in ones.

A topology is a definition, not a run: the scenario that runs it adds the parameters, the faults
and the checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .gossip.node import Contacts, Share
from .specs import AgentSpec

#: The entry-point group a package names its topologies in (``name = "module:TOPOLOGY"``).
ENTRY_POINT_GROUP = "reasoningbank_swarm.topologies"


@dataclass(frozen=True, slots=True)
class Topology:
    """Who is in a swarm and how knowledge moves through it.

    ``agents(seed)`` makes the agents (their ids, roles, markets, memory); ``contacts(me, live)``
    says whom an agent may gossip with (None: everyone); ``share(me)`` returns whose writes ``me``
    passes on to a peer, ``share(me)(peer, origin)`` (None: everyone's); ``controller(**params)`` builds the coroutine that acts at
    episode boundaries (None: no controller), an object that also keeps what it did for the checks.
    ``gossip`` False: agents never gossip and knowledge moves only through the controller.
    ``degree`` > 0 bounds replication: each agent keeps the writes of its ``degree`` neighbours on
    a hash ring of the members (:mod:`swarm.gossip.neighbours`), so a write costs ``degree`` copies
    however big the swarm (a swarm of at most ``degree + 1`` agents is fully replicated).
    """

    name: str  # the pattern id in the suite, the metrics file and the report
    summary: str  # one line for --list and the report
    agents: Callable[..., list[AgentSpec]]
    contacts: Contacts | None = None
    share: Callable[[str], Share] | None = None
    controller: Callable[..., Any] | None = None
    gossip: bool = True
    degree: int = 0  # each agent keeps its ring neighbours' writes only, this many (0: everyone's)

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c == "-" for c in self.name):
            raise ValueError(f"a topology name is letters, digits and dashes, not {self.name!r}")


_REGISTERED: dict[str, Topology] = {}


def register(topology: Topology) -> Topology:
    """Add a user's topology to the suite (``--list``, the run, the report). Returns it."""
    if not isinstance(topology, Topology):
        raise TypeError(f"register() takes a Topology, not {type(topology).__name__}")
    known = _REGISTERED.get(topology.name)
    if known is not None and known is not topology:
        raise ValueError(f"a topology named {topology.name!r} is already registered")
    _REGISTERED[topology.name] = topology
    return topology


def unregister(name: str) -> None:
    """Take a topology out of the suite again (tests; a session that registered one by mistake)."""
    _REGISTERED.pop(name, None)


def registered() -> dict[str, Topology]:
    """Every user topology: those registered by a call, and those entry points name."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            value = ep.load()
        except Exception as e:  # a broken plug-in is named, not a traceback
            raise ValueError(f"entry point {ep.name!r} ({ep.value}) does not load: {type(e).__name__}: {e}") from None
        if not isinstance(value, Topology):
            raise ValueError(f"entry point {ep.name!r} ({ep.value}) is a {type(value).__name__}, not a Topology")
        register(value)
    return dict(_REGISTERED)
