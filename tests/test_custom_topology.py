"""A user's own topology, registered from outside the project, runs in the suite and the report
like the built-in ones: by one call (``--topology FILE``) or by an entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "two_teams.py"
NAME = "two-teams-and-a-scout"


def _runner(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run_learning_tests.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=600)


def test_the_readme_shows_the_example_whole_and_it_is_short():
    text = EXAMPLE.read_text()
    assert len(text.splitlines()) < 40
    assert text.strip() in (ROOT / "README.md").read_text()


def test_a_topology_registered_by_one_call_runs_in_the_suite_and_the_report(tmp_path):
    out = tmp_path / "out"
    listing = _runner("--topology", str(EXAMPLE), "--list")
    assert listing.returncode == 0, listing.stderr
    assert NAME in listing.stdout and "memory_pays" in listing.stdout.replace("memory-pays", "memory_pays")
    run = _runner("--topology", str(EXAMPLE), "-k", NAME, "--seeds", "2", "--quick", "--jobs", "1",
                  "--out", str(out))
    assert run.returncode in (0, 1), run.stdout[-2000:] + run.stderr[-2000:]  # 1: a check failed, still reported
    doc = json.loads((out / f"{NAME}-metrics.json").read_text())
    assert doc["pattern"] == NAME and doc["status"] in ("passed", "failed") and len(doc["per_seed"]) == 2
    assert {c["name"] for c in doc["checks"]} == {"memory pays", "sharing pays"}
    assert doc["per_seed"][0]["learning"]["topology"]["roles"] == ["blue", "red", "scout"]
    assert {"no-memory", "best-fixed", "isolated agents (no sharing)"} <= set(doc["baselines"])
    wall = doc["performance"]["pattern_wall_seconds"]  # measured per seed by the plugin, in every metrics file
    assert wall["clock"] == "wall" and len(wall["per_seed"]) == 2 and all(w > 0 for w in wall["per_seed"])
    assert wall["total"] == pytest.approx(sum(wall["per_seed"]), abs=0.01)
    assert NAME in (out / "LEARNING_PATTERNS_COMPARISON.md").read_text()
    assert "wall s" in (out / "LEARNING_PATTERNS_COMPARISON.md").read_text()
    assert not list(out.glob("mesh-*"))  # -k picked the user's pattern only


def test_a_topology_named_by_an_entry_point_is_found_without_flags(tmp_path):
    dist = tmp_path / "two_teams_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: two-teams-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[reasoningbank_swarm.topologies]\nteams = two_teams:TOPOLOGY\n")
    path = os.pathsep.join([str(tmp_path), str(EXAMPLE.parent)])
    listing = _runner("--list", env={"PYTHONPATH": path})
    assert listing.returncode == 0, listing.stderr
    assert NAME in listing.stdout and "mesh-distributed-learning" in listing.stdout


def test_a_broken_topology_module_is_a_one_line_usage_error(tmp_path):
    bad = _runner("--topology", str(tmp_path / "missing.py"), "--list")
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_registering_twice_or_a_non_topology_is_refused():
    from swarm.topology import Topology, register, registered, unregister
    t = Topology(name="x-test-only", summary="", agents=lambda seed: [])
    try:
        assert register(t) is t and register(t) is t  # the same value twice is fine
        assert registered()["x-test-only"] is t
        with pytest.raises(ValueError, match="already registered"):
            register(Topology(name="x-test-only", summary="other", agents=lambda seed: []))
    finally:
        unregister("x-test-only")
    assert "x-test-only" not in registered()
    with pytest.raises(TypeError):
        register("mesh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="letters, digits and dashes"):
        Topology(name="bad name", summary="", agents=lambda seed: [])
