"""Anchor: scoring a library the way the paper's code does vs attnc's scorer, same slice.

    attnc bench anchor [--model smollm2-135m] [--window 64] [--windows 4] [--json]

The slice: every starter program (programs/*.py that compiles) x every head of
the model x --windows corpus windows of --window tokens.

- The paper's way, per (program, head, window) unit: run the program in plain
  Python on the window (`attnc.dsl.run_reference`), run the MODEL forward with
  output_attentions=True to get that head's attention (one forward per unit,
  as the paper's notebooks did), and compute the IoU by its definition
  (`iou_reference`). Timed on a small sub-slice (--anchor-programs x
  --anchor-heads x --anchor-windows units, spread over the slice) and
  EXTRAPOLATED to the full slice: per-unit seconds x units in the slice.
- attnc: `score_library` over `model_attention_batches` (one forward per batch
  of windows for all heads, compiled programs, fast IoU kernels) on the whole
  slice, timed for real after a warm-up on two short windows (JIT caches,
  lazy program loading).

Repetitions of the two are interleaved; medians. The IoUs of the sub-slice
are also computed by attnc and compared (`max_abs_iou_diff`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from benchmarks.heads_bench import DEFAULT_PROGRAMS, PROGRAMS_DIR, corpus_ids
from benchmarks.machine import describe_machine, machine_line
from benchmarks.records import add_common_options, bench_model, emit, median, start


#: Programs of the --quick slice (the starter library takes ~30 s to compile cold).
QUICK_PROGRAMS = DEFAULT_PROGRAMS


def starter_library(out: Path, vocab, names: Sequence[str] | None = None):
    """Starter programs (programs/NAME.py; all of them when `names` is None) compiled into `out`, loaded."""
    from attnc.compiler.library_build import build_library
    from attnc.runtime.library import load_library

    paths = [PROGRAMS_DIR] if names is None else [PROGRAMS_DIR / f"{name}.py" for name in names]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"starter programs not found: {', '.join(missing)} (run from an attnc checkout)")
    build_library(paths, out)
    return load_library(out, vocab=vocab)


def spread(items: Sequence, k: int) -> list:
    """k items evenly spread over `items` (first and last included when k >= 2)."""
    if k >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def paper_unit(loaded, program, ids: np.ndarray, layer: int, head: int, vocab, device: str) -> float:
    """One (program, head, window) unit the paper's way: interpreter + one model forward + IoU."""
    from attnc.dsl import run_reference
    from attnc.study.iou import iou_reference

    matrix = run_reference(program, ids, vocab)
    with torch.inference_mode():
        out = loaded.model(input_ids=torch.from_numpy(ids[None]).to(device), output_attentions=True, use_cache=False)
    attention = out.attentions[layer][0, head].float().cpu().numpy()
    return iou_reference(attention, matrix)


def attnc_score(loaded, library, names: Sequence[str], ids: np.ndarray, heads: list[tuple[int, int]],
                batch_size: int):
    """attnc's scorer on the slice: (ScoreRun, seconds)."""
    from attnc.study.score_run import model_attention_batches, score_library

    programs = {name: library.programs[name] for name in names}
    held = np.arange(len(ids)) % 2 == 1
    start = time.perf_counter()
    run = score_library(model_attention_batches(loaded, ids, heads=heads, batch_size=batch_size), programs,
                        loaded.vocab, [f"{l}.{h}" for l, h in heads], held)
    return run, time.perf_counter() - start


def run_anchor_bench(loaded, *, programs: Sequence[str] | None = None, window: int = 64, n_windows: int = 4,
                     anchor_programs: int = 3,
                     anchor_heads: int = 3, anchor_windows: int = 2, batch_size: int = 8, reps: int = 2,
                     device: str = "cpu") -> dict:
    """Time the paper's per-unit scoring (extrapolated) against attnc's scorer on one slice.

    Args:
        loaded: a LoadedModel (switched to eager attention while scoring).
        programs: starter program names (default: every program in programs/).
        window, n_windows: the slice's corpus windows (n_windows >= 2).
        anchor_programs, anchor_heads, anchor_windows: the sub-slice timed the paper's way.
        batch_size: windows per forward for attnc.
        reps: interleaved repetitions of both (medians).
        device: "cpu" or "cuda".

    Returns:
        JSON-ready record with `ratio` = extrapolated paper seconds / attnc seconds.
    """
    from attnc.runtime.extract import eager_attention

    if n_windows < 2 or anchor_windows < 2:
        raise ValueError("the slice and the sub-slice need >= 2 windows (one per split)")
    loaded.model.to(device)
    vocab = loaded.vocab
    ids = corpus_ids(loaded.tokenizer, window, n_windows)
    heads = [(l, h) for l in range(loaded.n_layers) for h in range(loaded.n_heads)]
    with tempfile.TemporaryDirectory(prefix="attnc-anchor-bench-") as tmp:
        library = starter_library(Path(tmp) / "lib", vocab, programs)
        names = library.names
        sub_names = spread(names, anchor_programs)
        sub_heads = spread(heads, anchor_heads)
        sub_rows = list(range(min(anchor_windows, n_windows)))
        checked = {name: library.programs[name].program for name in sub_names}
        attnc_score(loaded, library, names, ids[:2, :16], heads[:2], batch_size)  # warm-up
        attnc_times, unit_times, anchor_ious = [], [], {}
        with eager_attention(loaded):
            for _ in range(reps):
                run, seconds = attnc_score(loaded, library, names, ids, heads, batch_size)
                attnc_times.append(seconds)
                start = time.perf_counter()
                for name in sub_names:
                    for layer, head in sub_heads:
                        for row in sub_rows:
                            anchor_ious[(name, layer, head, row)] = paper_unit(
                                loaded, checked[name], ids[row], layer, head, vocab, device)
                unit_times.append((time.perf_counter() - start) / len(anchor_ious))
            check, _ = attnc_score(loaded, library, sub_names, ids[sub_rows[:2]], sub_heads, batch_size)
    diffs = []
    for (name, layer, head, row), value in anchor_ious.items():
        if row < 2:
            table = check.table
            p, h = table.programs.index(name), table.heads.index(f"{layer}.{head}")
            diffs.append(abs((table.iou_fit if row == 0 else table.iou_heldout)[p, h] - value))
    units = len(names) * len(heads) * n_windows
    per_unit = median(unit_times)
    attnc_s = median(attnc_times)
    return {
        "bench": "anchor",
        "model": loaded.name,
        "device": device,
        "window": window,
        "slice": {"programs": len(names), "heads": len(heads), "windows": n_windows, "units": units},
        "sub_slice": {"programs": sub_names, "heads": [f"{l}.{h}" for l, h in sub_heads], "windows": sub_rows,
                      "units": len(anchor_ious)},
        "paper_s_per_unit": per_unit,
        "paper_s_extrapolated": per_unit * units,
        "attnc_s": attnc_s,
        "ratio": per_unit * units / attnc_s,
        "max_abs_iou_diff": float(max(diffs)) if diffs else None,
        "attnc_failures": dict(run.failures),
        "reps": reps,
        "machine": describe_machine(),
    }


def print_tables(record: dict, stream=sys.stdout) -> None:
    s, sub = record["slice"], record["sub_slice"]
    print(machine_line(record["machine"]), file=stream)
    print(f"\nslice: {s['programs']} programs x {s['heads']} heads x {s['windows']} windows of {record['window']} "
          f"tokens = {s['units']} units ({record['model']}, {record['device']}, median of {record['reps']})",
          file=stream)
    print(f"  paper's way: {record['paper_s_per_unit'] * 1e3:9.1f} ms per unit, timed on {sub['units']} units "
          f"({len(sub['programs'])} programs x {len(sub['heads'])} heads x {len(sub['windows'])} windows);", file=stream)
    print(f"               extrapolated to the slice: {record['paper_s_extrapolated']:12.1f} s "
          f"({record['paper_s_extrapolated'] / 3600:.2f} h)", file=stream)
    print(f"  attnc score: {record['attnc_s']:12.2f} s (measured on the whole slice)", file=stream)
    print(f"  ratio (paper / attnc): {record['ratio']:.0f}x", file=stream)
    print(f"  max |IoU paper - IoU attnc| on the sub-slice: {record['max_abs_iou_diff']:.2e}", file=stream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnc bench anchor", description=__doc__.split("\n")[0])
    add_common_options(parser)
    parser.add_argument("--model", default="smollm2-135m",
                        help="model name or path (default smollm2-135m); tiny-llama / tiny-gpt2: random test models")
    parser.add_argument("--window", type=int, default=64, help="tokens per window (default 64)")
    parser.add_argument("--windows", type=int, default=4, help="windows in the slice (default 4)")
    parser.add_argument("--programs", default=None,
                        help="comma-separated starter programs (default: all of programs/)")
    parser.add_argument("--anchor-programs", type=int, default=3)
    parser.add_argument("--anchor-heads", type=int, default=3)
    parser.add_argument("--anchor-windows", type=int, default=2)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    stream, skipped = start(args, "anchor")
    if skipped:
        return 0
    loaded = bench_model(args.model, "eager")
    if args.quick:
        args.window, args.windows, args.anchor_programs, args.anchor_heads, args.reps = 16, 2, 2, 2, 1
        args.programs = args.programs or ",".join(QUICK_PROGRAMS)
    programs = [p.strip() for p in args.programs.split(",") if p.strip()] if args.programs else None
    record = run_anchor_bench(loaded, programs=programs, window=args.window, n_windows=args.windows,
                              anchor_programs=args.anchor_programs, anchor_heads=args.anchor_heads,
                              anchor_windows=args.anchor_windows, batch_size=args.batch_size, reps=args.reps,
                              device=args.device)
    print_tables(record, stream)
    emit(record, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
