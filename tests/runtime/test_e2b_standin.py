"""The sandbox lifecycle (:mod:`swarm.runtime.sandboxes`) through the real ``e2b`` SDK against the
loopback stand-in (:mod:`swarm.runtime.e2b_standin`): files, streamed commands, ports, kills on
every way out, leftovers of a killed run, the cap, and failing fast without a key or network."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import AsyncSandbox, SandboxNotRunningException

from swarm.runtime.e2b_standin import E2BStandIn
from swarm.runtime.sandboxes import (E2BUnavailable, FleetConfig, SandboxCapReached, SandboxFleet, build_wheel)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the SDK's async client runs on asyncio only


@pytest.fixture
def standin() -> Iterator[E2BStandIn]:
    with E2BStandIn() as s:
        yield s


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(predicate, what: str, within_s: float = 10.0) -> None:
    """Poll a condition the stand-in reaches on its own thread (bounded so a bug fails, never hangs)."""
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_two_sandboxes_keep_their_own_files_and_stream_command_lines(standin):
    async with SandboxFleet(FleetConfig.for_standin(standin.url, "run-a")) as fleet:
        a = await fleet.create("a", envs={"GREETING": "hi from a"})
        b = await fleet.create("b")
        assert standin.live_count() == 2 and a.id != b.id
        assert all(m["swarm-run"] == "run-a" for m in standin.live().values())  # tagged at create

        await fleet.upload(a, {"/home/user/data/note.txt": "only in a", "/home/user/bin.dat": b"\x00\xff"})
        assert await a.sandbox.files.read("/home/user/data/note.txt") == "only in a"
        assert bytes(await a.sandbox.files.read("bin.dat", format="bytes")) == b"\x00\xff"  # relative to home
        assert not await b.sandbox.files.exists("/home/user/data/note.txt")

        lines: list[str] = []
        cmd = await fleet.start(a, 'echo "$GREETING"; for i in 1 2 3; do echo "line $i"; done; cat data/note.txt',
                                lines.append)
        assert await cmd.wait() == 0
        assert lines == ["hi from a", "line 1", "line 2", "line 3", "only in a"]

        result = await fleet.run(b, "echo out; echo err >&2; exit 0")
        assert (result.stdout, result.stderr) == ("out\n", "err\n")
    assert standin.live_count() == 0


async def test_a_server_in_a_sandbox_answers_at_its_host_while_its_lines_stream(standin):
    port = free_port()
    async with SandboxFleet(FleetConfig.for_standin(standin.url, "run-h")) as fleet:
        sb = await fleet.create("web")
        await fleet.upload(sb, {"/home/user/www/index.html": "served from the sandbox"})
        serving = asyncio.Event()
        server = await fleet.start(sb, f"cd www && exec python -u -m http.server {port} --bind 127.0.0.1",
                                   lambda line: serving.set() if "Serving HTTP" in line else None)
        await asyncio.wait_for(serving.wait(), 20)  # a line seen while the command still runs
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{fleet.url(sb, port)}/index.html")
        assert fleet.host(sb, port) == f"127.0.0.1:{port}"
        assert response.text == "served from the sandbox"
        assert await server.kill()
        assert await server.wait() == -1  # ended by a signal, as envd reports it


async def test_killing_one_sandbox_ends_its_processes_and_files_and_spares_the_other(standin):
    async with SandboxFleet(FleetConfig.for_standin(standin.url, "run-k")) as fleet:
        a, b = await fleet.create("a"), await fleet.create("b")
        sleep_a = await fleet.start(a, "sleep 60", lambda _: None)
        sleep_b = await fleet.start(b, "sleep 60", lambda _: None)
        root_a = standin.state.sandboxes[a.id].root
        assert alive(sleep_a.pid) and alive(sleep_b.pid) and root_a.is_dir()

        await fleet.kill(a)
        assert not alive(sleep_a.pid) and not root_a.exists()
        assert alive(sleep_b.pid) and standin.live_count() == 1
        assert await sleep_a.wait() == -1
        with pytest.raises(SandboxNotRunningException):
            await a.sandbox.files.read("/home/user/anything")
        assert fleet.usage().seconds[a.id] == fleet.usage().seconds[a.id] > 0  # its clock stopped at the kill
    assert not alive(sleep_b.pid) and standin.live_count() == 0


async def test_a_fleet_left_by_an_exception_or_a_cancellation_leaves_no_sandbox(standin):
    pids: list[int] = []

    async def body(fleet: SandboxFleet) -> None:
        for name in ("x", "y"):
            sb = await fleet.create(name)
            pids.append((await fleet.start(sb, "sleep 60", lambda _: None)).pid)

    with pytest.raises(RuntimeError, match="midway"):
        async with SandboxFleet(FleetConfig.for_standin(standin.url, "run-x")) as fleet:
            await body(fleet)
            assert standin.live_count() == 2
            raise RuntimeError("crashed midway")
    assert standin.live_count() == 0 and not any(alive(p) for p in pids)

    started = asyncio.Event()

    async def interrupted() -> None:  # what Ctrl-C does to asyncio.run's main task: cancel it
        async with SandboxFleet(FleetConfig.for_standin(standin.url, "run-c")) as fleet:
            await body(fleet)
            started.set()
            await asyncio.sleep(60)

    task = asyncio.ensure_future(interrupted())
    await asyncio.wait_for(started.wait(), 20)
    assert standin.live_count() == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert standin.live_count() == 0 and not any(alive(p) for p in pids)


async def test_a_create_cancelled_before_its_answer_does_not_leak_the_sandbox():
    with E2BStandIn(create_answer_delay_s=0.5) as standin:
        fleet = SandboxFleet(FleetConfig.for_standin(standin.url, "run-cc"))
        creating = asyncio.ensure_future(fleet.create("slow"))
        await until(lambda: standin.live_count() == 1, "the stand-in to make the sandbox")
        creating.cancel()  # Ctrl-C while E2B has made the sandbox but not yet said which
        with pytest.raises(asyncio.CancelledError):
            await creating
        assert standin.live_count() == 0 and fleet.live() == []


async def test_cleanup_leftovers_kills_what_a_killed_run_left_and_spares_live_runs(standin):
    killed_run = textwrap.dedent(f"""
        import asyncio, os, signal
        from swarm.runtime.sandboxes import FleetConfig, SandboxFleet
        async def main():
            fleet = SandboxFleet(FleetConfig.for_standin({standin.url!r}, "old-run"))
            sb = await fleet.create("orphan")
            print(sb.id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # killed outright: no cleanup runs
        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", killed_run], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == -signal.SIGKILL
    orphan = proc.stdout.strip()
    assert orphan in standin.live()

    async with SandboxFleet(FleetConfig.for_standin(standin.url, "other-live-run")) as other, \
            SandboxFleet(FleetConfig.for_standin(standin.url, "new-run")) as fleet:
        kept = await other.create("still-running")  # its owner (this process) is alive
        mine = await fleet.create("mine")
        assert await fleet.cleanup_leftovers() == [orphan]
        assert set(standin.live()) == {kept.id, mine.id}
        assert await fleet.cleanup_leftovers() == []


async def test_the_plans_sandbox_cap_is_one_clear_error(tmp_path):
    with E2BStandIn(max_sandboxes=1) as standin:
        async with SandboxFleet(FleetConfig.for_standin(standin.url, "run-cap")) as fleet:
            await fleet.create("first")
            with pytest.raises(SandboxCapReached, match=r"maximum number of concurrent E2B sandboxes \(1\)") as e:
                await fleet.create("second")  # E2B's own 429, recognised
            assert "\n" not in str(e.value)
        async with SandboxFleet(FleetConfig.for_standin(standin.url, "run-cap2", max_live=1)) as fleet:
            await fleet.create("first")
            created = standin.state.created
            with pytest.raises(SandboxCapReached, match="cap of 1"):
                await fleet.create("second")  # the fleet's own check: E2B is not even asked
            assert standin.state.created == created


async def test_without_a_key_it_fails_at_once_naming_the_variable(monkeypatch):
    monkeypatch.delenv("E2B_API_KEY", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("the SDK was called")

    monkeypatch.setattr(AsyncSandbox, "create", no_network)
    monkeypatch.setattr(AsyncSandbox, "list", no_network)
    fleet = SandboxFleet(FleetConfig(run_id="r"))  # the real cloud
    for attempt in (fleet.__aenter__(), fleet.create("a"), fleet.cleanup_leftovers()):
        with pytest.raises(E2BUnavailable, match="E2B_API_KEY is not set") as e:
            await attempt
        assert "\n" not in str(e.value)


async def test_an_unreachable_api_is_one_clear_error():
    closed = f"http://127.0.0.1:{free_port()}"
    async with SandboxFleet(FleetConfig.for_standin(closed, "run-n")) as fleet:
        with pytest.raises(E2BUnavailable, match=f"cannot reach the E2B API at {closed}") as e:
            await fleet.create("a")
        assert "\n" not in str(e.value) and fleet.live() == []


async def test_a_sandbox_dies_at_its_timeout_and_set_timeout_extends_it(standin):
    async with SandboxFleet(FleetConfig.for_standin(standin.url, "run-t", sandbox_timeout_s=1)) as fleet:
        short, extended = await fleet.create("short"), await fleet.create("extended")
        await extended.sandbox.set_timeout(600)
        await until(lambda: short.id not in standin.live(), "the stand-in to kill the timed-out sandbox")
        assert extended.id in standin.live()


async def test_usage_prices_sandbox_seconds_at_the_configured_rate(standin):
    cfg = FleetConfig.for_standin(standin.url, "run-u", vcpus=4, memory_gib=1.0, usd_per_vcpu_hour=0.36,
                                  usd_per_gib_hour=0.72)
    async with SandboxFleet(cfg) as fleet:
        a, b = await fleet.create("a"), await fleet.create("b")
        await fleet.kill(a)
        await fleet.kill(b)
        usage = fleet.usage()
    assert set(usage.seconds) == {a.id, b.id} and all(s > 0 for s in usage.seconds.values())
    assert usage.usd_per_second == pytest.approx((4 * 0.36 + 1.0 * 0.72) / 3600)
    assert usage.usd == pytest.approx(usage.total_seconds * usage.usd_per_second)


async def test_a_wheel_already_built_for_the_run_is_reused(tmp_path, monkeypatch):
    built = tmp_path / "wheels" / "reasoningbank_swarm-0.1.0-py3-none-any.whl"
    built.parent.mkdir()
    built.write_bytes(b"built earlier in this run")

    async def no_build(*args, **kwargs):
        raise AssertionError("pip was run again")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", no_build)
    assert await build_wheel(Path.cwd(), built.parent) == built


@pytest.mark.slow
async def test_the_projects_wheel_installs_in_a_sandbox_without_touching_this_environment(standin, tmp_path):
    here = importlib.util.find_spec("swarm")
    assert here is not None
    checkout = Path(str(here.origin)).parent.parent
    wheel = await build_wheel(checkout, tmp_path / "wheels")  # isolated: the declared setuptools, from PyPI or pip's cache
    assert wheel.name.startswith("reasoningbank_swarm-")
    async with SandboxFleet(FleetConfig.for_standin(standin.url, "run-w")) as fleet:
        sb = await fleet.create("w")
        python = await fleet.install_wheel(sb, wheel)
        result = await fleet.run(sb, f'{python} -c "import swarm.runtime.sandboxes as m; print(m.__file__)"')
        assert "/.swarm-site/swarm/runtime/sandboxes.py" in result.stdout  # the wheel's copy, not this checkout
    assert importlib.util.find_spec("swarm") == here  # this environment's is untouched


def test_the_standin_runs_as_a_process_and_kills_its_sandboxes_on_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "swarm.runtime.e2b_standin", "--port", "0", "--dir", str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["url"]

        async def start_one() -> int:
            fleet = SandboxFleet(FleetConfig.for_standin(url, "run-p"))
            sb = await fleet.create("p")
            return (await fleet.start(sb, "sleep 60", lambda _: None)).pid

        pid = asyncio.run(start_one())
        assert httpx.get(f"{url}/_standin/sandboxes").json()["live"] == 1 and alive(pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert not alive(pid) and list(tmp_path.iterdir()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
