"""Bad usage of run_learning_tests.py is one line on stderr naming the problem, exit status 2, no
traceback, and nothing run: a malformed -k expression, an --out it cannot create or write to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def runner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run_learning_tests.py"), "--quick", "--seeds", "1", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stdout == "", done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("run_learning_tests.py: error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize("keyword, where", [
    ("mesh and", "column 9"),
    ("(mesh", "column 6"),
    ("mesh or or star", "column 9"),
    ("mesh & star", 'unexpected character "&"'),
    ("mesh\nstar", "column 5"),
    ("mesh(x='a)", "closing quote"),
    ("mesh(x=1)", "no name(arg=value) calls"),
])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_malformed_k_is_one_line_and_exit_2(keyword, where, jobs, tmp_path):
    line = one_line_error(runner("-k", keyword, "--jobs", jobs, "--out", str(tmp_path / "out")))
    assert "bad -k expression" in line and where in line
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_an_out_under_a_regular_file_is_one_line_and_exit_2(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("not a directory")
    line = one_line_error(runner("-k", "star", "--out", str(plain / "results")))
    assert f"--out {plain / 'results'}" in line and "Not a directory" in line


def test_an_out_that_is_a_regular_file_is_one_line_and_exit_2(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("not a directory")
    line = one_line_error(runner("-k", "star", "--out", str(plain)))
    assert "is not a directory" in line


def test_an_out_whose_charts_is_a_file_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "charts").write_text("not a directory")
    assert "charts exists and is not a directory" in one_line_error(runner("-k", "star", "--out", str(tmp_path)))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("out", ["/proc/results", "/proc"])
def test_an_out_in_a_pseudo_filesystem_is_one_line_and_exit_2(out):
    """/proc takes no new files, whoever asks (root included)."""
    assert f"--out {out}: cannot write there" in one_line_error(runner("-k", "star", "--out", out))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write to a read-only directory")
def test_an_out_in_a_read_only_directory_is_one_line_and_exit_2(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for out in (locked, locked / "results"):
            assert "Permission denied" in one_line_error(runner("-k", "star", "--out", str(out)))
    finally:
        locked.chmod(0o700)
