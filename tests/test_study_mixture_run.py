"""attnc compile -> score -> extract -> fit --mixtures on a tiny model saved as a local Hugging Face directory."""

import json
from pathlib import Path

import numpy as np
import pytest

from attnc.cli import main
from attnc.runtime.library import load_library
from attnc.runtime.models import load_model, tiny_model
from attnc.runtime.store import AttentionStore
from attnc.study.fits_file import read_fits
from attnc.study.iou import iou_reference_batch
from attnc.runtime.models import tiny_tokenizer
from attnc.runtime.store import STORE_FORMAT, STORE_FORMAT_VERSION, META_FILE, write_json_atomic, write_shard
from attnc.study.mixture_run import fit_store_mixtures, store_heldout
from attnc.study.scoring import ScoreTable
from attnc.window import Vocab

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
NAMES = ("first_token", "previous_token", "uniform_causal", "local_window_3", "decay_050")
STORY = ("Tom had a red ball. He threw the ball to his dog, and the dog ran after it. "
         "\"Good dog!\" said Tom. The dog was happy. ")


def _compile(root: Path, names, out: str) -> Path:
    progs = root / f"{out}-src"
    progs.mkdir()
    for name in names:
        (progs / f"{name}.py").write_text((PROGRAMS / f"{name}.py").read_text())
    assert main(["compile", str(progs), "-o", str(root / out)]) == 0
    return root / out


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixtures")
    loaded = tiny_model("gpt2", n_layers=2, n_heads=2)
    loaded.model.save_pretrained(root / "model")
    loaded.tokenizer.save_pretrained(root / "model")
    (root / "corpus.txt").write_text("\n\n".join([STORY * 3] * 4))
    _compile(root, NAMES, "lib")
    corpus = ["--model", str(root / "model"), "--corpus", str(root / "corpus.txt"), "--window", "16"]
    assert main(["score", *corpus, "--lib", str(root / "lib"), "--out", str(root / "scores.npz")]) == 0
    assert main(["extract", *corpus, "--split", "all", "--shard-size", "5", "--no-progress",
                 "--out", str(root / "store")]) == 0
    return root


def _fit(study, *extra) -> list[str]:
    return ["fit", "--scores", str(study / "scores.npz"), "--out", str(study / "fits.json"),
            "--model", str(study / "model"), "--window", "16", *extra]


def test_mixtures_beat_single_and_match_recomputation(study, capsys):
    capsys.readouterr()
    args = _fit(study, "--mixtures", "2", "--candidates", "3", "--search-windows", "4",
                "--store", str(study / "store"), "--lib", str(study / "lib"), "--json")
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    fits = read_fits(study / "fits.json")
    table = ScoreTable.load(study / "scores.npz")

    store = AttentionStore.open(study / "store")
    heldout, source = store_heldout(store)
    assert source == "store" and heldout.any() and (~heldout).any()
    library = load_library(study / "lib", vocab=load_model(str(study / "model")).vocab)
    batches = list(store.iter_windows())
    held_of = dict(zip(store.window_indices.tolist(), heldout.tolist()))

    def mean_iou(h: int, weights: dict[str, float], want_held: bool) -> float:
        values = []
        for window_index, ids, attn in batches:
            mask = np.array([held_of[int(w)] == want_held for w in window_index])
            if not mask.any():
                continue
            matrices = library.matrices(list(weights), ids[mask])
            mixture = sum(w * matrices[name] for name, w in weights.items())
            values.append(iou_reference_batch(attn[mask, h], mixture))
        return float(np.concatenate(values).mean())

    held_means = []
    for h, head in enumerate(table.heads):
        mixture = fits.heads[head].mixture
        assert mixture is not None and 1 <= len(mixture.programs) <= 2
        assert set(mixture.programs) <= set(NAMES)
        best = table.programs[int(table.iou_fit[:, h].argmax())]
        single_fit = mean_iou(h, {best: 1.0}, want_held=False)
        # The table scored float32 attention, the store holds float16: close, not equal.
        assert single_fit == pytest.approx(table.iou_fit[:, h].max(), abs=1e-4)
        assert mixture.iou_fit >= single_fit - 1e-9
        weights = dict(zip(mixture.programs, mixture.weights))
        assert mixture.iou_fit == pytest.approx(mean_iou(h, weights, want_held=False), abs=1e-6)
        assert mixture.iou_heldout == pytest.approx(mean_iou(h, weights, want_held=True), abs=1e-6)
        held_means.append(mixture.iou_heldout)
    assert summary["mean_best_mixture_iou_heldout"] == pytest.approx(np.mean(held_means), abs=1e-12)
    assert summary["mixture_windows_fit"] + summary["mixture_windows_heldout"] == store.n_windows


def test_mixture_argument_errors(study, capsys):
    capsys.readouterr()
    assert main(_fit(study, "--mixtures", "2")) == 2
    assert "--store" in capsys.readouterr().err
    assert main(_fit(study, "--mixtures", "1", "--store", str(study / "store"), "--lib", str(study / "lib"))) == 2
    assert "K >= 2" in capsys.readouterr().err


def test_mixture_refuses_mismatched_store_and_library(study, capsys):
    corpus = ["--model", str(study / "model"), "--corpus", str(study / "corpus.txt"), "--window", "16"]
    assert main(["extract", *corpus, "--heads", "0.0", "--no-progress", "--out", str(study / "store-one-head")]) == 0
    small_lib = _compile(study, ("first_token",), "lib-small")
    capsys.readouterr()
    assert main(_fit(study, "--mixtures", "2", "--store", str(study / "store-one-head"), "--lib", str(study / "lib"))) == 2
    assert "heads do not match" in capsys.readouterr().err
    assert main(_fit(study, "--mixtures", "2", "--store", str(study / "store"), "--lib", str(small_lib))) == 2
    err = capsys.readouterr().err
    assert "missing from the library" in err and "previous_token" in err


def test_synthetic_mixture_head_is_recovered(study, tmp_path):
    """A head whose attention is exactly 0.6 previous_token + 0.4 first_token gets that mixture."""
    vocab = Vocab.from_tokenizer(tiny_tokenizer())
    library = load_library(study / "lib", vocab=vocab)
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 200, size=(12, 16)).astype(np.int64)
    m = library.matrices(["previous_token", "first_token", "uniform_causal"], ids)
    attn = np.stack([0.6 * m["previous_token"] + 0.4 * m["first_token"], m["uniform_causal"]], axis=1)
    window_indices = np.arange(12)
    for shard in range(3):
        rows = slice(4 * shard, 4 * shard + 4)
        write_shard(tmp_path, shard, attn[rows], window_indices[rows], ids[rows])
    write_json_atomic(tmp_path / META_FILE, {
        "format": STORE_FORMAT, "format_version": STORE_FORMAT_VERSION, "heads": ["0.0", "0.1"], "window": 16,
        "n_windows": 12, "window_indices": window_indices.tolist(), "shard_size": 4, "n_shards": 3,
        "windows": {"heldout_indices": [1, 4, 7, 10, 11]}})
    store = AttentionStore.open(tmp_path)
    names = ["previous_token", "first_token", "uniform_causal"]
    table = ScoreTable(names, ["0.0", "0.1"], np.array([[0.9, 0.1], [0.5, 0.2], [0.3, 0.95]]),
                       np.zeros((3, 2)), 7, 5)
    run = fit_store_mixtures(store, table, library.programs, vocab, k=2, n_candidates=3, search_windows=4)
    assert (run.n_windows_fit, run.n_windows_heldout, run.split_source) == (7, 5, "store")
    assert not set(run.search_windows) & {1, 4, 7, 10, 11}
    mix = run.mixtures["0.0"]
    assert set(mix.programs) == {"previous_token", "first_token"}
    weights = dict(zip(mix.programs, mix.weights))
    assert weights["previous_token"] == pytest.approx(0.6, abs=0.05)
    assert mix.iou_fit > 0.98 and mix.iou_heldout > 0.98
    single = run.mixtures["0.1"]
    assert single.programs[0] == "uniform_causal" and single.iou_fit == pytest.approx(1.0, abs=1e-3)
