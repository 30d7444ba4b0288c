"""The e2b runtime (agents in sandboxes, through the real ``e2b`` SDK) against the loopback stand-in:
a swarm replicates and its figures are read back, nothing outlives an interrupted run, a killed
agent restarts with its committed patterns, the control channel admits only the orchestrator, and
the runner's e2b errors and stand-in run."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from swarm.deployment import deployed
from swarm.orchestrator import Swarm
from swarm.runtime.channel import ChannelError, Listener, dial
from swarm.runtime.e2b import E2BSettings, SandboxCost, metering
from swarm.runtime.e2b_standin import E2BStandIn
from swarm.runtime.sandboxes import FleetConfig, SandboxCapReached, build_wheel
from swarm.specs import AgentSpec, SwarmConfig
from swarm.transport.quic import SwarmCA

ROOT = Path(__file__).resolve().parents[2]
SPECS = [AgentSpec(f"p{i}", market_seed=100 + i) for i in range(3)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once for this module (as a run builds it once for its sandboxes)."""
    return asyncio.run(build_wheel(ROOT, tmp_path_factory.mktemp("wheel")))


@pytest.fixture
def standin() -> Iterator[E2BStandIn]:
    with E2BStandIn() as s:
        yield s


def on_e2b(standin: E2BStandIn, wheel: Path, **fleet: object) -> E2BSettings:
    return E2BSettings(FleetConfig.for_standin(standin.url, "test-run", **fleet), wheel=wheel)  # type: ignore[arg-type]


def test_a_swarm_in_sandboxes_replicates_and_its_figures_and_cost_are_read_back(standin, wheel):
    cfg = SwarmConfig(episodes=4)
    with deployed("websocket", "e2b", e2b=on_e2b(standin, wheel)), metering() as cost, Swarm(cfg, SPECS) as swarm:
        assert swarm.config.transport == "websocket"
        swarm.run()
        assert standin.live_count() == 0  # every sandbox killed at the end of the run
        assert all(len(a.log.correct) == 40 for a in swarm.agents.values())  # every trade, reported over the channel
        assert swarm.replication_consistency() == 1.0  # read from the stores downloaded from the sandboxes
        assert all(a.pattern_ids() for a in swarm.agents.values())
        arrivals = {agent for (_, agent) in swarm.arrivals}
        assert arrivals == {"p0", "p1", "p2"}  # gossip between sandboxes reached everyone
        assert swarm.sync_latency_ms()["clock"] == "wall"
        assert set(cost.seconds) == {"p0", "p1", "p2"} and all(s > 0 for s in cost.seconds.values())
        assert cost.sandboxes == 3 and cost.usd > 0 and cost.usd == pytest.approx(cost.total_seconds * cost.usd_per_second)


def test_a_run_that_raises_or_is_interrupted_leaves_no_sandbox(standin, wheel):
    cfg = SwarmConfig(episodes=20)
    seen: dict[str, int] = {}

    async def crash_midway(swarm: Swarm) -> None:
        await swarm.after_episode(1)
        seen["live"] = standin.live_count()
        raise RuntimeError("the controller crashed midway")

    with deployed("websocket", "e2b", e2b=on_e2b(standin, wheel)):
        with Swarm(cfg, SPECS, controller=crash_midway) as swarm, pytest.raises(BaseException) as e:
            swarm.run()
        assert "crashed midway" in repr(e.value.exceptions if isinstance(e.value, BaseExceptionGroup) else e.value)
        assert seen["live"] == 3 and standin.live_count() == 0

        async def ctrl_c(swarm: Swarm) -> None:  # what Ctrl-C does to a real-time run: asyncio cancels its main task
            await swarm.after_episode(1)
            seen["live"] = standin.live_count()
            os.kill(os.getpid(), signal.SIGINT)

        seen.clear()
        with Swarm(cfg, SPECS, controller=ctrl_c) as swarm, pytest.raises(KeyboardInterrupt):
            swarm.run()
        assert seen["live"] == 3 and standin.live_count() == 0


def test_a_killed_agent_restarts_in_a_new_sandbox_with_its_committed_patterns(standin, wheel):
    cfg = SwarmConfig(episodes=5)
    seen: dict = {}

    async def faults(swarm: Swarm) -> None:
        k = swarm.kernel
        await k.sleep(2 * cfg.episode_seconds + 0.5 - k.now())
        victim = swarm.agents["p1"]
        seen["sandboxes"] = set(standin.live())
        seen["before"] = victim.pattern_ids()
        swarm.crash("p1")
        await k.sleep(cfg.episode_seconds)
        seen["sandboxes_down"] = set(standin.live())
        seen["recovered"] = swarm.restart("p1").pattern_ids() & seen["before"]  # the store salvaged from its sandbox

    with deployed("websocket", "e2b", e2b=on_e2b(standin, wheel)), Swarm(cfg, SPECS, controller=faults) as swarm:
        swarm.run()
        p1 = swarm.agents["p1"]
        assert seen["before"] and seen["recovered"] == seen["before"]  # nothing committed was lost
        assert len(seen["sandboxes_down"]) == 2 and seen["sandboxes_down"] < seen["sandboxes"]  # its sandbox is gone
        assert p1.boots == 1 and p1.snapshots >= 1
        assert swarm.replication_consistency() == 1.0  # and it caught up with what it missed
        assert all(len(a.log.correct) == 50 for a in swarm.agents.values())
        assert not [e for e in swarm.events if e["event"] == "agent_died"]
        assert standin.live_count() == 0


def test_a_users_own_topology_runs_in_sandboxes_with_its_rules_shipped_beside_the_wheel(standin, wheel, monkeypatch):
    """A topology registered from outside the project (the README's example) names its own rules;
    the wheel does not carry its module, so its source goes to each sandbox with the wheel."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    two_teams = importlib.import_module("two_teams")
    cfg = SwarmConfig(episodes=2)
    with deployed("websocket", "e2b", e2b=on_e2b(standin, wheel)), \
            Swarm.of(two_teams.TOPOLOGY, cfg, two_teams.agents(0)) as swarm:
        swarm.run()
        assert all(len(a.log.correct) == 20 for a in swarm.agents.values())
        assert not [e for e in swarm.events if e["event"] == "agent_died"]
        assert {agent for (_, agent) in swarm.arrivals} == set(swarm.agents)  # gossip along the rule's contacts
    assert standin.live_count() == 0


def test_a_swarm_larger_than_the_plans_cap_fails_before_any_sandbox(standin, wheel):
    with deployed("websocket", "e2b", e2b=on_e2b(standin, wheel, max_live=2)), Swarm(SwarmConfig(episodes=2), SPECS) as swarm:
        with pytest.raises(BaseException) as e:
            swarm.run()
        group = e.value.exceptions if isinstance(e.value, BaseExceptionGroup) else (e.value,)
        assert any(isinstance(x, SandboxCapReached) and "cap is 2" in str(x) for x in group), group
        assert standin.state.created == 0


def test_the_control_channel_admits_only_the_orchestrator_it_was_started_by():
    ca = SwarmCA.generate()
    agent, orchestrator, member = ca.issue("a1"), ca.issue("orchestrator"), ca.issue("a2")
    pem = orchestrator.certificate.public_bytes(serialization.Encoding.PEM)
    listener = Listener(agent, pem)
    try:
        url = f"ws://127.0.0.1:{listener.port}"
        with pytest.raises(ChannelError):
            dial(url, member, "a1", timeout=5)  # a swarm member, but not the orchestrator
        with pytest.raises(ChannelError):
            dial(url, ca.issue("orchestrator"), "a1", timeout=5)  # the right name, another key
        with pytest.raises(ChannelError):
            dial(url, orchestrator, "a3", timeout=5)  # the orchestrator dialling the wrong agent
        ours = dial(url, orchestrator, "a1", timeout=5)
        theirs = listener.accept(timeout=5)
        ours.send_bytes(b"setup")
        assert theirs.recv_bytes() == b"setup" and theirs.peer == "orchestrator" and ours.peer == "a1"
        theirs.send_bytes(b"ok")
        assert ours.recv_bytes() == b"ok"
        ours.close()
        with pytest.raises(EOFError):
            theirs.recv_bytes()
    finally:
        listener.close()


def test_sandbox_costs_add_up_per_agent_over_swarms():
    total = SandboxCost()
    total.add(SandboxCost({"a": 10.0, "b": 5.0}, 0.001, 2))
    total.add(SandboxCost({"a": 2.5}, 0.001, 1))
    assert total.seconds == {"a": 12.5, "b": 5.0} and total.sandboxes == 3
    assert total.usd == pytest.approx(17.5 * 0.001)


# ---- the runner -------------------------------------------------------------------------------


def runner(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run_learning_tests.py"), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SWARM_E2B_"))}
    return {**env, "PYTHONPATH": os.pathsep.join(sys.path), **extra}


def test_without_a_key_the_runner_names_the_variable_and_exits_2(tmp_path):
    r = runner("--runtime", "e2b", "-k", "mesh", "--out", str(tmp_path), env=clean_env())
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "E2B_API_KEY is not set" in r.stderr
    assert not list(tmp_path.glob("*-metrics.json"))


def test_with_no_network_to_e2b_the_runner_says_so_in_one_line_and_exits_2(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    r = runner("--runtime", "e2b", "-k", "mesh", "--out", str(tmp_path),
               env=clean_env(E2B_API_KEY="e2b_test", E2B_API_URL=closed))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and f"cannot reach the E2B API at {closed}" in r.stderr


@pytest.mark.parametrize("args", [["--transport", "quic"], ["--e2b-standin"], ["--e2b-max-sandboxes", "0"]])
def test_bad_e2b_usage_is_one_line_and_exit_2(tmp_path, args):
    runtime = [] if args == ["--e2b-standin"] else ["--runtime", "e2b"]
    r = runner(*runtime, *args, "-k", "mesh", "--out", str(tmp_path), env=clean_env(E2B_API_KEY="e2b_test"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.slow
def test_the_mesh_pattern_passes_in_standin_sandboxes(tmp_path):
    """The cheapest of mesh, star and canary on ``--runtime e2b --e2b-standin`` (about 80 s here;
    star and canary take longer and run by hand, see the README's "Running on E2B")."""
    r = runner("--runtime", "e2b", "--e2b-standin", "-k", "mesh", "--quick", "--seeds", "1", "--jobs", "1",
               "--out", str(tmp_path), env=clean_env(), timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads((tmp_path / "mesh-distributed-learning-metrics.json").read_text())
    assert doc["status"] == "passed" and doc["environment"]["runtime"] == "e2b"
    cost = doc["performance"]["sandbox_cost"]
    assert cost["usd"] > 0 and set(cost["per_agent_seconds"]) == {f"peer-{i}" for i in range(5)}
    assert "sandbox-s" in (tmp_path / "LEARNING_PATTERNS_COMPARISON.md").read_text()


def test_the_sources_shipped_to_sandboxes_are_the_users_modules_only(tmp_path, monkeypatch):
    from swarm.runtime.e2b import shipped_sources
    from swarm.runtime.sandboxes import E2BError
    (tmp_path / "solo.py").write_text("X = 1\n")
    for part in ("a", "b"):  # a namespace package in two portions
        (tmp_path / part / "spread").mkdir(parents=True)
        (tmp_path / part / "spread" / f"{part}.py").write_text("Y = 2\n")
        monkeypatch.syspath_prepend(str(tmp_path / part))
    monkeypatch.syspath_prepend(str(tmp_path))
    files = shipped_sources(["swarm.specs", "topologies.mesh", "solo", "spread.a"])
    assert set(files) == {"solo.py", "spread/a.py", "spread/b.py"}
    assert files["solo.py"] == tmp_path / "solo.py"
    for bad in ("__main__", "no_such_module_here"):
        with pytest.raises(E2BError, match="cannot be found"):
            shipped_sources([bad])
