"""The orchestrator: builds a swarm for a topology, drives its agents through episodes on the
market in virtual time, syncs their patterns over the gossip bus, injects faults, and collects
the figures a report needs.

Data flow, per agent and trade: market decision -> ``LearningAgent.decide`` (memory retrieval)
-> trade -> ``learn`` (judge, distill, store, record outcomes) -> the store's change feed ->
``GossipNode.publish`` -> the network -> peers' ``PatternsReceived`` -> ``merge_many`` into their
stores. Every agent has its own SQLite file. A topology shapes the swarm through its
:class:`AgentSpec` list, a ``contacts`` rule (whom a node may talk to) and a controller coroutine
that acts at episode boundaries (consolidate, scale, rotate, roll out, roll back).

Structured concurrency: one task group owns the controller and every agent; each agent owns a
task group with its trading loop and its gossip bus, so crashing an agent cancels exactly those.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from collections.abc import Awaitable, Callable, Iterator, Sequence

import numpy as np

from . import progress
from .gossip import GossipConfig, GossipNode, MemberChanged, PatternsReceived
from .gossip.node import Contacts, Share
from .kernel import AnyioKernel, Kernel, VirtualKernel
from .learning.agent import LearningAgent
from .learning.episodes import Decision
from .learning.markets import active
from .learning.memory_policy import MemoryConfig, MemoryPolicy, make_embedder
from .learning.session import RunLog, step
from .market import MarketConfig, TradeRules
from .memory.embedders import fingerprint_of
from .transport import GossipBus, LinkProfile, SimNetwork

SYMBOLS: tuple[str, ...] = ("AAA", "BBB", "CCC")
TRANSPORTS: tuple[str, ...] = ("sim", "quic")
RUNTIMES: tuple[str, ...] = ("in-process", "process")


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where swarms run unless their config says otherwise: the runner's ``--transport`` and
    ``--runtime``, set around a whole suite with :func:`deployed`."""

    transport: str = "sim"
    runtime: str = "in-process"


_DEPLOYMENT: ContextVar[Deployment] = ContextVar("swarm_deployment", default=Deployment())  # noqa: B039 (frozen)


@contextlib.contextmanager
def deployed(transport: str = "sim", runtime: str = "in-process") -> Iterator[Deployment]:
    """Run the swarms made inside this block on ``transport`` and ``runtime`` by default."""
    d = Deployment(transport, runtime)
    SwarmConfig(transport=transport, runtime=runtime)  # validates the pair
    token = _DEPLOYMENT.set(d)
    try:
        yield d
    finally:
        _DEPLOYMENT.reset(token)

#: Gossip settings on real sockets, where an event loop serves several endpoints and answers may
#: take several gossip intervals: a node asks one peer at a time and backs off when answers are
#: slow; answers are small (64 writes) so each completes quickly; no writes ride on digests (a
#: push delivers writes out of order, and a high-water-mark digest cannot tell the peer it holds
#: them, so pulls sent them again); pings get longer before suspicion. Measured: a 5-peer mesh
#: went from 3.4x the needed bytes and 82 false suspicions (simulated-network settings) to 1.5x;
#: 50 nodes on 2 cores (bus_bench) stalled with 512-write answers and pushes.
QUIC_GOSSIP: dict[str, Any] = {"resend_after": 10.0, "max_pulls": 1, "backoff": True, "max_batch": 64,
                               "piggyback_entries": 0, "probe_interval": 2.0,
                               "ack_timeout": 1.0, "suspect_timeout": 10.0}


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
    start: float = 0.0  # virtual time the agent starts trading (later for scaled-up agents)
    wrap: Callable[[MemoryPolicy], Any] | None = None  # a policy built on the memory policy (e.g. a rotator)


@dataclass(frozen=True, slots=True)
class SwarmConfig:
    seed: int = 0
    episodes: int = 30
    trades_per_episode: int = 10
    trade_interval: float = 1.0  # virtual seconds between one agent's trades
    sync: bool = True  # False: no gossip at all (the isolated baseline)
    fanout: int = 2
    gossip_interval: float = 1.0
    link: LinkProfile = field(default_factory=LinkProfile)
    market: MarketConfig = field(default_factory=MarketConfig)
    settle: float = 10.0  # virtual seconds of gossip after the last trade, before figures are read
    settle_max: float = 300.0  # quic: longest wait for the replicas to agree after the last trade
    store_dir: str | None = None  # where the agents' SQLite files go (None: a temporary directory)
    # "sim": simulated network in virtual time; "quic": real QUIC on loopback; None: the ambient
    # deployment (see :func:`deployed`), "sim" unless a runner chose otherwise
    transport: str | None = None
    runtime: str | None = None  # "in-process" (agents as tasks) or "process" (one OS process each)
    time_scale: float = 0.1  # quic: wall seconds per swarm second (a 10-trade episode takes 1 s)
    backend: str = "asyncio"  # quic: the event loop anyio runs on ("asyncio" or "trio")

    def __post_init__(self) -> None:
        if self.transport not in (None, *TRANSPORTS):
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {self.transport!r}")
        if self.runtime not in (None, *RUNTIMES):
            raise ValueError(f"runtime must be one of {RUNTIMES}, not {self.runtime!r}")
        if self.runtime == "process" and self.transport == "sim":
            raise ValueError("the process runtime needs a real bus: transport 'quic'")
        if self.backend not in ("asyncio", "trio"):
            raise ValueError(f"backend must be 'asyncio' or 'trio', not {self.backend!r}")

    def resolved(self) -> SwarmConfig:
        """This config with transport and runtime filled in from the ambient deployment. A swarm
        without gossip has no traffic to put on a wire, so it always runs simulated, in-process."""
        if not self.sync:
            return replace(self, transport="sim", runtime="in-process")
        d = _DEPLOYMENT.get()
        runtime = self.runtime or d.runtime
        transport = self.transport or ("quic" if runtime == "process" else d.transport)
        return replace(self, transport=transport, runtime=runtime)

    @property
    def episode_seconds(self) -> float:
        return self.trades_per_episode * self.trade_interval

    @property
    def trades(self) -> int:
        return self.episodes * self.trades_per_episode


def agent_decisions(spec: AgentSpec, config: SwarmConfig, n: int | None = None) -> list[Decision]:
    """The decisions an agent faces: its market (seed and symbols), ``n`` of them (fewer when the
    market is real data shorter than that). The market comes from the active source
    (:func:`swarm.learning.markets.active`: synthetic with ``config.market``, or windows of CSV files)."""
    n = config.trades if n is None else n
    bars = max(50, 21 + 10 * (n // len(spec.symbols) + 2) + 10)
    return active().decisions(replace(config.market, n_bars=bars), spec.market_seed, spec.symbols, TradeRules())[:n]


class SwarmAgent:
    """An agent at runtime: its memory, learner, gossip node and logs."""

    def __init__(self, swarm: Any, spec: AgentSpec, decisions: Sequence[Decision], index: int | None = None,
                 boots: int = 0) -> None:
        self.swarm = swarm  # a Swarm, or an agent process's host (swarm.runtime): config, kernel, net, records
        self.spec = spec
        self.id = spec.id
        self.decisions = list(decisions)
        self.cursor = 0
        self.log = RunLog(spec.id)
        self.informed_by: list[tuple[str, ...]] = []
        self.path = swarm.store_dir / f"{spec.id}.db"
        self.boots = boots
        self.crashed = False
        self.retired = False
        self.quota: float = 1.0  # share of its trade slots it uses (performance allocation)
        self.index = len(swarm.agents) if index is None else index
        self._open()

    def _open(self) -> None:
        seed = self.swarm.config.seed * 1000 + self.index * 10 + self.boots  # its own exploration
        # WAL with synchronous=NORMAL survives a killed process (the fault injected here), not a power cut
        self.policy = MemoryPolicy.open(self.path, replace(self.spec.memory, seed=seed), name=self.id,
                                        synchronous="NORMAL")
        self.learner = LearningAgent(self.id, self.spec.wrap(self.policy) if self.spec.wrap else self.policy)
        self.published = self.policy.bank.store.sequence
        sw = self.swarm
        gcfg = GossipConfig(dim=self.policy.bank.store.dim, fanout=sw.config.fanout,
                            gossip_interval=sw.config.gossip_interval, space=sw.space,
                            **(QUIC_GOSSIP if sw.config.transport == "quic" else {}))
        self.node = GossipNode(self.id, gcfg, seed=sw.config.seed, now=sw.kernel.now(),
                               contacts=sw.contacts,
                               share=sw.share(self.id) if sw.share else None, boot=self.boots)
        self.bus = GossipBus(sw.kernel, self.node, sw.net.endpoint(self.id), self._on_event)

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.policy.bank.store

    def trade(self) -> None:
        """One decision, learned from (the store's new writes ship at the episode's end)."""
        d = self.decisions[self.cursor]
        self.cursor += 1
        choice = step(self.learner, d, self.log, learn=self.spec.learn)
        self.informed_by.append(choice.informed_by)
        per = self.swarm.config.trades_per_episode
        if self.cursor % per == 0:
            self.publish()
            progress.report(self.cursor // per, len(self.decisions) // per)

    def publish(self) -> None:
        """Hand the store's writes since the last call to the gossip node, as one batch (several
        updates of one pattern in an episode ship as its latest version). Copies that came from
        peers are already in the node's replica, so they are not echoed back."""
        changed, self.published = self.store.changed_since(self.published)
        if changed:
            now = self.swarm.kernel.now()
            for p in changed:
                self.swarm.record_publication(p.id, self.id, now)
            if self.swarm.config.sync:
                self.node.publish(changed, now)

    def _on_event(self, ev: object) -> None:
        if isinstance(ev, PatternsReceived):
            now = self.swarm.kernel.now()
            for p in self.store.merge_many(list(ev.patterns)):
                self.swarm.record_arrival(p.id, self.id, now)
        elif isinstance(ev, MemberChanged):
            self.swarm.membership_log.append((self.swarm.kernel.now(), self.id, ev.node, ev.status))

    def use_memory_config(self, config: MemoryConfig) -> None:
        """Switch the agent's learner to another policy version over the same memory (rollouts)."""
        seed = self.swarm.config.seed * 1000 + self.index * 10 + self.boots
        policy = MemoryPolicy(self.policy.bank, replace(config, seed=seed), name=self.id)
        policy.decisions = self.policy.decisions  # keep its experience
        self.policy = policy
        self.learner = LearningAgent(self.id, self.spec.wrap(policy) if self.spec.wrap else policy)

    def pattern_ids(self) -> set[str]:
        return {p.id for p in self.store.iter_patterns()}

    def digest(self) -> dict[str, int]:
        return self.node.digest()

    def know(self, members: Sequence[str]) -> None:
        """The swarm's member list changed (an agent was added): know them all."""
        self.node.bootstrap(members, self.swarm.kernel.now())

    # ---- what controllers do to an agent (the same calls reach an agent process) ----

    def vote(self, context: Any) -> int | None:
        """The strategy this agent's memory prefers on ``context`` (None: no evidence)."""
        pref = self.policy.preference(context)
        if not np.isfinite(pref).any() or np.allclose(pref[np.isfinite(pref)], 0.0):
            return None
        return int(np.nanargmax(np.where(np.isfinite(pref), pref, -np.inf)))

    def export_pack(self, path: str | Path) -> int:
        return self.policy.bank.export(path)

    def import_pack(self, path: str | Path, policy: Any = None, ship: bool = False) -> Any:
        """Import a pattern pack; unless ``ship``, its patterns are not gossiped on (the hand-off
        itself is the transfer being measured)."""
        report = self.policy.bank.import_(path) if policy is None else self.policy.bank.import_(path, policy)
        if not ship:
            self.published = self.store.sequence
        return report

    def set_learning_rate(self, lr: float) -> None:
        self.policy.set_learning_rate(lr)

    @property
    def memory_config(self) -> MemoryConfig:
        return self.policy.config

    def consolidate(self, policy: Any) -> Any:
        """Merge near-duplicate patterns in this agent's memory; their new versions ship next."""
        report = self.policy.bank.consolidate(policy)
        self.publish()
        return report

    def set_quota(self, quota: float) -> None:
        self.quota = quota

    def leave(self) -> None:
        """Leave the gossip group now (scale-down)."""
        self.retired = True
        self.node.leave(self.swarm.kernel.now())
        self.bus.flush()

    def kill(self) -> None:
        """Die abruptly: tasks cancelled, traffic dropped; the SQLite file keeps what was committed."""
        self.crashed = True
        self.swarm.net.crash(self.id)
        self._group.cancel()
        self.close()

    def reboot(self, members: Sequence[str], seeds: Sequence[str]) -> None:
        """Come back from the store after :meth:`kill`: reopen it, know ``members``, rejoin
        through ``seeds`` and re-announce everything held (peers fill in the rest by anti-entropy)."""
        self.boots += 1
        self.crashed = False
        self._open()
        self.rejoin(members, seeds)

    def rejoin(self, members: Sequence[str], seeds: Sequence[str]) -> None:
        now = self.swarm.kernel.now()
        self.node.bootstrap(members, now)
        self.node.join(seeds, now)
        self.node.publish(list(self.store.iter_patterns()), now)

    def close(self) -> None:
        self.policy.close()

    async def run(self) -> None:
        """Trade on schedule until the decisions run out, with the gossip bus alongside."""
        k = self.swarm.kernel
        async with self.bus.endpoint, k.task_group() as tg:
            self._group = tg
            if self.swarm.config.sync:
                tg.start_soon(self.bus.run)
            if k.now() < self.spec.start:
                await k.sleep(self.spec.start - k.now())
            interval = self.swarm.config.trade_interval
            credit = 0.0
            slot = k.now()
            while self.cursor < len(self.decisions) and not self.retired:
                # slots are fixed on the clock: a late wake on a busy event loop is caught up, not
                # lost (sleeping ``interval`` after each wake made full-quota agents trade 13% less)
                slot += interval
                await k.sleep_until(slot)
                credit += self.quota
                while credit >= 1.0 and self.cursor < len(self.decisions):
                    credit -= 1.0
                    self.trade()
            self.publish()
            # keep gossiping until every agent has finished trading, then a little longer
            await self.swarm._finished_trading(self.id)
            await self.swarm._settle()
            tg.cancel()


Controller = Callable[["Swarm"], Awaitable[None]]


class Swarm:
    """A swarm in virtual time. Build it, ``run()`` it, read its figures."""

    def __init__(self, config: SwarmConfig, specs: Sequence[AgentSpec], *, contacts: Contacts | None = None,
                 share: Callable[[str], Share] | None = None, controller: Controller | None = None,
                 decisions: dict[str, Sequence[Decision]] | None = None) -> None:
        config = config.resolved()
        self.config = config
        self.share = share
        self.kernel: Kernel
        self.net: Any
        if config.runtime == "process":
            from .runtime.process import ProcessNetwork

            self.kernel = AnyioKernel(config.time_scale, epoch=None)  # the epoch is set when agents start
            self.net = ProcessNetwork()
        elif config.transport == "quic":
            from .transport.quic import QuicNetwork

            self.kernel = AnyioKernel(config.time_scale)
            self.net = QuicNetwork()
        else:
            self.kernel = VirtualKernel()
            self.net = SimNetwork(self.kernel, config.seed, config.link)
        self.contacts = contacts
        self.controller = controller
        self._tmp = tempfile.TemporaryDirectory(prefix="swarm-") if config.store_dir is None else None
        self.store_dir = Path(config.store_dir or self._tmp.name)  # type: ignore[union-attr]
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.space = fingerprint_of(make_embedder(specs[0].memory if specs else MemoryConfig())) or ""
        self.first_seen: dict[str, tuple[str, float]] = {}  # pattern id -> (agent that made it, when)
        self._arrived: dict[tuple[str, str], float] = {}  # (pattern id, agent) -> first arrival there
        self.membership_log: list[tuple[float, str, str, str]] = []
        self.events: list[dict[str, Any]] = []  # what the controller did, for the report
        self.agents: dict[str, SwarmAgent] = {}
        self._decisions = decisions or {}
        self._tg: Any = None
        self._trading: set[str] = set()
        self._all_done: Any = None  # made when the run starts (a real-time event needs its loop)
        self.wall_s = 0.0
        for spec in specs:
            self._make(spec)

    def _make(self, spec: AgentSpec) -> Any:
        decisions = self._decisions[spec.id] if spec.id in self._decisions else agent_decisions(spec, self.config)
        if self.config.runtime == "process":
            from .runtime.process import ProcessAgent

            agent: Any = ProcessAgent(self, spec, decisions, len(self.agents))
        else:
            agent = SwarmAgent(self, spec, decisions)
        self.agents[spec.id] = agent
        self._trading.add(spec.id)
        for other in self.agents.values():
            other.know(list(self.agents))
        return agent

    # ---- running -----------------------------------------------------------------------------

    def run(self) -> Swarm:
        t0 = time.perf_counter()
        if self.config.transport == "quic":
            try:
                self.kernel.run(self._main, backend=self.config.backend)
            finally:
                if self.config.runtime == "process":  # no agent process outlives its swarm
                    for a in self.agents.values():
                        a.shutdown()
        else:
            self.kernel.run(self._main)
        self.wall_s = time.perf_counter() - t0
        return self

    async def _main(self) -> None:
        self._all_done = self.kernel.event()
        if not self._trading:
            self._all_done.set()
        if self.config.runtime == "process":
            from .runtime.process import launch

            await launch(list(self.agents.values()), self.kernel)
        async with self.kernel.task_group() as tg:
            self._tg = tg
            for agent in list(self.agents.values()):
                tg.start_soon(agent.run, name=agent.id)
            if self.controller is not None:
                tg.start_soon(self.controller, self)

    async def _settle(self) -> None:
        """Gossip a while after the last trade: ``settle`` swarm seconds, then on until every live
        agent's replica digest agrees (or ``settle_max``). On the simulated network this runs in
        virtual time, so it is as deterministic as the rest (a lossy run once stopped at 0.78
        consistency after a fixed settle)."""
        k, cfg = self.kernel, self.config
        await k.sleep(cfg.settle)
        waited = cfg.settle
        while waited < cfg.settle_max and len({tuple(sorted(a.digest().items())) for a in self.live()}) > 1:
            await k.sleep(1.0)
            waited += 1.0

    async def _finished_trading(self, agent_id: str) -> None:
        self._done_with(agent_id)
        await self._all_done.wait()

    def _done_with(self, agent_id: str) -> None:
        self._trading.discard(agent_id)
        if not self._trading and self._all_done is not None:
            self._all_done.set()

    def record_publication(self, pattern_id: str, agent_id: str, at: float) -> None:
        """An agent shipped a pattern; the earliest shipment names its maker (agent processes
        report in batches, not in time order)."""
        seen = self.first_seen.get(pattern_id)
        if seen is None or at < seen[1]:
            self.first_seen[pattern_id] = (agent_id, at)

    def record_arrival(self, pattern_id: str, agent_id: str, at: float) -> None:
        self._arrived.setdefault((pattern_id, agent_id), at)

    @property
    def arrivals(self) -> dict[tuple[str, str], float]:
        """(pattern id, agent) -> seconds from the pattern's first publication to its first
        arrival at that agent (an agent's own patterns do not count)."""
        out = {}
        for (pid, agent), at in self._arrived.items():
            origin = self.first_seen.get(pid)
            if origin is not None and origin[0] != agent:
                out[(pid, agent)] = at - origin[1]
        return out

    def log_event(self, kind: str, **detail: Any) -> None:
        self.events.append({"t": round(self.kernel.now(), 3), "event": kind, **detail})

    # ---- changing the swarm while it runs ------------------------------------------------------

    def add_agent(self, spec: AgentSpec) -> SwarmAgent:
        """Start a new agent now (scale up); it joins through the others' member lists."""
        agent = self._make(replace(spec, start=self.kernel.now()))
        if self._tg is not None:
            self._tg.start_soon(agent.run, name=agent.id)
        self.log_event("agent_added", agent=spec.id)
        return agent

    def retire(self, agent_id: str) -> None:
        """Stop an agent gracefully (scale down): it leaves the gossip group and stops trading."""
        self.agents[agent_id].leave()
        self._done_with(agent_id)
        self.log_event("agent_retired", agent=agent_id)

    def crash(self, agent_id: str) -> None:
        """Kill an agent abruptly: its tasks are cancelled and the network drops its traffic.
        Its SQLite file keeps what it had committed."""
        self.agents[agent_id].kill()
        self._done_with(agent_id)
        self.log_event("agent_crashed", agent=agent_id)

    def restart(self, agent_id: str) -> SwarmAgent:
        """Restart a crashed agent from its own store; it re-announces what it holds and catches
        up the rest from its peers by anti-entropy."""
        agent = self.agents[agent_id]
        self._trading.add(agent_id)
        agent.reboot(list(self.agents), [a for a in self.agents if a != agent_id and not self.agents[a].crashed])
        if self._tg is not None:
            self._tg.start_soon(agent.run, name=f"{agent_id}~{agent.boots}")
        self.log_event("agent_restarted", agent=agent_id, patterns_recovered=len(agent.store))
        return agent

    def partition(self, *groups: Sequence[str]) -> None:
        """Cut the network: only agents in the same group can talk until :meth:`heal`."""
        self.net.partition(*[set(g) for g in groups])
        self.log_event("partition", groups=[sorted(g) for g in groups])

    def heal(self) -> None:
        self.net.heal()
        self.log_event("healed")

    def degrade(self, profile: LinkProfile) -> None:
        """Change every link without a profile of its own (message loss, latency, ...)."""
        self.net.set_default(profile)
        self.log_event("links", loss=profile.loss, latency=profile.latency, jitter=profile.jitter)

    # ---- figures -------------------------------------------------------------------------------

    def live(self) -> list[SwarmAgent]:
        return [a for a in self.agents.values() if not a.crashed and not a.retired]

    def replication_consistency(self, agents: Sequence[SwarmAgent] | None = None) -> float:
        """Share of (agent, pattern) pairs present, over the union of the agents' patterns."""
        group = list(agents) if agents is not None else self.live()
        sets = [a.pattern_ids() for a in group]
        union = set().union(*sets) if sets else set()
        if not union:
            return 1.0
        return sum(len(s) for s in sets) / (len(sets) * len(union))

    def sync_latency_ms(self) -> dict[str, Any] | None:
        """Time from a pattern's publication to its arrival at each other agent: virtual time on
        the simulated network, wall-clock time on the wire over QUIC."""
        if not self.arrivals:
            return None
        scale = self.config.time_scale if self.config.transport == "quic" else 1.0
        v = np.array(list(self.arrivals.values())) * 1000.0 * scale
        return {"p50": round(float(np.percentile(v, 50)), 3), "p99": round(float(np.percentile(v, 99)), 3),
                "mean": round(float(v.mean()), 3), "samples": int(v.size),
                "clock": "wall" if self.config.transport == "quic" else "virtual"}

    def traffic(self) -> dict[str, int]:
        return self.net.totals()

    def frames_by_link(self) -> dict[tuple[str, str], int]:
        return {k: v.messages for k, v in self.net.link_stats().items()}

    def frames_sent_by(self, node: str) -> int:
        return sum(v.messages for (src, _), v in self.net.link_stats().items() if src == node)

    def close(self) -> None:
        for a in self.agents.values():
            if not a.crashed or self.config.runtime == "process":  # a killed process leaves a local reader
                a.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Swarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
