"""attnc compile -> score -> fit on a tiny model saved as a local Hugging Face directory."""

import json
from pathlib import Path

import numpy as np
import pytest

from attnc.cli import main
from attnc.runtime.models import tiny_model
from attnc.study.fits_file import read_fits
from attnc.study.scoring import ScoreTable

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
STORY = ("Tom had a red ball. He threw the ball to his dog, and the dog ran after it. "
         "\"Good dog!\" said Tom. The dog was happy. ")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    loaded = tiny_model("gpt2", n_layers=2, n_heads=2)
    loaded.model.save_pretrained(root / "model")
    loaded.tokenizer.save_pretrained(root / "model")
    (root / "corpus.txt").write_text("\n\n".join([STORY * 3] * 4))
    progs = root / "programs"
    progs.mkdir()
    for name in ("first_token", "previous_token", "uniform_causal"):
        (progs / f"{name}.py").write_text((PROGRAMS / f"{name}.py").read_text())
    assert main(["compile", str(progs), "-o", str(root / "lib")]) == 0
    return root


def test_score_then_fit(workdir, capsys):
    args = ["score", "--model", str(workdir / "model"), "--corpus", str(workdir / "corpus.txt"), "--window", "16",
            "--lib", str(workdir / "lib"), "--out", str(workdir / "scores.npz"), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_programs"] == 3 and summary["n_heads"] == 4
    table = ScoreTable.load(workdir / "scores.npz")
    assert table.heads == ["0.0", "0.1", "1.0", "1.1"]
    assert np.all((table.iou_fit > 0) & (table.iou_fit <= 1))

    assert main(["fit", "--scores", str(workdir / "scores.npz"), "--out", str(workdir / "fits.json"), "--json"]) == 0
    fit_summary = json.loads(capsys.readouterr().out)
    fits = read_fits(workdir / "fits.json")
    assert set(fits.heads) == set(table.heads)
    for h, head in enumerate(table.heads):
        assert fits.heads[head].iou_fit == pytest.approx(table.iou_fit[:, h].max())
    assert 1 <= fit_summary["n_programs_selected"] <= 3


def test_score_refuses_bad_input_before_work(workdir, capsys):
    empty = workdir / "empty.txt"
    empty.write_text("")
    args = ["score", "--model", str(workdir / "model"), "--corpus", str(empty), "--window", "16",
            "--lib", str(workdir / "lib"), "--out", str(workdir / "x.npz")]
    assert main(args) == 2
    assert "attnc score: error" in capsys.readouterr().err
    args = ["score", "--model", str(workdir / "model"), "--corpus", str(workdir / "corpus.txt"), "--window", "100000",
            "--lib", str(workdir / "lib"), "--out", str(workdir / "x.npz")]
    assert main(args) == 2
    assert "window" in capsys.readouterr().err.lower()


def test_score_from_an_attention_store_matches_scoring_from_the_model(workdir, capsys):
    model, corpus = str(workdir / "model"), str(workdir / "corpus.txt")
    assert main(["score", "--model", model, "--corpus", corpus, "--window", "16", "--lib", str(workdir / "lib"),
                 "--out", str(workdir / "direct.npz")]) == 0
    assert main(["extract", "--model", model, "--corpus", corpus, "--window", "16", "--out", str(workdir / "store"),
                 "--no-progress"]) == 0
    assert main(["score", "--model", model, "--store", str(workdir / "store"), "--lib", str(workdir / "lib"),
                 "--out", str(workdir / "stored.npz")]) == 0
    capsys.readouterr()
    direct, stored = ScoreTable.load(workdir / "direct.npz"), ScoreTable.load(workdir / "stored.npz")
    assert stored.heads == direct.heads and stored.programs == direct.programs
    assert (stored.n_windows_fit, stored.n_windows_heldout) == (direct.n_windows_fit, direct.n_windows_heldout)
    # the store keeps attention as float16, so IoUs agree to float16 precision, not exactly
    np.testing.assert_allclose(stored.iou_fit, direct.iou_fit, atol=2e-3)
    np.testing.assert_allclose(stored.iou_heldout, direct.iou_heldout, atol=2e-3)

    assert main(["score", "--model", model, "--store", str(workdir / "store"), "--corpus", corpus,
                 "--lib", str(workdir / "lib"), "--out", str(workdir / "x.npz")]) == 2
    assert "either --corpus" in capsys.readouterr().err
