"""Scoring speed: reference IoU vs the fast path, measured side by side in one run.

Synthetic but realistic inputs: attention is a causal softmax of random logits
[W, H, n, n] (stored float16, as in the attention store); programs are mostly
sparse (1-8 non-zeros per row, given as SparseRows) plus a fraction of dense
ones (full causal support). Prints time per window for each path, the max
difference from the reference, and the projected time for a full study.

    .venv/bin/python benchmarks/scoring_bench.py                # study scale
    .venv/bin/python benchmarks/scoring_bench.py --heads 30 --programs 100   # quick
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np

from attnc.study.fitting import fit_head_mixture
from attnc.study.iou import iou_reference_batch, prepare_attention
from attnc.study.scoring import SparseRows, score_window_batch


def causal_softmax(rng: np.random.Generator, w: int, h: int, n: int) -> np.ndarray:
    causal = np.tril(np.ones((n, n), dtype=bool))
    out = np.empty((w, h, n, n), dtype=np.float16)
    for i in range(w):
        logits = rng.normal(size=(h, n, n)).astype(np.float32) * rng.uniform(0.5, 6.0, size=(h, 1, 1)).astype(np.float32)
        logits = np.where(causal, logits, -np.inf)
        a = np.exp(logits - logits.max(-1, keepdims=True))
        out[i] = a / a.sum(-1, keepdims=True)
    return out


def sparse_program(rng: np.random.Generator, w: int, n: int) -> SparseRows:
    k = int(rng.integers(1, 9))
    rows = np.arange(n)[None, :, None]
    # k distinct random keys <= r per row r (fewer when r + 1 < k: the rest is padding).
    order = np.where(np.tril(np.ones((n, n), dtype=bool)), rng.random((w, n, n)), np.inf)
    keys = np.argsort(order, axis=-1)[..., :k]
    distinct = np.arange(k)[None, None, :] < np.minimum(rows + 1, k)
    weights = np.where(distinct, rng.random((w, n, k)) + 0.05, 0.0)
    weights /= weights.sum(-1, keepdims=True)
    keys = np.where(distinct, keys, rows).astype(np.int32)
    return SparseRows(keys, weights)


def dense_program(rng: np.random.Generator, w: int, n: int) -> np.ndarray:
    p = np.tril(rng.random((w, n, n)) ** rng.uniform(0.5, 4.0))
    return p / p.sum(-1, keepdims=True)


def timed(f, repeat: int = 3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        value = f()
        best = min(best, time.perf_counter() - t)
    return best, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=8, help="windows in the measured batch")
    ap.add_argument("--heads", type=int, default=270)
    ap.add_argument("--n", type=int, default=128, help="window length")
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--dense-fraction", type=float, default=0.1)
    ap.add_argument("--ref-programs", type=int, default=4, help="programs timed with the reference (it is slow)")
    ap.add_argument("--study-windows", type=int, default=600, help="fit + held-out windows of the projected study")
    ap.add_argument("--fit-windows", type=int, default=200, help="fit windows for the mixture timing")
    ap.add_argument("--candidates", type=int, default=8, help="candidates per head for the mixture timing")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    w, h, n = args.windows, args.heads, args.n
    n_dense = int(round(args.programs * args.dense_fraction))
    n_sparse = args.programs - n_dense
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"numba threads {numba.get_num_threads()}, numpy {np.__version__}")
    print(f"inputs: attention [W={w}, H={h}, {n}, {n}] float16; {n_sparse} sparse (1-8 nnz/row) + {n_dense} dense programs")
    t0 = time.perf_counter()
    attn = causal_softmax(rng, w, h, n)
    sparse = {f"s{i}": sparse_program(rng, w, n) for i in range(n_sparse)}
    dense = {f"d{i}": dense_program(rng, w, n) for i in range(n_dense)}
    print(f"generated inputs in {time.perf_counter() - t0:.1f} s")

    # Warm up the JIT (compiled once, cached on disk).
    warm = dense_program(rng, 1, n)
    score_window_batch(attn[:1, :2], {"d": warm, "d32": warm.astype(np.float32), "s": sparse_program(rng, 1, n)})

    # Reference: the definition in float64, on a few programs, all heads, one window.
    ref_names = list(sparse)[: args.ref_programs // 2] + list(dense)[: args.ref_programs - args.ref_programs // 2]
    ref_progs = {k: (sparse[k].to_dense() if k in sparse else dense[k]) for k in ref_names}
    t_ref, ref = timed(repeat=1, f=lambda: np.array([iou_reference_batch(attn[0].astype(np.float32), ref_progs[k][0][None]) for k in ref_names]))
    fast_subset = score_window_batch(attn[:1], {k: (SparseRows(sparse[k].keys[:1], sparse[k].weights[:1]) if k in sparse else dense[k][:1]) for k in ref_names})
    err = float(np.abs(fast_subset - ref).max())
    t_ref_prog = t_ref / len(ref_names)

    t_prep, _ = timed(lambda: [prepare_attention(attn[i]) for i in range(w)])
    t_sparse, _ = timed(lambda: score_window_batch(attn, sparse)) if sparse else (0.0, None)
    t_dense, _ = timed(lambda: score_window_batch(attn, dense)) if dense else (0.0, None)
    dense32 = {k: v.astype(np.float32) for k, v in dense.items()}
    t_dense32, _ = timed(lambda: score_window_batch(attn, dense32)) if dense else (0.0, None)

    per_win = {
        "attention layout (clip, transpose) per window": t_prep / w,
        f"fast sparse, {n_sparse} programs, per window": t_sparse / w - t_prep / w,
        f"fast dense,  {n_dense} programs, per window (float64 P)": t_dense / w - t_prep / w,
        f"fast dense,  {n_dense} programs, per window (float32 P)": t_dense32 / w - t_prep / w,
    }
    print(f"\nper window, all {h} heads:")
    print(f"  reference, per program                           {t_ref_prog * 1e3:9.2f} ms")
    fast_sparse_prog = per_win[f"fast sparse, {n_sparse} programs, per window"] / max(n_sparse, 1)
    fast_dense_prog = per_win[f"fast dense,  {n_dense} programs, per window (float64 P)"] / max(n_dense, 1)
    print(f"  fast sparse, per program                         {fast_sparse_prog * 1e3:9.3f} ms   "
          f"(x{t_ref_prog / max(fast_sparse_prog, 1e-12):.0f} vs reference)")
    print(f"  fast dense,  per program                         {fast_dense_prog * 1e3:9.3f} ms   "
          f"(x{t_ref_prog / max(fast_dense_prog, 1e-12):.0f} vs reference)")
    for label, t in per_win.items():
        print(f"  {label:<50}{t * 1e3:9.2f} ms")
    print(f"  max |fast - reference| over {len(ref_names)} programs x {h} heads: {err:.2e}")

    full = args.study_windows * (t_prep / w + per_win[f"fast sparse, {n_sparse} programs, per window"]
                                 + per_win[f"fast dense,  {n_dense} programs, per window (float64 P)"])
    ref_full = args.study_windows * t_ref_prog * args.programs
    print(f"\nprojected study ({args.study_windows} windows x {h} heads x {args.programs} programs, n={n}):")
    print(f"  fast path  {full:10.1f} s  ({full / 60:.1f} min)")
    print(f"  reference  {ref_full:10.1f} s  ({ref_full / 3600:.1f} h)")

    t_mix = time_mixture(rng, n, args.fit_windows, args.study_windows - args.fit_windows, args.candidates)
    print(f"\nmixture fit (k=3, {args.candidates} candidates, {args.fit_windows} fit + "
          f"{args.study_windows - args.fit_windows} held-out windows), one process:")
    print(f"  per head {t_mix:.2f} s; {h} heads {t_mix * h / 60:.1f} min")


def time_mixture(rng: np.random.Generator, n: int, n_fit: int, n_held: int, m: int) -> float:
    """Seconds for one head's mixture fit: a planted mix of shifted diagonals plus noise."""
    w = n_fit + n_held
    rows = np.arange(n)
    progs = {}
    for d in range(m):
        p = np.zeros((w, n, n), dtype=np.float32)
        p[:, rows, np.maximum(rows - d, 0)] = 1.0
        progs[f"prev{d}"] = p
    noise = causal_softmax(rng, w, 1, n)[:, 0].astype(np.float32)
    attn = 0.5 * progs["prev1"] + 0.3 * progs["prev0"] + 0.2 * noise
    fit = {k: v[:n_fit] for k, v in progs.items()}
    held = {k: v[n_fit:] for k, v in progs.items()}
    t, _ = timed(repeat=1, f=lambda: fit_head_mixture("0.0", attn[:n_fit], fit, attn[n_fit:], held, list(progs), k=3))
    return t


if __name__ == "__main__":
    main()
