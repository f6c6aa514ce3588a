"""`attnc check`: exit codes, one line per problem, JSON report, summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnc.cli import check_cmd

GOOD = Path(__file__).parent / "dsl_good"
BAD_SOURCE = "def f(q: int, k: int, w: Window) -> float:\n    x = open\n    y = w.secrets\n    return 1.0\n"


def test_good_directory_passes_with_run(capsys):
    assert check_cmd.main([str(GOOD), "--run"]) == 0
    out = capsys.readouterr().out
    assert "0 rejected" in out


def test_problems_are_listed_one_per_line(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text(BAD_SOURCE)
    assert check_cmd.main([str(bad), str(GOOD / "native_same_token.py")]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if line.startswith(str(bad))]
    assert len(lines) == 2
    assert lines[0].startswith(f"{bad}:2:9: error: ") and "[forbidden-name]" in lines[0]
    assert "2 file(s) checked: 1 ok, 1 rejected, 2 problem(s)" in captured.err


def test_json_report(tmp_path, capsys):
    (tmp_path / "bad.py").write_text(BAD_SOURCE)
    (tmp_path / "good.py").write_text((GOOD / "native_previous_token.py").read_text())
    (tmp_path / "notes.txt").write_text("not a program")
    assert check_cmd.main([str(tmp_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == 2 and report["ok"] == 1 and report["failed"] == 1
    assert set(report["errors"][0]) == {"path", "line", "col", "rule", "message", "hint"}


def test_run_reports_contract_failures(tmp_path, capsys):
    broken = tmp_path / "nan.py"
    broken.write_text("def f(q: int, k: int, w: Window) -> float:\n    return float('inf')\n")
    assert check_cmd.main([str(broken), "--run", "--json"]) == 1
    (error,) = json.loads(capsys.readouterr().out)["errors"]
    assert error["rule"] == "run" and "inf" in error["message"]


def test_missing_file_and_empty_directory(tmp_path, capsys):
    assert check_cmd.main([str(tmp_path / "missing.py")]) == 1
    assert "cannot read program" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_cmd.main([str(empty)]) == 1


def test_registered_in_the_attnc_cli(capsys):
    try:
        from attnc.cli import build_parser
        parser = build_parser()
    except ImportError as exc:
        pytest.skip(f"another subcommand module is not available yet: {exc}")
    args = parser.parse_args(["check", str(GOOD / "native_previous_token.py")])
    assert args.func(args) == 0
