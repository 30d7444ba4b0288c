"""pytest plugin: runs each pattern once per session on each seed, writes its metrics file as soon
as it has run (so parallel workers each write their own), and writes the comparison report at the end.

Options: ``--swarm-out DIR`` (write metrics and the report there; nothing is written without it),
``--swarm-seed N`` (the first seed), ``--swarm-seeds K`` (seeds N .. N+K-1), ``--swarm-quick``,
``--swarm-transport sim|quic|websocket``, ``--swarm-runtime in-process|process|e2b``, ``--swarm-topology MODULE``
(a user's module that registers a topology; repeatable). Tests ask for
``pattern_result("mesh-distributed-learning")``: the first seed's figures, and the checks' verdicts
over all seeds.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scenarios.base import Check, ScenarioResult
from swarm import progress
from swarm.deployment import deployed
from swarm.runtime.e2b import SandboxCost, metering
from swarm.topology import Topology, register

from .markdown import write_report
from .metrics import environment, save_metrics, to_metrics, write_metrics
from .summary import INTERRUPTED_NAME, write_interruption


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("swarm", "ReasoningBank swarm harness")
    g.addoption("--swarm-out", default=None, help="write per-pattern metrics JSON and the comparison report here")
    g.addoption("--swarm-topology", action="append", default=[],
                help="import this module (or .py file) first: it registers a topology of its own (repeatable)")
    g.addoption("--swarm-seed", type=int, default=0, help="first seed of every pattern run (default 0)")
    g.addoption("--swarm-seeds", type=int, default=1,
                help="seeds per pattern (default 1; 0: each pattern's own default, see scenarios.registry)")
    g.addoption("--swarm-progress", default=None, help="directory where each process writes its live progress")
    g.addoption("--swarm-quick", action="store_true", help="shorter runs (fewer episodes and markets)")
    g.addoption("--swarm-transport", default="sim", choices=("sim", "quic", "websocket"),
                help="gossip bus of the swarms: simulated network (sim), or real QUIC (quic) or WebSocket "
                     "(websocket) on loopback")
    g.addoption("--swarm-runtime", default="in-process", choices=("in-process", "process", "e2b"),
                help="agents as tasks of one process, one OS process each (needs quic or websocket), or one E2B "
                     "sandbox each (websocket; configured by SWARM_E2B_* variables, see swarm.runtime.e2b)")
    g.addoption("--swarm-market", default="synthetic",
                help="prices: synthetic (default) or csv:PATH[,PATH...], real OHLCV files (swarm.learning.markets)")


class _Beacon:
    """A progress sink: the latest (pattern, seed, episode) of this process, as a small JSON file in
    ``--swarm-progress DIR`` that the runner's display reads (parallel workers each write their own)."""

    def __init__(self, config: pytest.Config, pattern: str, seed: int, seeds: range) -> None:
        directory = config.getoption("--swarm-progress")
        self.path = None if not directory else Path(directory) / f"{os.getpid()}.json"
        self.state = {"pattern": pattern, "seed": seed, "seed_index": seeds.index(seed) + 1, "seeds": len(seeds),
                      "episode": 0, "episodes": None}
        self.last: tuple[int, int] | None = None
        self(0, 0)

    def __call__(self, done: int, total: int) -> None:
        if self.path is None or (done, total) == self.last:
            return
        self.last = (done, total)
        self.state.update(episode=done, episodes=total or None)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state))
            os.replace(tmp, self.path)
        except OSError:  # progress is a courtesy: never fail a run over it
            self.path = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pattern(id): the suite pattern a test checks")
    config._swarm_results = {}  # type: ignore[attr-defined]
    for spec in config.getoption("--swarm-topology"):  # in every worker process too: they collect the same tests
        load_topology_module(spec)


def load_topology_module(spec: str) -> ModuleType:
    """Import a user's module (a dotted name, or a path to a .py file) so that it registers its
    topology (``register(...)``, or a module-level ``TOPOLOGY`` registered here)."""
    name = spec
    if spec.endswith(".py"):  # a file: import it by name from its directory, so agent processes can too
        path = Path(spec).resolve()
        if not path.is_file():
            raise pytest.UsageError(f"--topology {spec}: no such file")
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        name = path.stem
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        raise pytest.UsageError(f"--topology {spec}: {e}") from None
    value = getattr(module, "TOPOLOGY", None)
    if isinstance(value, Topology):
        register(value)
    return module


class PatternRuns:
    """A pattern run on several seeds: the first seed's figures (``learning``, ``trading``...,
    for tests that look at one run's detail) and the checks as judged over all seeds."""

    def __init__(self, pattern: str, runs: list[ScenarioResult], doc: dict[str, Any]) -> None:
        self.pattern = pattern
        self.runs = runs
        self.seeds = doc["seeds"]
        self.status = doc["status"]
        self.checks = [Check(c["name"], c["passed"], c["detail"], c["delta"]["mean"] if c["delta"] else None)
                       for c in doc["checks"]]
        first = runs[0]
        self.seed, self.config = first.seed, first.config
        self.learning, self.trading, self.performance = first.learning, first.trading, first.performance
        self.baselines, self.series = first.baselines, first.series

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@pytest.fixture(scope="session")
def pattern_result(request: pytest.FixtureRequest) -> Callable[[str], PatternRuns]:
    """``pattern_result(id)`` -> that pattern over the session's seeds, run once per session."""
    from scenarios.registry import default_seeds, run_pattern

    config = request.config
    cache: dict[str, PatternRuns] = config._swarm_results  # type: ignore[attr-defined]
    out = config.getoption("--swarm-out")
    first = config.getoption("--swarm-seed")
    count = config.getoption("--swarm-seeds")
    quick = config.getoption("--swarm-quick")

    runtime = config.getoption("--swarm-runtime")
    transport = config.getoption("--swarm-transport")
    if runtime == "process" and transport == "sim":
        transport = "quic"
    if runtime == "e2b":
        transport = "websocket"

    # run_learning_tests.py sets this: whether SIGINT or SIGTERM asked the run to stop
    stopping: Callable[[], bool] = getattr(config, "_swarm_stopping", lambda: False)

    def get(pattern: str) -> PatternRuns:
        if pattern not in cache:
            seeds = range(first, first + (count if count >= 1 else default_seeds(pattern)))
            env = environment(transport, runtime)
            runs: list[ScenarioResult] = []
            crashes: list[dict[str, Any]] = []
            walls: list[float] = []  # wall seconds of each seed's run
            costs: list[SandboxCost] = []  # each seed's sandboxes (e2b runtime)
            for seed in seeds:
                if stopping():  # a run the stop cut short is no finished pattern
                    raise KeyboardInterrupt
                try:
                    with deployed(transport, runtime), progress.reporting(_Beacon(config, pattern, seed, seeds)), \
                            metering() as cost:
                        started = time.perf_counter()
                        runs.append(run_pattern(pattern, seed=seed, quick=quick,
                                                market=config.getoption("--swarm-market")))
                        walls.append(time.perf_counter() - started)
                    costs.append(cost)
                except Exception as e:  # a crashed run fails the pattern: recorded, then raised
                    if stopping():  # an error of a swarm being stopped is no crash: the pattern did not run
                        raise KeyboardInterrupt from e
                    crashes.append({"pattern": pattern, "seed": seed, "error": crash_description(e)})
                    if out:
                        write_metrics(runs, out, env, crashes=crashes)
                    raise
            if stopping():  # a run the stop cut short is no finished pattern
                raise KeyboardInterrupt
            doc = to_metrics(runs, env)
            doc["performance"]["pattern_wall_seconds"] = pattern_walls(walls)
            doc["performance"]["sandbox_cost"] = sandbox_cost(runtime, costs)
            if out:
                save_metrics(doc, out)
            cache[pattern] = PatternRuns(pattern, runs, doc)
        return cache[pattern]

    return get


def crash_description(e: BaseException) -> str:
    """A crash as one line: the error, and the innermost one with where it was raised (a task
    group wraps the agent's error in an ExceptionGroup, which alone says nothing)."""
    inner = e
    while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
        inner = inner.exceptions[0]
    out = f"{type(e).__name__}: {e}"
    if inner is not e or inner.__traceback__ is not None:
        frames = traceback.extract_tb(inner.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno} ({frames[-1].name})" if frames else ""
        out += f"; innermost {type(inner).__name__}: {inner}{where}" if inner is not e else where
    return out


def pattern_walls(walls: list[float]) -> dict[str, Any]:
    """What running a pattern cost in wall time (this machine, this run; not deterministic, so it
    lives in ``performance``): the total over its seeds and each seed's."""
    return {"clock": "wall", "total": round(sum(walls), 3), "per_seed": [round(w, 3) for w in walls]}


def sandbox_cost(runtime: str, costs: list[SandboxCost]) -> dict[str, Any]:
    """What a pattern's sandboxes cost over its seeds (e2b runtime; wall-clock, so in ``performance``):
    sandbox-seconds per agent and in all, and the USD estimate at the configured prices. Null figures
    with the reason on any other runtime."""
    if runtime != "e2b":
        return {"runtime": runtime, "usd": None, "sandbox_seconds": None, "per_agent_seconds": None,
                "per_seed_usd": None, "sandboxes": None, "usd_per_sandbox_hour": None,
                "reason": f"runtime {runtime} runs no sandboxes"}
    total = SandboxCost()
    for c in costs:
        total.add(c)
    return {"runtime": runtime, "clock": "wall", "usd": round(total.usd, 6),
            "sandbox_seconds": round(total.total_seconds, 3),
            "per_agent_seconds": {a: round(s, 3) for a, s in sorted(total.seconds.items())},
            "per_seed_usd": [round(c.usd, 6) for c in costs], "sandboxes": total.sandboxes,
            "usd_per_sandbox_hour": round(total.usd_per_second * 3600, 6), "reason": None}


def assert_check(result: ScenarioResult | PatternRuns, name: str) -> None:
    """The named check exists and passed; the failure message carries its measured detail."""
    found = [c for c in result.checks if c.name == name]
    assert found, f"{result.pattern} has no check {name!r}; it has {[c.name for c in result.checks]}"
    assert found[0].passed, f"{result.pattern}: {name}: {found[0].detail}"


# ---- interruption (SIGINT, or SIGTERM turned into one by run_learning_tests.py) ----

@contextlib.contextmanager
def _interruption_unwrapped() -> Iterator[None]:
    """Let a KeyboardInterrupt through as itself. A swarm's task group wraps it with its siblings'
    errors in a BaseExceptionGroup, which pytest would record as a failed test and then run the next."""
    try:
        yield
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is None:
            raise
        raise KeyboardInterrupt from group


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _interruption_unwrapped():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _interruption_unwrapped():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    with _interruption_unwrapped():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Note an interruption while the patterns run (not pytest's own stop after collection errors or -x)."""
    try:
        return (yield)
    except KeyboardInterrupt as e:
        if not isinstance(e, session.Interrupted):
            session.config._swarm_interrupted = True  # type: ignore[attr-defined]
        raise


def _selected_patterns(session: pytest.Session) -> list[str]:
    """The pattern ids the session set out to run, in order: as the runner listed them
    (``config._swarm_selected``), else each collected test's ``pattern`` marker or parameter."""
    given = getattr(session.config, "_swarm_selected", None)
    if given is not None:
        return list(dict.fromkeys(given))
    ids: list[str] = []
    for item in session.items:
        marker = item.get_closest_marker("pattern")
        params = getattr(getattr(item, "callspec", None), "params", {})
        pattern = marker.args[0] if marker and marker.args else params.get("pattern")
        if pattern is not None:
            ids.append(str(pattern))
    return list(dict.fromkeys(ids))


@pytest.hookimpl(trylast=True)  # after xdist has stopped its workers: every metrics file they wrote is there
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    out = config.getoption("--swarm-out")
    if not out or hasattr(config, "workerinput"):  # xdist workers leave the report to the controller
        return
    signal = getattr(config, "_swarm_signal", None)  # set by run_learning_tests.py when SIGINT or SIGTERM came
    interrupted = bool(signal) or getattr(config, "_swarm_interrupted", False)
    marker = Path(out) / INTERRUPTED_NAME
    marker.unlink(missing_ok=True)
    if interrupted:  # the report covers what finished; the rest is listed as not run, never as failed
        finished = {p.name.removesuffix("-metrics.json") for p in Path(out).glob("*-metrics.json")}
        write_interruption(out, signal, [p for p in _selected_patterns(session) if p not in finished])
    if interrupted or any(Path(out).glob("*-metrics.json")):
        path = write_report(out, seed=config.getoption("--swarm-seed"),
                            command=getattr(config, "_swarm_command", ""))
        config._swarm_report = path  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> Any:
    out = config.getoption("--swarm-out")
    return (f"swarm: seed {config.getoption('--swarm-seed')}, quick {config.getoption('--swarm-quick')}, "
            f"transport {config.getoption('--swarm-transport')}, runtime {config.getoption('--swarm-runtime')}, out {out}")
