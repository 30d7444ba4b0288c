"""Metrics files, the comparison report, the runner's exit codes, and the CI workflows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from reports.markdown import REPORT_NAME, write_report
from reports.metrics import environment, read_metrics, to_metrics, validate, write_metrics
from reports.summary import summary_markdown
from scenarios.base import Check, ScenarioResult

ROOT = Path(__file__).resolve().parents[2]


def fake(pattern: str, acc: float, ok: bool = True, sync: float | None = 120.0) -> ScenarioResult:
    base = {b: {"accuracy": a} for b, a in (("random", 0.3), ("best-fixed", 0.34), ("no-memory", 0.45), ("oracle", 1.0))}
    return ScenarioResult(
        pattern, 0, {"episodes": 3}, [Check("works", ok, f"measured {acc}")],
        {"accuracy": acc, "final_accuracy": acc, "convergence_episodes": 2, "pattern_count": 10, "decisions": 30,
         "memory_size_bytes": 4096, "replication_consistency": 1.0},
        {"sharpe_ratio": 1.2, "win_rate": 0.6, "avg_return": 0.001, "max_drawdown": -0.02},
        {"decision_latency_ms": {"p50": 0.4, "p95": 0.9, "mean": 0.5}, "sync_latency_ms":
         None if sync is None else {"p50": sync, "p99": 2 * sync}, "bytes_sent": 30_000},
        base, {"episode_accuracy": [0.3, acc, acc]})


def test_metrics_file_follows_the_schema_and_bad_ones_are_refused(tmp_path):
    path = write_metrics(fake("mesh-distributed-learning", 0.6), tmp_path, environment())
    doc = json.loads(path.read_text())
    assert path.name == "mesh-distributed-learning-metrics.json"
    assert doc["schema_version"] == 1 and doc["environment"]["transport"] == "sim"
    validate(doc)
    for broken in ({k: v for k, v in doc.items() if k != "learning"},
                   {**doc, "status": "great"},
                   {**doc, "checks": [{"name": "x", "passed": "yes", "detail": ""}]},
                   {**doc, "baselines": {"random": {}}}):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


def test_nan_and_numpy_values_become_plain_json():
    import numpy as np
    r = fake("cold-start", 0.5)
    r.learning["accuracy"] = np.float64(0.5)
    r.trading["sharpe_ratio"] = float("nan")
    doc = to_metrics(r, environment())
    assert doc["learning"]["accuracy"] == 0.5 and doc["trading"]["sharpe_ratio"] is None
    json.dumps(doc, allow_nan=False)


def test_report_has_tables_guide_charts_and_checks(tmp_path):
    env = environment()
    for r in (fake("mesh-distributed-learning", 0.62, sync=300.0), fake("star-hub-learning", 0.58, sync=800.0),
              fake("ring-sequential-learning", 0.70, ok=False, sync=None), fake("cold-start", 0.66, sync=None)):
        write_metrics(r, tmp_path, env)
    path = write_report(tmp_path, seed=0, command="python run_learning_tests.py")
    text = path.read_text()
    assert path.name == REPORT_NAME
    assert "## Deployment patterns" in text and "## Learning scenarios" in text
    assert "| mesh-distributed-learning | passed | 1/1 | 0.620 | 0.300 | 0.340 | 0.450 | 1.000 |" in text
    # the guide ranks measured figures among patterns that passed; the failed one is flagged, not recommended
    assert "**Highest learning accuracy:** mesh-distributed-learning (accuracy 0.620)" in text
    assert "**Fastest pattern sync:** mesh-distributed-learning (p50 300 virtual ms)" in text
    assert "Failed a check in this run (see below before choosing):** ring-sequential-learning" in text
    for chart in ("learning_curves.png", "convergence.png", "sync_latency.png"):
        assert (tmp_path / "charts" / chart).stat().st_size > 1000 and f"(charts/{chart})" in text
    assert "- FAIL **works**: measured 0.7" in text
    assert "| cold-start | passed |" in summary_markdown(tmp_path)
    assert len(read_metrics(tmp_path)) == 4


def runner(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_learning_tests.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed"),
    (["--jobs", "0"], "--jobs"),
    (["--transport", "carrier-pigeon"], "--transport"),
    (["--runtime", "process", "--transport", "sim"], "needs a real bus"),
    (["--bogus"], "unrecognized"),
    (["-k", "no_such_pattern_anywhere"], "no test matches"),
])
def test_runner_bad_usage_exits_2_with_one_clear_line(args, message, tmp_path):
    done = runner(*args, "--out", str(tmp_path / "r"))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_runner_lists_and_runs_a_selection(tmp_path):
    listed = runner("--list")
    assert listed.returncode == 0 and "staged_rollout" in listed.stdout and "mesh" in listed.stdout
    out = tmp_path / "results"
    (out).mkdir()
    (out / "stale-pattern-metrics.json").write_text("{}")  # a previous run's file must not leak in
    done = runner("-k", "blue_green", "--quick", "--seed", "2", "--jobs", "2", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in out.glob("*-metrics.json")) == ["blue-green-knowledge-transfer-metrics.json"]
    doc = json.loads((out / "blue-green-knowledge-transfer-metrics.json").read_text())
    assert doc["seed"] == 2 and doc["status"] == "passed"
    assert (out / REPORT_NAME).exists() and "blue-green-knowledge-transfer" in done.stdout


def test_a_seeded_run_writes_identical_learning_metrics(tmp_path):
    from scenarios.registry import run_pattern
    a = to_metrics(run_pattern("blue-green-knowledge-transfer", seed=4, quick=True), environment())
    b = to_metrics(run_pattern("blue-green-knowledge-transfer", seed=4, quick=True), environment())
    for section in ("learning", "trading", "baselines", "series", "checks"):
        assert json.dumps(a[section], sort_keys=True) == json.dumps(b[section], sort_keys=True), section


def test_ci_workflows_are_valid_and_do_what_the_readme_says():
    workflows = ROOT / ".github" / "workflows"
    files = sorted(str(p) for p in workflows.glob("*.yml"))
    assert len(files) == 2
    exe = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", *files],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    weekly = (workflows / "weekly-benchmark.yml").read_text()
    assert "schedule:" in weekly and "cron:" in weekly and "upload-artifact" in weekly
    assert "GITHUB_STEP_SUMMARY" in weekly and "reports.summary" in weekly
    test = (workflows / "test.yml").read_text()
    assert "push:" in test and "pull_request:" in test and "make test" in test


PATTERN_IDS = ("mesh-distributed-learning", "hierarchical-centralized-learning", "ring-sequential-learning",
               "star-hub-learning", "auto-scale-adaptive-learning", "multi-strategy-meta-learning",
               "blue-green-knowledge-transfer", "canary-incremental-learning", "cold-start", "warm-start",
               "transfer-learning", "continual-learning", "catastrophic-forgetting")


def test_the_registry_holds_exactly_the_thirteen_patterns():
    from scenarios.registry import PATTERNS
    assert set(PATTERNS) == set(PATTERN_IDS)


@pytest.mark.parametrize("pattern", PATTERN_IDS)
def test_every_pattern_writes_a_metrics_file_that_follows_the_schema(pattern_result, pattern, tmp_path):
    path = write_metrics(pattern_result(pattern), tmp_path, environment())  # validates, or raises
    doc = json.loads(path.read_text())
    assert doc["pattern"] == pattern and doc["series"]["episode_accuracy"]
    for section, keys in (("learning", ("accuracy", "convergence_episodes", "pattern_count")),
                          ("trading", ("sharpe_ratio", "win_rate", "avg_return", "max_drawdown"))):
        assert set(keys) <= set(doc[section]), (section, sorted(doc[section]))
