"""lm-evaluation-harness on local files, stock and replaced (attnc.runtime.harness, `attnc eval harness`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import attnc.runtime.models as models
from attnc.cli import eval_cmd
from attnc.runtime import library
from attnc.runtime.harness import EXTRA_HINT, compare_to_attnc, run_harness, task_config
from attnc.runtime.models import tiny_model
from attnc.runtime.replacement import ReplacementMap
from attnc.runtime.surrogate import CallableProgramSource, install_surrogates

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qa"
PIQA = DATA / "piqa-dev.jsonl"

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install -e '.[harness]')")

PIQA_ROWS = [
    {"goal": "open a jar", "sol1": "twist the lid", "sol2": "eat the lid", "label": 0},
    {"goal": "boil water quickly for tea in the morning", "sol1": "use a sieve", "sol2": "use a pot with a lid on the stove",
     "label": 1},
    {"goal": "dry a towel", "sol1": "hang it in the sun until it is dry", "sol2": "put it in the sea", "label": 0},
    {"goal": "find a cat", "sol1": "look under the bed ", "sol2": "ask the fish", "label": 0},  # trailing space
    {"goal": "Tom had a box of toys. How can he share them?", "sol1": "give a bear to his sister",
     "sol2": "lock the box and hide it in the tree forever", "label": 0},
]
SIQA_ROWS = [
    {"context": "Lily lost her ball.", "question": "How does Lily feel?", "answerA": "sad", "answerB": "glad",
     "answerC": "tired", "correct": "A"},
    {"context": "Max ran to the park with a big red ball and played until the sun went down.",
     "question": "What will Max want to do next?", "answerA": "go home to eat", "answerB": "fly",
     "answerC": "swim in the sea with a fish", "correct": "A"},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama", seed=5, n_layers=2, n_heads=4, n_kv_heads=2)


def lookahead(ids: np.ndarray) -> np.ndarray:
    """A program whose rows depend on the window's last token: padding after the text changes it."""
    out = np.ones((len(ids), len(ids)))
    out[:, ids == ids[-1]] += 20.0
    out[:, ids % 3 == int(ids[-1]) % 3] += 5.0
    return out


LOOKAHEAD = CallableProgramSource({"lookahead": lookahead})


def loglikelihoods(result) -> dict[str, list[list[float]]]:
    return {task: [[float(r[0][0]) for r in s["resps"]] for s in sorted(samples, key=lambda s: s["doc_id"])]
            for task, samples in result.samples.items()}


def test_tasks_read_local_files_with_the_field_prompts(tmp_path, llama):
    files = {"piqa": write_jsonl(tmp_path / "piqa.jsonl", PIQA_ROWS),
             "socialiqa": write_jsonl(tmp_path / "siqa.jsonl", SIQA_ROWS)}
    result = run_harness(llama, files, batch_size=4, keep_samples=True)
    assert set(result.tasks) == {"piqa", "social_iqa"}
    assert result.tasks["piqa"].n == 5 and result.tasks["social_iqa"].n == 2
    assert 0 <= result.tasks["piqa"].acc <= 1 and result.tasks["piqa"].acc_norm is not None
    assert result.tasks["social_iqa"].acc_norm is None  # lm-eval's social_iqa reports acc only
    first = sorted(result.samples["social_iqa"], key=lambda s: s["doc_id"])[0]
    assert first["arguments"][0] == ("Q: Lily lost her ball. How does Lily feel?\nA:", " sad")
    assert first["target"] == 0
    piqa = sorted(result.samples["piqa"], key=lambda s: s["doc_id"])
    assert piqa[1]["arguments"][1] == ("Question: boil water quickly for tea in the morning\nAnswer:",
                                       " use a pot with a lid on the stove")
    import os

    assert os.environ["HF_DATASETS_OFFLINE"] == "1" and os.environ["HF_HUB_OFFLINE"] == "1"
    assert task_config("siqa", files["socialiqa"])["dataset_kwargs"]["data_files"]["validation"].endswith("siqa.jsonl")


def test_replaced_model_scores_do_not_depend_on_padding(tmp_path, llama, monkeypatch):
    """Mixed-length requests batched together (right-padded by lm-eval) score as they do alone."""
    files = {"piqa": write_jsonl(tmp_path / "piqa.jsonl", PIQA_ROWS),
             "social_iqa": write_jsonl(tmp_path / "siqa.jsonl", SIQA_ROWS)}
    stock = loglikelihoods(run_harness(llama, files, batch_size=1, keep_samples=True))
    replacement = ReplacementMap.from_programs({(0, 1): "lookahead", (1, 0): "lookahead", (1, 3): "lookahead"})
    with install_surrogates(llama, LOOKAHEAD, replacement) as handle:
        alone = loglikelihoods(run_harness(llama, files, batch_size=1, keep_samples=True, surrogate=handle))
        batched = loglikelihoods(run_harness(llama, files, batch_size=16, keep_samples=True, surrogate=handle))
        from lm_eval.models.huggingface import HFLM

        from attnc.runtime.harness_lm import MaskedHFLM

        monkeypatch.setattr(MaskedHFLM, "_model_call", HFLM._model_call)  # lm-eval's own call: no mask
        unmasked = loglikelihoods(run_harness(llama, files, batch_size=16, keep_samples=True, surrogate=handle))
    for task in files:
        np.testing.assert_allclose(batched[task], alone[task], rtol=1e-5, atol=1e-5)
        assert np.abs(np.array(alone[task]) - np.array(stock[task])).max() > 1e-3, "the programs must matter"
    worst = max(np.abs(np.array(unmasked[t]) - np.array(alone[t])).max() for t in files)
    assert worst > 1e-3, "without the mask, padding should change a look-ahead program's scores"


def test_real_length_finds_the_request_even_with_pad_ids_inside():
    from attnc.runtime.harness_lm import real_length

    inputs = {3: {(5, 0, 7)}, 2: {(5, 0)}, 4: {(1, 2, 3, 4)}}
    assert real_length([5, 0, 7, 0, 0], inputs) == 3
    assert real_length([1, 2, 3, 4], inputs) == 4
    assert real_length([5, 0, 0, 0], inputs) == 2
    assert real_length([9, 9, 0], inputs) == 3  # no such request: all real


def test_compare_to_attnc_agrees_where_prompts_are_identical(tmp_path, llama):
    files = {"piqa": write_jsonl(tmp_path / "piqa.jsonl", PIQA_ROWS),
             "social_iqa": write_jsonl(tmp_path / "siqa.jsonl", SIQA_ROWS)}
    result = run_harness(llama, files, batch_size=3, keep_samples=True)
    comparison = compare_to_attnc(llama, result, batch_size=2)
    piqa, siqa = comparison["piqa"], comparison["social_iqa"]
    assert piqa.n == 5 and piqa.same_prompt == 4  # the trailing space of row 4 is stripped by attnc only
    assert piqa.max_abs_loglik_diff < 1e-4
    assert piqa.acc_attnc_same == piqa.acc_lm_eval_same
    assert piqa.acc_lm_eval == result.tasks["piqa"].acc
    assert siqa.same_prompt == 0 and siqa.max_abs_loglik_diff is None
    with pytest.raises(ValueError, match="keep_samples"):
        compare_to_attnc(llama, run_harness(llama, {"piqa": files["piqa"]}, batch_size=3))


# -- CLI --------------------------------------------------------------------------------
def run_cli(argv, monkeypatch, loaded, capsys):
    monkeypatch.setattr(models, "load_model", lambda name, **kw: loaded)
    parser = argparse.ArgumentParser()
    eval_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_harness_fraction_replaces_the_best_explained_heads(tmp_path, monkeypatch, capsys, llama):
    piqa = write_jsonl(tmp_path / "piqa-dev.jsonl", PIQA_ROWS)
    write_jsonl(tmp_path / "socialiqa-dev.jsonl", SIQA_ROWS)
    iou = {"0.0": 0.2, "0.1": 0.9, "1.2": 0.7, "1.3": 0.8, "0.3": 0.1}
    fits = tmp_path / "fits.json"
    fits.write_text(json.dumps({"format": "attnc-fits/1",
                                "heads": {h: {"program": "lookahead", "iou_heldout": v} for h, v in iou.items()}}))
    monkeypatch.setattr(library, "load_library", lambda path, vocab: LOOKAHEAD)
    base = ["eval", "harness", "--model", "tiny", "--data-dir", str(tmp_path), "--batch-size", "4", "--json"]
    code, out, err = run_cli(base + ["--fits", str(fits), "--lib", "lib/", "--fraction", "0.25", "--compare"],
                             monkeypatch, llama, capsys)
    assert code == 0, err
    record = json.loads(out)
    assert sorted(record["replaced_heads"]) == ["0.1", "1.3"]  # round(0.25 * 8) = 2, highest held-out IoU
    assert record["tasks"]["piqa"]["n"] == 5 and record["tasks"]["social_iqa"]["n"] == 2
    assert record["compare"]["piqa"]["same_prompt"] == 4
    assert llama.model.config._attn_implementation == "eager", "the CLI must remove its surrogates"
    code, out, err = run_cli(["eval", "harness", "--model", "tiny", "--tasks", "piqa", "--data", f"piqa={piqa}",
                              "--limit", "2"], monkeypatch, llama, capsys)
    assert code == 0, err
    assert "piqa: acc" in out and "on 2 items" in out and "0 heads replaced" in out
    code, _, err = run_cli(base + ["--fits", str(fits), "--lib", "lib/", "--fraction", "1.0"], monkeypatch, llama, capsys)
    assert code == 1 and "only 5" in err
    code, _, err = run_cli(base + ["--tasks", "hellaswag"], monkeypatch, llama, capsys)
    assert code == 1 and "unknown harness task" in err
    code, _, err = run_cli(base + ["--data-dir", str(tmp_path / "nowhere")], monkeypatch, llama, capsys)
    assert code == 1 and "no such data file" in err


def test_cli_harness_without_lm_eval_names_the_extra(tmp_path, monkeypatch, capsys, llama):
    write_jsonl(tmp_path / "piqa-dev.jsonl", PIQA_ROWS)
    for name in [m for m in sys.modules if m == "lm_eval" or m.startswith("lm_eval.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # `import lm_eval` now raises ImportError
    code, _, err = run_cli(["eval", "harness", "--model", "tiny", "--tasks", "piqa", "--data-dir", str(tmp_path)],
                           monkeypatch, llama, capsys)
    assert code == 1 and EXTRA_HINT in err


# -- real model ---------------------------------------------------------------------------
def smollm2():
    try:
        return models.load_model("smollm2-135m", attn_implementation="sdpa")
    except models.ModelNotFoundError as error:
        pytest.skip(f"SmolLM2 is not installed: {error}")


def needs(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (see shared/data/README.md)")


@pytest.mark.realmodel
def test_smollm2_lm_eval_equals_attnc_on_identical_prompts():
    needs(PIQA)
    loaded = smollm2()
    result = run_harness(loaded, {"piqa": PIQA}, limit=24, batch_size=16, keep_samples=True)
    piqa = compare_to_attnc(loaded, result, batch_size=16)["piqa"]
    assert piqa.n == 24 and piqa.same_prompt >= 20
    assert piqa.acc_attnc_same == piqa.acc_lm_eval_same
    assert piqa.max_abs_loglik_diff < 1e-3


@pytest.mark.slow
@pytest.mark.realmodel
def test_smollm2_lm_eval_equals_attnc_on_500_piqa_items():
    needs(PIQA)
    loaded = smollm2()
    result = run_harness(loaded, {"piqa": PIQA}, limit=500, batch_size=16, keep_samples=True)
    piqa = compare_to_attnc(loaded, result, batch_size=16)["piqa"]
    assert piqa.n == 500
    assert abs(piqa.acc_attnc_same - piqa.acc_lm_eval_same) <= 0.001
