"""A loopback stand-in for E2B: its control-plane REST API and every sandbox's ``envd`` on one local
port, speaking the wire protocol the real ``e2b`` SDK speaks, so that code written against the SDK
runs unchanged, with no account and no network, in tests and in ``--e2b-standin`` runs.

How the SDK reaches it: a normal (non-debug) connection whose ``api_url`` and ``sandbox_url`` are
both this server's URL (:meth:`E2BStandIn.connection_opts`). The SDK then creates, lists, kills
and times out sandboxes over the REST API (``/v2/sandboxes``, ``/sandboxes/{id}``, ...; bodies are
the SDK's own generated models), and sends every envd request (Connect RPC ``/process.Process/*``
and ``/filesystem.Filesystem/*``, HTTP ``/files`` and ``/health``) to ``sandbox_url`` with an
``E2b-Sandbox-Id`` header, which picks the sandbox: the routing E2B's own sandbox proxy does at
``https://sandbox.<domain>``. So any number of sandboxes live at once on one port.

Why not the SDK's debug mode (``E2B_DEBUG``): there ``create`` makes no API call at all (every
sandbox is ``debug_sandbox_id``; template, metadata, envs and timeout are dropped), ``kill`` and
``set_timeout`` are no-ops, and all sandboxes share ``localhost:49983``: nothing could be counted,
listed by metadata or killed.

A sandbox here is a directory (the sandbox's ``/`` mapped into it: ``/home/user/x`` is
``<root>/home/user/x``) and its commands are local processes, each in its own process group, with
``cwd`` and ``$HOME`` inside that directory. Absolute paths inside a *command line* are not
remapped: use paths relative to the working directory (``/home/user``) or ``$HOME``. Sandboxes
share this host's network, so a server started in one listens on this host's port (two sandboxes
cannot both use port 8000) and is reached at ``127.0.0.1:PORT``. Killing a sandbox (or its timeout
running out) SIGKILLs its process groups and removes the directory. ``GET /_standin/sandboxes``
(and :meth:`E2BStandIn.live_count`) tells how many are alive.

Run it in-process (``with E2BStandIn() as standin: ...``, a server thread with its own event loop)
or as a process: ``python -m swarm.runtime.e2b_standin --port 3000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gzip
import json
import logging
import os
import posixpath
import secrets
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

import uvicorn
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from e2b.api.client.models import (ListedSandbox, NewSandboxV2, Sandbox, SandboxDetail, SandboxState,
                                   SandboxTimeoutRequest)
from e2b.envd.filesystem import filesystem_connect, filesystem_pb
from e2b.envd.process import process_connect, process_pb
from protobuf import Oneof
from protobuf.wkt.google.protobuf.timestamp_pb import Timestamp
from starlette.applications import Starlette
from starlette.datastructures import Headers, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

#: The envd version the stand-in claims: new enough for octet-stream uploads and a default user
#: (the SDK branches on it), old enough not to promise file metadata or watch options it lacks.
ENVD_VERSION = "0.5.7"
HOME = "/home/user"
#: The message E2B's API answers a create with when the team's concurrent-sandbox cap is reached
#: (seen in e2b-dev/infra issue 1434); the SDK raises it as ``RateLimitException``.
CAP_MESSAGE = ("you have reached the maximum number of concurrent E2B sandboxes ({cap}). If you need more, "
               "please take a look at https://e2b.dev/docs/billing")
_SANDBOX_HEADER = "e2b-sandbox-id"
_TOKEN_HEADER = "x-access-token"
_KEEPALIVE_HEADER = "keepalive-ping-interval"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in the shape both E2B's API and its sandbox proxy answer with (``code``, ``message``)."""
    return JSONResponse({"code": status, "message": message}, status_code=status, headers=headers)


# Typed constructors of envd's process events (mypy widens a bare Oneof("start", ...) to Oneof[str, ...]).
def _started(pid: int) -> process_pb.ProcessEvent:
    return process_pb.ProcessEvent(event=Oneof[Literal["start"], process_pb.ProcessEvent.StartEvent](
        "start", process_pb.ProcessEvent.StartEvent(pid=pid)))


def _output(stream: str, chunk: bytes) -> process_pb.ProcessEvent:
    DataEvent = process_pb.ProcessEvent.DataEvent
    data = (DataEvent(output=Oneof[Literal["stderr"], bytes]("stderr", chunk)) if stream == "stderr"
            else DataEvent(output=Oneof[Literal["stdout"], bytes]("stdout", chunk)))
    return process_pb.ProcessEvent(event=Oneof[Literal["data"], process_pb.ProcessEvent.DataEvent]("data", data))


def _ended(end: process_pb.ProcessEvent.EndEvent) -> process_pb.ProcessEvent:
    return process_pb.ProcessEvent(event=Oneof[Literal["end"], process_pb.ProcessEvent.EndEvent]("end", end))


def _keepalive_event() -> process_pb.ProcessEvent:
    return process_pb.ProcessEvent(event=Oneof[Literal["keepalive"], process_pb.ProcessEvent.KeepAlive](
        "keepalive", process_pb.ProcessEvent.KeepAlive()))


@dataclass
class _Command:
    """A process started through ``Process/Start``; its output goes to whoever is subscribed."""

    process: asyncio.subprocess.Process
    config: process_pb.ProcessConfig
    tag: str | None
    subscribers: set[asyncio.Queue[process_pb.ProcessEvent]] = field(default_factory=set)
    end: process_pb.ProcessEvent | None = None
    pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def publish(self, event: process_pb.ProcessEvent) -> None:
        for queue in self.subscribers:
            queue.put_nowait(event)

    async def run_pump(self, on_end: Callable[[_Command], None]) -> None:
        """Forward stdout and stderr as they come (both, so a full pipe never blocks the process),
        then the end event once the process has exited."""
        async def forward(stream: asyncio.StreamReader | None, name: str) -> None:
            while stream is not None and (chunk := await stream.read(65536)):
                self.publish(_output(name, chunk))

        await asyncio.gather(forward(self.process.stdout, "stdout"), forward(self.process.stderr, "stderr"))
        code = await self.process.wait()
        # As envd (Go) reports it: a signal's death is exit code -1 and "signal: <name>".
        if code < 0:
            name = signal.Signals(-code).name.removeprefix("SIG").lower()
            end = process_pb.ProcessEvent.EndEvent(exit_code=-1, exited=False, status=f"signal: {name}")
        else:
            end = process_pb.ProcessEvent.EndEvent(exit_code=code, exited=True, status=f"exit status {code}")
        self.end = _ended(end)
        on_end(self)
        self.publish(self.end)

    async def events(self, queue: asyncio.Queue[process_pb.ProcessEvent],
                     keepalive_s: float | None) -> AsyncIterator[process_pb.ProcessEvent]:
        """This subscriber's events up to and including the end event, with keepalives in between
        when the client asked for them (as envd sends them, so idle streams survive proxies)."""
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), keepalive_s)
            except TimeoutError:
                yield _keepalive_event()
                continue
            yield event
            if event.event is not None and event.event.field == "end":
                return


@dataclass
class StandInSandbox:
    """One live sandbox: its filesystem root, what it was created with, and its running commands."""

    sandbox_id: str
    template_id: str
    root: Path
    metadata: dict[str, str]
    envs: dict[str, str]
    access_token: str
    started_at: dt.datetime
    end_at: dt.datetime
    commands: dict[int, _Command] = field(default_factory=dict)

    def host_path(self, path: str) -> Path:
        """Where a sandbox path lives on this host: absolute paths under the root, relative ones
        under the home directory, ``..`` never above the root."""
        full = posixpath.normpath(posixpath.join(HOME, path or "."))
        return self.root / full.lstrip("/")

    def sandbox_path(self, host: Path) -> str:
        return "/" + host.relative_to(self.root).as_posix() if host != self.root else "/"

    def entry(self, host: Path) -> filesystem_pb.EntryInfo:
        """``EntryInfo`` of a path, as envd reports it (a symlink's own type is marked by ``is_symlink``)."""
        st = host.lstat()
        is_link = stat.S_ISLNK(st.st_mode)
        if is_link:
            with contextlib.suppress(OSError):
                st = host.stat()
        kind = filesystem_pb.FileType.DIRECTORY if stat.S_ISDIR(st.st_mode) else filesystem_pb.FileType.FILE
        return filesystem_pb.EntryInfo(
            name=host.name, type=kind, path=self.sandbox_path(host), size=st.st_size,
            mode=stat.S_IMODE(st.st_mode), permissions=stat.filemode(st.st_mode)[1:], owner="user", group="user",
            modified_time=Timestamp.from_datetime(dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)),
            is_symlink=is_link, symlink_target=os.readlink(host) if is_link else None,
        )

    def command_env(self, extra: dict[str, str]) -> dict[str, str]:
        """A fresh environment: this interpreter's directory first on PATH (so ``python`` is the
        one the stand-in runs on), home and temp inside the sandbox, then the sandbox's envs."""
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])
        env = {"PATH": path, "HOME": str(self.host_path(HOME)), "USER": "user", "LANG": "C.UTF-8",
               "TMPDIR": str(self.host_path("/tmp")), "E2B_SANDBOX": "true", "E2B_SANDBOX_ID": self.sandbox_id}
        return {**env, **self.envs, **extra}

    async def start(self, request: process_pb.StartRequest, queue: asyncio.Queue[process_pb.ProcessEvent],
                    on_end: Callable[[_Command], None]) -> _Command:
        """Start a command in its own process group, ``queue`` subscribed before any output."""
        config = request.process or process_pb.ProcessConfig()
        args = list(config.args)
        # The SDK runs `/bin/bash -l -c CMD`; a login shell would source this host's /etc/profile,
        # which resets PATH away from the stand-in's interpreter (the template's profile is what a
        # real sandbox sources), so the stand-in runs it as a plain `bash -c`.
        if os.path.basename(config.cmd) == "bash" and "-l" in args:
            args.remove("-l")
        cwd = self.host_path(config.cwd if config.has_field("cwd") and config.cwd else HOME)
        if not cwd.is_dir():
            raise ConnectError(Code.INVALID_ARGUMENT, f"cwd '{self.sandbox_path(cwd)}' is not a directory")
        stdin = asyncio.subprocess.PIPE if request.has_field("stdin") and request.stdin else asyncio.subprocess.DEVNULL
        try:
            process = await asyncio.create_subprocess_exec(
                config.cmd, *args, cwd=cwd, env=self.command_env(dict(config.envs)), stdin=stdin,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except OSError as e:
            raise ConnectError(Code.INVALID_ARGUMENT, f"cannot start '{config.cmd}': {e}") from e
        command = _Command(process, config, request.tag if request.has_field("tag") else None, {queue})
        self.commands[command.pid] = command
        command.pump = asyncio.get_running_loop().create_task(command.run_pump(on_end))
        return command

    def forget(self, command: _Command) -> None:
        """Drop an ended command: envd lists and signals only running ones."""
        self.commands.pop(command.pid, None)

    def find(self, selector: process_pb.ProcessSelector | None) -> _Command:
        chosen = selector.selector if selector is not None else None
        for command in self.commands.values():
            if chosen is not None and ((chosen.field == "pid" and command.pid == chosen.value)
                                       or (chosen.field == "tag" and command.tag == chosen.value)):
                return command
        raise ConnectError(Code.NOT_FOUND, f"process {chosen.value if chosen else '?'} not found")

    async def kill(self) -> None:
        """SIGKILL every process group, wait for the pumps to report the ends, remove the directory."""
        for command in list(self.commands.values()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(command.pid, signal.SIGKILL)
        pumps = [c.pump for c in self.commands.values() if c.pump is not None]
        if pumps:
            await asyncio.wait(pumps, timeout=5)
        await asyncio.to_thread(shutil.rmtree, self.root, True)


class StandInState:
    """The sandboxes of one stand-in, owned by its event loop; the REST and envd handlers share it."""

    def __init__(self, base: Path, api_key: str | None = None, max_sandboxes: int | None = None,
                 create_answer_delay_s: float = 0.0) -> None:
        self.base = base
        self.api_key = api_key
        self.max_sandboxes = max_sandboxes
        self.create_answer_delay_s = create_answer_delay_s  # a slow answer to a create: the sandbox exists meanwhile
        self.sandboxes: dict[str, StandInSandbox] = {}
        self.created = 0

    async def create(self, body: NewSandboxV2) -> StandInSandbox:
        sandbox_id = "i" + secrets.token_hex(9)
        root = self.base / sandbox_id
        for d in (HOME, "/tmp"):
            (root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
        now = _utcnow()
        timeout = body.timeout if isinstance(body.timeout, int) else 300
        sandbox = StandInSandbox(
            sandbox_id=sandbox_id, template_id=body.template_id, root=root,
            metadata={str(k): str(v) for k, v in (body.metadata or {}).items()},
            envs={str(k): str(v) for k, v in (body.env_vars or {}).items()},
            access_token=secrets.token_urlsafe(16), started_at=now, end_at=now + dt.timedelta(seconds=timeout))
        self.sandboxes[sandbox_id] = sandbox
        self.created += 1
        return sandbox

    async def kill(self, sandbox_id: str) -> bool:
        sandbox = self.sandboxes.pop(sandbox_id, None)  # gone for new requests before its processes die
        if sandbox is None:
            return False
        await sandbox.kill()
        return True

    async def kill_all(self) -> None:
        await asyncio.gather(*(self.kill(s) for s in list(self.sandboxes)))

    async def reap(self, every_s: float = 0.5) -> None:
        """Kill sandboxes whose timeout ran out, as E2B does."""
        while True:
            await asyncio.sleep(every_s)
            now = _utcnow()
            for sandbox_id in [s.sandbox_id for s in self.sandboxes.values() if s.end_at <= now]:
                log.info("stand-in: sandbox %s timed out", sandbox_id)
                await self.kill(sandbox_id)

    def sandbox(self, headers: Any) -> StandInSandbox:
        """The sandbox an envd request is for (its ``E2b-Sandbox-Id`` header), or a ConnectError
        like the one the SDK makes of the proxy's 502 for a sandbox that is gone."""
        sandbox = self.sandboxes.get(headers.get(_SANDBOX_HEADER, ""))
        if sandbox is None:
            raise ConnectError(Code.UNAVAILABLE, f"The sandbox {headers.get(_SANDBOX_HEADER)} was not found")
        return sandbox


class _ProcessService(process_connect.Process):
    """envd's ``process.Process`` service over local processes (Update, a PTY resize, is left unimplemented)."""

    def __init__(self, state: StandInState) -> None:
        self.state = state

    async def list(self, request: process_pb.ListRequest,
                   ctx: RequestContext[process_pb.ListRequest, process_pb.ListResponse]) -> process_pb.ListResponse:
        sandbox = self.state.sandbox(ctx.request_headers)
        return process_pb.ListResponse(processes=[
            process_pb.ProcessInfo(config=c.config, pid=c.pid, tag=c.tag) for c in sandbox.commands.values()])

    async def start(self, request: process_pb.StartRequest,
                    ctx: RequestContext[process_pb.StartRequest, process_pb.StartResponse],
                    ) -> AsyncIterator[process_pb.StartResponse]:
        sandbox = self.state.sandbox(ctx.request_headers)
        queue: asyncio.Queue[process_pb.ProcessEvent] = asyncio.Queue()
        command = await sandbox.start(request, queue, sandbox.forget)
        try:
            yield process_pb.StartResponse(event=_started(command.pid))
            async for event in command.events(queue, _keepalive(ctx)):
                yield process_pb.StartResponse(event=event)
        finally:
            command.subscribers.discard(queue)  # the process runs on when the client goes, as in envd

    async def connect(self, request: process_pb.ConnectRequest,
                      ctx: RequestContext[process_pb.ConnectRequest, process_pb.ConnectResponse],
                      ) -> AsyncIterator[process_pb.ConnectResponse]:
        command = self.state.sandbox(ctx.request_headers).find(request.process)
        queue: asyncio.Queue[process_pb.ProcessEvent] = asyncio.Queue()
        command.subscribers.add(queue)
        try:
            yield process_pb.ConnectResponse(event=_started(command.pid))
            async for event in command.events(queue, _keepalive(ctx)):
                yield process_pb.ConnectResponse(event=event)
        finally:
            command.subscribers.discard(queue)

    async def send_signal(self, request: process_pb.SendSignalRequest,
                          ctx: RequestContext[process_pb.SendSignalRequest, process_pb.SendSignalResponse],
                          ) -> process_pb.SendSignalResponse:
        command = self.state.sandbox(ctx.request_headers).find(request.process)
        sig = signal.SIGTERM if request.signal == process_pb.Signal.SIGTERM else signal.SIGKILL
        with contextlib.suppress(ProcessLookupError):
            os.killpg(command.pid, sig)  # the group: `bash -c` children go too
        return process_pb.SendSignalResponse()

    async def send_input(self, request: process_pb.SendInputRequest,
                         ctx: RequestContext[process_pb.SendInputRequest, process_pb.SendInputResponse],
                         ) -> process_pb.SendInputResponse:
        command = self.state.sandbox(ctx.request_headers).find(request.process)
        data = request.input.input if request.input is not None else None
        if command.process.stdin is None:
            raise ConnectError(Code.FAILED_PRECONDITION, "the process was started without stdin")
        if data is not None:
            command.process.stdin.write(data.value)
            await command.process.stdin.drain()
        return process_pb.SendInputResponse()

    async def close_stdin(self, request: process_pb.CloseStdinRequest,
                          ctx: RequestContext[process_pb.CloseStdinRequest, process_pb.CloseStdinResponse],
                          ) -> process_pb.CloseStdinResponse:
        command = self.state.sandbox(ctx.request_headers).find(request.process)
        if command.process.stdin is not None:
            command.process.stdin.close()
        return process_pb.CloseStdinResponse()


def _keepalive(ctx: RequestContext[Any, Any]) -> float | None:
    value = ctx.request_headers.get(_KEEPALIVE_HEADER)
    return float(value) if value and value.isdigit() and int(value) > 0 else None


class _FilesystemService(filesystem_connect.Filesystem):
    """envd's ``filesystem.Filesystem`` service as far as the SDK's files API uses it (no watches)."""

    def __init__(self, state: StandInState) -> None:
        self.state = state

    def _existing(self, ctx: RequestContext[Any, Any], path: str) -> tuple[StandInSandbox, Path]:
        sandbox = self.state.sandbox(ctx.request_headers)
        host = sandbox.host_path(path)
        if not os.path.lexists(host):
            raise ConnectError(Code.NOT_FOUND, f"path '{path}' does not exist")
        return sandbox, host

    async def stat(self, request: filesystem_pb.StatRequest,
                   ctx: RequestContext[filesystem_pb.StatRequest, filesystem_pb.StatResponse],
                   ) -> filesystem_pb.StatResponse:
        sandbox, host = self._existing(ctx, request.path)
        return filesystem_pb.StatResponse(entry=sandbox.entry(host))

    async def make_dir(self, request: filesystem_pb.MakeDirRequest,
                       ctx: RequestContext[filesystem_pb.MakeDirRequest, filesystem_pb.MakeDirResponse],
                       ) -> filesystem_pb.MakeDirResponse:
        sandbox = self.state.sandbox(ctx.request_headers)
        host = sandbox.host_path(request.path)
        if host.exists():
            raise ConnectError(Code.ALREADY_EXISTS, f"directory '{request.path}' already exists")
        host.mkdir(parents=True)
        return filesystem_pb.MakeDirResponse(entry=sandbox.entry(host))

    async def move(self, request: filesystem_pb.MoveRequest,
                   ctx: RequestContext[filesystem_pb.MoveRequest, filesystem_pb.MoveResponse],
                   ) -> filesystem_pb.MoveResponse:
        sandbox, source = self._existing(ctx, request.source)
        target = sandbox.host_path(request.destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)
        return filesystem_pb.MoveResponse(entry=sandbox.entry(target))

    async def list_dir(self, request: filesystem_pb.ListDirRequest,
                       ctx: RequestContext[filesystem_pb.ListDirRequest, filesystem_pb.ListDirResponse],
                       ) -> filesystem_pb.ListDirResponse:
        sandbox, host = self._existing(ctx, request.path)
        if not host.is_dir():
            raise ConnectError(Code.INVALID_ARGUMENT, f"path '{request.path}' is not a directory")
        depth = max(1, request.depth)
        entries = [sandbox.entry(p) for p in sorted(host.rglob("*"))
                   if len(p.relative_to(host).parts) <= depth]
        return filesystem_pb.ListDirResponse(entries=entries)

    async def remove(self, request: filesystem_pb.RemoveRequest,
                     ctx: RequestContext[filesystem_pb.RemoveRequest, filesystem_pb.RemoveResponse],
                     ) -> filesystem_pb.RemoveResponse:
        _, host = self._existing(ctx, request.path)
        if host.is_dir() and not host.is_symlink():
            shutil.rmtree(host)
        else:
            host.unlink()
        return filesystem_pb.RemoveResponse()


def _gate(state: StandInState, headers: Any) -> StandInSandbox | Response:
    """The sandbox proxy's checks in front of envd: a request for no live sandbox gets the plain 502
    E2B's proxy answers (the SDK makes it ``SandboxNotRunningException``), a wrong access token 401."""
    sandbox_id = headers.get(_SANDBOX_HEADER, "")
    sandbox = state.sandboxes.get(sandbox_id)
    if sandbox is None:
        return _error(502, f"The sandbox {sandbox_id} was not found")
    if headers.get(_TOKEN_HEADER) != sandbox.access_token:
        return _error(401, "invalid or missing access token")
    return sandbox


class _SandboxGate:
    """:func:`_gate` in front of a Connect application."""

    def __init__(self, state: StandInState, app: ASGIApp) -> None:
        self.state = state
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            checked = _gate(self.state, Headers(scope=scope))
            if isinstance(checked, Response):
                return await checked(scope, receive, send)
        await self.app(scope, receive, send)


def build_app(state: StandInState) -> Starlette:
    """The ASGI app: E2B's REST API routes the SDK calls, envd behind the sandbox gate, and
    ``/_standin/sandboxes`` for tests to count live sandboxes."""

    def authorized(request: Request) -> Response | None:
        key = request.headers.get("x-api-key")
        if not key or (state.api_key is not None and key != state.api_key):
            return _error(401, "Invalid API key")
        return None

    def created(sandbox: StandInSandbox, status: int) -> JSONResponse:
        body = Sandbox(template_id=sandbox.template_id, sandbox_id=sandbox.sandbox_id, client_id="standin",
                       envd_version=ENVD_VERSION, envd_access_token=sandbox.access_token, domain="localhost")
        return JSONResponse(body.to_dict(), status_code=status)

    def listed(s: StandInSandbox) -> dict[str, Any]:
        return ListedSandbox(template_id=s.template_id, sandbox_id=s.sandbox_id, client_id="standin",
                             started_at=s.started_at, end_at=s.end_at, cpu_count=os.cpu_count() or 1,
                             memory_mb=512, disk_size_mb=0, state=SandboxState.RUNNING, envd_version=ENVD_VERSION,
                             metadata=s.metadata).to_dict()

    async def create(request: Request) -> Response:
        if (denied := authorized(request)) is not None:
            return denied
        if state.max_sandboxes is not None and len(state.sandboxes) >= state.max_sandboxes:
            # "Should-Retry: false": retrying cannot free a slot held by the caller's own sandboxes.
            return _error(429, CAP_MESSAGE.format(cap=state.max_sandboxes), headers={"Should-Retry": "false"})
        sandbox = await state.create(NewSandboxV2.from_dict(await request.json()))
        await asyncio.sleep(state.create_answer_delay_s)
        return created(sandbox, 201)

    async def list_sandboxes(request: Request) -> Response:
        if (denied := authorized(request)) is not None:
            return denied
        # `metadata` is itself a query string of percent-encoded pairs (see the SDK's paginator).
        wanted = {unquote(k): unquote(v) for k, v in parse_qsl(request.query_params.get("metadata", ""))}
        states = set(filter(None, request.query_params.get("state", "").split(",")))
        rows = [s for s in state.sandboxes.values()
                if all(s.metadata.get(k) == v for k, v in wanted.items()) and (not states or "running" in states)]
        start = int(request.query_params.get("nextToken") or 0)
        limit = int(request.query_params.get("limit") or 100)
        page = rows[start:start + limit]
        more = {"x-next-token": str(start + limit)} if start + limit < len(rows) else None
        return JSONResponse([listed(s) for s in page], headers=more)

    async def kill(request: Request) -> Response:
        if (denied := authorized(request)) is not None:
            return denied
        if await state.kill(request.path_params["sandbox_id"]):
            return Response(status_code=204)
        return _error(404, f"sandbox \"{request.path_params['sandbox_id']}\" not found")

    async def set_timeout(request: Request) -> Response:
        if (denied := authorized(request)) is not None:
            return denied
        sandbox = state.sandboxes.get(request.path_params["sandbox_id"])
        if sandbox is None:
            return _error(404, f"sandbox \"{request.path_params['sandbox_id']}\" not found")
        body = SandboxTimeoutRequest.from_dict(await request.json())
        sandbox.end_at = _utcnow() + dt.timedelta(seconds=body.timeout)
        return Response(status_code=204)

    async def connect(request: Request) -> Response:
        if (denied := authorized(request)) is not None:
            return denied
        sandbox = state.sandboxes.get(request.path_params["sandbox_id"])
        if sandbox is None:
            return _error(404, f"sandbox \"{request.path_params['sandbox_id']}\" not found")
        return created(sandbox, 200)

    async def info(request: Request) -> Response:
        if (denied := authorized(request)) is not None:
            return denied
        s = state.sandboxes.get(request.path_params["sandbox_id"])
        if s is None:
            return _error(404, f"sandbox \"{request.path_params['sandbox_id']}\" not found")
        return JSONResponse(SandboxDetail(
            template_id=s.template_id, sandbox_id=s.sandbox_id, client_id="standin", started_at=s.started_at,
            end_at=s.end_at, envd_version=ENVD_VERSION, cpu_count=os.cpu_count() or 1, memory_mb=512,
            disk_size_mb=0, state=SandboxState.RUNNING, envd_access_token=s.access_token, domain="localhost",
            metadata=s.metadata).to_dict())

    async def health(request: Request) -> Response:
        checked = _gate(state, request.headers)
        return checked if isinstance(checked, Response) else Response(status_code=204)

    async def download(request: Request) -> Response:
        sandbox = _gate(state, request.headers)
        if isinstance(sandbox, Response):
            return sandbox
        path = request.query_params.get("path", "")
        host = sandbox.host_path(path)
        if not host.is_file():
            return _error(404, f"path '{path}' does not exist")
        return FileResponse(host, media_type="application/octet-stream")

    async def upload(request: Request) -> Response:
        """``files.write``/``write_files``: one octet-stream body for ``?path=``, or multipart
        ``file`` parts named by their paths (``?path=`` names a single one)."""
        sandbox = _gate(state, request.headers)
        if isinstance(sandbox, Response):
            return sandbox
        given = request.query_params.get("path")
        parts: list[tuple[str, bytes]] = []
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form(max_files=100_000) as form:
                uploads = [(f.filename or "", await f.read()) for _, f in form.multi_items()
                           if isinstance(f, UploadFile)]
            if given and len(uploads) == 1:
                uploads = [(given, uploads[0][1])]
            parts = uploads
        else:
            data = await request.body()
            if request.headers.get("content-encoding", "").lower() == "gzip":
                data = gzip.decompress(data)
            parts = [(given or "", data)]
        written = []
        for path, data in parts:
            if not path:
                return _error(400, "no path given for an uploaded file")
            host = sandbox.host_path(path)
            host.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(host.write_bytes, data)
            written.append({"name": host.name, "type": "file", "path": sandbox.sandbox_path(host)})
        return JSONResponse(written)

    async def live(request: Request) -> Response:
        return JSONResponse({"live": len(state.sandboxes), "created": state.created, "sandboxes": [
            {"sandboxID": s.sandbox_id, "metadata": s.metadata, "pids": sorted(s.commands)}
            for s in state.sandboxes.values()]})

    process_app = process_connect.ProcessASGIApplication(_ProcessService(state))
    filesystem_app = filesystem_connect.FilesystemASGIApplication(_FilesystemService(state))
    return Starlette(routes=[
        Route("/health", health, methods=["GET"]),
        Route("/files", download, methods=["GET"]),
        Route("/files", upload, methods=["POST"]),
        Route("/v2/sandboxes", create, methods=["POST"]),
        Route("/v2/sandboxes", list_sandboxes, methods=["GET"]),
        Route("/sandboxes/{sandbox_id}", info, methods=["GET"]),
        Route("/sandboxes/{sandbox_id}", kill, methods=["DELETE"]),
        Route("/sandboxes/{sandbox_id}/timeout", set_timeout, methods=["POST"]),
        Route("/v2/sandboxes/{sandbox_id}/connect", connect, methods=["POST"]),
        Route("/_standin/sandboxes", live, methods=["GET"]),
        Mount(process_app.path, app=_SandboxGate(state, process_app)),
        Mount(filesystem_app.path, app=_SandboxGate(state, filesystem_app)),
    ])


async def serve(sock: socket.socket, state: StandInState, started: Callable[[uvicorn.Server], None] | None = None,
                ) -> None:
    """Serve the stand-in on a bound socket until the server is told to exit, then kill every
    sandbox left: no process or directory outlives the stand-in."""
    config = uvicorn.Config(build_app(state), log_level="warning", lifespan="off", ws="none",
                            timeout_graceful_shutdown=2)
    server = _Server(config)

    async def watch() -> None:
        while not server.started:
            await asyncio.sleep(0.02)
        if started is not None:
            started(server)
        while not server.should_exit:
            await asyncio.sleep(0.05)
        await state.kill_all()  # first: open command streams would hold up the graceful shutdown

    tasks = [asyncio.get_running_loop().create_task(t) for t in (state.reap(), watch())]
    try:
        await server.serve(sockets=[sock])
    finally:
        for task in tasks:
            task.cancel()
        await state.kill_all()


class _Server(uvicorn.Server):
    """uvicorn's server, except that SIGINT/SIGTERM only ask it to exit: uvicorn re-raises the
    signal once it has shut down, which would end this process before :func:`serve` had killed
    the sandboxes' processes (they are in process groups of their own, so they would outlive it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class E2BStandIn:
    """The stand-in served from a thread of this process (its own event loop), for tests and
    ``--e2b-standin`` runs: ``with E2BStandIn() as standin: AsyncSandbox.create(**standin.connection_opts())``."""

    def __init__(self, port: int = 0, *, api_key: str | None = None, max_sandboxes: int | None = None,
                 base: Path | None = None, create_answer_delay_s: float = 0.0) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if base is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="e2b-standin-")
            base = Path(self._tmp.name)
        self.base = base
        self.state = StandInState(self.base, api_key=api_key, max_sandboxes=max_sandboxes,
                                  create_answer_delay_s=create_answer_delay_s)
        self.api_key = api_key or "e2b_standin"
        self._sock = bind(port=port)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def connection_opts(self) -> dict[str, Any]:
        """The SDK's connection options (``ApiParams``) that point it here; ``debug`` stays off."""
        return {"api_key": self.api_key, "api_url": self.url, "sandbox_url": self.url, "debug": False}

    def start(self) -> E2BStandIn:
        def run() -> None:
            try:
                asyncio.run(self._main())
            except BaseException as e:  # reported to start() / close(), not lost in the thread
                self._error = e
                self._ready.set()

        self._thread = threading.Thread(target=run, name="e2b-standin", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the E2B stand-in did not start: {self._error!r}")
        return self

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()

        def started(server: uvicorn.Server) -> None:
            self._server = server
            self._ready.set()

        await serve(self._sock, self.state, started)

    def live_count(self) -> int:
        """How many sandboxes are alive (a len() of a dict the server thread mutates: atomic under the GIL)."""
        return len(self.state.sandboxes)

    def live(self) -> dict[str, dict[str, str]]:
        """Live sandboxes' metadata by id."""
        return {s.sandbox_id: dict(s.metadata) for s in list(self.state.sandboxes.values())}

    def pids(self, sandbox_id: str) -> list[int]:
        """The process ids of a live sandbox's running commands."""
        sandbox = self.state.sandboxes.get(sandbox_id)
        return sorted(sandbox.commands) if sandbox is not None else []

    def close(self) -> None:
        """Kill every sandbox, then stop the server (in that order: open command streams would
        otherwise hold the graceful shutdown)."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.state.kill_all(), self._loop).result(15)
            if self._server is not None:
                self._server.should_exit = True
            self._thread.join(15)
        self._sock.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> E2BStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m swarm.runtime.e2b_standin``: serve until SIGINT/SIGTERM, then kill every sandbox."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any non-empty key)")
    parser.add_argument("--max-sandboxes", type=int, default=None, help="answer creates past this many with E2B's 429")
    parser.add_argument("--dir", type=Path, default=None, help="where sandbox directories go (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with contextlib.ExitStack() as stack:
        base = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="e2b-standin-")))
        sock = bind(args.host, args.port)
        state = StandInState(base, api_key=args.api_key, max_sandboxes=args.max_sandboxes)
        url = f"http://{args.host}:{sock.getsockname()[1]}"
        print(json.dumps({"url": url, "api_url": url, "sandbox_url": url}), flush=True)
        asyncio.run(serve(sock, state))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
