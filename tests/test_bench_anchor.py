"""attnc bench anchor on a tiny model: both ways of scoring agree, and the record is complete."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ lives beside attnc/ in the source tree
    sys.path.insert(0, str(ROOT))

from benchmarks.anchor_bench import run_anchor_bench, spread  # noqa: E402


def test_spread_picks_evenly():
    assert spread(list(range(10)), 3) == [0, 4, 9]
    assert spread([1, 2], 5) == [1, 2]


def test_quick_run_end_to_end():
    from attnc.runtime.models import tiny_model

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        loaded = tiny_model("llama", attn_implementation="eager")
        record = run_anchor_bench(loaded, programs=["previous_token", "first_token", "decay_070"], window=16,
                                  n_windows=3, anchor_programs=2, anchor_heads=2, anchor_windows=2, reps=1)
    finally:
        torch.set_num_threads(before)
    assert record["slice"] == {"programs": 3, "heads": 8, "windows": 3, "units": 72}
    assert record["sub_slice"]["units"] == 8
    for key in ("paper_s_per_unit", "paper_s_extrapolated", "attnc_s", "ratio"):
        assert record[key] > 0 and math.isfinite(record[key])
    assert record["paper_s_extrapolated"] == pytest.approx(record["paper_s_per_unit"] * 72)
    assert record["ratio"] == pytest.approx(record["paper_s_extrapolated"] / record["attnc_s"])
    # The paper's per-unit IoU and attnc's table agree (ARCHITECTURE: fast paths equal the reference to 1e-6).
    assert record["max_abs_iou_diff"] < 1e-6
    assert record["attnc_failures"] == {}
