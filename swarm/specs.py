"""What a swarm is made of, as plain data: its agents (:class:`AgentSpec`) and its settings
(:class:`SwarmConfig`). Topologies build these; the orchestrator, the runtimes and the agents read
them; nothing here runs anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .learning.memory_policy import MemoryConfig, MemoryPolicy
from .market import MarketConfig
from .transport.sim import LinkProfile

SYMBOLS: tuple[str, ...] = ("AAA", "BBB", "CCC")

_RULE_MARK = "__swarm_rule__"

R = TypeVar("R")


def rule(fn: R) -> R:
    """Mark a topology's function or class (a contacts or share rule, a policy wrapper) as one an
    agent process may be told to use by name: the control channel sends rules by reference, and the
    agent resolves only marked ones, in modules it was told to trust when it was spawned."""
    setattr(fn, _RULE_MARK, True)
    return fn


def is_rule(obj: object) -> bool:
    """``obj`` was marked with :func:`rule`."""
    return callable(obj) and getattr(obj, _RULE_MARK, False) is True
TRANSPORTS: tuple[str, ...] = ("sim", "quic", "websocket")
#: The transports on real sockets, in real time (WebSocket: the one E2B sandboxes can accept).
WIRES: tuple[str, ...] = ("quic", "websocket")
RUNTIMES: tuple[str, ...] = ("in-process", "process", "e2b")


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent of a swarm: who it is, what it trades, how it learns."""

    id: str
    role: str = "peer"
    market_seed: int = 0
    symbols: tuple[str, ...] = SYMBOLS
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    version: str = "v1"
    learn: bool = True
    trades: bool = True  # False: a relay or a leader that gossips and consolidates but trades nothing
    start: float = 0.0  # virtual time the agent starts trading (later for scaled-up agents)
    wrap: Callable[[MemoryPolicy], Any] | None = None  # a policy built on the memory policy (e.g. a rotator)
    # the swarm CA names it a curator: it may change and delete any member's patterns (a leader
    # that consolidates its workers' memory); a plain member changes only what it authored
    curator: bool = False


@dataclass(frozen=True, slots=True)
class SwarmConfig:
    """A swarm's settings: schedule, gossip, market, and where it runs."""

    seed: int = 0
    episodes: int = 30
    trades_per_episode: int = 10
    trade_interval: float = 1.0  # virtual seconds between one agent's trades
    sync: bool = True  # False: no gossip at all (the isolated baseline)
    fanout: int = 2
    gossip_interval: float = 1.0
    # each agent keeps the writes of this many neighbours (see swarm.gossip.neighbours); 0: every
    # agent's; None: the topology's own degree
    degree: int | None = None
    link: LinkProfile = field(default_factory=LinkProfile)
    market: MarketConfig = field(default_factory=MarketConfig)
    settle: float = 10.0  # virtual seconds of gossip after the last trade, before figures are read
    settle_max: float = 300.0  # quic: longest wait for the replicas to agree after the last trade
    store_dir: str | None = None  # where the agents' SQLite files go (None: a temporary directory)
    # "sim": simulated network in virtual time; "quic": real QUIC on loopback; "websocket": real
    # WebSocket on loopback (asyncio only; what E2B sandboxes accept); None: the ambient deployment (see :func:`swarm.deployment.deployed`), "sim" unless a runner chose otherwise
    transport: str | None = None
    # "in-process" (agents as tasks), "process" (one OS process each) or "e2b" (one E2B sandbox each,
    # over WebSocket; see swarm.runtime.e2b)
    runtime: str | None = None
    time_scale: float = 0.1  # quic: wall seconds per swarm second (a 10-trade episode takes 1 s)
    backend: str = "asyncio"  # quic: the event loop anyio runs on ("asyncio" or "trio")

    def __post_init__(self) -> None:
        if self.transport not in (None, *TRANSPORTS):
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {self.transport!r}")
        if self.runtime not in (None, *RUNTIMES):
            raise ValueError(f"runtime must be one of {RUNTIMES}, not {self.runtime!r}")
        if self.runtime == "process" and self.transport == "sim":
            raise ValueError(f"the process runtime needs a real bus: transport one of {WIRES}")
        if self.runtime == "e2b" and self.transport not in (None, "websocket"):
            raise ValueError("the e2b runtime needs the websocket transport (sandboxes accept only HTTPS/WebSocket)")
        if self.transport == "websocket" and self.backend != "asyncio":
            raise ValueError("the websocket transport runs on asyncio only (websockets' asyncio API)")
        if self.degree is not None and (self.degree < 0 or self.degree % 2):
            raise ValueError(f"degree must be 0 (every agent's writes) or even, not {self.degree}")
        if self.backend not in ("asyncio", "trio"):
            raise ValueError(f"backend must be 'asyncio' or 'trio', not {self.backend!r}")

    @property
    def on_wire(self) -> bool:
        """Whether the gossip bus is real sockets in real time (a transport of :data:`WIRES`)."""
        return self.transport in WIRES

    @property
    def episode_seconds(self) -> float:
        return self.trades_per_episode * self.trade_interval

    @property
    def trades(self) -> int:
        return self.episodes * self.trades_per_episode
