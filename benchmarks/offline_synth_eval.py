"""Benchmark the offline synthesizer on SmolLM2-135M + TinyStories.

Steps (each cached under --cache, default /tmp/attnc_offline_eval):

1. Cut the corpus into windows (seeded split) and extract the attention of all
   heads once, stored as float16 .npy (memory-mapped on reuse).
2. Run `synthesize_offline` on the fit windows (writes programs to --out).
3. Score held-out windows with the exact IoU (`attnc.study.scoring`): the
   emitted programs (best-fit program per head) and, for comparison, the
   project's hand-written `programs/` library compiled with attnc.compiler.

Usage:
    .venv/bin/python benchmarks/offline_synth_eval.py --window 24 --n-fit 200 --n-heldout 400
    .venv/bin/python benchmarks/offline_synth_eval.py --window 128 --n-fit 200 --n-heldout 400

Prints a JSON summary (and writes it to <out>/eval.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "tinystories" / "valid-dev.txt"


def cached_windows_and_attention(loaded, corpus_path: Path, window: int, n_fit: int, n_heldout: int,
                                 cache: Path, seed: int = 0):
    """(ids [N, n], split bool [N] True = held out, attention memmap float16 [N, H, n, n])."""
    from attnc.runtime.corpus import make_windows, read_corpus
    from attnc.runtime.extract import iter_attention

    total = n_fit + n_heldout
    tag = f"{loaded.name}_w{window}_n{total}_h{n_heldout}_s{seed}"
    cache.mkdir(parents=True, exist_ok=True)
    ids_path, split_path, attn_path = (cache / f"{tag}_ids.npy", cache / f"{tag}_split.npy",
                                       cache / f"{tag}_attn.npy")
    if ids_path.exists() and split_path.exists() and attn_path.exists():
        return np.load(ids_path), np.load(split_path), np.load(attn_path, mmap_mode="r")
    windows = make_windows(read_corpus(corpus_path), loaded.tokenizer, window=window,
                           heldout_fraction=n_heldout / total, seed=seed, max_windows=total)
    ids = windows.ids
    n_heads = loaded.n_layers * loaded.n_heads
    tmp = cache / f"{tag}_attn.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(len(ids), n_heads, window, window))
    start = time.perf_counter()
    for labels, attn in iter_attention(loaded, ids, batch_size=8):
        out[labels] = attn.astype(np.float16)
    out.flush()
    del out
    tmp.rename(attn_path)
    np.save(ids_path, ids)
    np.save(split_path, windows.split)
    print(f"extracted {len(ids)} windows of {window} tokens in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    return ids, windows.split, np.load(attn_path, mmap_mode="r")


def score_programs(compiled: dict, ids: np.ndarray, attn, vocab, batch: int = 16) -> tuple[np.ndarray, dict]:
    """Exact mean IoU [P, H] of compiled programs over the given windows; errors by name."""
    from attnc.compiler import evaluate_library
    from attnc.study.scoring import score_window_batch

    names = list(compiled)
    sums = np.zeros((len(names), attn.shape[1]))
    errors: dict[str, str] = {}
    for first in range(0, len(ids), batch):
        out = evaluate_library(compiled, ids[first:first + batch], vocab)
        errors.update(out.errors)
        mats = {n: (out.matrices[n] if n in out.matrices else
                    np.eye(ids.shape[1])[None].repeat(min(batch, len(ids) - first), 0)) for n in names}
        sums += score_window_batch(np.asarray(attn[first:first + batch], dtype=np.float32), mats)
    iou = sums / len(ids)
    for i, name in enumerate(names):
        if name in errors:
            iou[i] = 0.0
    return iou, errors


def compile_dir(directory: Path) -> dict:
    from attnc.compiler import compile_program
    from attnc.dsl import iter_program_files, load_program

    compiled = {}
    for path in iter_program_files([directory]):
        program = load_program(path)
        compiled[program.name] = compile_program(program)
    return compiled


def _head_key(name: str) -> tuple[int, int]:
    layer, head = name.split(".")
    return int(layer), int(head)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--window", type=int, default=24)
    parser.add_argument("--n-fit", type=int, default=200)
    parser.add_argument("--n-heldout", type=int, default=400)
    parser.add_argument("--max-fit-windows", type=int, default=None,
                        help="fit windows the synthesizer uses (default: its own choice by window length)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/attnc_offline_eval"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--library", type=Path, default=REPO / "programs")
    parser.add_argument("--skip-library", action="store_true")
    parser.add_argument("--extract-only", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from attnc.runtime.models import load_model

    torch.set_num_threads(1)
    loaded = load_model(args.model)
    ids, split, attn = cached_windows_and_attention(loaded, args.corpus, args.window, args.n_fit,
                                                    args.n_heldout, args.cache)
    if args.extract_only:
        return 0
    from attnc.synth.offline import synthesize_offline

    fit_idx, held_idx = np.flatnonzero(~split), np.flatnonzero(split)
    out_dir = args.out or args.cache / f"programs_w{args.window}"

    class SplitWindows:  # the synthesizer's Windows-like input: ids + held-out mask
        pass

    windows = SplitWindows()
    windows.ids, windows.split = ids, split
    start = time.perf_counter()
    report = synthesize_offline(loaded, windows, attention=attn, out_dir=out_dir,
                                max_fit_windows=args.max_fit_windows, seed=0)
    synth_s = time.perf_counter() - start
    summary = {
        "model": loaded.name, "corpus": str(args.corpus), "window": args.window,
        "n_fit_windows": int(len(fit_idx)), "n_fit_windows_used": report.n_fit_windows,
        "n_heldout_windows": report.n_heldout_windows,
        "n_programs_emitted": report.n_programs, "synth_seconds": round(synth_s, 1),
        "synth_timings": {k: round(v, 1) for k, v in report.timings.items()},
        "mean_heldout_iou_emitted": report.mean_heldout_iou(),
        "mean_fit_iou_emitted": report.mean_fit_iou(),
        "n_heads_on_templates": sum(1 for p in report.head_program.values() if p.startswith("tpl_")),
    }
    print(json.dumps(summary, indent=2), flush=True)
    if not args.skip_library:
        start = time.perf_counter()
        vocab = loaded.vocab
        library = compile_dir(args.library)
        fit_used = fit_idx[:report.n_fit_windows]
        iou_lib_fit, _ = score_programs(library, ids[fit_used], attn[fit_used], vocab)
        iou_lib, errors_lib = score_programs(library, ids[held_idx], attn[held_idx], vocab)
        chosen = iou_lib_fit.argmax(axis=0)
        summary["library_programs"] = len(library)
        summary["library_errors"] = errors_lib
        summary["mean_heldout_iou_library_best_on_heldout"] = float(iou_lib.max(axis=0).mean())
        summary["mean_heldout_iou_library_chosen_on_fit"] = float(iou_lib[chosen, np.arange(iou_lib.shape[1])].mean())
        emitted = np.array([report.heldout_iou[h] for h in sorted(report.heldout_iou, key=_head_key)])
        summary["mean_heldout_iou_best_of_emitted_or_library"] = float(np.maximum(emitted, iou_lib.max(axis=0)).mean())
        summary["library_score_seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(summary, indent=2)
    print(text)
    (out_dir / "eval.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
