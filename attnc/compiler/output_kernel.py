"""The output rule fused into one row-by-row pass, for compiled programs.

`attnc.output_rule.apply_output_rule` (the reference interpreter's rule, and
the oracle) makes several full passes over [B, n, n] float64: finiteness
check, clip, tril, sum, divide, where. For programs whose own work is O(n) per
window, those passes cost more than the program (benchmarks/compile_bench.py).
Here one numba loop does the same per row while the row is in cache: check
finite, clip negatives to 0, causal mask, row sum, divide, empty row -> 1 on
the diagonal. It may write in place (`out is raw`).

Equal to `apply_output_rule` to 1e-12 (tests/test_compiler_output_kernel.py);
the row sum is sequential instead of NumPy's pairwise sum, hence not bitwise.
"""

from __future__ import annotations

import inspect

import numpy as np
from numba import njit

from attnc.output_rule import OutputContractError, apply_output_rule

_FINITE, _HAS_NAN, _HAS_INF = 0, 1, 2


# 'reassoc' lets LLVM vectorise the row sums (not bitwise equal to NumPy's pairwise sum anyway);
# no 'nnan'/'ninf': the finiteness check relies on NaN and inf propagating. Loop kernels embed
# these functions' source (numba_backend.py), so a change here changes every kernel's hash.
@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _rule_row(raw, i, causal, out):
    """The rule on row i of one window raw[n, n] into out[i] (may be raw); 0, or 1 when the row is not all finite."""
    n = raw.shape[1]
    stop = i + 1 if causal else n
    total = 0.0
    probe = 0.0  # x * 0 is NaN exactly when x is NaN or +-inf
    for j in range(stop):
        x = raw[i, j]
        probe += x * 0.0
        total += max(x, 0.0)
    for j in range(stop, n):
        probe += raw[i, j] * 0.0
    if probe != probe:
        return 1
    if total == 0.0:
        for j in range(n):
            out[i, j] = 0.0
        out[i, i] = 1.0
    else:
        scale = 1.0 / total  # a multiply per entry instead of a divide (within 2 ulp of x / total)
        if scale - scale != 0.0:  # total is subnormal: 1 / total overflows
            for j in range(stop):
                out[i, j] = max(raw[i, j], 0.0) / total
        else:
            for j in range(stop):
                out[i, j] = max(raw[i, j], 0.0) * scale
        for j in range(stop, n):
            out[i, j] = 0.0
    return 0


@njit(cache=True, nogil=True)
def _rule_matrix(raw, causal, out):
    """The rule on one window raw[n, n] into out[n, n] (may be raw); 0, or 1 when raw is not all finite."""
    for i in range(raw.shape[0]):
        if _rule_row(raw, i, causal, out) != 0:
            return 1
    return 0


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _add_normalize_rule_matrix(m, c, causal, out):
    """`m += c; m = m / m.sum(axis=1, keepdims=True)` then the rule into out (may be m), row by row.

    Each row goes through both steps while it is in cache (paper-form programs end
    with these two statements): three passes over the row instead of six over the
    matrix. 0, or 1 when a row is not finite (a zero row sum gives NaN, as in
    NumPy). Sums are reassociated (vectorised) and divisions are multiplications
    by the reciprocal, so values may differ from NumPy's in the last bits.
    """
    n = m.shape[1]
    for i in range(n):
        s = 0.0
        for j in range(n):
            x = m[i, j] + c
            m[i, j] = x
            s += x
        if s == 0.0:  # NumPy: 0 / 0 is NaN; the rule then rejects the row
            return 1
        inv = 1.0 / s
        if inv - inv != 0.0:  # s subnormal (1 / s overflows), inf or NaN: divide instead
            for j in range(n):
                m[i, j] = m[i, j] / s
            inv = 1.0
        stop = i + 1 if causal else n
        total = 0.0
        probe = 0.0  # x * 0 is NaN exactly when x is NaN or +-inf
        for j in range(stop):
            y = m[i, j] * inv
            m[i, j] = y
            probe += y * 0.0
            total += max(y, 0.0)
        for j in range(stop, n):
            y = m[i, j] * inv
            probe += y * 0.0
        if probe != probe:
            return 1
        if total == 0.0:
            for j in range(n):
                out[i, j] = 0.0
            out[i, i] = 1.0
            continue
        scale = 1.0 / total
        if scale - scale != 0.0:
            for j in range(stop):
                out[i, j] = max(m[i, j], 0.0) / total
        else:
            for j in range(stop):
                out[i, j] = max(m[i, j], 0.0) * scale
        for j in range(stop, n):
            out[i, j] = 0.0
    return 0


@njit(cache=True, nogil=True)
def _rule_rows(raw, causal, out):
    """The rule on raw[B, n, n] into out; 0, or 1 (a NaN anywhere) / 2 (inf, no NaN)."""
    for b in range(raw.shape[0]):
        if _rule_matrix(raw[b], causal, out[b]) != _FINITE:
            return _classify_non_finite(raw)
    return _FINITE


@njit(cache=True, nogil=True)
def _classify_non_finite(raw):
    """1 when raw holds a NaN anywhere (the oracle names NaN first), else 2 (inf)."""
    for b in range(raw.shape[0]):
        for i in range(raw.shape[1]):
            for j in range(raw.shape[2]):
                if raw[b, i, j] != raw[b, i, j]:
                    return _HAS_NAN
    return _HAS_INF


def rule_matrix_source() -> str:
    """Source text of the one-window rule, for loop kernels to embed (`_rule_row`, `_rule_matrix`,
    `_add_normalize_rule_matrix`)."""
    return "\n\n".join(inspect.getsource(f.py_func) for f in (_rule_row, _rule_matrix, _add_normalize_rule_matrix))


def apply_output_rule_fused(raw: np.ndarray, causal: bool = True, out: np.ndarray | None = None) -> np.ndarray:
    """The output rule as `apply_output_rule`, in one pass per row.

    Args:
        raw: the program's raw matrices [B, n, n] (any layout; broadcast views are fine).
        causal: apply the causal mask (j <= i).
        out: float64 C-contiguous [B, n, n] to write into (may be `raw` itself);
            a new array when None.

    Returns:
        Row-stochastic float64 [B, n, n] (`out` when given).

    Raises:
        OutputContractError: wrong shape or dtype, NaN or inf (same message as the oracle).
    """
    arr = np.asarray(raw)
    if arr.ndim != 3 or arr.dtype != np.float64 or arr.shape[1] != arr.shape[2]:
        result = apply_output_rule(arr, causal=causal)  # the oracle validates and explains
        if out is None:
            return result
        out[...] = result
        return out
    if out is None:
        out = np.empty(arr.shape, dtype=np.float64)
    status = _rule_rows(arr, bool(causal), out)
    if status == _HAS_NAN:
        raise OutputContractError("program returned NaN values")
    if status == _HAS_INF:
        raise OutputContractError("program returned inf values")
    return out
