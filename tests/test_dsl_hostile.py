"""The security bar: every hostile program in tests/hostile is rejected, none runs.

File name prefixes say where each attack must be stopped:
`grammar_*` (text outside the grammar, or a forbidden header), `validate_*`
(parses, stopped by validation), `runtime_*` (passes validation, stopped by a
run-time guard). Every file would create /tmp/attnc_pwned_<name>, or run
forever / allocate without bound, if it ever executed.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attnc.dsl import ProgramError, ProgramRuntimeError, iter_program_files, load_program, run_reference
from attnc.dsl.samples import SAMPLE_VOCAB, SAMPLE_WINDOWS

HOSTILE_DIR = Path(__file__).parent / "hostile"
HOSTILE_FILES = iter_program_files([HOSTILE_DIR])
STATIC_FILES = [p for p in HOSTILE_FILES if not p.name.startswith("runtime_")]
RUNTIME_FILES = [p for p in HOSTILE_FILES if p.name.startswith("runtime_")]
MARKER_GLOB = "/tmp/attnc_pwned_*"
SYNTAX_RULES = {"syntax", "forbidden-syntax", "indent", "depth", "encoding", "size"}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_markers():
    for stale in glob.glob(MARKER_GLOB):
        os.remove(stale)
    yield
    assert glob.glob(MARKER_GLOB) == [], "a hostile program executed"


def test_corpus_size_and_categories():
    assert len(HOSTILE_FILES) >= 110
    assert len([p for p in HOSTILE_FILES if p.name.startswith("validate_")]) >= 20
    assert len(RUNTIME_FILES) >= 10
    assert all(p.name.split("_")[0] in ("grammar", "validate", "runtime") for p in HOSTILE_FILES)


@pytest.mark.parametrize("path", STATIC_FILES, ids=lambda p: p.stem)
def test_static_attacks_are_rejected_with_locations(path):
    with pytest.raises(ProgramError) as info:
        load_program(path)
    diagnostics = info.value.diagnostics
    assert diagnostics
    for d in diagnostics:
        assert d.path == str(path) and d.line >= 1 and d.col >= 1 and d.message
        assert str(d).startswith(f"{path}:{d.line}:{d.col}: error: ")
    if path.name.startswith("validate_"):
        assert not {d.rule for d in diagnostics} & SYNTAX_RULES, "should pass the grammar, fail validation"


@pytest.mark.parametrize("path", RUNTIME_FILES, ids=lambda p: p.stem)
def test_runtime_attacks_pass_validation_and_are_stopped_by_guards(path):
    program = load_program(path)
    with pytest.raises(ProgramRuntimeError) as info:
        run_reference(program, SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)
    assert "GuardError" in str(info.value) and info.value.line is not None


def _check_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attnc.cli.check_cmd", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_check_command_rejects_the_whole_corpus():
    result = _check_cli(str(HOSTILE_DIR), "--run", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["files"] == len(HOSTILE_FILES) and report["ok"] == 0
    rejected = {e["path"] for e in report["errors"]}
    assert rejected == {str(p) for p in HOSTILE_FILES}
    assert all(e["line"] >= 1 and e["col"] >= 1 for e in report["errors"])


def test_check_command_text_output_without_run():
    result = _check_cli(str(HOSTILE_DIR))
    assert result.returncode == 1
    for path in STATIC_FILES:
        assert f"{path}:" in result.stdout
    assert f"{len(HOSTILE_FILES)} file(s) checked" in result.stdout + result.stderr


def test_check_command_accepts_good_programs():
    result = _check_cli(str(Path(__file__).parent / "dsl_good"), "--run")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("body", [
    "    lst = []\n    for i in range(300000):\n        lst.append(i)\n    return 1.0\n",
    "    d = {}\n    for i in range(300000):\n        d[i] = i\n    return 1.0\n",
])
def test_container_growth_is_bounded_on_long_windows(body):
    """On a 64-token window the loop budget allows 300k iterations; the size bound still stops growth."""
    from attnc.dsl import parse_program

    program = parse_program("def grow(q: int, k: int, w: Window) -> float:\n" + body)
    with pytest.raises(ProgramRuntimeError, match="grow"):
        run_reference(program, [1] * 64, SAMPLE_VOCAB)
