"""Perplexity, QA accuracy and `attnc eval` (attnc.runtime.perplexity, .qa, cli.eval_cmd)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import attnc.runtime.models as models
from attnc.runtime import library
from attnc.cli import eval_cmd
from attnc.runtime.models import tiny_model
from attnc.runtime.perplexity import perplexity
from attnc.runtime.qa import continuation_logprobs, encode_request, qa_accuracy, read_qa
from attnc.runtime.replacement import ReplacementMap
from attnc.runtime.surrogate import CallableProgramSource, SurrogateError, install_surrogates

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PIQA = DATA / "qa" / "piqa-dev.jsonl"
SIQA = DATA / "qa" / "socialiqa-dev.jsonl"
STORIES = DATA / "tinystories" / "valid-dev.txt"
UNIFORM = CallableProgramSource({"uniform": lambda ids: np.ones((len(ids), len(ids)))})


def needs(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (see shared/data/README.md)")


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama", seed=3, n_layers=2, n_heads=4, n_kv_heads=2)


def random_windows(loaded, n_windows: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1, len(loaded.tokenizer), size=(n_windows, n))


# -- perplexity -------------------------------------------------------------------------
def test_perplexity_equals_manual_computation(llama):
    ids = random_windows(llama, 5, 9)
    result = perplexity(llama, ids, batch_size=2, progress=False)
    with torch.inference_mode():
        logits = llama.model(torch.as_tensor(ids)).logits.double()
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    nll = -sum(float(logp[b, i, ids[b, i + 1]]) for b in range(5) for i in range(8))
    assert result.tokens_evaluated == 5 * 8 and result.n_windows == 5
    assert result.nll_sum == pytest.approx(nll, rel=1e-5)
    assert result.ppl == pytest.approx(math.exp(nll / 40), rel=1e-5)


def test_perplexity_with_surrogate_changes_and_checks_handle(llama):
    ids = random_windows(llama, 4, 8, seed=1)
    stock = perplexity(llama, ids, progress=False)
    handle = install_surrogates(llama, UNIFORM, ReplacementMap.from_programs({(0, h): "uniform" for h in range(4)}))
    replaced = perplexity(llama, ids, surrogate=handle, progress=False)
    handle.remove()
    assert replaced.ppl != pytest.approx(stock.ppl, rel=1e-6)
    with pytest.raises(SurrogateError, match="not installed"):
        perplexity(llama, ids, surrogate=handle, progress=False)
    with pytest.raises(ValueError, match="shape"):
        perplexity(llama, ids[:, :1], progress=False)


# -- QA ---------------------------------------------------------------------------------
def test_batched_choice_scores_equal_unbatched(llama):
    texts = [("Question: how to dry a towel?\nAnswer:", " hang it in the sun."),
             ("Question: why?\nAnswer:", " no"),
             ("Tom was sad. What will Tom want to do next?", " cry for a long time with his dog"),
             ("A", " b c d e f g h i j k l")]
    requests = [encode_request(llama.tokenizer, c, a) for c, a in texts]
    one = continuation_logprobs(llama, requests, batch_size=1)
    many = continuation_logprobs(llama, requests, batch_size=4)
    np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-5)
    # reference: one unpadded forward per request
    for (context, continuation), score in zip(requests, one):
        full = torch.tensor([context + continuation])
        with torch.inference_mode():
            logp = torch.log_softmax(llama.model(full).logits[0].double(), -1)
        expect = sum(float(logp[len(context) - 1 + k, t]) for k, t in enumerate(continuation))
        assert score == pytest.approx(expect, rel=1e-5, abs=1e-5)
    with install_surrogates(llama, UNIFORM, ReplacementMap.from_programs({(1, 1): "uniform", (0, 2): "uniform"})):
        one_r = continuation_logprobs(llama, requests, batch_size=1)
        many_r = continuation_logprobs(llama, requests, batch_size=3)
    np.testing.assert_allclose(many_r, one_r, rtol=1e-5, atol=1e-5)
    assert np.abs(one_r - one).max() > 1e-4


def test_continuation_tokens_split_like_lm_eval(llama):
    context, continuation = encode_request(llama.tokenizer, "The cat sat", " on the mat.")
    whole = llama.tokenizer("The cat sat on the mat.", add_special_tokens=False)["input_ids"]
    assert context + continuation == whole and len(continuation) > 0


@pytest.mark.parametrize("task,path", [("piqa", PIQA), ("socialiqa", SIQA)])
def test_qa_on_shared_rows(llama, task, path):
    needs(path)
    result = qa_accuracy(llama, task, path, limit=10, batch_size=8)
    assert result.n == 10 and result.skipped == 0
    assert 0.0 <= result.acc <= 1.0 and 0.0 <= result.acc_norm <= 1.0


def test_bad_rows_are_counted_not_fatal(tmp_path, llama):
    rows = [
        {"goal": "open a jar", "sol1": "twist the lid", "sol2": "eat the lid", "label": 0},
        {"goal": "no solutions", "label": 1},
        "not json",
        {"goal": "g", "sol1": "a", "sol2": "b", "label": 7},
        {"goal": "boil water", "sol1": "use a pot", "sol2": "use a sieve", "label": 0},
    ]
    path = tmp_path / "piqa.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    items, reasons = read_qa("piqa", path)
    assert len(items) == 2 and len(reasons) == 3
    assert "line 2: missing field 'sol1'" in reasons[0] and "line 3" in reasons[1] and "line 4" in reasons[2]
    result = qa_accuracy(llama, "piqa", path)
    assert result.n == 2 and result.skipped == 3 and len(result.skip_reasons) == 3


def test_socialiqa_prompt_format(tmp_path):
    row = {"context": "Ann lost her key.", "question": "How does Ann feel?",
           "answerA": "upset", "answerB": "glad", "answerC": "tired", "correct": "A"}
    path = tmp_path / "siqa.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (item,), _ = read_qa("socialiqa", path)
    assert item.context == "Ann lost her key. How does Ann feel?"
    assert item.choices == ("upset", "glad", "tired") and item.label == 0


# -- CLI --------------------------------------------------------------------------------
def run_cli(argv: list[str], monkeypatch, loaded, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(models, "load_model", lambda name, **kw: loaded)
    parser = argparse.ArgumentParser()
    eval_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_ppl_json_stock_and_replaced(tmp_path, monkeypatch, capsys, llama):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"Lily had {i} red balls. She gave one to Max, her dog." for i in range(60)))
    base = ["eval", "ppl", "--model", "tiny", "--corpus", str(corpus), "--window", "16", "--json"]
    code, out, err = run_cli(base, monkeypatch, llama, capsys)
    assert code == 0, err
    stock = json.loads(out)
    assert stock["tokens_evaluated"] == stock["n_windows"] * 15 and stock["ppl"] > 1
    fits = tmp_path / "fits.json"
    fits.write_text(json.dumps({"format": "attnc-fits/1", "heads": {"0.1": {"program": "uniform"}}}))
    monkeypatch.setattr(library, "load_library", lambda path, vocab: UNIFORM)
    code, out, err = run_cli(base + ["--fits", str(fits), "--lib", "lib/"], monkeypatch, llama, capsys)
    assert code == 0, err
    replaced = json.loads(out)
    assert replaced["replaced_heads"] == {"0.1": [["uniform", 1.0]]}
    assert replaced["tokens_evaluated"] == stock["tokens_evaluated"] and replaced["ppl"] != stock["ppl"]
    assert llama.model.config._attn_implementation == "eager", "the CLI must remove its surrogates"


def test_cli_errors_are_reported(tmp_path, monkeypatch, capsys, llama):
    fits = tmp_path / "fits.json"
    fits.write_text(json.dumps({"format": "attnc-fits/1", "heads": {"9.0": {"program": "uniform"}}}))
    monkeypatch.setattr(library, "load_library", lambda path, vocab: UNIFORM)
    code, _, err = run_cli(["eval", "qa", "--task", "piqa", "--data", str(tmp_path / "none.jsonl"),
                            "--fits", str(fits), "--lib", "x"], monkeypatch, llama, capsys)
    assert code == 1 and "9.0" in err
    code, _, err = run_cli(["eval", "qa", "--task", "piqa", "--data", str(tmp_path / "none.jsonl"), "--fits", str(fits)],
                           monkeypatch, llama, capsys)
    assert code == 1 and "--fits and --lib go together" in err


def test_cli_qa_json(monkeypatch, capsys, llama):
    needs(PIQA)
    code, out, err = run_cli(["eval", "qa", "--task", "piqa", "--data", str(PIQA), "--limit", "6", "--json"],
                             monkeypatch, llama, capsys)
    assert code == 0, err
    record = json.loads(out)
    assert record["n"] == 6 and 0 <= record["acc"] <= 1 and record["replaced_heads"] == {}


# -- real model ---------------------------------------------------------------------------
@pytest.mark.realmodel
def test_smollm2_surrogate_plumbing_is_exact():
    try:
        loaded = models.load_model("smollm2-135m")
    except models.ModelNotFoundError as error:
        pytest.skip(f"SmolLM2 is not installed: {error}")
    text = "Once upon a time, there was a little girl named Lily. She liked to play outside with her dog."
    ids = torch.tensor(loaded.tokenizer(text, add_special_tokens=False)["input_ids"][:16])
    windows = torch.stack([ids, ids.flip(0)])
    with torch.inference_mode():
        out = loaded.model(windows, output_attentions=True, use_cache=False)
    stock = out.logits
    recorded = {tuple(w.tolist()): np.stack([a[b].double().numpy() for a in out.attentions])
                for b, w in enumerate(windows)}

    def oracle(layer, head):
        return lambda row: recorded[tuple(int(t) for t in row)][layer, head]

    heads = [(l, h) for l in range(loaded.n_layers) for h in range(loaded.n_heads)]
    source = CallableProgramSource({f"{l}.{h}": oracle(l, h) for l, h in heads})
    with install_surrogates(loaded, source, ReplacementMap()):
        with torch.inference_mode():
            torch.testing.assert_close(loaded.model(windows, use_cache=False).logits, stock, atol=1e-5, rtol=0)
    with install_surrogates(loaded, source, ReplacementMap.from_programs({k: f"{k[0]}.{k[1]}" for k in heads})):
        with torch.inference_mode():
            torch.testing.assert_close(loaded.model(windows, use_cache=False).logits, stock, atol=1e-4, rtol=1e-5)
