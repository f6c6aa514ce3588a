"""`attnc new`: skeletons and --like copies are valid programs; nothing is overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnc.authoring.skeleton import AuthoringError, WINDOW_MEMBERS, like_source, new_program, skeleton_source
from attnc.cli import check_cmd, new_cmd
from attnc.dsl import load_program, parse_program, run_reference
from attnc.dsl.samples import SAMPLE_VOCAB, SAMPLE_WINDOWS
from attnc.window import FEATURE_NAMES
from attnc.window_syntax import SYNTAX_FEATURE_NAMES

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"


def _run_new(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    new_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["new", *argv])
    return args.func(args)


@pytest.mark.parametrize("form", ["native", "paper"])
def test_new_writes_a_program_that_passes_check(tmp_path, form, capsys):
    assert _run_new(["my_head", "--form", form, "--out", str(tmp_path)]) == 0
    path = tmp_path / "my_head.py"
    assert f"wrote {path}" in capsys.readouterr().out
    program = load_program(path)
    assert program.name == "my_head" and program.form == form
    assert check_cmd.main([str(path), "--run"]) == 0
    # the starting body is the previous-token head
    assert run_reference(program, SAMPLE_WINDOWS["cat"], SAMPLE_VOCAB)[3, 2] == 1.0


def test_new_refuses_to_overwrite(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text("# my work\n")
    assert _run_new(["mine", "--out", str(tmp_path)]) == 1
    assert "never overwrites" in capsys.readouterr().err
    assert path.read_text() == "# my work\n"
    with pytest.raises(AuthoringError, match="exists"):
        new_program("mine", out_dir=tmp_path)


@pytest.mark.parametrize("name", ["1abc", "my-head", "class", "__x", "", "naïve"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(AuthoringError, match="cannot name a program"):
        new_program(name, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_native_skeleton_lists_every_window_feature_and_the_output_rule():
    source = skeleton_source("x")
    listed = {member.split("[")[0].removeprefix("w.") for member, _ in WINDOW_MEMBERS}
    assert set(FEATURE_NAMES) | set(SYNTAX_FEATURE_NAMES) | {"n", "tok", "text"} == listed
    for member, _ in WINDOW_MEMBERS:
        assert f"#   {member}" in source
    assert "Output rule" in source and "k > q" in source


def test_like_copies_a_program_by_name_and_renames_its_entry(tmp_path):
    path = new_program("my_induction", out_dir=tmp_path, like="induction", programs_dir=PROGRAMS)
    program = load_program(path)
    original = load_program(PROGRAMS / "induction.py")
    assert program.name == "my_induction" and program.docstring == original.docstring
    ids = SAMPLE_WINDOWS["lines"]
    assert (run_reference(program, ids, SAMPLE_VOCAB) == run_reference(original, ids, SAMPLE_VOCAB)).all()


def test_like_accepts_a_path_and_keeps_helpers(tmp_path):
    source = (
        "LIMIT = 2\n\n\ndef near(q: int, k: int) -> bool:\n    return q - k <= LIMIT\n\n\n"
        "def local(q: int, k: int, w: Window) -> float:\n    return 1.0 if k <= q and near(q, k) else 0.0\n"
    )
    (tmp_path / "local.py").write_text(source)
    copy = like_source(parse_program(source, str(tmp_path / "local.py")), "local_copy")
    assert "def local_copy(q: int, k: int, w: Window)" in copy and "def near(" in copy
    out = tmp_path / "out"
    assert _run_new(["local_copy", "--like", str(tmp_path / "local.py"), "--out", str(out)]) == 0
    assert load_program(out / "local_copy.py").helpers == ("near",)


def test_like_refuses_a_name_that_collides_with_a_helper(tmp_path):
    source = "def near(q: int, k: int) -> bool:\n    return q - k <= 2\n\n\n" \
             "def local(q: int, k: int, w: Window) -> float:\n    return 1.0 if near(q, k) else 0.0\n"
    with pytest.raises(AuthoringError, match="does not validate"):
        like_source(parse_program(source, "local.py"), "near")


def test_like_missing_program_is_an_error(tmp_path, capsys):
    assert _run_new(["x", "--like", "no_such_program", "--out", str(tmp_path)]) == 1
    assert "no such file" in capsys.readouterr().err
