"""attnc bench heads on a tiny model: the one-layer copy, the head choices, an end-to-end run."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ lives beside attnc/ in the source tree
    sys.path.insert(0, str(ROOT))

from benchmarks.heads_bench import head_counts, one_layer_model, quarter_map, run_heads_bench  # noqa: E402


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_head_counts_and_quarter_map():
    assert head_counts(9) == [1, 2, 9]
    assert head_counts(4) == [1, 4]
    replacement = quarter_map(30, 9, ["a", "b"])
    assert len(replacement) == 68  # every 4th of 270 heads
    assert replacement.program_names() == ["a", "b"]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_one_layer_model_runs_the_chosen_layer(arch):
    from attnc.runtime.models import tiny_model

    loaded = tiny_model(arch, n_layers=3)
    one = one_layer_model(loaded, 2)
    full_layers = loaded.model.base_model.layers if arch == "llama" else loaded.model.base_model.h
    one_layers = one.layers if arch == "llama" else one.h
    for full, copy in zip(full_layers[2].state_dict().values(), one_layers[0].state_dict().values()):
        assert torch.equal(full, copy)
    assert one.config.num_hidden_layers == 1
    assert one_layers[0] is not full_layers[2]


def test_quick_run_end_to_end(one_thread):
    from attnc.runtime.models import tiny_model

    loaded = tiny_model("llama", attn_implementation="sdpa")
    record = run_heads_bench(loaded, windows=(16, 32), reps=1, ppl_windows=2, ppl_window=32, batch_size=2)
    table = record["layer_table"]
    assert [(r["window"], r["h"]) for r in table] == [(16, 1), (16, 4), (32, 1), (32, 4)]
    for row in table:
        for key in ("neural_ms", "replaced_ms", "ratio", "neural_cpu_ms", "replaced_cpu_ms", "cpu_ratio"):
            assert row[key] > 0 and math.isfinite(row[key])
        assert row["ratio"] == pytest.approx(row["replaced_ms"] / row["neural_ms"])
    t = record["throughput"]
    assert record["throughput_ratio_25"] == pytest.approx(t["replaced_tokens_per_s"] / t["stock_tokens_per_s"])
    assert t["replaced_heads"] == 2 and t["total_heads"] == 8
    assert t["ppl_replaced"] != t["ppl_stock"]  # the heads really were replaced
    # the default programs are window-independent: their rows are computed in the warm-up
    # forward and then reused (attnc.runtime.surrogate), so the timed runs may ask the source nothing
    assert 0 <= t["program_eval_share"] < 1
    assert record["machine"]["versions"]["torch"]


def test_window_longer_than_context_is_refused():
    from attnc.runtime.models import tiny_model

    loaded = tiny_model("llama", max_positions=64)
    with pytest.raises(ValueError, match="context"):
        run_heads_bench(loaded, windows=(128,), reps=1)


def test_timed_source_forwards_sparse_rows_and_counts_their_time():
    import numpy as np

    from attnc.compiler.compiled import SparseRows
    from benchmarks.heads_bench import TimedSource

    class Dense:
        names = ["p"]

        def matrices(self, names, ids):
            return {name: np.eye(ids.shape[1])[None].repeat(ids.shape[0], 0) for name in names}

    class Sparse(Dense):
        def sparse_matrices(self, names, ids):
            batch, n = ids.shape
            rows = SparseRows(np.arange(n, dtype=np.int32)[None, :, None].repeat(batch, 0),
                              np.ones((batch, n, 1), dtype=np.float32))
            return {name: rows for name in names}

    ids = np.zeros((2, 5), dtype=np.int64)
    assert TimedSource(Dense()).sparse_matrices(["p"], ids) == {}  # dense-only sources stay dense
    timed = TimedSource(Sparse())
    got = timed.sparse_matrices(["p"], ids)["p"]
    np.testing.assert_array_equal(got.to_dense(), timed.matrices(["p"], ids)["p"])
    assert timed.seconds > 0.0
