"""An interrupted run's results: the report and the CI summary say so and list what did not run as
"not run" (never failed); a KeyboardInterrupt a swarm's task group wrapped is still an interruption."""

from __future__ import annotations

import pytest

from reports.markdown import write_report
from reports.plugin import _interruption_unwrapped
from reports.summary import read_interruption, summary_markdown, write_interruption


def test_the_report_and_summary_of_an_interrupted_run_list_what_did_not_run(tmp_path):
    write_interruption(tmp_path, "SIGTERM", ["star-hub-learning", "cold-start"])
    assert read_interruption(tmp_path) == {"signal": "SIGTERM", "not_run": ["star-hub-learning", "cold-start"]}
    report = write_report(tmp_path).read_text()
    assert report.startswith("# Learning patterns comparison (interrupted)\n")
    assert "Interrupted by SIGTERM" in report and "not run: star-hub-learning, cold-start" in report
    assert "### star-hub-learning — not run" in report and "### cold-start — not run" in report
    summary = summary_markdown(tmp_path)
    assert "(interrupted)" in summary and "Interrupted by SIGTERM" in summary
    assert "| star-hub-learning | not run |" in summary and "| cold-start | not run |" in summary
    assert "— failed" not in report and "crashed" not in report.lower() and "| failed |" not in summary


def test_a_complete_run_is_not_marked(tmp_path):
    assert read_interruption(tmp_path) is None
    assert "nterrupted" not in write_report(tmp_path).read_text() + summary_markdown(tmp_path)
    (tmp_path / "interrupted.json").write_text("not json")  # unreadable: no mark rather than a crash
    assert read_interruption(tmp_path) is None


def test_a_keyboard_interrupt_wrapped_in_exception_groups_is_an_interruption():
    with pytest.raises(KeyboardInterrupt) as caught, _interruption_unwrapped():
        raise BaseExceptionGroup("task group failed", [
            ValueError("a sibling failed while cancelled"),
            BaseExceptionGroup("inner", [KeyboardInterrupt()]),
        ])
    assert isinstance(caught.value.__cause__, BaseExceptionGroup)


def test_other_exception_groups_pass_unchanged():
    group = ExceptionGroup("task group failed", [ValueError("a real crash")])
    with pytest.raises(ExceptionGroup) as caught, _interruption_unwrapped():
        raise group
    assert caught.value is group
