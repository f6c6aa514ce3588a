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

import numpy as np
from numba import njit

from attnc.output_rule import OutputContractError, apply_output_rule

_FINITE, _HAS_NAN, _HAS_INF = 0, 1, 2


# 'reassoc' lets LLVM vectorise the row sums (not bitwise equal to NumPy's pairwise sum anyway);
# no 'nnan'/'ninf': the finiteness check relies on NaN and inf propagating. Loop kernels call
# these functions (through loop_runtime.py), whose RUNTIME_VERSION hashes this file: a change
# here changes every kernel's hash, so no stale numba cache entry calls an old version.
# Rows are passed as slices split at the causal boundary (head: kept keys, tail: masked ones)
# and looped from 0: a loop from a variable start (range(stop, n)) is not vectorised, because
# numba's negative-index wraparound is then possible (3x slower at 512 tokens).
@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _row_sums(head, tail, c):
    """(sum of x, sum of max(x, 0) over head, finiteness probe) for x = row + c, the row given as head and tail.

    The probe is NaN exactly when some x is NaN or +-inf (x * 0 is NaN then).
    """
    s = 0.0
    kept = 0.0
    probe = 0.0
    for j in range(head.shape[0]):
        x = head[j] + c
        s += x
        kept += max(x, 0.0)
        probe += x * 0.0
    for j in range(tail.shape[0]):
        x = tail[j] + c
        s += x
        probe += x * 0.0
    return s, kept, probe


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _write_kept_row(head, c, scale, out_head):
    """out_head = max(head + c, 0) * scale (out_head may be head)."""
    for j in range(head.shape[0]):
        out_head[j] = max(head[j] + c, 0.0) * scale


@njit(cache=True, nogil=True)
def _fill_row(row, value):
    for j in range(row.shape[0]):
        row[j] = value


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _rule_row(raw, i, causal, out):
    """The rule on row i of one window raw[n, n] into out[i] (may be raw); 0, or 1 when the row is not all finite."""
    n = raw.shape[1]
    stop = i + 1 if causal else n
    _, total, probe = _row_sums(raw[i, :stop], raw[i, stop:], 0.0)
    if probe != probe:
        return 1
    if total == 0.0:
        _fill_row(out[i], 0.0)
        out[i, i] = 1.0
        return 0
    scale = 1.0 / total  # a multiply per entry instead of a divide (within 2 ulp of x / total)
    if scale - scale != 0.0:  # total is subnormal: 1 / total overflows
        for j in range(stop):
            out[i, j] = max(raw[i, j], 0.0) / total
    else:
        _write_kept_row(raw[i, :stop], 0.0, scale, out[i, :stop])
    _fill_row(out[i, stop:], 0.0)
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

    Paper-form programs end with these two statements. With x = m + c and a
    positive row sum s, the rule's result is max(x, 0) / (sum of max(x, 0) over
    the kept keys): the division by s cancels. So a row costs one read pass
    (s, the kept total, finiteness) and one write pass, while the row is in
    cache, instead of six passes over the matrix. A row where that shortcut
    could round differently (s <= 0, s or 1 / s not finite, the divided values
    near underflow) takes the literal steps. 0, or 1 when a row is not finite
    (a zero row sum gives NaN, as in NumPy). Sums are reassociated (vectorised)
    and divisions are multiplications by the reciprocal, so values may differ
    from NumPy's in the last bits.
    """
    n = m.shape[1]
    for i in range(n):
        stop = i + 1 if causal else n
        s, kept, probe = _row_sums(m[i, :stop], m[i, stop:], c)
        scale = _shortcut_scale(s, kept, probe)
        if scale > 0.0:
            _write_kept_row(m[i, :stop], c, scale, out[i, :stop])
            _fill_row(out[i, stop:], 0.0)
        elif probe != probe or s == 0.0 or _literal_add_normalize_rule_row(m, i, c, causal, out) != 0:
            return 1  # NumPy: the divided row holds NaN (0 / 0 too); the rule rejects it
    return 0


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _add_normalize_rule_tracked(m, lo, hi, c, causal, out, in_place):
    """`_add_normalize_rule_matrix` for a matrix that is zero outside columns lo[i]..hi[i] - 1 of each row i.

    Reads only those spans (the rest of a row is c after `m += c`) and writes
    out; resets lo, hi for the next window. Paper-form programs that write O(n)
    entries of an n x n matrix then cost one write pass of out per window
    (numba_backend: `_tracked_matrix`).
    - in_place: m is out, built by the program in a fresh np.zeros: the masked
      keys are zero already except where the program wrote them;
    - otherwise m is a scratch buffer, zeroed again span by span so it can take
      the next window, and out (a caller's buffer) gets every entry written.
    0, or 1 when a row is not finite.
    """
    n = m.shape[1]
    clean_value = max(c, 0.0)
    for i in range(n):
        stop = i + 1 if causal else n
        d0, d1 = lo[i], hi[i]
        if d1 <= d0:
            d0, d1 = 0, 0
        h0, h1 = min(d0, stop), min(d1, stop)  # the span's part among the kept keys
        t0, t1 = max(d0, stop), max(d1, stop)  # and among the masked ones
        s, kept, probe = _row_sums(m[i, h0:h1], m[i, t0:t1], c)
        s += c * (n - (d1 - d0))
        kept += clean_value * (stop - (h1 - h0))
        probe += c * 0.0
        scale = _shortcut_scale(s, kept, probe)
        if scale > 0.0:
            _fill_row(out[i, :h0], clean_value * scale)
            _write_kept_row(m[i, h0:h1], c, scale, out[i, h0:h1])
            _fill_row(out[i, h1:stop], clean_value * scale)
            _fill_row(out[i, t0:t1] if in_place else out[i, stop:], 0.0)
        else:
            if probe != probe or s == 0.0 or _literal_add_normalize_rule_row(m, i, c, causal, out) != 0:
                return 1
            d0, d1 = 0, n  # the literal steps wrote the whole row of m
        if not in_place:
            _fill_row(m[i, d0:d1], 0.0)
        lo[i] = n
        hi[i] = 0
    return 0


@njit(cache=True, nogil=True)
def _shortcut_scale(s, kept, probe):
    """1 / kept when max(x, 0) / kept equals the literal steps' result to rounding, else 0.

    s: the row sum of x = m + c; kept: the sum of max(x, 0) over the kept keys;
    probe: NaN when some x is not finite. Not when s <= 0 (dividing by s flips
    or breaks signs), s or 1 / s is not finite, or the divided values are near underflow.
    """
    if probe != probe or not s > 0.0 or not kept > 0.0:
        return 0.0
    inv = 1.0 / s
    scale = 1.0 / kept
    if inv - inv != 0.0 or scale - scale != 0.0 or not kept * inv > 1e-280:
        return 0.0
    return scale


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _literal_add_normalize_rule_row(m, i, c, causal, out):
    """Row i through the literal steps: m += c, divide by the row sum (in m), then `_rule_row`.

    0, or 1 when the row is not finite (a zero row sum gives NaN, as in NumPy).
    """
    n = m.shape[1]
    s = 0.0
    for j in range(n):
        x = m[i, j] + c
        m[i, j] = x
        s += x
    if s == 0.0:
        return 1
    inv = 1.0 / s
    if inv - inv != 0.0:  # s subnormal (1 / s overflows), inf or NaN: divide instead
        for j in range(n):
            m[i, j] = m[i, j] / s
    else:
        for j in range(n):
            m[i, j] = m[i, j] * inv
    return _rule_row(m, i, causal, out)


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
