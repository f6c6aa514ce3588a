"""`attnc tune`: joint KL tuning of existing fits on a tiny model, its outputs, and its bad-input messages."""

import json
from pathlib import Path

import pytest

from attnc.cli import main
from attnc.compiler.library_build import build_library
from attnc.runtime.models import tiny_model
from attnc.runtime.replacement import ReplacementMap
from attnc.study.baselines import CONTENT_FREE_DIR

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
STORY = "Once upon a time there was a little dog. The dog liked to run in the park with Tom. "


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    loaded = tiny_model("llama", n_layers=2, n_heads=4)
    loaded.model.save_pretrained(root / "model")
    loaded.tokenizer.save_pretrained(root / "model")
    (root / "corpus.txt").write_text("\n\n".join([STORY * 3] * 6))
    build_library([PROGRAMS / "first_token.py", PROGRAMS / "previous_token.py", CONTENT_FREE_DIR], root / "lib")
    fits = {"format": "attnc-fits/1", "model": "tiny", "window": 16, "n_windows_fit": 1, "n_windows_heldout": 1,
            "heads": {"0.1": {"program": "first_token", "iou_fit": 0.5, "iou_heldout": 0.5,
                              "mixture": {"programs": ["first_token", "previous_token"], "weights": [0.5, 0.5],
                                          "iou_fit": 0.5, "iou_heldout": 0.5}},
                      "1.2": {"program": "previous_token", "iou_fit": 0.4, "iou_heldout": 0.4}}}
    (root / "fits.json").write_text(json.dumps(fits))
    return root


def _args(root, *extra):
    return ["tune", "--model", str(root / "model"), "--corpus", str(root / "corpus.txt"), "--window", "16",
            "--lib", str(root / "lib"), "--fits", str(root / "fits.json"), "--out", str(root / "out"), *extra]


def test_tune_writes_tuned_fits_and_a_heldout_report(workdir, capsys):
    assert main(_args(workdir, "--heads", "0.1,1.2", "--steps", "6", "--fit-windows", "4",
                      "--heldout-windows", "3", "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["heads"] == ["0.1", "1.2"]
    assert report["kl_end"] <= report["kl_start"] and len(report["history"]) == 6
    held = report["heldout"]
    assert held["n_windows"] == 3 and held["ppl_stock"] > 0 and set(held["iou_tuned"]) == {"0.1", "1.2"}
    fits = json.loads((workdir / "out" / "fits.json").read_text())
    tuned = ReplacementMap.from_fits(fits, use="faithful")
    assert set(tuned.heads) == {(0, 1), (1, 2)}
    for head in ("0.1", "1.2"):  # every tuned mixture sums to 1 and uses library programs only
        entry = fits["heads"][head]["tuned"]
        assert sum(entry["weights"]) == pytest.approx(1.0) and entry["objective"] == "kl"
    assert json.loads((workdir / "out" / "tune.json").read_text())["kl_end"] == report["kl_end"]


@pytest.mark.parametrize("extra, message", [
    (("--heads", "0.1,0.1"), "named twice"),
    (("--heads", "1.3"), "not in the fits file"),
    (("--heads", "0.1", "--fit-windows", "0"), "fit windows"),
])
def test_tune_bad_input(workdir, capsys, extra, message):
    assert main(_args(workdir, *extra)) == 2
    err = capsys.readouterr().err
    assert "attnc tune: error:" in err and message in err


def test_tune_constants_writes_new_programs_and_a_library(workdir, capsys):
    """--constants: the main programs' constants are tuned per head, written as DSL and compiled."""
    root = workdir
    build_library([PROGRAMS / "decay_070.py", PROGRAMS / "sink_previous.py", CONTENT_FREE_DIR], root / "lib_c")
    fits = {"format": "attnc-fits/1", "model": "tiny", "window": 16, "n_windows_fit": 1, "n_windows_heldout": 1,
            "heads": {"0.1": {"program": "decay_070", "iou_fit": 0.5, "iou_heldout": 0.5},
                      "1.2": {"program": "sink_previous", "iou_fit": 0.4, "iou_heldout": 0.4}}}
    (root / "fits_c.json").write_text(json.dumps(fits))
    out = root / "out_c"
    args = ["tune", "--model", str(root / "model"), "--corpus", str(root / "corpus.txt"), "--window", "16",
            "--lib", str(root / "lib_c"), "--fits", str(root / "fits_c.json"), "--out", str(out),
            "--heads", "0.1,1.2", "--steps", "8", "--fit-windows", "4", "--heldout-windows", "2",
            "--constants", "--constants-lr", "0.2", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kl_end"] < report["kl_start"]
    written = report["programs_written"]
    assert written and all("_tuned_l" in name for name in written)
    assert {c["program"] for c in report["constants"]} <= {"decay_070", "sink_previous"}
    fits_out = json.loads((out / "fits.json").read_text())
    named = {n for h in ("0.1", "1.2") for n in fits_out["heads"][h]["tuned"]["programs"]}
    assert set(written) <= named
    from attnc.runtime.library import load_library

    library = load_library(out / "lib")
    assert set(written) <= set(library.names) and "decay_070" in library.names
    for name in written:  # ordinary source: provenance in the header, constants changed
        text = (out / "programs" / f"{name}.py").read_text()
        assert text.startswith("# tuned by attnc tune on 4 fit windows") and f"def {name}(" in text
