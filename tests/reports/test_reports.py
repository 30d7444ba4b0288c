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


def fake(pattern: str, sharpe: float, ok: bool = True, sync: float | None = 120.0, seed: int = 0,
         delta: float | None = None) -> ScenarioResult:
    base = {b: {"accuracy": a, "sharpe_ratio": s} for b, a, s in
            (("random", 0.3, 0.2), ("best-fixed", 0.34, 1.5), ("no-memory", 0.45, 1.4), ("oracle", 1.0, 4.0))}
    checks = [Check("works", ok, f"measured {sharpe}")]
    if delta is not None:
        checks.append(Check("beats alone", delta > 0, f"delta {delta}", delta))
    return ScenarioResult(
        pattern, seed, {"episodes": 3}, checks,
        {"agents": 5, "accuracy": 0.6, "regret": 0.01, "convergence_episodes": 2, "pattern_count": 10,
         "decisions": 30, "memory_size_bytes": 4096, "replication_consistency": 1.0},
        {"sharpe_ratio": sharpe, "win_rate": 0.6, "avg_return": 0.001, "max_drawdown": -0.02},
        {"decision_latency_ms": {"p50": 0.4, "p95": 0.9, "mean": 0.5}, "sync_latency_ms":
         None if sync is None else {"p50": sync, "p99": 2 * sync, "clock": "virtual"}, "bytes_sent": 30_000},
        base, {"episode_accuracy": [0.3, 0.6, 0.6], "episode_regret": [0.03, 0.02, 0.01]})


def test_metrics_file_follows_the_schema_and_bad_ones_are_refused(tmp_path):
    path = write_metrics([fake("mesh-distributed-learning", 2.0, seed=s) for s in (0, 1, 2)], tmp_path, environment())
    doc = json.loads(path.read_text())
    assert path.name == "mesh-distributed-learning-metrics.json"
    assert doc["schema_version"] == 2 and doc["environment"]["transport"] == "sim" and doc["seeds"] == [0, 1, 2]
    assert doc["trading"]["sharpe_ratio"] == {"mean": 2.0, "ci_low": 2.0, "ci_high": 2.0, "n": 3}
    assert doc["budget"] == {"agents": 5, "episodes": 3, "decisions": 30}  # per seed
    validate(doc)
    for broken in ({k: v for k, v in doc.items() if k != "learning"},
                   {**doc, "status": "great"},
                   {**doc, "checks": [{"name": "x", "passed": "yes", "detail": ""}]},
                   {**doc, "per_seed": [{**doc["per_seed"][0], "baselines": {"random": {}}}]}):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


def test_figures_are_means_with_intervals_and_comparisons_need_their_interval_above_zero():
    runs = [fake("mesh-distributed-learning", s, seed=i, delta=d)
            for i, (s, d) in enumerate(((1.0, 0.5), (2.0, -0.1), (3.0, 0.4)))]
    doc = to_metrics(runs, environment())
    sharpe = doc["trading"]["sharpe_ratio"]
    assert sharpe["mean"] == pytest.approx(2.0) and sharpe["ci_low"] < 1.0 < 3.0 < sharpe["ci_high"]
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["works"]["passed"] and checks["works"]["passed_seeds"] == 3
    # two of three seeds say "better", but the interval spans zero: not a claim the run can make
    tie = checks["beats alone"]
    assert tie["passed_seeds"] == 2 and tie["verdict"] == "tied" and not tie["passed"]
    assert doc["status"] == "failed"
    clear = to_metrics([fake("mesh-distributed-learning", 2.0, seed=i, delta=d) for i, d in enumerate((0.5, 0.4, 0.6))],
                       environment())
    assert clear["checks"][1]["verdict"] == "better" and clear["status"] == "passed"


def test_one_sided_bounds_follow_the_two_sided_interval():
    from swarm.learning.metrics import mean_ci, one_sided_bounds
    fig = mean_ci([0.5, 0.4, 0.6])  # mean 0.5, sd 0.1, n 3
    low, high = one_sided_bounds(fig)
    assert low == pytest.approx(0.5 - 2.920 * 0.1 / 3 ** 0.5, abs=1e-3) and high == pytest.approx(1.0 - low)
    assert fig["ci_low"] < low  # a one-sided bound is tighter than the two-sided interval's end
    assert one_sided_bounds(mean_ci([0.5])) is None


def test_a_crashed_seed_fails_the_pattern(tmp_path):
    path = write_metrics([fake("star-hub-learning", 2.0)], tmp_path, environment(),
                         crashes=[{"seed": 1, "error": "RuntimeError: boom"}])
    doc = json.loads(path.read_text())
    assert doc["status"] == "crashed" and doc["seeds"] == [0, 1]
    assert not doc["checks"][0]["passed"] and doc["checks"][0]["passed_seeds"] == 1
    assert "| star-hub-learning | crashed |" in summary_markdown(tmp_path)


def test_nan_and_numpy_values_become_plain_json():
    import numpy as np
    r = fake("cold-start", 0.5)
    r.learning["accuracy"] = np.float64(0.5)
    r.trading["sharpe_ratio"] = float("nan")
    doc = to_metrics(r, environment())
    assert doc["learning"]["accuracy"]["mean"] == 0.5 and doc["trading"]["sharpe_ratio"] is None
    json.dumps(doc, allow_nan=False)


def test_report_has_tables_guide_charts_and_checks(tmp_path):
    env = environment()
    write_metrics([fake("mesh-distributed-learning", s, sync=300.0, seed=i) for i, s in enumerate((2.4, 2.6, 2.5))],
                  tmp_path, env)
    write_metrics([fake("star-hub-learning", s, sync=800.0, seed=i) for i, s in enumerate((2.2, 2.8, 2.5))],
                  tmp_path, env)
    write_metrics([fake("hierarchical-centralized-learning", s, seed=i) for i, s in enumerate((1.0, 1.1, 0.9))],
                  tmp_path, env)
    write_metrics([fake("ring-sequential-learning", 3.0, ok=False, sync=None, seed=i) for i in range(3)], tmp_path, env)
    write_metrics([fake("cold-start", 2.0, sync=None, seed=i) for i in range(3)], tmp_path, env)
    path = write_report(tmp_path, command="python run_learning_tests.py")
    text = path.read_text()
    assert path.name == REPORT_NAME
    assert "## Deployment patterns" in text and "## Learning scenarios" in text and "seeds 0, 1, 2" in text
    assert "| mesh-distributed-learning | passed | 1/1 | 5 x 3 (30 decisions) | 2.50 [2.25, 2.75] |" in text
    # ranked by Sharpe among patterns that passed; overlapping intervals are called a tie
    assert ("**Best risk-adjusted return (Sharpe):** mesh-distributed-learning (2.50 [2.25, 2.75]); tied with "
            "star-hub-learning") in text
    assert "hierarchical-centralized-learning" not in text.split("tied with")[1].split("\n")[0]
    assert "**Fastest pattern sync (p50):** hierarchical-centralized-learning (120 [120, 120] virtual ms)" in text
    assert "Not recommended from this run (a check failed or a run crashed):** ring-sequential-learning" in text
    for chart in ("learning_curves.png", "sharpe.png", "sync_latency.png"):
        assert (tmp_path / "charts" / chart).stat().st_size > 1000 and f"(charts/{chart})" in text
    assert "- FAIL **works** (0/3 seeds, failed): passed on 0 of 3 seeds. First seed: measured 3.0" in text
    assert "| cold-start | passed |" in summary_markdown(tmp_path)
    assert len(read_metrics(tmp_path)) == 5


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
    done = runner("-k", "blue_green", "--quick", "--seed", "2", "--seeds", "2", "--jobs", "2", "--out", str(out))
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert sorted(p.name for p in out.glob("*-metrics.json")) == ["blue-green-knowledge-transfer-metrics.json"]
    doc = json.loads((out / "blue-green-knowledge-transfer-metrics.json").read_text())
    assert doc["seeds"] == [2, 3] and doc["status"] in ("passed", "failed")
    assert (done.returncode == 0) == (doc["status"] == "passed")  # the exit status is the verdict
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
               "transfer-learning", "continual-learning", "catastrophic-forgetting", "poisoning-defence")


def test_the_registry_holds_exactly_the_fourteen_patterns_in_suite_order():
    from scenarios.registry import builtin
    assert tuple(builtin()) == PATTERN_IDS


@pytest.mark.parametrize("pattern", PATTERN_IDS)
def test_every_pattern_writes_a_metrics_file_that_follows_the_schema(pattern_result, pattern, tmp_path):
    path = write_metrics(pattern_result(pattern).runs, tmp_path, environment())  # validates, or raises
    doc = json.loads(path.read_text())
    assert doc["pattern"] == pattern and doc["series"]["episode_accuracy"]["mean"]
    for section, keys in (("learning", ("accuracy", "convergence_episodes", "pattern_count")),
                          ("trading", ("sharpe_ratio", "win_rate", "avg_return", "max_drawdown"))):
        assert set(keys) <= set(doc[section]), (section, sorted(doc[section]))


def test_a_crash_names_the_error_a_task_group_wrapped_and_where_it_was_raised():
    from reports.plugin import crash_description

    def broken() -> None:
        raise KeyError("peer-3")

    try:
        try:
            broken()
        except KeyError as inner:
            raise ExceptionGroup("task group failed", [inner]) from None
    except ExceptionGroup as e:
        text = crash_description(e)
    assert text.startswith("ExceptionGroup: task group failed")
    assert "innermost KeyError: 'peer-3' at test_reports.py:" in text and "(broken)" in text
