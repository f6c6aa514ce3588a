"""`attnc check --props`: property tests pass on good programs and shrink failures on broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from attnc.authoring.properties import builtin_vocab, check_program_properties
from attnc.authoring.windows import VocabPools, edge_case_windows, window_strategy
from attnc.cli import check_cmd
from attnc.dsl import load_program, parse_program

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
FAST = ["--examples", "20", "--backends", "numpy"]

BROKEN = {
    # writes on the next token: the output rule masks it, the raw output is wrong
    "future": ("def future(q: int, k: int, w: Window) -> float:\n"
               "    return 1.0 if k == q + 1 or k == q - 1 else 0.0\n"),
    # all-identical tokens: 0 / 0 -> NaN
    "nan_same": ("import numpy as np\n\n\ndef nan_same(sentence: str, tokenizer) -> np.ndarray:\n"
                 "    ids = tokenizer([sentence], return_tensors=\"np\").input_ids[0]\n"
                 "    n = len(ids)\n"
                 "    distinct = len(set(ids.tolist()))\n"
                 "    out = np.tril(np.ones((n, n))) * (distinct - 1)\n"
                 "    return out / out.sum(axis=1, keepdims=True)\n"),
    # a one-token window has no position 1
    "second_token": ("def second_token(q: int, k: int, w: Window) -> float:\n"
                     "    return 1.0 if k <= q and w.ids[k] == w.ids[1] else 0.0\n"),
    # distance beyond 2 gives negative weights (clipped by the runtime)
    "negative": ("def negative(q: int, k: int, w: Window) -> float:\n"
                 "    return 2.0 - (q - k) if k <= q else 0.0\n"),
}


def _write(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(BROKEN[name])
    return path


def test_props_pass_on_library_programs(capsys):
    paths = [str(PROGRAMS / f) for f in ("previous_token.py", "induction.py", "bracket_opener.py")]
    assert check_cmd.main(["--props", *paths, *FAST]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok: 8 properties held") == 3
    assert "3 file(s) property-tested: 3 ok, 0 failed" in out


@pytest.mark.parametrize("name, prop, shrunk_length, detail", [
    ("future", "causal", 2, "raw output writes above the diagonal"),
    ("nan_same", "finite", 1, "NaN"),
    ("second_token", "runs", 1, "IndexError"),
    ("negative", "non-negative", 4, "the runtime clips it to 0"),
])
def test_props_fail_with_a_shrunk_counterexample(tmp_path, capsys, name, prop, shrunk_length, detail):
    path = _write(tmp_path, name)
    assert check_cmd.main(["--props", str(path), *FAST]) == 1
    captured = capsys.readouterr()
    line = captured.out.strip().splitlines()[0]
    assert line.startswith(f"{path}: property '{prop}' failed on window ids=[")
    assert detail in line and " text='" in line
    assert "0 ok, 1 failed" in captured.err
    report = check_program_properties(load_program(path), examples=20, backends=("numpy",))
    assert report.failed_property == prop and len(report.ids) == shrunk_length
    assert f"ids={report.ids}" in line
    assert report.text == builtin_vocab().decode(report.ids)


def test_props_json_report(tmp_path, capsys):
    path = _write(tmp_path, "future")
    assert check_cmd.main(["--props", str(path), str(PROGRAMS / "previous_token.py"), "--json", *FAST]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["files"], report["ok"], report["failed"]) == (2, 1, 1)
    failed = next(r for r in report["reports"] if not r["ok"])
    assert failed["failed_property"] == "causal" and failed["ids"] and failed["program"] == "future"


def test_invalid_file_is_reported_not_run(tmp_path, capsys):
    path = tmp_path / "bad.py"
    path.write_text("def bad(q: int, k: int, w: Window) -> float:\n    return open\n")
    assert check_cmd.main(["--props", str(path), *FAST]) == 1
    assert "property 'valid' failed" in capsys.readouterr().out


def test_uniform_floor_above_the_diagonal_is_tolerated():
    source = ("import numpy as np\n\n\ndef smoothed(sentence: str, tokenizer):\n"
              "    n = len(tokenizer([sentence], return_tensors=\"np\").input_ids[0])\n"
              "    out = np.eye(n)\n    out += 1e-4\n    return out\n")
    report = check_program_properties(parse_program(source, "smoothed.py"), examples=10, backends=())
    assert report.ok, report.message()


def test_compiled_mismatch_is_caught():
    class WrongKernel:  # stands in for a miscompiled CompiledProgram
        backend = "numpy"

        def evaluate(self, batch, vocab):
            n = batch.shape[1]
            return np.tril(np.ones((1, n, n))) / np.arange(1, n + 1)[None, :, None]

        def raw(self, batch, vocab):
            return self.evaluate(batch, vocab)

    from attnc.authoring.properties import PropertyViolation, check_window

    program = load_program(PROGRAMS / "previous_token.py")
    with pytest.raises(PropertyViolation, match="backend numpy gives 0.5 at row 1, key 0; the reference gives 1") as info:
        check_window(program, [WrongKernel()], [5, 6, 7], builtin_vocab())
    assert info.value.prop == "compiled-matches-reference"


def test_same_seed_same_counterexample(tmp_path):
    program = load_program(_write(tmp_path, "future"))
    first = check_program_properties(program, examples=15, seed=3, backends=())
    second = check_program_properties(program, examples=15, seed=3, backends=())
    assert first.ids == second.ids and first.windows == second.windows


def test_edge_cases_cover_the_window_classes():
    vocab = builtin_vocab()
    pools = VocabPools.from_vocab(vocab)
    cases = edge_case_windows(pools)
    assert len(cases["one token"]) == 1
    assert len(set(cases["all identical"])) == 1
    assert vocab.is_punct[cases["all punctuation"]].all()
    assert vocab.has_newline[cases["newlines"]].any()
    assert (vocab.bracket_kind[cases["brackets"]] != 0).sum() >= 4
    longest = max(len(t) for i, t in enumerate(vocab.tokens) if i not in vocab.special_ids)
    assert max(len(vocab.tokens[i]) for i in cases["longest tokens"]) == longest


_POOLS = VocabPools.from_vocab(builtin_vocab())


@settings(max_examples=40, deadline=None)
@given(window_strategy(_POOLS, max_len=512))
def test_generated_windows_are_valid(ids):
    assert 1 <= len(ids) <= 512
    assert all(0 <= i < _POOLS.size for i in ids)
