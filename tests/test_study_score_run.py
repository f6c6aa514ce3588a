"""Scoring a compiled library against a model: one forward per window, equal to the reference IoU."""

from pathlib import Path

import numpy as np
import pytest

from attnc.compiler import compile_program
from attnc.dsl import load_program, parse_program
from attnc.runtime.corpus import Corpus, make_windows
from attnc.runtime.models import tiny_model
from attnc.study.iou import iou_reference
from attnc.study.score_run import model_attention_batches, score_library
from attnc.study.scoring import head_names

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
TEXT = ("Once upon a time there was a cat. The cat sat on a mat. "
        "It was happy, and the dog was happy too. \"Hello,\" said the cat. ") * 6

FAILS_ON_SHORT_ROWS = '''
def fails_late(q: int, k: int, w: Window) -> float:
    """Reads past the window for the last query: an index error on every window."""
    return w.ids[q + 1] * 0.0 + 1.0
'''


@pytest.fixture(scope="module")
def setup():
    loaded = tiny_model("llama", n_layers=2, n_heads=4, n_kv_heads=2)
    windows = make_windows(Corpus.from_texts([TEXT] * 3), loaded.tokenizer, window=24, seed=0)
    programs = {p.name: compile_program(p) for p in
                (load_program(PROGRAMS / f"{name}.py") for name in ("first_token", "previous_token", "uniform_causal", "sink_decay"))}
    return loaded, windows, programs


def test_scores_equal_reference_iou_on_both_splits(setup):
    loaded, windows, programs = setup
    heads = head_names(loaded.n_layers, loaded.n_heads)
    run = score_library(model_attention_batches(loaded, windows.ids, batch_size=3), programs, loaded.vocab,
                        heads, windows.split)
    assert not run.failures
    assert run.table.n_windows_fit == len(windows.fit_ids) and run.table.n_windows_heldout == len(windows.heldout_ids)

    import torch
    with torch.no_grad():
        out = loaded.model(torch.as_tensor(windows.ids), output_attentions=True)
    attn = torch.stack(out.attentions, 1).flatten(1, 2).numpy()  # [N, L*H, n, n]
    for p, name in enumerate(run.table.programs):
        mats = programs[name].evaluate(windows.ids, loaded.vocab)
        for h in range(len(heads)):
            per_window = np.array([iou_reference(attn[i, h], mats[i]) for i in range(len(windows.ids))])
            assert run.table.iou_fit[p, h] == pytest.approx(per_window[~windows.split].mean(), abs=1e-6)
            assert run.table.iou_heldout[p, h] == pytest.approx(per_window[windows.split].mean(), abs=1e-6)


def test_a_failing_program_is_reported_and_left_out(setup):
    loaded, windows, programs = setup
    bad = compile_program(parse_program(FAILS_ON_SHORT_ROWS, "fails_late.py"))
    run = score_library(model_attention_batches(loaded, windows.ids, batch_size=4), {**programs, "fails_late": bad},
                        loaded.vocab, head_names(loaded.n_layers, loaded.n_heads), windows.split)
    assert set(run.failures) == {"fails_late"}
    assert "fails_late" in run.failures["fails_late"]
    assert run.table.programs == sorted(programs) or set(run.table.programs) == set(programs)
