"""SIGINT and SIGTERM stop run_learning_tests.py in every mode: within 5 s, exit 130 (SIGINT) or 143
(SIGTERM), no agent process, worker or temporary directory left behind, and the report of what
finished marked "interrupted", with what did not run listed as not run (never as failed).

Each test starts the runner in a session of its own (so its process group is everything it started),
waits until the run has visibly started (the live progress it follows in OUT/.progress/, or the agent
processes), sends the signal, and checks what is left."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT = "LEARNING_PATTERNS_COMPARISON.md"
STOP_WITHIN = 5.0  # seconds, as the issue states

pytestmark = [
    pytest.mark.slow,
    pytest.mark.fault,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc"),
]


def _group(pgid: int) -> list[tuple[int, str, str]]:
    """(pid, state, command line) of every live process in process group ``pgid`` (zombies left out:
    they run nothing, and a container's init may be slow to reap them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            found.append((int(entry.name), state, cmdline))
    return found


class Run:
    """The runner in a new session, with its own TMPDIR and --out under ``tmp``."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.out = tmp / "out"
        self.tmpdir = tmp / "tmp"
        self.tmpdir.mkdir()
        self.log = tmp / "runner.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "run_learning_tests.py"), "--out", str(self.out), "--quick",
                 "--seeds", "1", *args],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "TMPDIR": str(self.tmpdir)})

    def progress(self) -> list[dict]:
        """What the runner's live line shows now: each process's pattern, seed and episode."""
        states = []
        for f in (self.out / ".progress").glob("*.json"):
            try:
                states.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
        return states

    def wait_until(self, what: str, ready: Callable[[], bool], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended (status {self.proc.returncode}) before {what}:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no sign of {what} within {timeout:g} s:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self, signum: int, *, whole_group: bool = False) -> tuple[int, float]:
        """Send ``signum`` (to the runner, or to its whole process group as a terminal's Ctrl-C does);
        return the exit status and the seconds it took to exit."""
        sent = time.monotonic()
        if whole_group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 60 s after {signal.Signals(signum).name}:\n{self.log.read_text()}")
        return code, time.monotonic() - sent

    def close(self) -> None:
        """Whatever the test's outcome, leave nothing running."""
        for pid, _, _ in _group(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.wait()

    def check_stopped_cleanly(self, code: int, took: float, signum: int, not_run: str) -> str:
        """The common verdict: exit status, time, no process or temporary directory left, the report
        marked, and ``not_run`` (the pattern running when the signal came) listed as not run, not as
        failed or crashed. Returns the report's text."""
        output = self.log.read_text()
        name = signal.Signals(signum).name
        assert code == 128 + signum, output
        assert took < STOP_WITHIN, f"took {took:.1f} s to stop\n{output}"
        assert "Traceback" not in output, output
        assert _group(self.proc.pid) == [], "left running"
        left = [p.name for p in self.tmpdir.iterdir() if not p.name.startswith("pytest-of-")]  # pytest's own basetemp
        assert left == [], f"temporary directories left behind: {left}"
        assert not (self.out / ".progress").exists()
        marker = json.loads((self.out / "interrupted.json").read_text())
        assert marker["signal"] == name and not_run in marker["not_run"]
        assert not (self.out / f"{not_run}-metrics.json").exists()  # neither finished nor crashed
        report = (self.out / REPORT).read_text()
        assert report.startswith("# Learning patterns comparison (interrupted)")
        assert f"Interrupted by {name}" in report and f"### {not_run} — not run" in report
        failed = [line for line in output.splitlines() if line.startswith("FAILED")]
        assert not [line for line in failed if "star::" in line], failed  # the interrupted test is no failure
        assert "INTERRUPTED" in output and re.search(rf"{not_run}\s*│\s*not run", output), output  # the summary
        return report


@pytest.fixture
def run(tmp_path):
    runs: list[Run] = []

    def start(*args: str) -> Run:
        runs.append(Run(tmp_path, *args))
        return runs[-1]

    yield start
    for r in runs:
        r.close()


def _agents(r: Run) -> list[int]:
    return [pid for pid, _, cmd in _group(r.proc.pid) if "-m swarm.runtime" in cmd]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_sequential_run_and_reports_what_finished(run, signum):
    r = run("-k", "cold-start or star", "--jobs", "1")
    # cold-start (tests/patterns/test_learning.py) runs first: wait until it has finished and star has begun
    r.wait_until("cold-start finished and star started", lambda: (r.out / "cold-start-metrics.json").exists()
                 and any(s["pattern"] == "star-hub-learning" for s in r.progress()))
    code, took = r.stop(signum)
    report = r.check_stopped_cleanly(code, took, signum, "star-hub-learning")
    assert sorted(p.name for p in r.out.glob("*-metrics.json")) == ["cold-start-metrics.json"]
    assert json.loads((r.out / "interrupted.json").read_text())["not_run"] == ["star-hub-learning"]
    assert "### cold-start — passed" in report or "### cold-start — failed" in report  # what finished is reported
    assert "this covers the 1 pattern that finished before it; not run: star-hub-learning." in report


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_parallel_run_and_its_workers(run, signum):
    r = run("-k", "cold-start or star", "--jobs", "2")
    r.wait_until("a worker running star", lambda: any(s["pattern"] == "star-hub-learning" for s in r.progress()))
    workers = [pid for pid, _, cmd in _group(r.proc.pid) if pid != r.proc.pid]
    assert len(workers) >= 2, _group(r.proc.pid)
    code, took = r.stop(signum)
    r.check_stopped_cleanly(code, took, signum, "star-hub-learning")
    not_run = json.loads((r.out / "interrupted.json").read_text())["not_run"]
    finished = [p.name.removesuffix("-metrics.json") for p in r.out.glob("*-metrics.json")]
    assert sorted(finished + not_run) == ["cold-start", "star-hub-learning"]  # each either reported or not run


def test_ctrl_c_in_a_terminal_stops_agent_processes_over_quic(run):
    """A terminal's Ctrl-C reaches every process of the foreground group at once: the runner and
    each agent process (the runner must not be confused by agents that stop by themselves)."""
    r = run("-k", "star", "--jobs", "1", "--transport", "quic", "--runtime", "process")
    r.wait_until("the agent processes", lambda: len(_agents(r)) >= 2)
    code, took = r.stop(signal.SIGINT, whole_group=True)
    r.check_stopped_cleanly(code, took, signal.SIGINT, "star-hub-learning")


def test_sigterm_stops_parallel_workers_and_their_agent_processes(run):
    r = run("-k", "cold-start or star", "--jobs", "2", "--runtime", "process")
    r.wait_until("the agent processes", lambda: len(_agents(r)) >= 2)
    code, took = r.stop(signal.SIGTERM)
    r.check_stopped_cleanly(code, took, signal.SIGTERM, "star-hub-learning")


def test_sigterm_stops_in_process_agents_on_quic(run):
    r = run("-k", "star", "--jobs", "1", "--transport", "quic")
    r.wait_until("star started", lambda: any(s["pattern"] == "star-hub-learning" for s in r.progress()))
    code, took = r.stop(signal.SIGTERM)
    r.check_stopped_cleanly(code, took, signal.SIGTERM, "star-hub-learning")
