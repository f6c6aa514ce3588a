"""Files defining the same function coexist in a library, under stable unique names used everywhere.

A program is named by its function when that is unique in the build, else by
`<file stem>.<function>`; failed files never take or change a compiled
program's name; `attnc score --lib` on such a library scores every compiled
program (no KeyError) and `attnc fit` reports the same names.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attnc.cli import main
from attnc.compiler.library_build import build_library, library_names
from attnc.dsl.samples import SAMPLE_VOCAB, SAMPLE_WINDOWS
from attnc.runtime.library import load_library

PREVIOUS = "def same(q: int, k: int, w: Window) -> float:\n    return 1.0 if k == q - 1 else 0.0\n"
FIRST = "def same(q: int, k: int, w: Window) -> float:\n    return 1.0 if k == 0 else 0.0\n"
UNIQUE = "def diagonal(q: int, k: int, w: Window) -> float:\n    return 1.0 if k == q else 0.0\n"
BROKEN = "def diagonal(q: int, k: int, w: Window) -> float:\n    return open('x')\n"


def test_names_are_plain_when_unique_and_qualified_when_shared():
    entries = [(Path("a/x.py"), "same"), (Path("a/y.py"), "same"), (Path("a/z.py"), "other"),
               (Path("a/other.py"), None), (Path("b/x.py"), "same"), (Path("a/broken.py"), None)]
    names = library_names(entries)
    assert names == ["a.x.same", "y.same", "other", "a.other", "b.x.same", "broken"]
    assert len(set(names)) == len(names)
    assert library_names(entries) == names  # stable


@pytest.fixture(scope="module")
def library_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("names")
    src = root / "src"
    src.mkdir()
    (src / "previous.py").write_text(PREVIOUS)
    (src / "first.py").write_text(FIRST)
    (src / "diag.py").write_text(UNIQUE)
    (src / "diagonal.py").write_text(BROKEN)  # fails; its stem is another program's name
    (src / "same.py").write_text("def same(:\n")  # fails; its stem is a shared function name
    report = build_library([src], root / "lib")
    return root, report


def test_colliding_programs_coexist_and_failed_files_do_not_shadow_them(library_dir):
    root, report = library_dir
    by_file = {Path(r.source_file).name: r for r in report.records}
    assert by_file["previous.py"].name == "previous.same" and by_file["first.py"].name == "first.same"
    assert by_file["diag.py"].name == "diagonal" and by_file["diag.py"].status == "ok"
    assert by_file["diagonal.py"].status == "error" and by_file["diagonal.py"].name != "diagonal"
    assert by_file["same.py"].status == "error"
    manifest = json.loads((root / "lib" / "manifest.json").read_text())
    names = [p["name"] for p in manifest["programs"]]
    assert len(set(names)) == len(names)
    library = load_library(root / "lib", vocab=SAMPLE_VOCAB)
    assert library.names == ["diagonal", "first.same", "previous.same"]
    ids = np.array([SAMPLE_WINDOWS["cat"]])
    first = library.programs["first.same"].evaluate(ids, SAMPLE_VOCAB)[0]
    previous = library.programs["previous.same"].evaluate(ids, SAMPLE_VOCAB)[0]
    assert first[3, 0] == 1.0 and previous[3, 2] == 1.0
    assert set(library.matrices(library.names, ids)) == set(library.names)
    assert (root / "lib" / "sources" / "first.same.py").read_text() == FIRST


def test_score_and_fit_a_library_with_failed_entries(library_dir, capsys):
    from attnc.runtime.models import tiny_model
    from attnc.study.scoring import ScoreTable

    root, _ = library_dir
    loaded = tiny_model("gpt2", n_layers=1, n_heads=2)
    loaded.model.save_pretrained(root / "model")
    loaded.tokenizer.save_pretrained(root / "model")
    (root / "corpus.txt").write_text("The dog ran after the ball. The cat sat. " * 20)
    args = ["score", "--model", str(root / "model"), "--corpus", str(root / "corpus.txt"), "--window", "16",
            "--lib", str(root / "lib"), "--out", str(root / "scores.npz"), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_programs"] == 3
    table = ScoreTable.load(root / "scores.npz")
    assert sorted(table.programs) == ["diagonal", "first.same", "previous.same"]
    assert main(["fit", "--scores", str(root / "scores.npz"), "--out", str(root / "fits.json"), "--json"]) == 0
    capsys.readouterr()
    fits = json.loads((root / "fits.json").read_text())
    chosen = json.dumps(fits)
    assert any(name in chosen for name in table.programs)
