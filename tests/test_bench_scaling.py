"""attnc bench scaling: the growth-exponent fit, generated program variants, a quick end-to-end run."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ lives beside attnc/ in the source tree
    sys.path.insert(0, str(ROOT))

from benchmarks.scaling_bench import (  # noqa: E402
    build_variant_library, growth_exponent, plot_curves, program_variants, run_scaling_bench,
)


def test_exponent_recovers_square_law():
    n = np.array([10, 30, 100, 300, 1000])
    assert growth_exponent(n, 3e-6 * n ** 2.0) == pytest.approx(2.0, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(exponent=st.floats(-1.0, 3.0), scale=st.floats(1e-6, 1e3),
       sizes=st.lists(st.integers(1, 5000), min_size=2, max_size=8, unique=True))
def test_exponent_recovers_any_power_law(exponent, scale, sizes):
    n = np.asarray(sizes, dtype=float)
    assert growth_exponent(n, scale * n ** exponent) == pytest.approx(exponent, abs=1e-6)


def test_exponent_rejects_unusable_input():
    with pytest.raises(ValueError, match="distinct sizes"):
        growth_exponent([10, 10], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        growth_exponent([10, 20], [1.0, 0.0])


def test_variants_are_distinct_and_compile(tmp_path):
    from attnc.runtime.models import tiny_tokenizer
    from attnc.window import Vocab

    sources = program_variants(21)
    assert len(sources) == 21 and len(set(sources.values())) == 21
    library, compile_s = build_variant_library(21, tmp_path, Vocab.from_tokenizer(tiny_tokenizer()))
    assert sorted(library.names) == sorted(sources) and compile_s > 0
    assert library.duplicates() == {}  # varied constants give different matrices


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_quick_run_end_to_end(tmp_path, one_thread):
    from attnc.runtime.models import tiny_tokenizer
    from attnc.window import Vocab

    tokenizer = tiny_tokenizer()
    record = run_scaling_bench(tokenizer, Vocab.from_tokenizer(tokenizer), program_sizes=(3, 6),
                               window_sizes=(16, 32), head_sizes=(1, 2), base_programs=3, base_window=16,
                               base_heads=2, n_windows=2, reps=1)
    assert set(record["curves"]) == {"scoring_vs_programs", "compile_vs_programs", "scoring_vs_window",
                                     "scoring_vs_heads"}
    for name, curve in record["curves"].items():
        assert len(curve["seconds"]) == len(curve["x"]) == 2
        assert all(s > 0 and math.isfinite(s) for s in curve["seconds"]), name
        assert record["exponents"][name] == pytest.approx(growth_exponent(curve["x"], curve["seconds"]))
    assert record["machine"]["cores"] >= 1
    paths = plot_curves(record, tmp_path / "plots")
    assert len(paths) == 4 and all(Path(p).stat().st_size > 1000 for p in paths)
