"""Scenarios and deployment patterns run on real price files (--market csv:...), and say so.

Quick runs on Google's 2004-2008 daily bars (matplotlib's goog.npz, tests/realdata.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import run_learning_tests as runner
from scenarios.registry import run_pattern
from swarm.learning import markets as ms
from tests import realdata

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def goog(tmp_path_factory) -> Path:
    return realdata.goog(tmp_path_factory.mktemp("prices"))


def test_cold_start_runs_on_real_data_and_says_so(goog):
    r = run_pattern("cold-start", seed=0, quick=True, market=f"csv:{goog}")
    assert r.config["market"] == "csv:goog.csv"
    files = r.config["market_detail"]["files"]
    assert files == [{"file": "goog.csv", "bars": 1047, "bars_per_year": 252.0}]
    assert any("fewer decisions" in n for n in r.config["market_detail"]["notes"])  # quick asks for 2500 bars
    assert r.learning["decisions"] > 50 and r.trading["sharpe_ratio"] is not None
    assert r.baselines["regime-rule"] == {"null_reason": "the hidden regime is unknown (real price data)"}
    assert r.learning["held_out"]["after"]["decisions"] > 0
    assert ms.active() is ms.SYNTHETIC  # the source was for that run only


def test_synthetic_runs_record_their_market():
    r = run_pattern("cold-start", seed=0, quick=True)
    assert r.config["market"] == "synthetic" and "market_detail" not in r.config


def test_star_deployment_runs_on_real_data(goog):
    r = run_pattern("star-hub-learning", seed=0, quick=True, market=f"csv:{goog}")
    assert r.config["market"] == "csv:goog.csv"
    assert r.learning["decisions"] > 0 and {c.name for c in r.checks} >= {"hub relay"}


def test_regime_mapping_is_not_measured_on_real_data(goog):
    r = run_pattern("multi-strategy-meta-learning", seed=0, quick=True, market=f"csv:{goog}")
    mapping = next(c for c in r.checks if c.name == "strategy-condition mapping")
    assert not mapping.passed and mapping.detail.startswith("not measured on real data")


def _usage_error(capsys, *args: str) -> str:
    assert runner.main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_runner_refuses_a_malformed_csv_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,100\n2024-01-01,1,2,0.5,1.5,100\n")
    err = _usage_error(capsys, "--market", f"csv:{bad}", "--list")
    assert err == "run_learning_tests.py: error: bad.csv line 3: date is earlier than the previous row's\n"
    err = _usage_error(capsys, "--market", f"csv:{bad}", "-k", "cold-start", "--out", str(tmp_path / "r"))
    assert "bad.csv line 3" in err and not (tmp_path / "r").exists()


def test_runner_refuses_an_unknown_market_in_one_line(capsys):
    err = _usage_error(capsys, "--market", "bogus", "--list")
    assert err == ("run_learning_tests.py: error: --market must be 'synthetic' or 'csv:PATH[,PATH...]', "
                   "not 'bogus'\n")
    assert "no such file" in _usage_error(capsys, "--market", "csv:/nonexistent/prices.csv")


def test_runner_passes_the_market_to_the_suite(goog, tmp_path):
    out = tmp_path / "r"
    proc = subprocess.run([sys.executable, str(ROOT / "run_learning_tests.py"), "--market", f"csv:{goog}",
                           "-k", "cold-start", "--quick", "--seeds", "1", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads((out / "cold-start-metrics.json").read_text())
    assert doc["per_seed"][0]["config"]["market"] == "csv:goog.csv"
