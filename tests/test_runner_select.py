"""run_learning_tests.py -k: pytest's expression syntax over WHOLE words (pattern ids, modules, behaviours),
never substrings; --list shows pattern ids with their behaviours; a malformed -k is one line and exit 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import run_learning_tests as runner
from run_learning_tests import _Test, _compile, _selects

ROOT = Path(__file__).resolve().parents[1]
LEARNING = ("cold-start", "warm-start", "transfer-learning", "continual-learning", "catastrophic-forgetting")


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, list[str]]:
    """Run ``--list`` in-process (collects, runs nothing): pattern id -> its behaviours."""
    assert runner.main(["--list", *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    rows: dict[str, list[str]] = {}
    last = ""
    for line in captured.out.splitlines():
        cells = [c.strip() for c in re.split(r"[│|]", line)]  # body rows; the header row is drawn with ┃
        if len(cells) != 5 or not (cells[1] or last):
            continue
        if cells[1]:
            last = cells[1]
            rows[last] = []
        rows[last] += [b.strip() for b in cells[3].split(",") if b.strip()]
    assert rows, "the listing has no rows"
    return rows


def test_star_is_a_whole_word_not_a_substring_of_start(capsys):
    assert list(listed(capsys, "-k", "star")) == ["star-hub-learning"]  # not cold-start, warm-start


def test_ring_selects_the_ring_pattern_only(capsys):
    assert list(listed(capsys, "-k", "ring")) == ["ring-sequential-learning"]


def test_and_combines_pattern_and_behaviour_words(capsys):
    assert listed(capsys, "-k", "mesh and fault") == {"mesh-distributed-learning": ["fault_tolerance"]}


def test_not_excludes_a_pattern(capsys):
    rows = listed(capsys, "-k", "not mesh")
    assert "mesh-distributed-learning" not in rows
    assert {"star-hub-learning", "ring-sequential-learning", *LEARNING} <= set(rows)


@pytest.mark.parametrize("keyword", ["cold-start", "cold_start", "Cold-Start"])
def test_a_learning_scenario_by_its_id(capsys, keyword):
    assert listed(capsys, "-k", keyword) == {"cold-start": ["learning_scenario"]}


def test_learning_is_still_an_identifier(capsys):
    rows = listed(capsys, "-k", "learning and not (mesh or star)")
    assert {"ring-sequential-learning", *LEARNING} <= set(rows)
    assert not {"mesh-distributed-learning", "star-hub-learning"} & set(rows)


def test_list_shows_pattern_ids_grouped_with_behaviours(capsys):
    rows = listed(capsys)
    assert {"mesh-distributed-learning", "star-hub-learning", *LEARNING} <= set(rows)
    assert rows["star-hub-learning"] == ["hub_relay", "hub_failure_impact"]
    assert "fault_tolerance" in rows["mesh-distributed-learning"]


def test_list_with_k_names_the_star_pattern_id_only(capsys):
    assert runner.main(["--list", "-k", "star"]) == 0
    out = capsys.readouterr().out
    assert "star-hub-learning" in out
    for other in ("mesh", "ring", "cold-start", "warm-start", "learning_scenario"):
        assert other not in out


def test_words_are_whole_parts_of_id_module_and_behaviour():
    star = _Test("star-hub-learning", "star", "hub_failure_impact")
    cold = _Test("cold-start", "learning", "learning_scenario")
    auto = _Test("auto-scale-adaptive-learning", "auto_scale", "scale_up_on_patterns")
    for keyword, test, expected in [
        ("star", star, True), ("star", cold, False), ("start", cold, True), ("sta", star, False),
        ("hub_failure_impact", star, True), ("failure", star, True), ("hub_failure", star, False),
        ("auto_scale", auto, True), ("auto-scale", auto, True), ("scale", auto, True), ("AUTO", auto, True),
        ("star-hub-learning", star, True), ("learning", cold, True), ("not learning", star, False),
    ]:
        assert _selects(_compile(keyword), test) is expected, (keyword, test)


@pytest.mark.parametrize("keyword", ["mesh and", "(mesh", "mesh )", "mesh or or ring", "mesh $", "mesh(x=1)"])
def test_malformed_k_is_one_line_and_exit_2(capsys, keyword):
    assert runner.main(["--list", "-k", keyword]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "-k" in captured.err


def test_malformed_k_from_the_command_line():
    done = subprocess.run([sys.executable, str(ROOT / "run_learning_tests.py"), "-k", "mesh and"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "bad -k expression" in done.stderr


def test_k_matching_nothing_is_one_line_and_exit_2(capsys):
    assert runner.main(["--list", "-k", "sta"]) == 2  # a substring of star and start, a word of neither
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no test matches" in err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_run_applies_the_selection_in_every_worker(tmp_path, jobs):
    """The by-hand tests run no scenario; had any worker ignored -k, scenarios would write metrics files."""
    out = tmp_path / "r"
    done = subprocess.run([sys.executable, str(ROOT / "run_learning_tests.py"), "-k", "by and hand",
                           "--jobs", jobs, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 2 would be "no test matches"
    assert not list(out.glob("*-metrics.json")), done.stdout


def test_a_run_that_names_no_seed_count_runs_each_pattern_its_own():
    from scenarios.registry import DEFAULT_SEEDS, default_seeds
    from topologies import mesh

    assert default_seeds(mesh.TOPOLOGY.name) == 5  # its sharing verdict needs them (scenarios/mesh.py)
    assert default_seeds("star-hub-learning") == DEFAULT_SEEDS == 3
    assert default_seeds("a-user-topology") == DEFAULT_SEEDS
