"""An agent at runtime: its memory, learner, gossip node and logs, and the small protocols it
needs from whoever hosts it (a swarm, or an agent process) and offers to controllers.

Data flow, per trade: market decision -> ``LearningAgent.decide`` (memory retrieval) -> trade ->
``learn`` (judge, distill, store, record outcomes) -> the store's change feed (writes and
deletions) -> ``GossipNode.publish`` -> the network -> peers' gossip nodes, which apply them to
their stores (each agent's SQLite file is its gossip replica) and report ``PatternsReceived``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import progress
from .gossip import GossipConfig, GossipNode, Identity, MemberChanged, PatternsReceived
from .gossip.node import Contacts, Share
from .kernel import Kernel, TaskGroup
from .learning.agent import LearningAgent
from .learning.episodes import Decision
from .learning.markets import active
from .learning.memory_policy import MemoryConfig, MemoryPolicy
from .learning.session import RunLog, step
from .market import TradeRules
from .memory.store import PatternStore
from .records import Recorder
from .specs import AgentSpec, SwarmConfig
from .transport import Endpoint, GossipBus

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


def agent_decisions(spec: AgentSpec, config: SwarmConfig, n: int | None = None) -> list[Decision]:
    """The decisions an agent faces: its market (seed and symbols), ``n`` of them (fewer when the
    market is real data shorter than that). The market comes from the active source
    (:func:`swarm.learning.markets.active`: synthetic with ``config.market``, or windows of CSV files)."""
    n = config.trades if n is None else n
    bars = max(50, 21 + 10 * (n // len(spec.symbols) + 2) + 10)
    return active().decisions(replace(config.market, n_bars=bars), spec.market_seed, spec.symbols, TradeRules())[:n]


def memory_vote(policy: MemoryPolicy, context: Any) -> int | None:
    """The strategy ``policy``'s memory prefers on ``context`` (None: no evidence)."""
    pref = policy.preference(context)
    if not np.isfinite(pref).any() or np.allclose(pref[np.isfinite(pref)], 0.0):
        return None
    return int(np.nanargmax(np.where(np.isfinite(pref), pref, -np.inf)))


def exploration_seed(config: SwarmConfig, index: int, boots: int) -> int:
    """An agent's own exploration seed: distinct per swarm seed, agent and boot."""
    return config.seed * 1000 + index * 10 + boots


class Host(Protocol):
    """What an agent needs of whoever runs it: settings, a clock, a network attachment, the
    gossip rules, somewhere to record what happened, and the end-of-run rendezvous."""

    # read-only: a host may keep them as plain attributes
    @property
    def config(self) -> SwarmConfig: ...
    @property
    def kernel(self) -> Kernel: ...
    @property
    def records(self) -> Recorder: ...
    @property
    def store_dir(self) -> Path: ...
    @property
    def space(self) -> str: ...  # the embedding space's fingerprint: peers in other spaces are refused
    @property
    def contacts(self) -> Contacts | None: ...
    @property
    def share(self) -> Callable[[str], Share] | None: ...

    def endpoint(self, node: str) -> Endpoint: ...
    def identity(self, node: str) -> Identity: ...  # the node's write key and the swarm's key ring
    async def finished_trading(self, agent_id: str) -> None: ...  # returns once every agent has traded
    async def settle(self) -> None: ...  # gossip on until the replicas agree (or time runs out)


class AgentHandle(Protocol):
    """An agent as the orchestrator and controllers see it, wherever it runs (a task of this event
    loop, or an OS process behind a control channel)."""

    id: str
    spec: AgentSpec
    decisions: list[Decision]
    boots: int
    crashed: bool
    retired: bool
    quota: float

    @property
    def cursor(self) -> int: ...
    @property
    def log(self) -> RunLog: ...
    @property
    def informed_by(self) -> list[tuple[str, ...]]: ...
    @property
    def memory_config(self) -> MemoryConfig: ...
    @property
    def store(self) -> Any: ...
    @property
    def policy(self) -> MemoryPolicy: ...
    @property
    def learner(self) -> Any: ...

    async def run(self) -> None: ...
    def know(self, members: Sequence[str]) -> None: ...
    def kill(self) -> None: ...
    def reboot(self, members: Sequence[str], seeds: Sequence[str]) -> None: ...
    def leave(self) -> None: ...
    def revoke(self, revocation_list: bytes) -> list[str]: ...
    def publish(self) -> None: ...
    def digest(self) -> dict[str, int]: ...
    def pattern_ids(self) -> set[str]: ...
    def vote(self, context: Any) -> int | None: ...
    def export_pack(self, path: str | Path) -> int: ...
    def import_pack(self, path: str | Path, policy: Any = None, ship: bool = False) -> Any: ...
    def consolidate(self, policy: Any) -> Any: ...
    def set_learning_rate(self, lr: float) -> None: ...
    def use_memory_config(self, config: MemoryConfig) -> None: ...
    def close(self) -> None: ...


class SwarmAgent:
    """An agent at runtime: its memory, learner, gossip node and logs."""

    def __init__(self, host: Host, spec: AgentSpec, decisions: Sequence[Decision], index: int,
                 boots: int = 0) -> None:
        self.host = host
        self.spec = spec
        self.id = spec.id
        self.decisions = list(decisions)
        self.cursor = 0
        self.log = RunLog(spec.id)
        self.informed_by: list[tuple[str, ...]] = []
        self.path = host.store_dir / f"{spec.id}.db"
        self.boots = boots
        self.crashed = False
        self.retired = False
        self.quota: float = 1.0  # share of its trade slots it uses (performance allocation)
        self.index = index
        self._group: TaskGroup | None = None
        self._open()

    def _open(self) -> None:
        host = self.host
        seed = exploration_seed(host.config, self.index, self.boots)
        # WAL with synchronous=NORMAL survives a killed process (the fault injected here), not a power cut
        self.policy = MemoryPolicy.open(self.path, replace(self.spec.memory, seed=seed), name=self.id,
                                        synchronous="NORMAL")
        self.learner = LearningAgent(self.id, self.spec.wrap(self.policy) if self.spec.wrap else self.policy)
        self.published = self.store.sequence
        gcfg = GossipConfig(dim=self.store.dim, fanout=host.config.fanout, degree=host.config.degree or 0,
                            gossip_interval=host.config.gossip_interval, space=host.space,
                            **(QUIC_GOSSIP if host.config.on_wire else {}))
        self.node = GossipNode(self.id, gcfg, identity=host.identity(self.id), seed=host.config.seed,
                               now=host.kernel.now(),
                               contacts=host.contacts,
                               share=host.share(self.id) if host.share else None, boot=self.boots,
                               store=self.store)  # the store is the replica
        self.bus = GossipBus(host.kernel, self.node, host.endpoint(self.id), self._on_event)

    @property
    def store(self) -> PatternStore:
        return self.policy.bank.store

    def trade(self) -> None:
        """One decision, learned from (the store's new writes ship at the episode's end)."""
        d = self.decisions[self.cursor]
        self.cursor += 1
        choice = step(self.learner, d, self.log, learn=self.spec.learn)
        self.informed_by.append(choice.informed_by)
        per = self.host.config.trades_per_episode
        if self.cursor % per == 0:
            self.publish()
            progress.report(self.cursor // per, len(self.decisions) // per)

    def publish(self) -> None:
        """Hand the store's writes and deletions since the last call to the gossip node, as one
        batch (several updates of one pattern in an episode ship as its latest version). Copies
        that came from peers are in the store's write log already, and deletions a peer's
        tombstone caused are not this agent's, so neither is published again."""
        since = self.published
        changed, self.published = self.store.changed_since(since, unlogged=True)
        deleted = self.store.deleted_between(since, self.published)
        contributed = self.store.own_contributions(self.id, since, self.published)
        if changed or deleted or contributed:
            now = self.host.kernel.now()
            for p in changed:
                self.host.records.record_publication(p.id, self.id, now)
            if self.host.config.sync:
                self.node.publish(changed, now, deleted, contributed)

    def _on_event(self, ev: object) -> None:
        if isinstance(ev, PatternsReceived):  # already in the store: it is the node's replica
            now = self.host.kernel.now()
            for pid in ev.ids:
                self.host.records.record_arrival(pid, self.id, now)
        elif isinstance(ev, MemberChanged):
            self.host.records.record_membership(self.host.kernel.now(), self.id, ev.node, ev.status)

    def use_memory_config(self, config: MemoryConfig) -> None:
        """Switch the agent's learner to another policy version over the same memory (rollouts)."""
        seed = exploration_seed(self.host.config, self.index, self.boots)
        policy = self.policy.with_config(replace(config, seed=seed))
        self.policy = policy
        self.learner = LearningAgent(self.id, self.spec.wrap(policy) if self.spec.wrap else policy)

    def pattern_ids(self) -> set[str]:
        return {p.id for p in self.store.iter_patterns()}

    def digest(self) -> dict[str, int]:
        return self.node.digest()

    def know(self, members: Sequence[str]) -> None:
        """The swarm's member list changed (an agent was added): know them all."""
        self.node.bootstrap(members, self.host.kernel.now())

    # ---- what controllers do to an agent (the same calls reach an agent process) ----

    def vote(self, context: Any) -> int | None:
        """The strategy this agent's memory prefers on ``context`` (None: no evidence)."""
        return memory_vote(self.policy, context)

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
        curator = self.id in self.node.identity.ring.curators  # may change any member's patterns
        report = self.policy.bank.consolidate(policy, authors=None if curator else {self.id})
        self.publish()
        return report

    def set_quota(self, quota: float) -> None:
        self.quota = quota

    def revoke(self, revocation_list: bytes) -> list[str]:
        """Take the swarm CA's revocation list (and gossip it on); returns the agents it newly
        revokes here."""
        agents = list(self.node.revoke(revocation_list, self.host.kernel.now()))
        self.bus.flush()
        return agents

    def leave(self) -> None:
        """Leave the gossip group now (scale-down)."""
        self.retired = True
        self.node.leave(self.host.kernel.now())
        self.bus.flush()

    def kill(self) -> None:
        """Die abruptly: tasks cancelled; the SQLite file keeps what was committed. (The swarm
        drops the agent's traffic at the network.)"""
        self.crashed = True
        if self._group is not None:  # its run task is live: cancelled, it closes the store as it ends
            self._group.cancel()
        else:
            self.close()

    def reboot(self, members: Sequence[str], seeds: Sequence[str]) -> None:
        """Come back from the store after :meth:`kill`: reopen it, know ``members``, rejoin
        through ``seeds`` and re-announce everything held (peers fill in the rest by anti-entropy)."""
        self.boots += 1
        self.crashed = False
        self._open()
        self.rejoin(members, seeds)

    def rejoin(self, members: Sequence[str], seeds: Sequence[str]) -> None:
        now = self.host.kernel.now()
        self.node.bootstrap(members, now)
        self.node.join(seeds, now)
        self.node.publish(list(self.store.iter_patterns(base=True)), now,
                          contributions=self.store.own_contributions(self.id, 0, self.store.sequence))

    def close(self) -> None:
        self.policy.close()

    async def run(self) -> None:
        """Trade on schedule until the decisions run out, with the gossip bus alongside."""
        k = self.host.kernel
        bank, boots, group = self.policy.bank, self.boots, None
        try:
            async with self.bus.endpoint, k.task_group() as group:
                self._group = group
                await self._trade_and_gossip(group, boots)
        finally:
            # A kill cancels the group and leaves the store to close here, once every task of
            # this run is gone: closed at the kill, a task that had already woken (a timer that
            # fired, a frame that arrived) before the cancellation reached it ran on a closed store
            # on real sockets (the mesh fault run over QUIC crashed so on 1 seed in 5). The bank,
            # not the policy: a rollout (use_memory_config) swaps the policy over the same bank.
            if self._group is group:
                self._group = None
            if self.crashed or self.boots != boots:  # killed (a reboot may have opened another bank)
                bank.close()

    async def _trade_and_gossip(self, tg: TaskGroup, boots: int) -> None:
        """The run of boot ``boots``: trade on schedule, then gossip until the swarm settles.
        A task that wakes after its boot was killed (before the cancellation reached it, or
        after a restart began the next boot) does nothing more."""
        k = self.host.kernel

        def over() -> bool:
            return self.crashed or self.boots != boots

        if over():
            tg.cancel()
            return
        if self.host.config.sync:
            tg.start_soon(self.bus.run)
        if k.now() < self.spec.start:
            await k.sleep(self.spec.start - k.now())
        interval = self.host.config.trade_interval
        credit = 0.0
        slot = k.now()
        while self.cursor < len(self.decisions) and not self.retired and not over():
            # slots are fixed on the clock: a late wake on a busy event loop is caught up, not
            # lost (sleeping ``interval`` after each wake made full-quota agents trade 13% less)
            slot += interval
            await k.sleep_until(slot)
            credit += self.quota
            while credit >= 1.0 and self.cursor < len(self.decisions) and not over():
                credit -= 1.0
                self.trade()
        if over():
            tg.cancel()
            return
        self.publish()
        # keep gossiping until every agent has finished trading, then a little longer
        await self.host.finished_trading(self.id)
        await self.host.settle()
        tg.cancel()
