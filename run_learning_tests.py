#!/usr/bin/env python3
"""Run the learning-pattern suite and write its metrics and comparison report.

    python run_learning_tests.py                 # every pattern, results in results/
    python run_learning_tests.py -k mesh         # one pattern (whole words; and, or, not, parentheses)
    python run_learning_tests.py --list          # what there is to run
    python run_learning_tests.py --quick --jobs 2 --out /tmp/r
    python run_learning_tests.py --transport quic          # swarms gossip over real QUIC
    python run_learning_tests.py --runtime process         # ...with every agent an OS process
    python run_learning_tests.py --runtime e2b --e2b-standin -k mesh   # ...in (stand-in) E2B sandboxes

Exit status: 0 every check passed, 1 some check failed, 2 bad usage or input, 130 stopped by SIGINT
(Ctrl-C), 143 stopped by SIGTERM (what finished is reported, marked "interrupted").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent
SUITE = [str(ROOT / "tests" / "patterns")]
TRANSPORTS = ("sim", "quic", "websocket")
RUNTIMES = ("in-process", "process", "e2b")
DEFAULT_JOBS = max(1, min(os.cpu_count() or 1, 4))  # one pattern file per core


class UsageError(Exception):
    pass


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="run_learning_tests.py", description=__doc__.splitlines()[0])
    ap.add_argument("-k", dest="keyword", default=None,
                    help="select by whole words: a pattern id, module or behaviour, or a part of one split at "
                         "- or _, combined with and, or, not, parentheses (e.g. -k 'mesh and fault')")
    ap.add_argument("--list", action="store_true", help="list the patterns and behaviours, run nothing")
    ap.add_argument("--out", default="results", help="directory for metrics JSON and the report (default results/)")
    ap.add_argument("--seed", type=int, default=0, help="first seed of every pattern (default 0)")
    ap.add_argument("--seeds", type=int, default=None,
                    help="seeds per pattern: figures are means with 95%% CIs over them (default: each pattern's "
                         "own, 3 for most, 5 for mesh, 10 for multi-strategy: SEEDS in scenarios/*.py)")
    ap.add_argument("--quick", action="store_true", help="shorter runs: fewer episodes and markets")
    ap.add_argument("--transport", default=None,
                    help=f"gossip bus: {', '.join(TRANSPORTS)} (default sim; quic with --runtime process)")
    ap.add_argument("--runtime", default="in-process",
                    help=f"where agents run: {', '.join(RUNTIMES)} (e2b: one E2B sandbox each, needs E2B_API_KEY "
                         "or --e2b-standin)")
    ap.add_argument("--e2b-standin", action="store_true",
                    help="with --runtime e2b: run a local stand-in of E2B for the run (no account, no network)")
    ap.add_argument("--e2b-template", default=None,
                    help="with --runtime e2b: sandbox template (default $SWARM_E2B_TEMPLATE or base)")
    ap.add_argument("--e2b-max-sandboxes", type=int, default=None,
                    help="with --runtime e2b: the plan's concurrent-sandbox cap (default $SWARM_E2B_MAX_SANDBOXES)")
    ap.add_argument("--e2b-usd-per-vcpu-hour", type=float, default=None,
                    help="with --runtime e2b: price for the cost estimate (default $SWARM_E2B_USD_PER_VCPU_HOUR or "
                         "E2B's published price)")
    ap.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                    help=f"parallel worker processes (default {DEFAULT_JOBS}: one per core, at most 4)")
    ap.add_argument("--topology", action="append", default=[], metavar="MODULE",
                    help="a module (dotted name or .py file) that registers a topology of your own; it then runs, "
                         "is listed and reported like the built-in ones (repeatable; entry points in the "
                         "reasoningbank_swarm.topologies group load without it)")
    ap.add_argument("--market", default="synthetic",
                    help="prices: synthetic (default) or csv:PATH[,PATH...], real OHLCV files (validated before "
                         "anything runs; see swarm/learning/markets.py for which stretch each seed and symbol reads)")

    def error(message: str) -> Any:
        raise UsageError(message)

    ap.error = error  # type: ignore[method-assign]
    args = ap.parse_args(argv)
    if args.seed < 0:
        raise UsageError("--seed must be >= 0")
    if args.seeds is not None and args.seeds < 1:
        raise UsageError("--seeds must be >= 1")
    if args.jobs < 1:
        raise UsageError("--jobs must be >= 1")
    args.keyword = (args.keyword or "").strip() or None
    if args.keyword is not None:
        _compile(args.keyword)  # a malformed -k is a usage error before anything runs
    if args.transport is not None and args.transport not in TRANSPORTS:
        raise UsageError(f"--transport must be one of {', '.join(TRANSPORTS)}, not {args.transport!r}")
    if args.runtime not in RUNTIMES:
        raise UsageError(f"--runtime must be one of {', '.join(RUNTIMES)}, not {args.runtime!r}")
    e2b_flags = args.e2b_standin or any(v is not None for v in (args.e2b_template, args.e2b_max_sandboxes,
                                                                 args.e2b_usd_per_vcpu_hour))
    if e2b_flags and args.runtime != "e2b":
        raise UsageError("the --e2b-* options go with --runtime e2b")
    if args.runtime == "e2b":
        if args.transport not in (None, "websocket"):
            raise UsageError("--runtime e2b runs on --transport websocket (sandboxes accept only HTTPS/WebSocket)")
        args.transport = "websocket"
        if args.e2b_max_sandboxes is not None and args.e2b_max_sandboxes < 1:
            raise UsageError("--e2b-max-sandboxes must be >= 1")
        if args.e2b_usd_per_vcpu_hour is not None and args.e2b_usd_per_vcpu_hour < 0:
            raise UsageError("--e2b-usd-per-vcpu-hour must be >= 0")
        if not args.e2b_standin and not os.environ.get("E2B_API_KEY"):  # before anything else: no network call
            raise UsageError("E2B_API_KEY is not set: export your E2B API key (https://e2b.dev/dashboard), "
                             "or try the cloud path locally with --e2b-standin")
    if args.runtime == "process":
        if args.transport == "sim":
            raise UsageError("--runtime process needs a real bus: use --transport quic (the default with it) "
                             "or websocket")
        args.transport = args.transport or "quic"
    args.transport = args.transport or "sim"
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    args.market = args.market.strip()
    if args.market != "synthetic":  # load and validate the files now: a bad one is one line and exit 2
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from swarm.learning.markets import CsvSource, parse as parse_market

        try:
            source = parse_market(args.market)
        except ValueError as e:  # MarketDataError: a bad --market value or a bad file
            raise UsageError(str(e).splitlines()[0] if str(e) else repr(e)) from None
        if isinstance(source, CsvSource):  # absolute paths, so every pytest worker reads the same files
            args.market = "csv:" + ",".join(str(f.resolve()) for f in source.files)
    return args


def _compile(keyword: str) -> Any:
    """The -k expression compiled by pytest's own parser (identifiers with and, or, not, parentheses).

    ``_pytest.mark.expression`` is private pytest API: it is used here only, so a pytest upgrade that moves
    it breaks this one function. Its errors (ParseError before pytest 8.4, SyntaxError since) become a
    UsageError, which the runner prints as one line and exits 2.
    """
    from _pytest.mark import expression

    errors = (SyntaxError, getattr(expression, "ParseError", SyntaxError))
    try:
        compiled = expression.Expression.compile(keyword)
    except errors as e:
        message = getattr(e, "msg", None) or getattr(e, "message", None) or str(e)
        column = getattr(e, "offset", None) or getattr(e, "column", None)
        where = f" at column {column}" if column else ""
        raise UsageError(f"bad -k expression {keyword!r}{where}: {message}".replace("\n", " ")) from None
    # pytest's grammar also has name(arg=value) calls; a valid expression holds "=" only in one of them
    if "=" in keyword:
        raise UsageError(f"bad -k expression {keyword!r}: -k takes no name(arg=value) calls")
    return compiled


class _Test(NamedTuple):
    """What a collected test is about: the pattern id it checks, its module's short name, its behaviour."""

    pattern: str
    module: str
    behaviour: str


def _describe(item: Any) -> _Test:
    """A test's pattern id (its ``pattern`` marker, else its ``pattern`` parameter, else its module),
    module short name (test_auto_scale.py -> auto_scale) and behaviour (test_hub_relay -> hub_relay)."""
    module = Path(str(item.path)).stem.removeprefix("test_")
    marker = item.get_closest_marker("pattern")
    params = getattr(getattr(item, "callspec", None), "params", {})
    pattern = marker.args[0] if marker and marker.args else params.get("pattern", module.replace("_", "-"))
    behaviour = getattr(item, "originalname", item.name).removeprefix("test_")
    return _Test(str(pattern), module, behaviour)


def _norm(word: str) -> str:
    """Words compare case-insensitively, with "-" and "_" alike."""
    return word.lower().replace("_", "-")


def _words(test: _Test) -> frozenset[str]:
    """The words a -k identifier may equal: the pattern id, module and behaviour, each whole and in parts."""
    return frozenset(part for name in test for part in (_norm(name), *_norm(name).split("-")) if part)


def _selects(expression: Any, test: _Test) -> bool:
    """Whether the compiled -k expression holds for this test, each identifier matching a whole word."""
    words = _words(test)
    return bool(expression.evaluate(lambda name, /, **kwargs: _norm(name) in words))


class _Select:
    """pytest plugin: keep only the tests the -k expression selects (by whole words, see _words)."""

    def __init__(self, keyword: str) -> None:
        self.expression = _compile(keyword)

    def pytest_collection_modifyitems(self, config: Any, items: list[Any]) -> None:
        keep, drop = [], []
        for item in items:
            (keep if _selects(self.expression, _describe(item)) else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


# This module is also loaded into pytest with `-p run_learning_tests`, so that xdist workers (--jobs),
# which collect for themselves, apply the same selection: the runner hands them -k as --swarm-keyword.
def pytest_addoption(parser: Any) -> None:
    parser.addoption("--swarm-keyword", default=None, help="run_learning_tests.py -k: select by whole words")


def pytest_configure(config: Any) -> None:
    keyword = config.getoption("swarm_keyword")
    if keyword:
        config.pluginmanager.register(_Select(keyword), "swarm-select")
    if hasattr(config, "workerinput"):  # an xdist worker (--jobs): the runner forwards its signal here as SIGINT
        STOP.install(respect_ignored=False)
        config.pluginmanager.register(_stop_hooks(), "swarm-stop")


class _Stop:
    """SIGINT and SIGTERM stop a run the same way, in the runner and in each --jobs worker.

    The first one interrupts what the main thread runs, as Ctrl-C does, so that the swarm running
    there unwinds (its agent processes are killed, its temporary directory removed), pytest ends the
    session as interrupted and the report covers what finished (reports.plugin):

    * outside an event loop (a simulated swarm, pytest itself) it raises KeyboardInterrupt;
    * inside ``asyncio.Runner.run`` (a real-time swarm: anyio.run) it cancels that run's main task,
      as asyncio's own SIGINT handling does, so that every task and thread of the loop winds down in
      the loop; the test then ends in an interruption (see _stop_hooks). A KeyboardInterrupt out of
      a running loop would skip that: anyio's worker threads were left waiting and the process never
      exited. While a loop tears itself down (its main task done) it looks again 0.1 s later.

    In the runner the signal is also forwarded to the workers as SIGINT. Later signals are only
    noted, so that cleanup runs to its end (a terminal's Ctrl-C reaches the workers twice: from the
    terminal and from the runner). Once the session finishes (the report is being written) a signal
    is only noted too.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.armed = False
        self.raised = False  # a KeyboardInterrupt was raised: nothing more to do
        self.workers: list[Any] = []  # each --jobs worker's subprocess.Popen
        self._previous: dict[int, Any] = {}
        self._cancelled: Any = None  # weak set of the asyncio tasks cancelled here
        self._retry: threading.Thread | None = None

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    def install(self, *, respect_ignored: bool) -> None:
        import weakref

        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if respect_ignored and previous is signal.SIG_IGN:  # e.g. SIGINT of a shell's background job
                continue
            self._previous.setdefault(sig, previous)
            signal.signal(sig, self._handle)
        self.signum, self.armed, self.raised, self.workers = None, True, False, []
        self._cancelled = weakref.WeakSet()

    def restore(self) -> None:
        self.armed = False
        if self._retry is not None:  # it must not poke the main thread once the handlers are restored
            self._retry.join()
            self._retry = None
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
            for worker in self.workers:
                if worker.returncode is None:
                    try:
                        os.kill(worker.pid, signal.SIGINT)
                    except OSError:  # gone already
                        pass
        self._act(frame)

    def _act(self, frame: Any) -> None:
        if not self.armed or self.raised:
            return
        asyncio = sys.modules.get("asyncio")  # not imported: no event loop runs
        run = asyncio.Runner.run.__code__ if asyncio is not None else None
        while frame is not None and frame.f_code is not run:
            frame = frame.f_back
        task = frame.f_locals.get("task") if frame is not None else None
        if frame is None:
            if not self._cancelled:  # no event loop was cancelled: interrupt right here
                self.raised = True
                raise KeyboardInterrupt(self.name)
        elif isinstance(task, asyncio.Task) and not task.done() and task not in self._cancelled:
            self._cancelled.add(task)
            task.cancel()
            task.get_loop().call_soon_threadsafe(lambda: None)  # wake the loop if it waits in select()
        self._look_again()

    def _look_again(self) -> None:
        """Come back every 0.1 s while the run goes on: a loop that was tearing itself down has gone,
        or (should a cancellation have been swallowed) a new one runs."""
        if self._retry is not None:
            return
        import _thread

        def again() -> None:
            while self.armed and not self.raised:
                time.sleep(0.1)
                if self.armed and not self.raised and self.signum is not None:
                    _thread.interrupt_main(self.signum)  # runs _handle in the main thread

        self._retry = threading.Thread(target=again, name="stop-retry", daemon=True)
        self._retry.start()


STOP = _Stop()


def _end_if_stopping() -> Any:
    """The body of a hook wrapper around a test's setup, call or teardown: once a stop signal came,
    whatever the phase ended in (a swarm's cancellation, an error it caused, or nothing) is an
    interruption, which pytest does not record as a test outcome and which ends the session."""
    try:
        result = yield
    except KeyboardInterrupt:
        STOP.raised = True
        raise
    except BaseException as e:
        if STOP.signum is None:
            raise
        STOP.raised = True
        raise KeyboardInterrupt(STOP.name) from e
    if STOP.signum is not None:
        STOP.raised = True
        raise KeyboardInterrupt(STOP.name)
    return result


def _stop_hooks() -> Any:
    """pytest plugin: tell the session which signal stopped it, and note the --jobs worker processes."""
    import pytest

    class StopHooks:
        def pytest_configure(self, config: Any) -> None:
            config._swarm_stopping = lambda: STOP.signum is not None  # read by reports.plugin

        @pytest.hookimpl(optionalhook=True)
        def pytest_configure_node(self, node: Any) -> None:
            """xdist, in the runner: a worker process was started (execnet keeps its Popen as gateway._io.popen)."""
            popen = getattr(getattr(getattr(node, "gateway", None), "_io", None), "popen", None)
            if popen is not None:
                STOP.workers.append(popen)

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_setup(self, item: Any) -> Any:
            return (yield from _end_if_stopping())

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(self, item: Any) -> Any:
            return (yield from _end_if_stopping())

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_teardown(self, item: Any, nextitem: Any) -> Any:
            return (yield from _end_if_stopping())

        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionfinish(self, session: Any) -> None:
            STOP.armed = False  # the report is written next: a signal now is only noted
            if STOP.signum is not None:
                session.config._swarm_signal = STOP.name  # reports.plugin marks the report with it

    return StopHooks()


class _Listing:
    """pytest plugin: the pattern id, module and behaviour of each selected test, for --list."""

    def __init__(self) -> None:
        self.tests: list[_Test] = []

    def pytest_collection_finish(self, session: Any) -> None:
        self.tests = [_describe(item) for item in session.items]


class _Progress:
    """pytest plugin: a rich progress bar over the selected tests, and the outcome of each."""

    def __init__(self, console: Any, watch: Path | None = None) -> None:
        self.console = console
        self.outcomes: list[tuple[str, str, float, str]] = []
        self.progress: Any = None
        self.task: Any = None
        self.collected: list[str] = []
        self.watch = watch  # where the plugin's progress files appear (one per worker process)
        self.live: Any = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def pytest_collection_finish(self, session: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.collected = [item.nodeid for item in session.items]
        # what the session sets out to run, so that an interrupted run's report can list what it did not run
        session.config._swarm_selected = [_describe(item).pattern for item in session.items]
        if session.config.option.collectonly or not session.items:
            return
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task("patterns", total=len(session.items))
        if self.watch is not None:
            self.live = self.progress.add_task("starting", total=None)
            self._watcher = threading.Thread(target=self._follow, name="progress", daemon=True)
            self._watcher.start()

    def _follow(self) -> None:
        """Every half second, show what each worker is running: pattern, seed, episode."""
        from rich.markup import escape

        while not self._stop.wait(0.5):
            states = []
            for f in sorted(self.watch.glob("*.json")) if self.watch and self.watch.is_dir() else []:
                try:
                    states.append(json.loads(f.read_text()))
                except (OSError, ValueError):
                    continue  # being replaced right now: read it next time
            if states:
                line = "  |  ".join(
                    f"{s['pattern']} seed {s['seed_index']}/{s['seeds']} episode {s['episode']}/{s['episodes'] or '?'}"
                    for s in states)
                self.progress.update(self.live, description=escape(line))

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=_short(nodeid))

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            detail = ""
            if report.failed:
                detail = str(report.longrepr.reprcrash.message) if hasattr(report.longrepr, "reprcrash") else ""
            self.outcomes.append((report.nodeid, report.outcome, report.duration, detail))
            if self.progress is not None:
                self.progress.advance(self.task)

    def pytest_sessionfinish(self, session: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop following the workers and the bar (again: a no-op)."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        if self.progress is not None:
            self.progress.update(self.task, description="interrupted" if STOP.signum is not None else "done")
            self.progress.stop()
            self.progress = None


def _short(nodeid: str) -> str:
    from rich.markup import escape

    path, _, name = nodeid.partition("::")
    return escape(f"{Path(path).stem.removeprefix('test_')}::{name}")


#: A pattern (all its seeds) that runs longer than this is stopped and recorded as failed.
PATTERN_TIMEOUT_S = 3600


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse(argv)
        if not args.list:
            _prepare_out(Path(args.out))
    except UsageError as e:
        print(f"run_learning_tests.py: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0)
    if args.list:
        return _run(args, argv)
    STOP.install(respect_ignored=True)
    try:
        with contextlib.ExitStack() as stack:
            if args.runtime == "e2b":
                try:
                    _e2b_session(args, stack)
                except UsageError as e:
                    print(f"run_learning_tests.py: error: {e}", file=sys.stderr)
                    return 2
            return _run(args, argv)
    except KeyboardInterrupt:  # before the session started (or out of pytest itself): nothing ran
        print(f"run_learning_tests.py: interrupted by {STOP.name or 'SIGINT'} before any pattern ran",
              file=sys.stderr)
        return 128 + (STOP.signum or signal.SIGINT)
    finally:
        STOP.restore()


def _e2b_session(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    """Set up the e2b runtime for the whole run, in the environment its pytest workers inherit
    (``SWARM_E2B_*``, read by ``swarm.runtime.e2b.E2BSettings.from_env``): the stand-in if asked
    (a process, stopped when the run ends, killing its sandboxes), the options, the run's tag, the
    project's wheel (built once here); then check E2B answers, killing what a killed earlier run left.
    Any failure is a UsageError: one line, exit 2."""
    import asyncio
    import subprocess
    import uuid

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from swarm.runtime.e2b import (ENV_MAX, ENV_RUN, ENV_STANDIN, ENV_TEMPLATE, ENV_VCPU_PRICE, ENV_WHEEL,
                                   E2BSettings, project_checkout)
    from swarm.runtime.sandboxes import E2BError, SandboxFleet, build_wheel

    env: dict[str, str] = {ENV_RUN: uuid.uuid4().hex[:12]}
    for var, value in ((ENV_TEMPLATE, args.e2b_template), (ENV_MAX, args.e2b_max_sandboxes),
                       (ENV_VCPU_PRICE, args.e2b_usd_per_vcpu_hour)):
        if value is not None:
            env[var] = str(value)
    if args.e2b_standin:
        proc = subprocess.Popen([sys.executable, "-m", "swarm.runtime.e2b_standin", "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])})

        def stop() -> None:
            proc.terminate()  # SIGTERM: it kills its sandboxes and exits
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

        stack.callback(stop)
        line = proc.stdout.readline() if proc.stdout is not None else ""
        try:
            env[ENV_STANDIN] = json.loads(line)["url"]
        except (ValueError, KeyError):
            raise UsageError("--e2b-standin: the stand-in did not start") from None
    os.environ.update(env)
    stack.callback(lambda: [os.environ.pop(k, None) for k in env])
    try:
        settings = E2BSettings.from_env()
    except ValueError as e:
        raise UsageError(str(e)) from None
    wheels = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="swarm-wheel-")))

    async def prepare() -> Path:
        async with SandboxFleet(settings.fleet) as fleet:
            killed = await fleet.cleanup_leftovers()  # also: E2B answers, with this key
            if killed:
                print(f"run_learning_tests.py: killed {len(killed)} sandboxes an earlier run left", file=sys.stderr)
        return await build_wheel(project_checkout(), wheels)

    try:
        os.environ[ENV_WHEEL] = str(asyncio.run(prepare()))
    except E2BError as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # the SDK's own errors (a refused key: AuthenticationException)
        raise UsageError(f"E2B refused the run: {type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
    stack.callback(lambda: os.environ.pop(ENV_WHEEL, None))


def _prepare_out(out: Path) -> None:
    """Make ``--out``, remove an earlier run's files from it (the report must show this run only) and
    check that this run can write there: any failure is one line and exit 2, before anything runs."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        if (out / "charts").exists() and not (out / "charts").is_dir():
            raise UsageError(f"--out {out}: {out / 'charts'} exists and is not a directory")
        for stale in [*out.glob("*-metrics.json"), *out.glob("*-metrics.json.tmp"), *out.glob("charts/*.png"),
                      out / "LEARNING_PATTERNS_COMPARISON.md", out / "interrupted.json"]:
            stale.unlink(missing_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    import pytest
    from rich.console import Console

    # a log file or CI step gets a wide table instead of the 80 columns rich assumes without a terminal
    console = Console() if sys.stdout.isatty() else Console(width=160)
    out = Path(args.out)
    pytest_args = [*SUITE, "-p", "no:cacheprovider", "--swarm-seed", str(args.seed), "--swarm-seeds", str(args.seeds or 0),
                   "--swarm-transport", args.transport, "--swarm-runtime", args.runtime, "--swarm-market", args.market,
                   "-o", "addopts=-p reports.plugin --strict-markers", "-p", "run_learning_tests",
                   # the test suite's 300 s per test is no limit for a pattern: its seeds on real sockets
                   # or a loaded machine take longer, and the timeout's stack dump failed inside an
                   # xdist worker (a bare AssertionError from pytest's get_terminal_writer, recorded as
                   # the pattern's crash)
                   "-o", f"timeout={PATTERN_TIMEOUT_S}"]
    for spec in args.topology:
        pytest_args += ["--swarm-topology", spec]
    if args.keyword:
        pytest_args += ["--swarm-keyword", args.keyword]
    if args.quick:
        pytest_args.append("--swarm-quick")
    progress = _Progress(console)

    if args.list:
        return _list(console, pytest_args, args.keyword, progress)

    selected: list[str] | None = None
    if args.jobs > 1:  # the workers collect for themselves: collect here too, to know what the run is to cover
        listing = _Listing()
        code = pytest.main([*pytest_args, "--collect-only", "-p", "no:terminal"], plugins=[listing])
        if STOP.signum is not None:
            raise KeyboardInterrupt
        if code == 0 and not listing.tests:
            code = 5
        if code == 5:
            print("run_learning_tests.py: error: no test matches -k " + repr(args.keyword), file=sys.stderr)
            return 2
        selected = [t.pattern for t in listing.tests]
    live = out / ".progress"  # each worker's latest pattern, seed and episode (see reports.plugin)
    shutil.rmtree(live, ignore_errors=True)
    progress.watch = live
    pytest_args += ["--swarm-out", str(out), "--swarm-progress", str(live), "-p", "no:terminal"]
    if args.jobs > 1:
        pytest_args += ["-n", str(args.jobs), "--dist", "loadfile"]
    # one BLAS thread per process (the workers inherit this; see Swarm.run for why)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    t0 = time.perf_counter()
    command = "python run_learning_tests.py " + " ".join(shlex.quote(a) for a in argv)

    class _Command:
        def pytest_configure(self, config: Any) -> None:
            config._swarm_command = command.strip()
            if selected is not None:
                config._swarm_selected = selected

    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=1, user_api="blas"):  # the patterns run here with --jobs 1
            code = pytest.main(pytest_args, plugins=[progress, _Command(), _stop_hooks()])
    except KeyboardInterrupt:  # a signal before pytest's session began: nothing ran
        code = pytest.ExitCode.INTERRUPTED
    finally:
        progress.close()
        shutil.rmtree(live, ignore_errors=True)
    wall = time.perf_counter() - t0
    from reports.summary import read_interruption

    interrupted = read_interruption(out)
    if STOP.signum is not None or (code == pytest.ExitCode.INTERRUPTED and interrupted):
        _summary(console, out, progress, wall)
        return 128 + (STOP.signum or signal.SIGINT)
    if code == 5:
        print("run_learning_tests.py: error: no test matches -k " + repr(args.keyword), file=sys.stderr)
        return 2
    if code not in (0, 1):
        print(f"run_learning_tests.py: error: pytest stopped with status {code}", file=sys.stderr)
        return 2
    _summary(console, out, progress, wall)
    return 0 if code == 0 else 1


def _list(console: Any, pytest_args: list[str], keyword: str | None, progress: _Progress) -> int:
    """Print the selected pattern ids, one row each with their behaviours; collect only, run nothing."""
    import pytest
    from rich.markup import escape
    from rich.table import Table

    listing = _Listing()
    code = pytest.main([*pytest_args, "--collect-only", "-p", "no:terminal"], plugins=[progress, listing])
    if code not in (0, 5):
        print(f"run_learning_tests.py: error: pytest stopped with status {code} collecting the suite",
              file=sys.stderr)
        return 2
    if not listing.tests:
        print("run_learning_tests.py: error: no test matches -k " + repr(keyword), file=sys.stderr)
        return 2
    rows: dict[str, tuple[list[str], list[str]]] = {}
    for test in listing.tests:
        modules, behaviours = rows.setdefault(test.pattern, ([], []))
        for names, name in ((modules, test.module), (behaviours, test.behaviour)):
            if name not in names:
                names.append(name)
    table = Table(title="pattern suite", caption="-k matches whole words of these names")
    table.add_column("pattern", no_wrap=True)
    table.add_column("module", no_wrap=True)
    table.add_column("behaviours")
    for pattern, (modules, behaviours) in rows.items():
        table.add_row(escape(pattern), escape(", ".join(modules)), escape(", ".join(behaviours)))
    console.print(table)
    return 0


def _summary(console: Any, out: Path, progress: _Progress, wall: float) -> None:
    from rich.markup import escape
    from rich.table import Table

    from reports.metrics import read_metrics

    from reports.summary import ROW_HEADER, interrupted_line, not_run_row, read_interruption, row

    docs = read_metrics(out)
    interrupted = read_interruption(out)
    seeds = sorted({s for d in docs for s in d["seeds"]})
    table = Table(title=f"learning patterns ({wall:.0f} s, seeds {', '.join(map(str, seeds)) or '—'}; "
                        f"mean [95% CI] over seeds)" + (", INTERRUPTED" if interrupted or STOP.signum else ""))
    for col in ROW_HEADER:
        table.add_column(col, no_wrap=col == "pattern")
    for d in docs:
        cells = row(d)
        style = "green" if d["status"] == "passed" else "red"
        cells[1] = f"[{style}]{cells[1]}[/]"
        table.add_row(*cells)
    for pattern in interrupted["not_run"] if interrupted else ():
        cells = not_run_row(escape(pattern))
        cells[1] = f"[yellow]{cells[1]}[/]"
        table.add_row(*cells)
    console.print(table)
    failed = [o for o in progress.outcomes if o[1] == "failed"]
    for nodeid, _, _, detail in failed:
        console.print(f"[red]FAILED[/] {_short(nodeid)}: {escape(detail)}")
    if interrupted:
        console.print(f"[yellow]{escape(interrupted_line(interrupted, len(docs)))}[/]")
    elif STOP.signum is not None:
        console.print(f"[yellow]Interrupted by {STOP.name}.[/]")
    report = out / "LEARNING_PATTERNS_COMPARISON.md"
    if report.exists():
        console.print(f"report: {report}  metrics: {out}/*-metrics.json")


if __name__ == "__main__":
    sys.exit(main())
