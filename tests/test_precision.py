"""`--precision bfloat16`: model forwards under bfloat16 autocast, float32 logits, keyed apart from float32.

The weights stay float32; only forward passes change, and every path that runs
the model (extraction, on a worker pool too; perplexity; QA; gated forwards of
the order, tuning and sweep) must honour the model's precision.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from attnc.parallel.pools import ProcessPool, cpu_count
from attnc.runtime.extract import extract_attention, iter_attention
from attnc.runtime.models import tiny_model
from attnc.runtime.perplexity import perplexity
from attnc.runtime.precision import PrecisionError, computing
from attnc.runtime.qa import continuation_logprobs
from attnc.study.attribution import GatedModel

sys.path.insert(0, str(Path(__file__).parent))
from parallel_fixtures import SHARD, build_case  # noqa: E402


@pytest.fixture(scope="module")
def loaded():
    return tiny_model("llama", n_layers=2, n_heads=4)


def _linear_dtypes(model, run) -> set[torch.dtype]:
    """The dtypes the model's linear layers produced while `run()` ran."""
    seen: set[torch.dtype] = set()
    handles = [m.register_forward_hook(lambda _m, _a, out: seen.add(out.dtype))
               for m in model.modules() if isinstance(m, torch.nn.Linear)]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return seen


def test_bfloat16_runs_products_in_bfloat16_and_hands_on_float32(loaded):
    ids = np.random.default_rng(0).integers(0, 200, size=(2, 12))
    bf16 = loaded.with_precision("bfloat16")
    assert bf16.model is loaded.model and loaded.precision == "float32"  # the same weights, not a copy
    gated32, gated16 = GatedModel(loaded), GatedModel(bf16)
    none = {"heads": {}, "gates": torch.zeros(0), "matrices": []}
    with gated32:
        assert _linear_dtypes(loaded.model, lambda: gated32.logits(ids, none)) == {torch.float32}
        want = gated32.logits(ids, none)
    with gated16:
        assert _linear_dtypes(loaded.model, lambda: gated16.logits(ids, none)) == {torch.bfloat16}
        got = gated16.logits(ids, none)
    assert got.dtype == torch.float32 and want.dtype == torch.float32
    assert not torch.equal(got, want)  # bfloat16 rounding is there...
    torch.testing.assert_close(got, want, atol=0.1, rtol=0.05)  # ...and small
    assert next(loaded.model.parameters()).dtype == torch.float32


def test_every_forward_path_honours_the_precision(loaded):
    ids = np.random.default_rng(1).integers(0, 200, size=(3, 10))
    bf16 = loaded.with_precision("bfloat16")
    for run in (lambda m: perplexity(m, ids, batch_size=2),
                lambda m: continuation_logprobs(m, [([1, 2, 3], [4, 5]), ([6], [7])]),
                lambda m: list(iter_attention(m, ids, batch_size=2))):
        assert _linear_dtypes(loaded.model, lambda: run(bf16)) == {torch.bfloat16}
        assert _linear_dtypes(loaded.model, lambda: run(loaded)) == {torch.float32}
    ppl32, ppl16 = perplexity(loaded, ids).ppl, perplexity(bf16, ids).ppl
    assert ppl16 != ppl32 and abs(ppl16 / ppl32 - 1) < 0.02


def test_the_precision_is_recorded_only_when_it_is_not_float32(loaded):
    assert "precision" not in loaded.describe()  # keys of float32 runs are what they always were
    assert loaded.with_precision("bfloat16").describe()["precision"] == "bfloat16"
    with pytest.raises(PrecisionError, match="float16.*choose one of float32, bfloat16"):
        loaded.with_precision("float16")
    with pytest.raises(PrecisionError):
        computing("fp8")


@pytest.mark.skipif(cpu_count() < 2, reason="needs 2 cores for 2 worker processes")
def test_pool_workers_extract_in_the_callers_precision(tmp_path):
    case = build_case(tmp_path / "case")
    bf16 = case.loaded.with_precision("bfloat16")
    single = extract_attention(bf16, case.windows.ids, store_dir=tmp_path / "single", batch_size=3,
                               shard_size=SHARD, progress=False)
    with ProcessPool(2, case.model) as pool:
        pooled = extract_attention(bf16, case.windows.ids, store_dir=tmp_path / "pooled", batch_size=3,
                                   shard_size=SHARD, progress=False, pool=pool)
    float32 = extract_attention(case.loaded, case.windows.ids, store_dir=tmp_path / "f32", batch_size=3,
                                shard_size=SHARD, progress=False)
    for k in range(single.n_shards):
        np.testing.assert_array_equal(pooled.read_shard(k)[2], single.read_shard(k)[2])
    assert any(not np.array_equal(float32.read_shard(k)[2], single.read_shard(k)[2]) for k in range(single.n_shards))
