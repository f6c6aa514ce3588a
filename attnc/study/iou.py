"""Fidelity (IoU) between neural attention and program matrices.

ARCHITECTURE.md, "Fidelity metric": clip both matrices to [EPS, 1];
``IoU_i = sum_j min(A_ij, P_ij) / sum_j max(A_ij, P_ij)`` over all j; the
window IoU is the mean over query rows i.

Two implementations live here:

- ``iou_reference`` / ``iou_reference_batch``: the definition, literally, in
  float64. Everything else is tested against it.
- ``row_iou_sums_dense`` / ``row_iou_sums_sparse``: the fast path used by
  scoring. It rests on three exact identities per row i, with A', P' clipped:

  * ``sum max = sum A' + sum P' - sum min``, so only ``sum min`` is needed;
  * where ``P_ij <= EPS`` we have ``P'_ij = EPS <= A'_ij``, so
    ``min(A'_ij, P'_ij) = EPS`` exactly: such entries (the causal upper
    triangle, a sparse program's zeros, padding) are skipped and accounted
    for by ``n * EPS``;
  * ``sum A'`` depends on the head only, so it is computed once per window.

  A program row with s entries above EPS therefore costs O(s * heads), not
  O(n * heads). Kernels take attention laid out [query, key, head] so the
  innermost loop is a contiguous vector over heads, and accumulate in float64.
"""

from __future__ import annotations

import numba
import numpy as np

EPS = 1e-12
"""Lower clip of the metric: both matrices are clipped to [EPS, 1]."""


def iou_reference(attn: np.ndarray, program: np.ndarray) -> float:
    """Window IoU of one attention matrix and one program matrix, by definition.

    Args:
        attn: neural attention [n, n] (rows sum to 1, causal).
        program: normalised program matrix [n, n].

    Returns:
        Mean over query rows of sum_j min / sum_j max after clipping to [EPS, 1].

    Raises:
        ValueError: if the shapes differ or are not square.
    """
    return float(iou_reference_batch(np.asarray(attn)[None], np.asarray(program)[None])[0])


def iou_reference_batch(attn: np.ndarray, program: np.ndarray) -> np.ndarray:
    """Window IoU by definition over leading batch dimensions.

    Args:
        attn: [..., n, n]; program: broadcastable to attn's shape.

    Returns:
        float64 array of the broadcast leading shape (one IoU per window).

    Raises:
        ValueError: if the trailing dimensions are not (n, n) in both.
    """
    a = np.asarray(attn, dtype=np.float64)
    p = np.asarray(program, dtype=np.float64)
    n = a.shape[-1]
    if a.ndim < 2 or a.shape[-2] != n or p.shape[-2:] != (n, n):
        raise ValueError(f"iou: expected [..., n, n] matrices, got attention {a.shape} and program {p.shape}")
    a = np.clip(a, EPS, 1.0)
    p = np.clip(p, EPS, 1.0)
    row = np.minimum(a, p).sum(axis=-1) / np.maximum(a, p).sum(axis=-1)
    return row.mean(axis=-1)


def prepare_attention(attn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lay one window's attention out for the kernels.

    Args:
        attn: [H, n, n] attention of all heads for one window (any float dtype).

    Returns:
        (a_t, sum_a): a_t is clip(attn, EPS, 1) as float32 [n, n, H] (query, key,
        head), contiguous; sum_a is float64 [n, H], the clipped row sums.
    """
    a = np.asarray(attn)
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ValueError(f"attention of one window must be [H, n, n], got {a.shape}")
    if a.dtype not in (np.float32, np.float64):  # numba has no float16 on CPU
        a = a.astype(np.float32)
    n_heads, n, _ = a.shape
    a_t = np.empty((n, n, n_heads), dtype=np.float32)
    sum_a = np.empty((n, n_heads), dtype=np.float64)
    _layout_kernel(np.ascontiguousarray(a), a_t, sum_a)
    return a_t, sum_a


@numba.njit(cache=True, parallel=True)
def _layout_kernel(a, a_t, sum_a):
    """a_t[i, j, h] = clip(float32(a[h, i, j]), EPS, 1); sum_a[i, h] = sum_j a_t[i, j, h]."""
    n_heads, n, _ = a.shape
    lo = np.float32(EPS)
    for i in numba.prange(n):
        for h in range(n_heads):
            total = 0.0
            for j in range(n):
                v = np.float32(a[h, i, j])
                if v < lo:
                    v = lo
                elif v > 1.0:
                    v = np.float32(1.0)
                a_t[i, j, h] = v
                total += v
            sum_a[i, h] = total


@numba.njit(cache=True, fastmath=False)
def _row_update(a_t, sum_a, i, n, sum_p, acc, out_p):
    """Turn one row's accumulated sum min into IoU and add it to out_p."""
    n_heads = a_t.shape[2]
    base = n * EPS
    for h in range(n_heads):
        m = acc[h] + base
        out_p[h] += m / (sum_a[i, h] + sum_p - m)
        acc[h] = 0.0


@numba.njit(cache=True, parallel=True)
def _dense_kernel(a_t, sum_a, programs, out, n_chunks):
    """out[p, h] += sum_i IoU_i for dense programs [P, n, n] (zeros skipped)."""
    n = a_t.shape[0]
    n_heads = a_t.shape[2]
    n_prog = programs.shape[0]
    for c in numba.prange(n_chunks):
        acc = np.zeros(n_heads, dtype=np.float64)
        lo = c * n_prog // n_chunks
        hi = (c + 1) * n_prog // n_chunks
        for i in range(n):
            a_row = a_t[i]
            for p in range(lo, hi):
                sum_p = 0.0
                prow = programs[p, i]
                for j in range(n):
                    w = prow[j]
                    if w > EPS:
                        if w > 1.0:
                            w = 1.0
                        sum_p += w - EPS
                        a_col = a_row[j]
                        for h in range(n_heads):
                            acc[h] += min(a_col[h], w) - EPS
                _row_update(a_t, sum_a, i, n, sum_p + n * EPS, acc, out[p])


@numba.njit(cache=True, parallel=True)
def _sparse_kernel(a_t, sum_a, keys, weights, out, n_chunks):
    """out[p, h] += sum_i IoU_i for sparse programs keys/weights [P, n, K]."""
    n = a_t.shape[0]
    n_heads = a_t.shape[2]
    n_prog = keys.shape[0]
    k_max = keys.shape[2]
    for c in numba.prange(n_chunks):
        acc = np.zeros(n_heads, dtype=np.float64)
        lo = c * n_prog // n_chunks
        hi = (c + 1) * n_prog // n_chunks
        for i in range(n):
            a_row = a_t[i]
            for p in range(lo, hi):
                sum_p = 0.0
                for k in range(k_max):
                    w = weights[p, i, k]
                    if w > EPS:
                        if w > 1.0:
                            w = 1.0
                        sum_p += w - EPS
                        a_col = a_row[keys[p, i, k]]
                        for h in range(n_heads):
                            acc[h] += min(a_col[h], w) - EPS
                _row_update(a_t, sum_a, i, n, sum_p + n * EPS, acc, out[p])


def _n_chunks(n_programs: int) -> int:
    """One chunk of programs per thread: each thread walks the rows once."""
    return max(1, min(n_programs, numba.get_num_threads()))


def row_iou_sums_dense(a_t: np.ndarray, sum_a: np.ndarray, programs: np.ndarray) -> np.ndarray:
    """Sum over query rows of IoU_i, for every (program, head), one window.

    Args:
        a_t, sum_a: from ``prepare_attention`` for the window.
        programs: [P, n, n] normalised program matrices for the same window
            (float32 or float64; float32 changes results by ~1e-7 at most).

    Returns:
        float64 [P, H]; divide by n for the window IoU.
    """
    n, _, n_heads = a_t.shape
    progs = np.ascontiguousarray(programs)
    if progs.ndim != 3 or progs.shape[1:] != (n, n):
        raise ValueError(f"dense programs must be [P, {n}, {n}], got {progs.shape}")
    out = np.zeros((progs.shape[0], n_heads), dtype=np.float64)
    if progs.shape[0]:
        _dense_kernel(a_t, sum_a, progs, out, _n_chunks(progs.shape[0]))
    return out


def row_iou_sums_sparse(a_t: np.ndarray, sum_a: np.ndarray, keys: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Like ``row_iou_sums_dense`` for programs given as padded rows.

    Args:
        a_t, sum_a: from ``prepare_attention`` for the window.
        keys: int [P, n, K] key positions; weights: float [P, n, K]. Entries
            with weight <= EPS (padding) are ignored; entries above EPS must
            have distinct keys within a row.

    Returns:
        float64 [P, H] sums over rows of IoU_i.
    """
    n, _, n_heads = a_t.shape
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    weights = np.ascontiguousarray(weights)
    if keys.shape != weights.shape or keys.ndim != 3 or keys.shape[1] != n:
        raise ValueError(f"sparse programs need keys and weights [P, {n}, K], got {keys.shape} and {weights.shape}")
    if keys.size and (keys.min() < 0 or keys.max() >= n):
        raise ValueError(f"sparse program keys must lie in [0, {n}), got range [{keys.min()}, {keys.max()}]")
    out = np.zeros((keys.shape[0], n_heads), dtype=np.float64)
    if keys.shape[0] and keys.shape[2]:
        _sparse_kernel(a_t, sum_a, keys, weights, out, _n_chunks(keys.shape[0]))
    elif keys.shape[0]:
        # No entries at all: every P' is EPS, so sum min = n*EPS.
        base = n * EPS
        out += (base / (sum_a + base - base)).sum(axis=0)[None, :]
    return out
