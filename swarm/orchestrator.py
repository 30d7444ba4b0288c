"""The orchestrator: runs a swarm of agents through episodes on the market, on the clock,
network and runtime it is given (:mod:`swarm.deployment`), injects faults, and reads the figures
a report needs.

A topology shapes the swarm through its :class:`~swarm.specs.AgentSpec` list, a ``contacts`` rule
(whom a node may talk to), a ``share`` rule (what it passes on) and a controller coroutine that
acts at episode boundaries (consolidate, scale, rotate, roll out, roll back). Agents write what
happened into one :class:`~swarm.records.SwarmRecords`.

Structured concurrency: one task group owns the controller and every agent; each agent owns a
task group with its trading loop and its gossip bus, so crashing an agent cancels exactly those.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .agent import AgentHandle, agent_decisions
from .deployment import Environment, environment, resolve
from .gossip import Identity, KeyRing, Signer
from .gossip.neighbours import origin_node, ring_of
from .gossip.node import Contacts, Share
from .kernel import Event, Kernel, TaskGroup
from .learning.episodes import Decision
from .learning.memory_policy import MemoryConfig, make_embedder
from .memory.embedders import fingerprint_of
from .records import SwarmRecords
from .specs import AgentSpec, SwarmConfig
from .topology import Topology
from .transport import Endpoint
from .transport.quic import NodeCredentials, QuicNetwork, SwarmCA
from .transport.sim import LinkProfile

Controller = Callable[["Swarm"], Awaitable[None]]


class Swarm:
    """A swarm. Build it, ``run()`` it, read its figures.

    ``env`` is the clock, network and runtime to run on; None builds the one ``config`` asks for
    (after the ambient deployment fills in its transport and runtime).
    """

    def __init__(self, config: SwarmConfig, specs: Sequence[AgentSpec], *, contacts: Contacts | None = None,
                 share: Callable[[str], Share] | None = None, controller: Controller | None = None,
                 decisions: Mapping[str, Sequence[Decision]] | None = None, env: Environment | None = None) -> None:
        config = resolve(config)
        self.config = config
        self.env = env if env is not None else environment(config)
        self.kernel: Kernel = self.env.kernel
        self.net = self.env.network
        self.share = share
        self.contacts = contacts
        self.controller = controller
        self._tmp = tempfile.TemporaryDirectory(prefix="swarm-") if config.store_dir is None else None
        self.store_dir = Path(config.store_dir) if config.store_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.space = fingerprint_of(make_embedder(specs[0].memory if specs else MemoryConfig())) or ""
        # the swarm's CA (the network's, when it has one): it certifies each agent's write key
        self.ca: SwarmCA = getattr(self.net, "ca", None) or SwarmCA.generate()
        self.keyring = KeyRing(self.ca.certificate)
        self._credentials: dict[str, NodeCredentials] = {}
        self._revoked: list[str] = []
        self._specs: dict[str, AgentSpec] = {}
        self.records = SwarmRecords()
        self._agreement: tuple[float, bool] | None = None  # (when, whether the replicas agreed then)
        self._launched = False  # agents made before the run learn the member list once, at launch
        self.agents: dict[str, AgentHandle] = {}
        self._decisions = decisions or {}
        self._tg: TaskGroup | None = None
        self._trading: set[str] = set()
        self._all_done: Event | None = None  # made when the run starts (a real-time event needs its loop)
        self.wall_s = 0.0
        for spec in specs:
            self._make(spec)

    # ---- what agents need of their host (swarm.agent.Host), beside the attributes above ----

    def endpoint(self, node: str) -> Endpoint:
        if isinstance(self.net, QuicNetwork):
            return self.net.endpoint(node, self.credentials(node))
        return self.net.endpoint(node)

    def credentials(self, node: str) -> NodeCredentials:
        """``node``'s certificate from the swarm CA, naming it and holding its write key (drawn
        from the swarm's seed: a simulated run signs the same bytes every time)."""
        creds = self._credentials.get(node)
        if creds is None:
            spec = self._specs.get(node)
            creds = self.ca.issue(node, write_key=Signer.derive(node, f"swarm-seed:{self.config.seed}").key,
                                  curator=spec is not None and spec.curator)
            self.keyring.admit(creds.certificate)
            self._credentials[node] = creds
        return creds

    def identity(self, node: str) -> Identity:
        return Identity(self.credentials(node).signer, self.keyring)

    async def finished_trading(self, agent_id: str) -> None:
        """``agent_id`` has traded all it will; returns once every agent has."""
        self._done_with(agent_id)
        assert self._all_done is not None  # made by _main before any agent runs
        await self._all_done.wait()

    async def settle(self) -> None:
        """Gossip a while after the last trade: ``settle`` swarm seconds, then on until every live
        agent's replica digest agrees (or ``settle_max``). On the simulated network this runs in
        virtual time, so it is as deterministic as the rest (a lossy run once stopped at 0.78
        consistency after a fixed settle)."""
        k, cfg = self.kernel, self.config
        await k.sleep(cfg.settle)
        waited = cfg.settle
        while waited < cfg.settle_max and not self._replicas_agree():
            await k.sleep(1.0)
            waited += 1.0

    def _replicas_agree(self) -> bool:
        """Whether every live agent holds every write of the origins it keeps that any live agent
        holds (with full replication: whether all digests are equal). Every agent's ``settle``
        asks at the same instants, so the answer is kept for the instant it was computed at."""
        now = self.kernel.now()
        if self._agreement is not None and self._agreement[0] == now:
            return self._agreement[1]
        digests = {a.id: a.digest() for a in self.live()}
        best: dict[str, int] = {}
        by_node: dict[str, list[str]] = {}  # node -> its origins (a restarted node has several)
        for d in digests.values():
            for origin, seq in d.items():
                if origin not in best:
                    by_node.setdefault(origin_node(origin), []).append(origin)
                best[origin] = max(best.get(origin, 0), seq)
        ring = ring_of(frozenset(self.agents), self.config.degree or 0)
        agree = all(
            d.get(origin, 0) == best[origin]
            for agent, d in digests.items()
            for node in (by_node if ring.full else (agent, *ring.neighbours(agent)))
            for origin in by_node.get(node, ()))
        self._agreement = (now, agree)
        return agree

    def agent_died(self, agent_id: str, exitcode: int | None, why: str) -> None:
        """An agent's process ended without being asked to: the swarm carries on without it."""
        self._done_with(agent_id)
        self.log_event("agent_died", agent=agent_id, exitcode=exitcode, why=why)

    # ---- building and running ------------------------------------------------------------------

    @classmethod
    def of(cls, topology: Topology, config: SwarmConfig, specs: Sequence[AgentSpec], *,
           controller: Controller | None = None, decisions: Mapping[str, Sequence[Decision]] | None = None,
           env: Environment | None = None) -> Swarm:
        """A swarm shaped by ``topology`` (its contact and share rules; no gossip if it has none)
        with ``specs`` from its ``agents`` and ``controller`` from its ``controller``."""
        if not topology.gossip:
            config = replace(config, sync=False)
        if config.degree is None:
            config = replace(config, degree=topology.degree)
        return cls(config, specs, contacts=topology.contacts, share=topology.share, controller=controller,
                   decisions=decisions, env=env)

    async def after_episode(self, episode: int) -> None:
        """Sleep until just after ``episode`` ends (half a swarm second in): where controllers act."""
        k = self.kernel
        await k.sleep(episode * self.config.episode_seconds + 0.5 - k.now())

    def _make(self, spec: AgentSpec) -> AgentHandle:
        if spec.id in self._decisions:
            decisions = self._decisions[spec.id]
        else:
            decisions = agent_decisions(spec, self.config) if spec.trades else []
        self._specs[spec.id] = spec  # its credentials name its role
        agent = self.env.runtime.make(self, spec, decisions, len(self.agents))
        self.agents[spec.id] = agent
        self._trading.add(spec.id)
        if self._launched:  # an agent added to a running swarm: everyone learns the new member list
            for other in self.agents.values():
                other.know(list(self.agents))
        return agent

    def run(self) -> Swarm:
        t0 = time.perf_counter()
        try:
            # one BLAS thread: a swarm runs its agents on one thread, and their products are small
            # (a 10k x 64 scan); on a busy 2-core machine a multi-threaded OpenBLAS spun its threads
            # and took 1.4 ms per product instead of 0.1 ms
            with threadpool_limits(limits=1, user_api="blas"):
                self.env.run(self._main)
        finally:  # no agent process outlives its swarm
            self.env.runtime.shutdown(list(self.agents.values()))
        self.wall_s = time.perf_counter() - t0
        return self

    async def _main(self) -> None:
        self._all_done = self.kernel.event()
        if not self._trading:
            self._all_done.set()
        members = list(self.agents)
        for agent in self.agents.values():  # once, not on every addition (that was O(N^2) lists)
            agent.know(members)
        self._launched = True
        async with self.env.runtime.running():  # e.g. the run's sandboxes: all killed on the way out
            await self.env.runtime.launch(list(self.agents.values()), self.kernel)
            async with self.kernel.task_group() as tg:
                self._tg = tg
                for agent in list(self.agents.values()):
                    tg.start_soon(agent.run, name=agent.id)
                if self.controller is not None:
                    tg.start_soon(self.controller, self)

    def _done_with(self, agent_id: str) -> None:
        self._trading.discard(agent_id)
        if not self._trading and self._all_done is not None:
            self._all_done.set()

    # ---- records -------------------------------------------------------------------------------

    @property
    def membership_log(self) -> list[tuple[float, str, str, str]]:
        return self.records.membership_log

    @property
    def events(self) -> list[dict[str, Any]]:
        """What the controller did, for the report."""
        return self.records.events

    @property
    def first_seen(self) -> dict[str, tuple[str, float]]:
        return self.records.first_seen

    @property
    def arrivals(self) -> dict[tuple[str, str], float]:
        """(pattern id, agent) -> seconds from the pattern's first publication to its first
        arrival at that agent (an agent's own patterns do not count)."""
        return self.records.arrivals

    def log_event(self, kind: str, **detail: Any) -> None:
        self.records.log_event(self.kernel.now(), kind, **detail)

    # ---- changing the swarm while it runs ------------------------------------------------------

    def add_agent(self, spec: AgentSpec) -> AgentHandle:
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
        self.net.crash(agent_id)
        self.agents[agent_id].kill()
        self._done_with(agent_id)
        self.log_event("agent_crashed", agent=agent_id)

    def restart(self, agent_id: str) -> AgentHandle:
        """Restart a crashed agent from its own store; it re-announces what it holds and catches
        up the rest from its peers by anti-entropy."""
        agent = self.agents[agent_id]
        self._trading.add(agent_id)
        agent.reboot(list(self.agents), [a for a in self.agents if a != agent_id and not self.agents[a].crashed])
        if self._tg is not None:
            self._tg.start_soon(agent.run, name=f"{agent_id}~{agent.boots}")
        self.log_event("agent_restarted", agent=agent_id, patterns_recovered=len(agent.store))
        return agent

    def revoke(self, agent_id: str) -> None:
        """Have the swarm CA revoke ``agent_id``: its revocation list goes to one live agent, and
        gossip carries it to the rest, each of which then refuses the agent's writes, quarantines
        the patterns it authored and drops its connections."""
        self._revoked.append(agent_id)
        der = self.ca.revocation_list([self.credentials(a).certificate for a in self._revoked], len(self._revoked))
        holder = next((a for a in self.live() if a.id not in self._revoked), None)
        if holder is not None:
            holder.revoke(der)
        self.log_event("agent_revoked", agent=agent_id, told=holder.id if holder is not None else None)

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

    def live(self) -> list[AgentHandle]:
        return [a for a in self.agents.values() if not a.crashed and not a.retired]

    def replication_consistency(self, agents: Sequence[AgentHandle] | None = None) -> float:
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
        scale = self.config.time_scale if self.config.on_wire else 1.0
        v = np.array(list(self.arrivals.values())) * 1000.0 * scale
        return {"p50": round(float(np.percentile(v, 50)), 3), "p99": round(float(np.percentile(v, 99)), 3),
                "mean": round(float(v.mean()), 3), "samples": int(v.size),
                "clock": "wall" if self.config.on_wire else "virtual"}

    def traffic(self) -> dict[str, int]:
        return self.net.totals()

    def frames_by_link(self) -> dict[tuple[str, str], int]:
        return {k: v.messages for k, v in self.net.link_stats().items()}

    def frames_sent_by(self, node: str) -> int:
        return sum(v.messages for (src, _), v in self.net.link_stats().items() if src == node)

    def close(self) -> None:
        for a in self.agents.values():
            if not a.crashed or self.config.runtime in ("process", "e2b"):  # a killed process leaves a local reader
                a.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Swarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
