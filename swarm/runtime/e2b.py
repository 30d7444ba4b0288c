"""The e2b runtime: each agent in its own E2B sandbox, through the real ``e2b`` SDK
(:class:`~swarm.runtime.sandboxes.SandboxFleet`), or the loopback stand-in that speaks its protocol.

An agent here is the process runtime's agent (:class:`~swarm.runtime.process.ProcessAgent`, and
the same ``python -m swarm.runtime`` main loop inside) with two things swapped:

* **process -> sandbox.** A boot creates a sandbox (tagged with the run, for leftover cleanup),
  uploads its credentials and the project's wheel (built once from the checkout), installs it and
  starts the agent in the background; a kill kills the sandbox.
* **control socket -> authenticated WebSocket.** A sandbox accepts inbound WebSocket only, so the
  agent listens and the orchestrator dials ``fleet.url(sandbox, port, "ws")`` with a certificate
  of its own from the swarm CA; the agent accepts only that certificate (pinned at boot), and
  every message is sealed (:mod:`swarm.runtime.channel`, the gossip transport's handshake).

Gossip between sandboxes is the WebSocket transport; the directory holds each agent's address as
other sandboxes reach it (``get_host(port)``, on 443 over TLS in E2B). Partitions and loss are
the process runtime's (:class:`~swarm.runtime.process.ProcessNetwork`: set at each agent's endpoint).

**Where stores live, and restarts.** An agent's SQLite store lives in its sandbox, and a killed
sandbox takes its disk with it (E2B's pause/resume would keep it, but the stand-in has none). The
orchestrator keeps a copy in the swarm's store directory, two ways:

* *salvage*: a kill (:meth:`E2BAgent.kill`, what ``Swarm.crash`` does) is the agent process's
  SIGKILL inside its sandbox, as in the process runtime; no flush, no goodbye. The orchestrator
  then downloads the dead agent's SQLite file and WAL (every committed pattern) and only then
  kills the sandbox. The same happens when the agent dies on its own.
* *snapshots*: for a sandbox that is lost outright (an E2B failure, its timeout), at every
  ``snapshot_every`` episode boundaries the agent copies its store at one instant (SQLite's
  online backup, while it keeps trading) and the orchestrator downloads the copy.

A restarted agent boots a new sandbox with that copy uploaded as its store: with a salvage it
keeps every committed pattern; from a snapshot, those up to that boundary, the rest (what it had
gossiped since) coming back from its peers by anti-entropy. Not "checkpoint before a planned
kill": the kills this harness injects stand for crashes, which give no warning.

**No sandbox outlives the run.** The fleet is held open around the whole run
(:meth:`E2BRuntime.running`): leaving it in any way (the run's end, an exception, Ctrl-C's
cancellation) kills every sandbox it created, and each agent's run task kills its own sandbox
when it ends. A run killed outright leaves sandboxes that the next run kills first
(:meth:`SandboxFleet.cleanup_leftovers`, by their tags); E2B kills them at their timeout anyway.

**Cost.** Sandbox-seconds per agent (all its boots) and their price at the configured rates are
kept in :attr:`E2BRuntime.cost` and added to the ambient :func:`metering` block (the pattern
suite puts them in each pattern's metrics).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shlex
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from cryptography.hazmat.primitives import serialization

from ..kernel import Kernel
from ..learning.episodes import Decision
from ..specs import AgentSpec
from . import messages as msg
from ._child import KEY_FILES, LISTENING
from .channel import ChannelError, dial
from .process import ProcessAgent, ProcessHost, ProcessNetwork, ProcessRuntime, pem_credentials
from .sandboxes import (HOME, BackgroundCommand, E2BError, FleetConfig, FleetSandbox, PricedSeconds, SandboxCapReached,
                        SandboxFleet, build_wheel)

log = logging.getLogger(__name__)

#: The top-level packages the project's wheel carries (``[tool.setuptools.packages.find]``).
WHEEL_PACKAGES = frozenset({"swarm", "topologies", "scenarios", "reports"})


def shipped_sources(modules: Sequence[str]) -> dict[str, Path]:
    """The source files of ``modules`` (those an agent must import to resolve its rules) that the
    wheel does not carry, a user's own topology above all, by their path relative to the
    sandbox's home directory (where the agent starts, so they import by the same names): a
    single-file module as ``name.py``, a package with every ``.py`` file under it."""
    out: dict[str, Path] = {}
    for name in modules:
        top = name.split(".")[0]
        if top in WHEEL_PACKAGES:
            continue
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):  # e.g. ``__main__``: a script's own rules have no importable source
            spec = None
        if spec is None or top == "__main__":
            raise E2BError(f"module {top!r} (a rule of the topology) cannot be found to send to the sandboxes")
        if spec.submodule_search_locations:  # every portion of a namespace package
            for root in map(Path, spec.submodule_search_locations):
                out.update({f"{top}/{f.relative_to(root).as_posix()}": f for f in sorted(root.rglob("*.py"))})
        elif spec.origin and spec.origin.endswith(".py"):
            out[f"{top}.py"] = Path(spec.origin)
        else:
            raise E2BError(f"module {top!r} (a rule of the topology) is not Python source the sandboxes can import")
    return out

#: Where, relative to the sandbox user's home (commands start there), an agent keeps things.
KEYS_DIR, STORE_DIR = "swarm-keys", "swarm-store"
#: Environment variables the e2b runtime reads (see :meth:`E2BSettings.from_env`).
ENV_STANDIN, ENV_TEMPLATE, ENV_MAX = "SWARM_E2B_STANDIN_URL", "SWARM_E2B_TEMPLATE", "SWARM_E2B_MAX_SANDBOXES"
ENV_VCPU_PRICE, ENV_VCPUS, ENV_WHEEL, ENV_RUN = ("SWARM_E2B_USD_PER_VCPU_HOUR", "SWARM_E2B_VCPUS", "SWARM_E2B_WHEEL",
                                                 "SWARM_E2B_RUN_ID")


@dataclass(frozen=True)
class E2BSettings:
    """How a swarm's agents run in sandboxes: the fleet (template, cap, prices, where E2B is),
    the project's wheel (None: built from this checkout when the run starts), how often stores
    are snapshotted, how long a boot may take."""

    fleet: FleetConfig
    wheel: Path | None = None
    snapshot_every: int = 1  # episodes between store snapshots (0: none, only the final store)
    clean_leftovers: bool = True  # kill sandboxes a killed run of this host left, before starting
    boot_timeout_s: float = 300.0  # create, upload, install and start one agent

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> E2BSettings:
        """Settings from the environment: ``SWARM_E2B_STANDIN_URL`` (the stand-in to use instead of
        E2B), ``SWARM_E2B_TEMPLATE`` (default ``base``), ``SWARM_E2B_MAX_SANDBOXES`` (the plan's
        cap), ``SWARM_E2B_USD_PER_VCPU_HOUR``, ``SWARM_E2B_VCPUS``, ``SWARM_E2B_WHEEL`` (a wheel
        built already), ``SWARM_E2B_RUN_ID`` (the run's tag); the key is ``E2B_API_KEY``.
        ``ValueError`` names a malformed one."""
        env = os.environ if environ is None else environ
        kw: dict[str, Any] = {"run_id": env.get(ENV_RUN) or uuid.uuid4().hex[:12]}
        for name, key, kind in ((ENV_TEMPLATE, "template", str), (ENV_MAX, "max_live", int),
                                (ENV_VCPU_PRICE, "usd_per_vcpu_hour", float), (ENV_VCPUS, "vcpus", int)):
            if env.get(name):
                try:
                    kw[key] = kind(env[name])
                except ValueError:
                    raise ValueError(f"{name}={env[name]!r} is not a valid {kind.__name__}") from None
        if kw.get("max_live", 1) < 1 or kw.get("vcpus", 1) < 1 or kw.get("usd_per_vcpu_hour", 0) < 0:
            raise ValueError(f"{ENV_MAX} and {ENV_VCPUS} must be >= 1, {ENV_VCPU_PRICE} >= 0")
        if env.get("E2B_API_URL"):  # the SDK's own variable: honoured, and named in errors
            kw["api_url"] = env["E2B_API_URL"]
        url = env.get(ENV_STANDIN)
        if url:
            kw.pop("api_url", None)
        fleet = FleetConfig.for_standin(url, **kw) if url else FleetConfig(**kw)
        return cls(fleet, wheel=Path(env[ENV_WHEEL]) if env.get(ENV_WHEEL) else None)


# ---- cost ----------------------------------------------------------------------------------


@dataclass
class SandboxCost(PricedSeconds):
    """What a run's sandboxes cost: sandbox-seconds per agent (every boot of it) and in all, at
    ``usd_per_second`` (vCPU and memory at the configured prices). Wall-clock figures."""

    seconds: dict[str, float] = field(default_factory=dict)
    usd_per_second: float = 0.0
    sandboxes: int = 0

    def add(self, other: SandboxCost) -> None:
        for agent, s in other.seconds.items():
            self.seconds[agent] = self.seconds.get(agent, 0.0) + s
        self.sandboxes += other.sandboxes
        self.usd_per_second = other.usd_per_second or self.usd_per_second


_METER: ContextVar[SandboxCost | None] = ContextVar("swarm_sandbox_cost", default=None)


@contextlib.contextmanager
def metering() -> Iterator[SandboxCost]:
    """Add up the sandbox cost of every e2b swarm run inside this block (a pattern's swarms)."""
    total = SandboxCost()
    token = _METER.set(total)
    try:
        yield total
    finally:
        _METER.reset(token)


# ---- the agent -----------------------------------------------------------------------------


@dataclass
class SandboxBoot:
    """One boot of an agent: its sandbox, the agent's command in it and its control port. Stands
    where the process runtime keeps a ``Popen`` (``poll`` is the command's exit code, once known)."""

    sandbox: FleetSandbox
    command: BackgroundCommand
    port: int

    def poll(self) -> int | None:
        code = self.command.handle.exit_code
        return None if code is None else int(code)


class E2BAgent(ProcessAgent):
    """An agent in an E2B sandbox, seen from the orchestrator (see the module docstring)."""

    def __init__(self, host: ProcessHost, runtime: E2BRuntime, spec: AgentSpec, decisions: Sequence[Decision],
                 index: int) -> None:
        super().__init__(host, runtime.network, spec, decisions, index)
        self.runtime = runtime
        self.snapshots = 0  # store snapshots downloaded
        self._snapshot_at = 0  # the episode boundary of the last one

    # ---- boot: a sandbox instead of a process ----

    async def boot(self) -> None:
        """Create this boot's sandbox, give it the credentials, the wheel and (on a restart) the
        last snapshot of the store, start the agent and open its control channel."""
        rt = self.runtime
        fleet = rt.open_fleet()
        setup = self.setup(STORE_DIR)  # also closes the local reader of the snapshot uploaded below
        async with rt.boots:
            sb = await fleet.create(f"{self.id}#{self.boots}")
            try:
                with anyio.fail_after(rt.settings.boot_timeout_s):
                    boot, conn = await self._start_in(fleet, sb)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await fleet.kill(sb)
                raise
        self._proc, self._conn = boot, conn
        self._snapshot_at = self.cursor // max(1, self.host.config.trades_per_episode)
        await anyio.to_thread.run_sync(conn.send_bytes, msg.encode(setup))

    async def _start_in(self, fleet: SandboxFleet, sb: FleetSandbox) -> tuple[SandboxBoot, Any]:
        rt = self.runtime
        cert, key, ca, write_key = pem_credentials(self.credentials)
        keys = dict(zip(KEY_FILES, (ca, cert, key, write_key, rt.orchestrator_pem)))
        files: dict[str, bytes | str | Path] = {f"{HOME}/{KEYS_DIR}/{name}": data for name, data in keys.items()}
        if self.boots and self.path.exists():  # a restart: the last snapshot is its store
            files[f"{HOME}/{STORE_DIR}/{self.id}.db"] = self.path.read_bytes()
        files.update({f"{HOME}/{rel}": path for rel, path in shipped_sources(self.trusted).items()})
        await fleet.upload(sb, files)
        python = await fleet.install_wheel(sb, rt.wheel_path())
        local = fleet.config.local_ports
        port: list[int] = []

        def on_line(line: str) -> None:
            if line.startswith(LISTENING):
                port.append(int(line.rsplit(" ", 1)[1]))
            else:
                log.info("[%s] %s", self.id, line)

        bind, scheme = ("127.0.0.1", "ws") if local else ("0.0.0.0", "wss")  # E2B's edge ends TLS on 443
        words = " ".join(shlex.quote(m) for m in self.trusted)
        command = await fleet.start(  # in the home directory: ``-m`` puts it on the path, with the shipped modules
            sb, f"{python} -u -m swarm.runtime --listen {bind}:0 --keys {KEYS_DIR} --scheme {scheme} {words}",
            on_line, on_stderr_line=lambda line: log.warning("[%s] %s", self.id, line), cwd=HOME,
            envs={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        boot = SandboxBoot(sb, command, 0)
        while not port:  # the command streams its lines on the SDK's own task
            if boot.poll() is not None:
                raise E2BError(f"agent {self.id} exited ({boot.poll()}) in sandbox {sb.id} before it listened")
            await anyio.sleep(0.05)
        boot.port = port[0]
        try:
            conn = await anyio.to_thread.run_sync(dial, fleet.url(sb, boot.port, "ws"), rt.credentials, self.id)
        except ChannelError as e:
            raise E2BError(str(e)) from None
        return boot, conn

    def directory_address(self, bound: tuple[str, int]) -> tuple[str, int]:
        """Where other sandboxes reach the gossip endpoint bound at ``bound``: E2B's host for its
        port (on 443), or this host's port on the stand-in."""
        boot = self._proc
        assert isinstance(boot, SandboxBoot)
        where = self.runtime.open_fleet().host(boot.sandbox, int(bound[1]))
        host, _, port = where.rpartition(":")
        return (host, int(port)) if host and port.isdigit() else (where, 443)

    # ---- while it runs: store snapshots at episode boundaries ----

    async def progressed(self) -> None:
        every = self.runtime.settings.snapshot_every
        episode = self.cursor // max(1, self.host.config.trades_per_episode)
        if every and episode >= self._snapshot_at + every and not self._status.get("done"):
            self._snapshot_at = episode
            await self.snapshot()

    async def snapshot(self) -> None:
        """Have the agent copy its store at one instant and download the copy as the local store."""
        boot = self._proc
        assert isinstance(boot, SandboxBoot)
        name = f"{STORE_DIR}/{self.id}.snapshot.db"
        await self.arequest(msg.Snapshot(name))
        await self._download(boot, {name: self.path})
        self.snapshots += 1

    async def _download(self, boot: SandboxBoot, files: Mapping[str, Path]) -> None:
        """Sandbox files (relative to home) to local paths, each replaced whole; a local store's
        stale WAL goes (the download is the whole store)."""
        for remote, local in files.items():
            data = await boot.sandbox.sandbox.files.read(f"{HOME}/{remote}", format="bytes")
            tmp = local.with_name(local.name + ".part")
            tmp.write_bytes(bytes(data))
            if local == self.path:
                for side in ("-wal", "-shm"):
                    Path(f"{local}{side}").unlink(missing_ok=True)
            os.replace(tmp, local)

    # ---- the end of a boot ----

    async def finish(self, proc: Any) -> None:
        """After ``Stop``: wait for the agent to exit, then download its store (and WAL, if any)."""
        assert isinstance(proc, SandboxBoot)
        with anyio.move_on_after(30.0):
            while proc.poll() is None:
                await anyio.sleep(0.05)
        self.exitcode = proc.poll()
        if self.exitcode is None:
            self._died("did not exit within 30 s of being told to stop")
            return
        await self._download_store(proc)

    async def areap(self, proc: Any, conn: Any) -> None:
        """Close the channel and kill this boot's sandbox (its processes and disk go with it). A
        boot that ended in a kill or a death first has its store salvaged: the agent process is
        SIGKILLed in the sandbox (as the process runtime kills it) and its SQLite file and WAL,
        every committed pattern, are downloaded; if the sandbox is gone, the last snapshot stays."""
        self._reap(proc, conn)
        fleet = self.runtime.fleet
        if not isinstance(proc, SandboxBoot) or fleet is None:
            return
        try:
            if self.crashed and proc.sandbox.killed_at is None:
                try:
                    with anyio.fail_after(30.0):
                        await self._salvage(proc)
                except Exception as e:
                    log.warning("%s: could not salvage its store (%s); a restart uses the snapshot", self.id, e)
        finally:
            await fleet.kill(proc.sandbox)

    async def _salvage(self, proc: SandboxBoot) -> None:
        if proc.poll() is None:
            await proc.command.kill()
            while proc.poll() is None:
                await anyio.sleep(0.02)
        await self._download_store(proc)

    async def _download_store(self, proc: SandboxBoot) -> None:
        """The agent's store file and, if there is one, its WAL (committed writes not yet in the file)."""
        files = {f"{STORE_DIR}/{self.id}.db": self.path}
        if await proc.sandbox.sandbox.files.exists(f"{HOME}/{STORE_DIR}/{self.id}.db-wal"):
            files[f"{STORE_DIR}/{self.id}.db-wal"] = Path(f"{self.path}-wal")
        await self._download(proc, files)

    def _reap(self, proc: Any, conn: Any) -> None:
        """From outside the event loop only the channel can be closed; the fleet kills the sandbox."""
        if conn is not None:
            conn.close()
            if self._conn is conn:
                self._conn = None

    def kill(self) -> None:
        """Kill the agent mid-run: its channel is cut now, its run task stops and kills the sandbox."""
        self.crashed = True
        if self._conn is not None:
            self._conn.close()  # a request in flight ends with the channel (no lock: it may hold it)
        if self._scope is not None:
            self._scope.cancel()


# ---- the runtime ---------------------------------------------------------------------------


class E2BRuntime(ProcessRuntime):
    """Agents in E2B sandboxes (see the module docstring), on the swarm CA and faults of ``network``."""

    def __init__(self, network: ProcessNetwork, settings: E2BSettings) -> None:
        super().__init__(network)
        self.settings = settings
        # the orchestrator's own certificate from the swarm CA: what it dials agents' control channels with
        self.credentials = network.ca.issue("orchestrator")
        self.orchestrator_pem = self.credentials.certificate.public_bytes(serialization.Encoding.PEM)
        self.fleet: SandboxFleet | None = None
        self.cost: SandboxCost | None = None
        self.leftovers_killed: list[str] = []
        self.boots = anyio.Semaphore(max(1, settings.fleet.max_concurrent_creates))  # boots in flight
        self._wheel = settings.wheel

    def make(self, host: ProcessHost, spec: AgentSpec, decisions: Sequence[Decision], index: int) -> E2BAgent:
        return E2BAgent(host, self, spec, decisions, index)

    def open_fleet(self) -> SandboxFleet:
        if self.fleet is None:
            raise E2BError("the e2b runtime's fleet is not open: agents boot only while the swarm runs")
        return self.fleet

    def wheel_path(self) -> Path:
        assert self._wheel is not None, "built when the run starts"
        return self._wheel

    def running(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._running()

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[E2BRuntime]:
        """Hold the run's fleet open: first kill what a killed earlier run left and build the
        wheel; on the way out, however it goes, kill every sandbox and count what they cost."""
        with contextlib.ExitStack() as stack:
            try:
                async with SandboxFleet(self.settings.fleet) as fleet:
                    self.fleet = fleet
                    if self.settings.clean_leftovers:
                        self.leftovers_killed = await fleet.cleanup_leftovers()
                        if self.leftovers_killed:
                            log.warning("killed %d sandboxes an earlier run left", len(self.leftovers_killed))
                    if self._wheel is None:
                        out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="swarm-wheel-")))
                        self._wheel = await build_wheel(project_checkout(), out)
                    try:
                        yield self
                    finally:
                        with anyio.CancelScope(shield=True):
                            await fleet.kill_all()
                        self._count(fleet)
            finally:
                self.fleet = None
                if self.settings.wheel is None:
                    self._wheel = None  # it was in the temporary directory

    def _count(self, fleet: SandboxFleet) -> None:
        usage = fleet.usage()
        seconds: dict[str, float] = {}
        for sb in fleet.sandboxes.values():
            agent = sb.name.rsplit("#", 1)[0]
            seconds[agent] = seconds.get(agent, 0.0) + usage.seconds.get(sb.id, 0.0)
        self.cost = SandboxCost(seconds, usage.usd_per_second, len(fleet.sandboxes))
        meter = _METER.get()
        if meter is not None:
            meter.add(self.cost)

    async def launch(self, agents: Sequence[Any], kernel: Kernel) -> None:
        """Boot every agent's sandbox (at most ``max_concurrent_creates`` at once), then start the
        swarm clock for all. A swarm larger than the plan's cap fails here, before any is made."""
        cap = self.settings.fleet.max_live
        if cap is not None and len(agents) > cap:
            raise SandboxCapReached(f"the swarm has {len(agents)} agents but the plan's cap is {cap} concurrent "
                                    f"sandboxes (set {ENV_MAX} or --e2b-max-sandboxes)")
        await super().launch(agents, kernel)


def project_checkout() -> Path:
    """The checkout this code runs from (its wheel goes into the sandboxes)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise E2BError(f"no project checkout at {root} to build the wheel from: set {ENV_WHEEL} to a built wheel")
    return root


