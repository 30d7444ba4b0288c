"""Inside an agent process: one :class:`SwarmAgent` on its own event loop, QUIC endpoint and
SQLite store, answering the orchestrator's requests on a control channel.

The channel is a :mod:`multiprocessing` pipe (pickled request/response pairs, one at a time).
A thread blocks on it and runs each request on the event loop (SQLite connections belong to the
loop's thread), so the agent keeps trading and gossiping while it waits for the next request.
"""

from __future__ import annotations

import logging
import os
import pickle
from multiprocessing.connection import Connection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import anyio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..kernel import AnyioKernel
from ..learning.episodes import Decision
from ..learning.memory_policy import MemoryConfig
from ..learning.session import RunLog
from ..orchestrator import AgentSpec, SwarmAgent, SwarmConfig
from ..transport.quic import NodeCredentials, QuicEndpoint

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ChildSetup:
    """Everything an agent process needs, sent (pickled) when it is spawned."""

    spec: AgentSpec
    decisions: Sequence[Decision]
    config: SwarmConfig
    index: int
    boots: int
    store_dir: str
    space: str
    contacts: Callable[..., Any] | None
    share: Callable[[str], Any] | None
    certificate_pem: bytes  # issued by the orchestrator's swarm CA; the CA key never leaves it
    key_pem: bytes
    ca_pem: bytes
    members: list[str] = field(default_factory=list)  # the swarm's agents (a static member list)
    seeds: list[str] = field(default_factory=list)  # live peers to rejoin through, after a restart
    # where a restarted agent carries on: its trades so far (as last reported) and its settings
    cursor: int = 0
    log: RunLog | None = None
    informed_by: list[tuple[str, ...]] = field(default_factory=list)
    memory: MemoryConfig | None = None
    quota: float = 1.0


class _Net:
    """The one endpoint of this process, with the swarm directory the orchestrator keeps filled."""

    def __init__(self, credentials: NodeCredentials) -> None:
        self.credentials = credentials
        self.directory: dict[str, tuple[str, int]] = {}
        self.ep: QuicEndpoint | None = None

    def endpoint(self, node: str) -> QuicEndpoint:
        self.ep = QuicEndpoint(self.credentials, directory=self.directory)
        return self.ep


class _Host:
    """What a :class:`SwarmAgent` needs of its swarm, inside an agent process: the records it
    writes go back to the orchestrator in reports instead of into a shared swarm."""

    def __init__(self, setup: ChildSetup, kernel: AnyioKernel, net: _Net) -> None:
        self.config = setup.config
        self.kernel = kernel
        self.net = net
        self.contacts = setup.contacts
        self.share = setup.share
        self.space = setup.space
        self.store_dir = Path(setup.store_dir)
        self.agents: dict[str, Any] = {}
        self.published: list[tuple[str, float]] = []  # (pattern id, when), own writes
        self.arrived: list[tuple[str, float]] = []  # (pattern id, when), copies from peers
        self.membership_log: list[tuple[float, str, str, str]] = []
        self.done = False
        self.stop = anyio.Event()

    def record_publication(self, pattern_id: str, agent_id: str, at: float) -> None:
        self.published.append((pattern_id, at))

    def record_arrival(self, pattern_id: str, agent_id: str, at: float) -> None:
        self.arrived.append((pattern_id, at))

    async def _finished_trading(self, agent_id: str) -> None:
        self.done = True  # the orchestrator polls this, settles the swarm, then says stop
        await self.stop.wait()

    async def _settle(self) -> None:
        return None


class _Child:
    def __init__(self, conn: Any, setup: ChildSetup) -> None:
        self.conn = conn
        self.setup = setup
        self.started = anyio.Event()
        self.epoch = 0.0
        self.agent: SwarmAgent | None = None
        self.host: _Host | None = None
        self._sent = {"published": 0, "arrived": 0, "membership": 0}

    async def main(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._control, tg)
            await self.started.wait()
            s = self.setup
            creds = NodeCredentials(s.spec.id, x509.load_pem_x509_certificate(s.certificate_pem),
                                    serialization.load_pem_private_key(s.key_pem, None),  # type: ignore[arg-type]
                                    s.ca_pem)
            kernel = AnyioKernel(s.config.time_scale, epoch=self.epoch)
            self.host = _Host(s, kernel, _Net(creds))
            agent = SwarmAgent(self.host, s.spec, s.decisions, index=s.index, boots=s.boots)
            if s.boots:  # a restart: the store reopened with what was committed; rejoin and re-announce
                agent.rejoin(s.members, s.seeds)
            else:
                agent.node.bootstrap(s.members, kernel.now())
            agent.cursor, agent.quota = s.cursor, s.quota
            if s.log is not None:
                agent.log, agent.informed_by = s.log, list(s.informed_by)
            if s.memory is not None and s.memory != s.spec.memory:
                agent.use_memory_config(s.memory)
            self.agent = agent
            await agent.run()
            agent.close()
            tg.cancel_scope.cancel()

    async def _control(self, tg: Any) -> None:
        await anyio.to_thread.run_sync(self._serve, abandon_on_cancel=True)
        tg.cancel_scope.cancel()  # the orchestrator hung up: nothing left to answer to

    def _serve(self) -> None:
        while True:
            try:
                request = self.conn.recv()
            except (EOFError, OSError):
                return
            # answered and pickled on the loop's thread: the reply is a snapshot, not objects the
            # loop goes on changing while this thread sends them
            reply = anyio.from_thread.run_sync(self._answer, request)
            try:
                self.conn.send_bytes(reply)
            except (BrokenPipeError, OSError):
                return

    def _answer(self, request: tuple[Any, ...]) -> bytes:
        try:
            reply: Any = ("ok", self._handle(*request))
        except Exception as e:  # the orchestrator re-raises it as its own error
            reply = ("error", f"{type(e).__name__}: {e}")
        return pickle.dumps(reply)

    def _handle(self, op: str, *args: Any) -> Any:
        if op == "hello":
            return os.getpid()
        if op == "start":
            self.epoch = args[0]
            self.started.set()
            return None
        agent, host = self.agent, self.host
        if agent is None or host is None:
            return {"ready": False} if op == "status" else _not_ready(op)
        if op == "status":  # progress, and what happened since the last status (the orchestrator keeps it)
            ep = host.net.ep
            out = {"ready": ep is not None and ep.address is not None, "address": ep.address if ep else None,
                   "done": host.done, "cursor": agent.cursor, "digest": agent.digest(), "log": agent.log,
                   "informed_by": agent.informed_by, "traffic": None if ep is None else ep.stats}
            for name, items in (("published", host.published), ("arrived", host.arrived),
                                ("membership", host.membership_log)):
                out[name] = items[self._sent[name]:]
                self._sent[name] = len(items)
            return out
        if op == "members":
            agent.node.bootstrap(args[0], host.kernel.now())
            return None
        if op == "directory":
            host.net.directory.update(args[0])
            return None
        if op == "faults":  # blocked peers and injected loss, at this node's transport
            if host.net.ep is not None:
                host.net.ep.blocked, host.net.ep.loss = set(args[0]), float(args[1])
            return None
        if op == "report":  # the last status carries the figures; this adds what a wrapped policy did
            wrapped = getattr(agent.learner.policy, "report", None)
            return {"log": agent.log, "informed_by": agent.informed_by,
                    "policy_report": wrapped() if callable(wrapped) else None}
        if op == "stop":
            host.stop.set()
            return None
        if op == "store":  # read-only store calls (and a checkpoint, which changes no pattern)
            method, *rest = args
            if method not in ("__len__", "iter_patterns", "get_many", "size_bytes", "wal_bytes", "sequence",
                              "checkpoint"):
                raise ValueError(f"store.{method} is not readable remotely")
            value = getattr(agent.store, method)
            return list(value(*rest)) if method == "iter_patterns" else value(*rest) if callable(value) else value
        if op == "call":  # one of the agent's controller calls
            method, *rest = args
            if method not in CALLS:
                raise ValueError(f"agent.{method} cannot be called remotely")
            return getattr(agent, method)(*rest)
        raise ValueError(f"unknown request {op!r}")


#: What an orchestrator may do to an agent process.
CALLS = frozenset({"vote", "export_pack", "import_pack", "consolidate", "set_quota", "set_learning_rate",
                   "use_memory_config", "leave", "publish", "pattern_ids", "digest"})


def _not_ready(op: str) -> Any:
    raise RuntimeError(f"the agent is not running yet (request {op!r})")


def child_main(fd: int) -> None:
    """Entry point of an agent process: ``python -m swarm.runtime FD`` (started by
    :class:`~swarm.runtime.process.ProcessAgent`), FD one end of a socket pair whose first
    message is the :class:`ChildSetup`."""
    conn = Connection(fd)
    setup: ChildSetup = conn.recv()
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {setup.spec.id} %(name)s: %(message)s")
    try:
        anyio.run(_Child(conn, setup).main, backend=setup.config.backend)
    finally:
        conn.close()

