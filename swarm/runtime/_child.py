"""Inside an agent process: one :class:`SwarmAgent` on its own event loop, endpoint (QUIC or
WebSocket, as the swarm's transport says) and SQLite store, answering the orchestrator's requests on a control channel.

The channel carries the typed, versioned messages of :mod:`swarm.runtime.messages` (request/answer
pairs, one at a time; never pickle): a socket the spawner passed (``python -m swarm.runtime FD``,
the process runtime), or, in a sandbox, an authenticated WebSocket the agent listens for and the
orchestrator dials (``python -m swarm.runtime --listen HOST:PORT --keys DIR``, the e2b runtime;
:mod:`swarm.runtime.channel`). Everything after the channel is the same.
A thread blocks on it and runs each request on the event loop (SQLite connections belong to the
loop's thread), so the agent keeps trading and gossiping while it waits for the next request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from multiprocessing.connection import Connection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Mapping, Sequence

import anyio
from threadpoolctl import threadpool_limits
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..agent import SwarmAgent
from ..gossip import Identity, KeyRing, Signer
from ..gossip.identity import certificate_agent
from ..gossip.node import Contacts, Share
from ..kernel import AnyioKernel, Kernel
from ..specs import SwarmConfig
from ..transport.quic import NodeCredentials, QuicEndpoint, WireEndpoint
from ..transport.websocket import WebSocketEndpoint
from . import messages as msg

log = logging.getLogger(__name__)


class _Net:
    """The one endpoint of this process, on the swarm's ``transport``, with the swarm directory
    the orchestrator keeps filled."""

    def __init__(self, credentials: NodeCredentials, transport: str | None, options: Mapping[str, Any]) -> None:
        self.credentials = credentials
        self.kind = WebSocketEndpoint if transport == "websocket" else QuicEndpoint
        self.options = dict(options)  # where it binds and how it dials (a sandbox: all interfaces, wss)
        self.directory: dict[str, tuple[str, int]] = {}
        self.ep: WireEndpoint | None = None

    def endpoint(self, node: str) -> WireEndpoint:
        self.ep = self.kind(self.credentials, directory=self.directory, **self.options)
        return self.ep


@dataclass(slots=True)
class _Records:
    """What the agent recorded, kept here until the orchestrator's next status request takes it."""

    published: list[tuple[str, float]] = field(default_factory=list)  # (pattern id, when), own writes
    arrived: list[tuple[str, float]] = field(default_factory=list)  # (pattern id, when), copies from peers
    membership: list[tuple[float, str, str, str]] = field(default_factory=list)

    def record_publication(self, pattern_id: str, agent_id: str, at: float) -> None:
        self.published.append((pattern_id, at))

    def record_arrival(self, pattern_id: str, agent_id: str, at: float) -> None:
        self.arrived.append((pattern_id, at))

    def record_membership(self, at: float, agent_id: str, node: str, status: str) -> None:
        self.membership.append((at, agent_id, node, status))


class ChildHost:
    """The agent's host inside its process (a :class:`swarm.agent.Host`): the swarm's settings
    and rules from the setup, this process's clock and endpoint, and records the orchestrator
    collects. Settling is the orchestrator's: once trading is done the agent waits to be stopped."""

    def __init__(self, setup: msg.Setup, kernel: AnyioKernel, net: _Net) -> None:
        self.config: SwarmConfig = setup.config
        self.kernel: Kernel = kernel
        self.net = net
        self.records = _Records()
        self.store_dir = Path(setup.store_dir)
        self.store_dir.mkdir(parents=True, exist_ok=True)  # a fresh sandbox has none yet
        self.space = setup.space
        self.contacts: Contacts | None = setup.contacts
        self.share: Callable[[str], Share] | None = setup.share
        self.done = False
        self.stop = anyio.Event()
        self.keyring = KeyRing(x509.load_pem_x509_certificate(setup.ca_pem))
        self.admit([setup.certificate_pem, *setup.certificates])
        self._identity = Identity(Signer(setup.spec.id, Ed25519PrivateKey.from_private_bytes(setup.write_key)),
                                  self.keyring)

    def admit(self, certificates: Sequence[bytes]) -> None:
        """Take agents' certificates (PEM) into this process's key ring."""
        for pem in certificates:
            self.keyring.admit(x509.load_pem_x509_certificate(pem))

    def identity(self, node: str) -> Identity:
        return self._identity

    def endpoint(self, node: str) -> WireEndpoint:
        return self.net.endpoint(node)

    async def finished_trading(self, agent_id: str) -> None:
        self.done = True  # the orchestrator polls this, settles the swarm, then says stop
        await self.stop.wait()

    async def settle(self) -> None:
        return None


class _Child:
    def __init__(self, conn: Any, setup: msg.Setup, trusted: Sequence[str], endpoint: Mapping[str, Any]) -> None:
        self.conn = conn
        self.setup = setup
        self.trusted = tuple(trusted)
        self.endpoint_options = endpoint
        self.started = anyio.Event()
        self.epoch = 0.0
        self.agent: SwarmAgent | None = None
        self.host: ChildHost | None = None
        self._sent = {"published": 0, "arrived": 0, "membership": 0}

    async def main(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._control, tg)
            await self.started.wait()
            s = self.setup
            creds = NodeCredentials(s.spec.id, x509.load_pem_x509_certificate(s.certificate_pem),
                                    serialization.load_pem_private_key(s.key_pem, None),  # type: ignore[arg-type]
                                    s.ca_pem, Ed25519PrivateKey.from_private_bytes(s.write_key))
            kernel = AnyioKernel(s.config.time_scale, epoch=self.epoch)
            self.host = ChildHost(s, kernel, _Net(creds, s.config.transport, self.endpoint_options))
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
                data = self.conn.recv_bytes()
            except (EOFError, OSError):
                return
            # answered and encoded on the loop's thread: the reply is a snapshot, not objects the
            # loop goes on changing while this thread sends them
            reply = anyio.from_thread.run_sync(self._answer, data)
            try:
                self.conn.send_bytes(reply)
            except (BrokenPipeError, OSError):
                return

    def _answer(self, data: bytes) -> bytes:
        try:
            request = msg.decode(data, self.trusted)
            return msg.encode(msg.Ok(self._handle(request)))
        except Exception as e:  # a bad request, or a failed one: the orchestrator re-raises it as its own error
            return msg.encode(msg.Error(f"{type(e).__name__}: {e}"))

    def _handle(self, request: msg.Message) -> Any:
        if isinstance(request, msg.Hello):
            return os.getpid()
        if isinstance(request, msg.Start):
            self.epoch = request.epoch
            self.started.set()
            return None
        agent, host = self.agent, self.host
        if agent is None or host is None:
            return {"ready": False} if isinstance(request, msg.Status) else _not_ready(request)
        if isinstance(request, msg.Status):  # progress, and what happened since the last status
            ep = host.net.ep
            out: dict[str, Any] = {"ready": ep is not None and ep.address is not None, "address": ep.address if ep else None,
                   "done": host.done, "cursor": agent.cursor, "digest": agent.digest(), "log": agent.log,
                   "informed_by": agent.informed_by, "traffic": None if ep is None else ep.stats}
            rec = host.records
            for name, items in (("published", rec.published), ("arrived", rec.arrived),
                                ("membership", rec.membership)):
                out[name] = items[self._sent[name]:]
                self._sent[name] = len(items)
            return out
        if isinstance(request, msg.Members):
            agent.node.bootstrap(request.members, host.kernel.now())
            return None
        if isinstance(request, msg.Directory):
            host.net.directory.update(request.directory)
            host.admit(request.certificates)
            return None
        if isinstance(request, msg.Faults):  # blocked peers and injected loss, at this node's transport
            if host.net.ep is not None:
                host.net.ep.blocked, host.net.ep.loss = set(request.blocked), float(request.loss)
            return None
        if isinstance(request, msg.Report):  # the last status carries the figures; this adds what a wrapped policy did
            wrapped = getattr(agent.learner.policy, "report", None)
            return {"log": agent.log, "informed_by": agent.informed_by,
                    "policy_report": wrapped() if callable(wrapped) else None}
        if isinstance(request, msg.Stop):
            host.stop.set()
            return None
        if isinstance(request, msg.StoreRead):  # read-only store calls (and a checkpoint, which changes no pattern)
            if request.method not in STORE_READS:
                raise ValueError(f"store.{request.method} is not readable remotely")
            value = getattr(agent.store, request.method)
            if request.method == "iter_patterns":
                return list(value(*request.args))
            return value(*request.args) if callable(value) else value
        if isinstance(request, msg.Snapshot):  # SQLite's online backup: one read transaction, so one instant
            target = Path(request.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(agent.path)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
                src.backup(dst)
            return target.stat().st_size
        if isinstance(request, msg.Call):  # one of the agent's controller calls
            if request.method not in CALLS:
                raise ValueError(f"agent.{request.method} cannot be called remotely")
            return getattr(agent, request.method)(*request.args)
        raise ValueError(f"{type(request).__name__} is not a request")


#: What the orchestrator may read of an agent's store.
STORE_READS = frozenset({"__len__", "iter_patterns", "get_many", "size_bytes", "wal_bytes", "sequence", "checkpoint"})

#: What an orchestrator may do to an agent process.
CALLS = frozenset({"vote", "export_pack", "import_pack", "consolidate", "set_quota", "set_learning_rate",
                   "use_memory_config", "leave", "publish", "pattern_ids", "digest", "revoke"})


def _not_ready(request: msg.Message) -> Any:
    raise RuntimeError(f"the agent is not running yet (request {type(request).__name__})")


def child_main(fd: int, trusted: Sequence[str] = ()) -> None:
    """Entry point of an agent process: ``python -m swarm.runtime FD [MODULE...]`` (started by
    :class:`~swarm.runtime.process.ProcessAgent`), FD one end of a socket pair whose first
    message is the :class:`~swarm.runtime.messages.Setup`; the modules are the only ones whose
    rules (contacts, share, policy wrappers) the channel may name."""
    run_agent(Connection(fd), trusted)


def run_agent(conn: Any, trusted: Sequence[str] = (), endpoint: Mapping[str, Any] | None = None) -> None:
    """Read the :class:`~swarm.runtime.messages.Setup` from the control channel ``conn``, then run
    the agent and answer requests until the orchestrator stops it or hangs up. ``endpoint``:
    options of its gossip endpoint (where it binds, how it dials)."""
    try:
        setup = msg.decode(conn.recv_bytes(), trusted)
        if not isinstance(setup, msg.Setup):
            raise SystemExit(f"agent process: the first message must be a Setup, not {type(setup).__name__}")
        logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {setup.spec.id} %(name)s: %(message)s")
        with threadpool_limits(limits=1, user_api="blas"):  # as in Swarm.run: one agent, one thread
            anyio.run(_Child(conn, setup, trusted, endpoint or {}).main, backend=setup.config.backend)
    finally:
        conn.close()


#: The files a sandboxed agent finds in its ``--keys`` directory (uploaded before it starts).
KEY_FILES = ("ca.pem", "agent.pem", "agent.key", "write.key", "orchestrator.pem")
#: The line a listening agent prints (then its port) once the orchestrator may dial it.
LISTENING = "swarm-agent listening on port"


def listen_main(argv: Sequence[str]) -> None:
    """Entry point of an agent in a sandbox: ``python -m swarm.runtime --listen HOST:PORT --keys DIR
    [--scheme ws|wss] [MODULE...]``. It loads its certificate, key and the orchestrator's
    certificate from DIR, listens, prints ``LISTENING PORT``, accepts the orchestrator's
    authenticated control channel (:class:`~swarm.runtime.channel.Listener`) and runs as
    :func:`run_agent`; its gossip endpoint binds the same HOST and dials peers over ``--scheme``."""
    import argparse

    from .channel import Listener

    ap = argparse.ArgumentParser(prog="python -m swarm.runtime")
    ap.add_argument("--listen", required=True, help="HOST:PORT of the control listener (PORT 0: any)")
    ap.add_argument("--keys", required=True, help="directory of " + ", ".join(KEY_FILES))
    ap.add_argument("--scheme", default="ws", choices=("ws", "wss"), help="how the gossip endpoint dials peers")
    ap.add_argument("trusted", nargs="*", help="modules whose rules the channel may name")
    args = ap.parse_args(list(argv))
    host, _, port = args.listen.rpartition(":")
    keys = Path(args.keys)
    ca, cert_pem, key_pem, write, orchestrator = (keys / name for name in KEY_FILES)
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    node = certificate_agent(cert)
    if node is None:
        raise SystemExit("agent process: its certificate names no swarm node")
    creds = NodeCredentials(node, cert, serialization.load_pem_private_key(key_pem.read_bytes(), None),  # type: ignore[arg-type]
                            ca.read_bytes(), Ed25519PrivateKey.from_private_bytes(write.read_bytes()))
    listener = Listener(creds, orchestrator.read_bytes(), host, int(port))
    print(LISTENING, listener.port, flush=True)
    try:
        run_agent(listener.accept(), args.trusted, {"host": host, "scheme": args.scheme})
    finally:
        listener.close()
