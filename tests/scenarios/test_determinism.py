"""The default (simulated) mesh run is a function of its seed: a busy machine changes no figure
outside the performance section and no check, so the suite's verdict cannot depend on load."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from scenarios import mesh
from scenarios.base import ScenarioResult
from swarm.deployment import deployed

SECTIONS = ("learning", "trading", "baselines", "series")


def _run() -> ScenarioResult:
    """A short default mesh run on the simulated network (what the suite runs, fewer episodes)."""
    with deployed("sim", "in-process"):
        return mesh.run(mesh.MeshScenarioConfig(seed=0, episodes=8))


def _verdict(r: ScenarioResult) -> dict[str, str]:
    """Everything that must not depend on the wall clock, as canonical JSON per part."""
    parts: dict[str, Any] = {s: getattr(r, s) for s in SECTIONS}
    parts["checks"] = [c.to_json() for c in r.checks]
    return {k: json.dumps(v, sort_keys=True) for k, v in parts.items()}


def test_mesh_figures_and_checks_do_not_depend_on_machine_load() -> None:
    calm = _run()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        busy = _run()
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    a, b = _verdict(calm), _verdict(busy)
    assert [k for k in a if a[k] != b[k]] == [], {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert calm.performance["transport"] == "sim"
    names = [c.name for c in calm.checks]
    assert "sharing over QUIC" not in names and "pattern sharing" in names
    # a latency in a check is in virtual ms on the simulated network, and no check is wall-clock based
    details = " ".join(c.detail for c in calm.checks)
    assert set(re.findall(r"(\w+) ms\b", details)) <= {"virtual"} and "wall" not in details
