"""The process runtime, orchestrator side: each agent an OS process (spawned, so it shares no
state with the orchestrator), its own SQLite store and QUIC endpoint, driven over a control
channel (a socket carrying the typed messages of :mod:`swarm.runtime.messages`; the agent side
is :mod:`swarm.runtime._child`).

:class:`ProcessAgent` stands where an in-process :class:`~swarm.agent.SwarmAgent` would:
the :class:`~swarm.orchestrator.Swarm` and the scenarios' controllers call the same methods
(``vote``, ``consolidate``, ``export_pack``, ...) and read the same figures (``log``, ``store``,
``pattern_ids()``). While the process runs these are requests on the channel; once it has
stopped or been killed, the store is read from its SQLite file. :class:`ProcessNetwork` holds the
swarm CA and address directory and injects faults at each agent's transport.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol
from collections.abc import Iterator, Sequence

import anyio
from cryptography.hazmat.primitives import serialization

from ..agent import Host, memory_vote
from ..kernel import AnyioKernel, Kernel
from ..learning.episodes import Decision
from ..learning.memory_policy import MemoryConfig, MemoryPolicy
from ..learning.session import RunLog
from ..specs import AgentSpec
from ..transport.quic import NodeCredentials, QuicStats, SwarmCA, link_counts, traffic_totals
from . import messages as msg

log = logging.getLogger(__name__)


class AgentProcessError(RuntimeError):
    """An agent process failed a request, or is gone."""


def pem_credentials(creds: NodeCredentials) -> tuple[bytes, bytes, bytes, bytes]:
    """Credentials as an agent process receives them: certificate and TLS key (PEM), the CA's
    certificate (PEM) and the raw 32-byte Ed25519 write key."""
    key = creds.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
    return (creds.certificate.public_bytes(serialization.Encoding.PEM), key, creds.ca_pem,
            creds.write_key.private_bytes_raw())


class ProcessHost(Host, Protocol):
    """What a process agent needs of its swarm, beyond what any agent does: hearing that its
    process died without being asked to."""

    def agent_died(self, agent_id: str, exitcode: int | None, why: str) -> None: ...
    def credentials(self, node: str) -> NodeCredentials: ...  # from the swarm CA, naming the node


class ProcessAgent:
    """An agent in its own OS process, seen from the orchestrator."""

    def __init__(self, host: ProcessHost, network: ProcessNetwork, spec: AgentSpec, decisions: Sequence[Decision],
                 index: int) -> None:
        self.host = host
        self.network = network
        self.spec = spec
        self.id = spec.id
        self.decisions = list(decisions)
        self.index = index
        self.path = host.store_dir / f"{spec.id}.db"
        self.boots = 0
        self.crashed = False
        self.retired = False
        self.exitcode: int | None = None
        self.pid: int | None = None
        self.memory_config: MemoryConfig = spec.memory
        self._quota = 1.0
        self._members: list[str] = []
        self._seeds: list[str] = []
        self._proc: Any = None
        self._conn: Any = None
        self._setup_quota = 1.0
        self._trusted: list[str] = []  # modules whose rules and record types the channel may name
        self._scope: anyio.CancelScope | None = None  # the run task watching the current boot
        self._started = False  # the process runs the agent (before that its store is only a file)
        self._lock = threading.Lock()  # one request at a time on the channel
        self._status: dict[str, Any] = {"cursor": 0, "digest": {}}
        self._log = RunLog(spec.id)
        self._informed_by: list[tuple[str, ...]] = []
        self._report: dict[str, Any] | None = None
        self._local: MemoryPolicy | None = None  # the store, read from its file while no process runs
        self.credentials = host.credentials(spec.id)

    # ---- the control channel ----

    def request(self, request: msg.Message) -> Any:
        """Send one request, wait for its answer, return the answered value."""
        with self._lock:
            conn = self._conn  # this boot's channel throughout, should a restart replace it meanwhile
            if conn is None:
                raise AgentProcessError(f"{self.id} has no running process")
            try:
                conn.send_bytes(msg.encode(request))
                reply = msg.decode(conn.recv_bytes(), self._trusted)
            except (EOFError, OSError) as e:
                raise AgentProcessError(f"{self.id}: the process is gone ({type(e).__name__})") from None
            except msg.ProtocolError as e:
                raise AgentProcessError(f"{self.id}: {type(request).__name__}: a bad answer: {e}") from None
        if isinstance(reply, msg.Error):
            raise AgentProcessError(f"{self.id}: {type(request).__name__}: {reply.message}")
        if not isinstance(reply, msg.Ok):
            raise AgentProcessError(f"{self.id}: {type(request).__name__}: answered with {type(reply).__name__}")
        return reply.value

    async def arequest(self, request: msg.Message) -> Any:
        """:meth:`request` from the event loop. A cancelled caller does not wait for the answer (a
        process still importing answers its first request only after seconds): the thread is left
        blocked in its read until the reaping that follows every cancellation ends the channel."""
        return await anyio.to_thread.run_sync(self.request, request, abandon_on_cancel=True)

    @property
    def running(self) -> bool:
        """The agent runs in its process (spawned, started, not killed): its store is the process's."""
        return self._proc is not None and self._conn is not None and self._started and not self.crashed

    # ---- life cycle ----

    def setup(self, store_dir: str) -> msg.Setup:
        """What this boot's process is told first (its store in ``store_dir``, as the process sees
        it); notes the modules its rules may come from (:attr:`trusted`)."""
        if self._local is not None:
            self._local.close()
            self._local = None
        host = self.host
        cert, key, ca, write_key = pem_credentials(self.credentials)
        setup = msg.Setup(spec=self.spec, decisions=self.decisions, config=host.config, index=self.index,
                           boots=self.boots, store_dir=store_dir, space=host.space, contacts=host.contacts,
                           share=host.share, certificate_pem=cert, key_pem=key, ca_pem=ca, write_key=write_key,
                           certificates=self.network.certificates(),
                           members=list(self._members), seeds=self._seeds,
                           cursor=self._status["cursor"], log=self._log, informed_by=self._informed_by,
                           memory=self.memory_config, quota=self._quota)
        # the rules the setup names (contacts, share, a policy wrapper) are resolved only in these
        # modules: the command line, which only the spawner sets, says which
        self._trusted = msg.rule_modules([host.contacts, host.share, self.spec.wrap])
        self._started = False
        self._setup_quota = self._quota
        return setup

    @property
    def trusted(self) -> list[str]:
        """The modules whose rules this agent's channel may name (its command line says which)."""
        return list(self._trusted)

    async def boot(self) -> None:
        """Start this boot's process (it imports, then waits for ``start``); a runtime that
        starts agents elsewhere (a sandbox) overrides this."""
        self.spawn()

    def spawn(self) -> None:
        """Start the process (it imports, then waits for ``start``)."""
        setup = self.setup(str(self.host.store_dir))
        trusted = self._trusted
        ours, theirs = socket.socketpair()
        # a fresh interpreter (not fork: no event loop, lock or open SQLite inherited; not
        # multiprocessing's spawn: that re-runs the caller's __main__), with this one's import path
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._proc = subprocess.Popen([sys.executable, "-m", "swarm.runtime", str(theirs.fileno()), *trusted],
                                      pass_fds=[theirs.fileno()], env=env)
        theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send_bytes(msg.encode(setup))

    async def boot_ready(self) -> None:
        """Boot, then wait until the process answers."""
        await self.boot()
        await self.ready()

    async def ready(self) -> None:
        """Wait until the process answers (imports done)."""
        self.pid = await self.arequest(msg.Hello())

    async def start(self, epoch: float) -> None:
        """Let the agent run on the swarm clock ``epoch``; wait until its endpoint is bound."""
        await self.arequest(msg.Start(epoch))
        while not (st := await self.arequest(msg.Status()))["ready"]:
            await anyio.sleep(0.01)
        self._absorb(st)
        if self._local is not None:  # read while the process started up; the process owns it now
            self._local.close()
            self._local = None
        self._started = True
        if self._quota != self._setup_quota:  # set while the process started up
            self._call("set_quota", self._quota)
        self.network.register(self, self.directory_address(tuple(st["address"])))

    def directory_address(self, bound: tuple[str, int]) -> tuple[str, int]:
        """Where peers reach the endpoint the process bound at ``bound`` (here: there)."""
        return bound

    async def run(self) -> None:
        """Watch the agent until it has traded, settle with the swarm, collect its report, stop it.
        :meth:`kill` cancels this task, as it cancels an in-process agent's; a restart runs anew."""
        host, k = self.host, self.host.kernel
        if self._proc is None:  # added or restarted while the swarm runs
            await self.boot()
        proc, conn = self._proc, self._conn  # this boot's: a restart must not lose its own to our cleanup
        with anyio.CancelScope() as self._scope:
            try:
                if not self._started:
                    await self.ready()
                    await self.start(self.network.epoch)
                while not self._status.get("done"):
                    await k.sleep(1.0)
                    self._absorb(await self.arequest(msg.Status()))
                    await self.progressed()
                await host.finished_trading(self.id)
                await host.settle()
                self._absorb(await self.arequest(msg.Status()))
                self._report = await self.arequest(msg.Report())
                await self.arequest(msg.Stop())
                self._hang_up(conn)  # the agent's control thread sees the end of the channel and exits
                await self.finish(proc)
            except AgentProcessError as e:
                if not self.crashed:  # killed on purpose: nothing more to collect
                    self._died(str(e))
            finally:
                with anyio.CancelScope(shield=True):  # a cancelled swarm still reaps what it started
                    await self.areap(proc, conn)

    async def progressed(self) -> None:
        """After each status poll while the agent trades (its store is on this host's disk: nothing to do)."""

    async def finish(self, proc: Any) -> None:
        """After ``Stop``: wait for the process to exit."""
        try:
            # abandoned if cancelled: the reaping that follows kills the process, which ends the wait
            self.exitcode = await anyio.to_thread.run_sync(proc.wait, 30.0, abandon_on_cancel=True)
        except subprocess.TimeoutExpired:
            self._died("did not exit within 30 s of being told to stop")

    async def areap(self, proc: Any, conn: Any) -> None:
        """Make sure one boot's process is gone and its channel closed (from the event loop)."""
        self._reap(proc, conn)

    def _absorb(self, status: dict[str, Any]) -> None:
        """Keep the latest status; hand the new records (publications, arrivals) to the swarm."""
        self._status = status
        if "log" in status:
            self._log, self._informed_by = status["log"], status["informed_by"]
        records = self.host.records
        for pid, at in status.get("published", ()):
            records.record_publication(pid, self.id, at)
        for pid, at in status.get("arrived", ()):
            records.record_arrival(pid, self.id, at)
        for row in status.get("membership", ()):
            records.record_membership(*row)
        if status.get("traffic") is not None:
            self.network.traffic[(self.id, self.boots)] = status["traffic"]

    def _died(self, why: str) -> None:
        """The process ended without being asked to: the swarm carries on without it."""
        self.crashed = True
        self.exitcode = self._proc.poll() if self._proc is not None else None
        self.host.agent_died(self.id, self.exitcode, why)
        log.warning("agent process %s died: %s", self.id, why)

    def _hang_up(self, conn: Any) -> None:
        with self._lock:
            conn.close()
            if self._conn is conn:
                self._conn = None

    def _reap(self, proc: Any, conn: Any) -> None:
        """Make sure one boot's process is gone and its channel closed."""
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5.0)
        if conn is not None:
            self._hang_up(conn)

    def kill(self) -> None:
        """SIGKILL the process mid-run: no flush, no goodbye; its SQLite file keeps what it committed."""
        self.crashed = True
        if self._proc is not None:
            self._proc.kill()  # SIGKILL
            self.exitcode = self._proc.wait(5.0)
        if self._scope is not None:
            self._scope.cancel()  # its run task stops watching; a restart starts a new one

    def reboot(self, members: Sequence[str], seeds: Sequence[str]) -> None:
        """Restart after :meth:`kill`: a new process on the same store (its run task spawns it);
        it rejoins through ``seeds`` and catches up by anti-entropy. Trades made after the last
        status poll before the kill were never reported: the new process makes them again."""
        self.boots += 1
        self.crashed = False
        self._proc, self._conn = None, None
        self._members, self._seeds = list(members), list(seeds)
        self._status = {**self._status, "done": False}

    def know(self, members: Sequence[str]) -> None:
        self._members = list(members)
        if self.running and self._status.get("ready"):
            self.request(msg.Members(self._members))

    # ---- what controllers call (requests while the process runs) ----

    def _call(self, method: str, *args: Any) -> Any:
        return self.request(msg.Call(method, list(args)))

    # vote, export and import work on the agent's store alone, so after the run (or while the
    # process is down) they run on its SQLite file here

    def vote(self, context: Any) -> int | None:
        return self._call("vote", context) if self.running else memory_vote(self.policy, context)

    def export_pack(self, path: str | Path) -> int:
        return self._call("export_pack", str(path)) if self.running else self.policy.bank.export(path)

    def import_pack(self, path: str | Path, policy: Any = None, ship: bool = False) -> Any:
        if self.running:
            return self._call("import_pack", str(path), policy, ship)
        return self.policy.bank.import_(path) if policy is None else self.policy.bank.import_(path, policy)

    def consolidate(self, policy: Any) -> Any:
        return self._call("consolidate", policy)

    def set_learning_rate(self, lr: float) -> None:
        self._call("set_learning_rate", lr)

    def use_memory_config(self, config: MemoryConfig) -> None:
        self._call("use_memory_config", config)
        self.memory_config = config

    @property
    def quota(self) -> float:
        return self._quota

    @quota.setter
    def quota(self, value: float) -> None:
        self._quota = value
        if self.running:
            self._call("set_quota", value)

    def leave(self) -> None:
        self.retired = True
        self._call("leave")

    def publish(self) -> None:
        self._call("publish")

    def revoke(self, revocation_list: bytes) -> list[str]:
        return list(self._call("revoke", revocation_list)) if self.running else []

    def digest(self) -> dict[str, int]:
        if self.running and self._report is None:
            self._status["digest"] = self._call("digest")
        return self._status["digest"]

    # ---- figures ----

    @property
    def log(self) -> RunLog:
        if self.running and self._report is None:
            self._absorb(self.request(msg.Status()))
        return self._report["log"] if self._report is not None else self._log

    @property
    def informed_by(self) -> list[tuple[str, ...]]:
        return self._report["informed_by"] if self._report is not None else self._informed_by

    @property
    def cursor(self) -> int:
        return int(self._status["cursor"])

    @property
    def learner(self) -> Any:
        """After the run: what the agent's policy reported (e.g. a rotator's picks)."""
        return _Learner(None if self._report is None else self._report.get("policy_report"))

    @property
    def policy(self) -> MemoryPolicy:
        """The agent's memory, read from its SQLite file (only while no process has it open)."""
        if self.running:
            raise AgentProcessError(f"{self.id}: its memory belongs to the running process; use its calls")
        if self._local is None:
            self._local = MemoryPolicy.open(self.path, replace(self.memory_config), name=self.id)
        return self._local

    @property
    def store(self) -> Any:
        return _RemoteStore(self) if self.running else self.policy.bank.store

    def pattern_ids(self) -> set[str]:
        return self._call("pattern_ids") if self.running else {p.id for p in self.store.iter_patterns()}

    def shutdown(self) -> None:
        """Make sure the current process is gone (no agent process outlives its swarm)."""
        self._reap(self._proc, self._conn)

    def close(self) -> None:
        self.shutdown()
        if self._local is not None:
            self._local.close()
            self._local = None


class ProcessRuntime:
    """Agents as OS processes (see :class:`ProcessAgent`), on the swarm CA and faults of ``network``."""

    def __init__(self, network: ProcessNetwork) -> None:
        self.network = network

    def make(self, host: ProcessHost, spec: AgentSpec, decisions: Sequence[Decision], index: int) -> ProcessAgent:
        return ProcessAgent(host, self.network, spec, decisions, index)

    def running(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Nothing to hold open around the run: each agent reaps its own process."""
        return contextlib.nullcontext()

    async def launch(self, agents: Sequence[Any], kernel: Kernel) -> None:
        """Spawn every agent process, wait until all have started up, then start the swarm clock
        (``kernel.epoch``) for all at once (a process takes about a second to import what it needs)."""
        if not isinstance(kernel, AnyioKernel):
            raise TypeError("agent processes run on real time: the swarm needs an AnyioKernel")
        procs = [a for a in agents if isinstance(a, ProcessAgent)]
        async with anyio.create_task_group() as tg:
            for a in procs:
                tg.start_soon(a.boot_ready)
        kernel.epoch = self.network.epoch = time.time()
        async with anyio.create_task_group() as tg:
            for a in procs:
                tg.start_soon(a.start, self.network.epoch)

    def shutdown(self, agents: Sequence[Any]) -> None:
        """Make sure no agent process outlives its swarm."""
        for a in agents:
            if isinstance(a, ProcessAgent):
                a.shutdown()


class _Learner:
    def __init__(self, policy: Any) -> None:
        self.policy = policy


class _RemoteStore:
    """Read-only store calls answered by the running agent process."""

    def __init__(self, agent: ProcessAgent) -> None:
        self.agent = agent

    def __len__(self) -> int:
        return int(self.agent.request(msg.StoreRead("__len__", [])))

    def iter_patterns(self) -> Iterator[Any]:
        return iter(self.agent.request(msg.StoreRead("iter_patterns", [])))

    def get_many(self, ids: Sequence[str]) -> Any:
        return self.agent.request(msg.StoreRead("get_many", [list(ids)]))

    def size_bytes(self) -> int:
        return int(self.agent.request(msg.StoreRead("size_bytes", [])))

    def wal_bytes(self) -> int:
        return int(self.agent.request(msg.StoreRead("wal_bytes", [])))

    def checkpoint(self) -> None:
        self.agent.request(msg.StoreRead("checkpoint", []))

    @property
    def sequence(self) -> int:
        return int(self.agent.request(msg.StoreRead("sequence", [])))


class ProcessNetwork:
    """The swarm CA, the address directory, and faults at each agent process's transport:
    partitions (traffic between groups dropped) and loss. Traffic figures come from the agents'
    endpoint counters (the last ones reported, for a process that was killed)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.ca = SwarmCA.generate()
        self.host = host
        self.directory: dict[str, tuple[str, int]] = {}
        self.agents: dict[str, ProcessAgent] = {}
        self.traffic: dict[tuple[str, int], QuicStats] = {}
        self.epoch = 0.0  # the swarm clock's wall-clock origin, set when every process has started
        self._groups: dict[str, int] | None = None
        self._loss = 0.0

    def certificates(self) -> list[bytes]:
        """The certificates (PEM) of every agent this network has: each process's key ring."""
        return [a.credentials.certificate.public_bytes(serialization.Encoding.PEM) for a in self.agents.values()]

    def register(self, agent: ProcessAgent, address: tuple[str, int]) -> None:
        """A process bound its endpoint: tell everyone (a restarted one has a new port)."""
        self.agents[agent.id] = agent
        self.directory[agent.id] = tuple(address)  # type: ignore[assignment]
        for a in self._running():
            a.request(msg.Directory(dict(self.directory), self.certificates()))
        self._apply(agent)

    def _running(self) -> list[ProcessAgent]:
        return [a for a in self.agents.values() if a.running and a._report is None]

    def endpoint(self, node: str) -> Any:
        raise RuntimeError("agent processes bind their own endpoints")

    def crash(self, node: str) -> None:
        """Nothing to do here: killing the agent's process (:meth:`ProcessAgent.kill`) drops its traffic."""

    def partition(self, *groups: set[str]) -> None:
        self._groups = {n: i for i, g in enumerate(groups) for n in g}
        self._apply_all()

    def heal(self) -> None:
        self._groups = None
        self._apply_all()

    def set_default(self, profile: Any) -> None:
        self._loss = float(getattr(profile, "loss", 0.0))
        self._apply_all()

    def _apply_all(self) -> None:
        for a in self._running():
            self._apply(a)

    def _apply(self, agent: ProcessAgent) -> None:
        g = self._groups
        blocked = [] if g is None else [o for o in self.agents if g.get(o, -1) != g.get(agent.id, -1)]
        try:
            agent.request(msg.Faults(blocked, self._loss))
        except AgentProcessError:  # it died meanwhile; its run task reports that
            pass

    def link_stats(self) -> dict[tuple[str, str], Any]:
        return link_counts((node, st) for (node, _), st in self.traffic.items())

    def totals(self) -> dict[str, int]:
        return traffic_totals(list(self.traffic.values()))
