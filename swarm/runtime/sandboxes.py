"""Sandbox lifecycle for running agents in E2B cloud sandboxes, written against the real ``e2b``
SDK (async API): :class:`SandboxFleet` creates sandboxes tagged with the run, uploads files and
the project's wheel, runs commands (one-off, or in the background with their output streamed by
line), tells where a sandbox port is reached, and kills what it created on every way out of its
``async with`` (an exception, Ctrl-C's cancellation). A run killed outright leaves sandboxes that
:meth:`SandboxFleet.cleanup_leftovers` finds by their tags later (and E2B kills at their timeout).

It also counts sandbox-seconds (created to killed, on the event loop's monotonic clock: cost
accounting, not a learning metric) and prices them. The same code drives E2B or the loopback
stand-in (:mod:`swarm.runtime.e2b_standin`, ``FleetConfig.for_standin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from e2b import AsyncCommandHandle, AsyncSandbox, CommandExitException, CommandResult, RateLimitException, SandboxQuery

log = logging.getLogger(__name__)

#: E2B's published usage prices: $0.000014 per vCPU-second ($0.0504 per vCPU-hour) and
#: $0.0000045 per GiB-second of RAM ($0.0162 per GiB-hour), billed per second while a sandbox
#: runs; the default sandbox has 2 vCPU and 512 MiB. Source: https://e2b.dev/docs/faq/calculate-sandbox-price
#: (which names https://e2b.dev/pricing as the authority; prices can change).
USD_PER_VCPU_HOUR = 0.0504
USD_PER_GIB_HOUR = 0.0162
#: Metadata keys every sandbox of this tool carries: which tool, run, host and process made it.
TOOL_KEY, RUN_KEY, HOST_KEY, PID_KEY, NAME_KEY = "swarm-tool", "swarm-run", "swarm-host", "swarm-pid", "swarm-name"
TOOL = "reasoningbank-swarm"
#: The sandbox user's home, where commands start.
HOME = "/home/user"
#: Where :meth:`SandboxFleet.install_wheel` puts the project on the stand-in (see there).
STANDIN_SITE = "$HOME/.swarm-site"


class E2BError(RuntimeError):
    """A sandbox operation failed; the message is one line that says what and why."""


class E2BUnavailable(E2BError):
    """E2B cannot be used at all: no API key, or the API cannot be reached."""


class SandboxCapReached(E2BError):
    """The plan's cap on concurrent sandboxes is reached (E2B's 429, or the fleet's own ``max_live``)."""


@dataclass(frozen=True)
class FleetConfig:
    """Where sandboxes come from and what they cost."""

    run_id: str
    template: str = "base"
    sandbox_timeout_s: int = 3600  # E2B kills a sandbox at its timeout: the backstop for a run killed outright
    max_concurrent_creates: int = 8  # creates in flight at once
    max_live: int | None = None  # the plan's concurrent-sandbox cap (Hobby 20, Pro 100: e2b.dev/docs/sandbox/rate-limits), checked before asking
    vcpus: int = 2  # what the template allocates: billing is on allocation, not use
    memory_gib: float = 0.5
    usd_per_vcpu_hour: float = USD_PER_VCPU_HOUR
    usd_per_gib_hour: float = USD_PER_GIB_HOUR
    api_key: str | None = None  # default: $E2B_API_KEY
    api_url: str | None = None  # default: the SDK's (https://api.e2b.app); the stand-in's URL for it
    sandbox_url: str | None = None  # one envd endpoint for every sandbox, routed by sandbox id (the stand-in)
    local_ports: bool = False  # sandbox ports are this host's ports (the stand-in shares this host's network)
    request_timeout_s: float = 30.0

    @classmethod
    def for_standin(cls, url: str, run_id: str, **kw: Any) -> FleetConfig:
        """A config that drives the loopback stand-in at ``url`` through the same SDK calls."""
        return cls(run_id=run_id, api_key=kw.pop("api_key", "e2b_standin"), api_url=url, sandbox_url=url,
                   local_ports=True, **kw)

    def connection_opts(self) -> dict[str, Any]:
        """The SDK's per-call connection options. ``debug`` is always off: in the SDK's debug mode
        kill and set_timeout do nothing and create never reaches the API (sandboxes would leak)."""
        key = self.api_key or os.environ.get("E2B_API_KEY")
        if not key:
            raise E2BUnavailable("E2B_API_KEY is not set: export your E2B API key (https://e2b.dev/dashboard), "
                                 "or run against the stand-in (--e2b-standin)")
        opts: dict[str, Any] = {"api_key": key, "debug": False, "request_timeout": self.request_timeout_s}
        if self.api_url:
            opts["api_url"] = self.api_url
        if self.sandbox_url:
            opts["sandbox_url"] = self.sandbox_url
        return opts

    @property
    def usd_per_sandbox_second(self) -> float:
        return (self.vcpus * self.usd_per_vcpu_hour + self.memory_gib * self.usd_per_gib_hour) / 3600


@dataclass
class FleetSandbox:
    """A sandbox this fleet created, with its lifetime on the loop's monotonic clock."""

    sandbox: AsyncSandbox
    name: str
    created_at: float
    killed_at: float | None = None

    @property
    def id(self) -> str:
        return str(self.sandbox.sandbox_id)

    def seconds(self, now: float) -> float:
        return (self.killed_at if self.killed_at is not None else now) - self.created_at


class LineSplitter:
    """Output chunks in, whole lines out (the SDK hands over chunks as they arrive, cut anywhere)."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self._partial = ""

    def __call__(self, chunk: str) -> None:
        *lines, self._partial = (self._partial + chunk).split("\n")
        for line in lines:
            self.on_line(line)

    def flush(self) -> None:
        if self._partial:
            line, self._partial = self._partial, ""
            self.on_line(line)


@dataclass
class BackgroundCommand:
    """A command running in a sandbox, its output going to line callbacks."""

    handle: AsyncCommandHandle
    stdout: LineSplitter
    stderr: LineSplitter

    @property
    def pid(self) -> int:
        return int(self.handle.pid)

    async def wait(self) -> int:
        """Its exit code, once it has ended (-1 when a signal ended it); flushes a last unfinished line."""
        try:
            result = await self.handle.wait()
            code = int(result.exit_code)
        except CommandExitException as e:
            code = int(e.exit_code)
        self.stdout.flush()
        self.stderr.flush()
        return code

    async def kill(self) -> bool:
        return bool(await self.handle.kill())


class PricedSeconds:
    """Sandbox-seconds by name at a price: their sum and what they cost (the figures a fleet's
    usage and a run's cost share; each subclass is a dataclass holding the two fields)."""

    seconds: dict[str, float]
    usd_per_second: float

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    @property
    def usd(self) -> float:
        return self.total_seconds * self.usd_per_second


@dataclass(frozen=True)
class FleetUsage(PricedSeconds):
    """Sandbox-seconds per sandbox and what they cost at the configured prices."""

    seconds: dict[str, float]
    usd_per_second: float


class SandboxFleet:
    """The sandboxes of one run: ``async with SandboxFleet(cfg) as fleet: sb = await fleet.create("a1")``.
    Leaving the block kills every sandbox still alive, however it is left."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.sandboxes: dict[str, FleetSandbox] = {}
        self._creates = asyncio.Semaphore(config.max_concurrent_creates)
        self._pending = 0  # creates in flight, counted against max_live

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> SandboxFleet:
        self.config.connection_opts()  # no key: fail here, before anything is created or asked
        return self

    async def __aexit__(self, *exc: object) -> None:
        await _finish_despite_cancellation(self.kill_all())

    def metadata(self) -> dict[str, str]:
        """The tags on every sandbox of this fleet: the tool, the run, and the process that owns it."""
        return {TOOL_KEY: TOOL, RUN_KEY: self.config.run_id, HOST_KEY: socket.gethostname(), PID_KEY: str(os.getpid())}

    async def create(self, name: str, *, envs: Mapping[str, str] | None = None) -> FleetSandbox:
        """A new sandbox from the configured template, tagged with this run."""
        opts = self.config.connection_opts()
        cap = self.config.max_live
        if cap is not None and len(self.live()) + self._pending >= cap:
            raise SandboxCapReached(f"the plan's cap of {cap} concurrent sandboxes is reached: "
                                    f"not creating sandbox '{name}'")
        self._pending += 1
        try:
            async with self._creates:
                creating = asyncio.ensure_future(AsyncSandbox.create(
                    template=self.config.template, timeout=self.config.sandbox_timeout_s,
                    metadata={**self.metadata(), NAME_KEY: name}, envs=dict(envs or {}), **opts))
                try:
                    sandbox = await asyncio.shield(creating)
                except asyncio.CancelledError:
                    # Cancelled (Ctrl-C) mid-create: E2B may have made the sandbox already, and only
                    # the answer names it. Wait for the answer and kill it rather than leak it.
                    await _finish_despite_cancellation(_kill_when_created(creating))
                    raise
                except RateLimitException as e:
                    if "concurrent" in str(e):
                        raise SandboxCapReached(f"E2B refused sandbox '{name}': {_one_line(e)}") from e
                    raise E2BError(f"E2B rate-limited creating sandbox '{name}': {_one_line(e)}") from e
                except (httpx.TransportError, OSError) as e:
                    raise E2BUnavailable(f"cannot reach the E2B API at {self._api_url()}: {_one_line(e)}") from e
        finally:
            self._pending -= 1
        made = FleetSandbox(sandbox, name, asyncio.get_running_loop().time())
        self.sandboxes[made.id] = made
        log.info("sandbox %s (%s) created", made.id, name)
        return made

    def live(self) -> list[FleetSandbox]:
        return [s for s in self.sandboxes.values() if s.killed_at is None]

    async def kill(self, sb: FleetSandbox) -> None:
        """Kill a sandbox (its processes and files go with it) and stop its clock."""
        if sb.killed_at is not None:
            return
        try:
            await sb.sandbox.kill()  # False (not found) means E2B already killed it, at its timeout
        finally:
            sb.killed_at = asyncio.get_running_loop().time()
        log.info("sandbox %s (%s) killed after %.1f s", sb.id, sb.name, sb.seconds(sb.killed_at))

    async def kill_all(self) -> None:
        """Kill every sandbox this fleet created and has not killed; one failing does not spare the others."""
        results = await asyncio.gather(*(self.kill(s) for s in self.live()), return_exceptions=True)
        for error in results:
            if isinstance(error, BaseException):
                log.warning("killing a sandbox failed: %s", _one_line(error))

    async def cleanup_leftovers(self, *, all_hosts: bool = False) -> list[str]:
        """Kill sandboxes this tool left behind in earlier runs that were killed outright: tagged
        by this tool, not this fleet's, and owned by a process of this host that is gone. Another
        host's (or a live process's) run may still be going, so those are left unless
        ``all_hosts`` (they die at their timeout anyway). Returns the ids killed."""
        opts = self.config.connection_opts()
        found = []
        paginator = AsyncSandbox.list(query=SandboxQuery(metadata={TOOL_KEY: TOOL}), **opts)
        try:
            while paginator.has_next:
                found.extend(await paginator.next_items())
        except (httpx.TransportError, OSError) as e:
            raise E2BUnavailable(f"cannot reach the E2B API at {self._api_url()}: {_one_line(e)}") from e
        mine = set(self.sandboxes)
        leftovers = [info.sandbox_id for info in found
                     if info.sandbox_id not in mine and (all_hosts or _owner_gone(info.metadata or {}))]
        for sandbox_id in leftovers:
            await AsyncSandbox.kill(sandbox_id, **opts)
            log.info("killed leftover sandbox %s", sandbox_id)
        return leftovers

    def usage(self) -> FleetUsage:
        now = asyncio.get_running_loop().time()
        return FleetUsage({s.id: s.seconds(now) for s in self.sandboxes.values()}, self.config.usd_per_sandbox_second)

    # -- files and commands -----------------------------------------------------------------------

    async def upload(self, sb: FleetSandbox, files: Mapping[str, bytes | str | Path]) -> None:
        """Write files into the sandbox (sandbox path -> content or a local file); parents are made."""
        entries: list[Any] = [{"path": dest, "data": src.read_bytes() if isinstance(src, Path) else src}
                              for dest, src in files.items()]
        await sb.sandbox.files.write_files(entries)

    async def run(self, sb: FleetSandbox, cmd: str, *, timeout_s: float = 600,
                  envs: Mapping[str, str] | None = None) -> CommandResult:
        """Run a command to its end (an install, a check); a non-zero exit is an :class:`E2BError`
        carrying the last line of its stderr."""
        try:
            return await sb.sandbox.commands.run(cmd, envs=dict(envs or {}), timeout=timeout_s)
        except CommandExitException as e:
            tail = (e.stderr or e.stdout or "").strip().splitlines()[-1:] or ["(no output)"]
            raise E2BError(f"'{cmd}' exited {e.exit_code} in sandbox {sb.id}: {tail[0]}") from e

    async def start(self, sb: FleetSandbox, cmd: str, on_line: Callable[[str], None], *,
                    on_stderr_line: Callable[[str], None] | None = None, envs: Mapping[str, str] | None = None,
                    cwd: str | None = None) -> BackgroundCommand:
        """Start a long-running command in the background (no time limit: it lives as long as the
        sandbox) and hand each line of its stdout to ``on_line`` as it comes (stderr likewise)."""
        out = LineSplitter(on_line)
        err = LineSplitter(on_stderr_line or (lambda line: log.info("[%s] %s", sb.name, line)))
        handle = await sb.sandbox.commands.run(cmd, background=True, envs=dict(envs or {}), cwd=cwd,
                                               on_stdout=out, on_stderr=err, timeout=0)
        return BackgroundCommand(handle, out, err)

    def host(self, sb: FleetSandbox, port: int) -> str:
        """``host:port`` (or E2B's host, reached on 443 over TLS) at which a server listening on
        ``port`` in the sandbox answers. On the stand-in, sandboxes share this host's network, so
        it is 127.0.0.1 and the port itself: give each sandbox's server its own port there."""
        if self.config.local_ports:
            return f"127.0.0.1:{port}"
        return str(sb.sandbox.get_host(port))

    def url(self, sb: FleetSandbox, port: int, scheme: str = "http") -> str:
        """The base URL of a server on ``port`` in the sandbox: E2B's edge speaks TLS on 443
        (``https``/``wss``), the stand-in's ports are plain (``http``/``ws``)."""
        secure = "" if self.config.local_ports else "s"
        return f"{scheme}{secure}://{self.host(sb, port)}"

    async def upload_wheel(self, sb: FleetSandbox, wheel: Path, dest_dir: str = HOME) -> str:
        """Upload a wheel under its own file name (pip reads the version from it); its sandbox path."""
        remote = f"{dest_dir.rstrip('/')}/{wheel.name}"
        await self.upload(sb, {remote: wheel})
        return remote

    async def install_wheel(self, sb: FleetSandbox, wheel: Path) -> str:
        """Upload the project's wheel and install it; returns the shell words that run that
        install's Python (``<words> -m swarm...``). In E2B it is installed with its dependencies
        (from PyPI, inside the sandbox). On the stand-in, whose commands run on this host's
        interpreter, it goes to a directory of the sandbox without dependencies (they are this
        interpreter's) so this interpreter's environment is never touched."""
        await self.upload_wheel(sb, wheel, HOME)
        local = "./" + shlex.quote(wheel.name)  # commands start in the home directory; the stand-in maps no paths in them
        if self.config.local_ports:
            await self.run(sb, f'python -m pip install --quiet --no-deps --target "{STANDIN_SITE}" {local}')
            return f'PYTHONPATH="{STANDIN_SITE}" python'
        await self.run(sb, f"python -m pip install --quiet {local}")
        return "python"

    def _api_url(self) -> str:
        return self.config.api_url or "https://api.e2b.app"


async def build_wheel(project_dir: Path, out_dir: Path, *, isolated: bool = True) -> Path:
    """The project's wheel, built from the checkout with ``pip wheel --no-deps`` (pip is what the
    project declares and has; ``build`` is not installed) into ``out_dir``, once: a wheel already
    there is reused, so a run builds once for all its sandboxes. ``isolated=False`` builds with
    this environment's build backend instead of fetching the declared one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if existing := sorted(out_dir.glob("*.whl")):
        return existing[-1]
    args = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out_dir)]
    if not isolated:
        args.append("--no-build-isolation")
    proc = await asyncio.create_subprocess_exec(*args, str(project_dir), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    output, _ = await proc.communicate()
    wheels = sorted(out_dir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
        why = next((line for line in lines if line.startswith("error:")), lines[-1] if lines else "(no output)")
        raise E2BError(f"building the wheel of {project_dir} failed (pip exit {proc.returncode}): {why}")
    return wheels[-1]


def _owner_gone(metadata: Mapping[str, str]) -> bool:
    """Whether the process that tagged a sandbox is known to be gone: it ran on this host and no
    process has its id now. (A recycled pid keeps a leftover alive until its timeout: the safe side.)"""
    if metadata.get(HOST_KEY) != socket.gethostname():
        return False
    try:
        pid = int(metadata.get(PID_KEY, ""))
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def _kill_when_created(creating: asyncio.Future[AsyncSandbox]) -> None:
    try:
        sandbox = await creating
    except Exception:
        return  # it was never made
    await sandbox.kill()


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."


async def _finish_despite_cancellation(work: Awaitable[None]) -> None:
    """Await ``work`` to its end even while this task is being cancelled (Ctrl-C cancels the main
    task; leaving then would leak paid sandboxes), and re-raise the cancellation afterwards."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    with contextlib.suppress(asyncio.CancelledError):
        task.result()
    if cancelled:
        raise asyncio.CancelledError

