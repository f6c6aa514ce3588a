"""attnc bench scale: the cost model's arithmetic, and a quick run on a tiny model (slow: it starts 2 workers)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ lives beside attnc/ in the source tree
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from benchmarks.scale_bench import PAPER, cost_model  # noqa: E402


def _measured(extract_ratio=1.8, score_ratio=2.0):
    return {"params": 1e8, "workers": 2, "extract": {"ratio": extract_ratio}, "score": {"ratio": score_ratio},
            "per_unit": {"extract_s_per_window": 0.1, "score_s_per_window_program_head": 1e-7}}


def test_cost_model_scales_measured_units_to_the_paper():
    rows = {row["what"]: row for row in cost_model(_measured())}
    heads = PAPER["n_heads"] * PAPER["n_layers"]
    extract_s = 0.1 * (PAPER["params"] / 1e8) * PAPER["windows"]
    score_s = 1e-7 * PAPER["windows"] * PAPER["programs"] * heads
    assert rows["extract (forward passes)"]["one_worker_h"] == pytest.approx(extract_s / 3600)
    assert rows["score (IoU, program x head)"]["one_worker_h"] == pytest.approx(score_s / 3600)
    # 32 workers at the worse measured efficiency (1.8 / 2 = 0.9)
    assert rows["total"]["workers_h"] == pytest.approx((extract_s + score_s) / (32 * 0.9) / 3600)
    assert "220 GB" in rows["attention store (float16)"]["basis"]


@pytest.mark.slow
def test_quick_run_measures_both_and_checks_equality(tmp_path, capsys):
    from parallel_fixtures import build_case

    from benchmarks.scale_bench import main

    case = build_case(tmp_path)
    assert main(["--lib", str(case.lib), "--model", case.model, "--quick", "--json",
                 "--corpus", str(case.root / "corpus.txt")]) == 0
    out = capsys.readouterr().out
    import json

    record = json.loads(out[out.index("{"):])
    assert record["measured"]["equal"] == {"store": True, "scores": True}
    assert record["measured"]["extract"]["many"] > 0 and record["measured"]["score"]["many"] > 0
