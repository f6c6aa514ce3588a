"""NumPy backend: runs an array kernel (array_codegen.py) on a batch of windows.

`NumpyOps` gives the kernel Python's semantics on arrays: indexing wraps
negative positions like a Python list and raises IndexError for an *active*
pair out of range; division by zero on an active pair raises
ZeroDivisionError; bools count as ints in arithmetic.
"""

from __future__ import annotations

import numpy as np

from attnc.compiler.hoisting import BuiltTable


#: `scalar ** int array` with at least this many entries is computed as a gather from a
#: table of scalar ** e over the exponents' range (one pow per distinct exponent).
_POWER_TABLE_MIN = 4096


class NumpyOps:
    """Array operations with Python's value and error semantics (NumPy arrays)."""

    def __init__(self, batch: int):
        self.rows = np.arange(batch).reshape(batch, 1, 1)

    @staticmethod
    def _active(bad, mask):
        return bad if mask is None else bad & mask

    def index(self, idx, n, mask):
        idx = np.asarray(idx, dtype=np.int64)
        bad = self._active((idx < -n) | (idx >= n), mask)
        if np.any(bad):
            values, flags = np.broadcast_arrays(idx, bad)
            raise IndexError(f"position {int(values[flags][0])} out of range for a window of {n} tokens")
        idx = np.where(idx < 0, idx + n, idx)
        idx = np.clip(idx, 0, n - 1)
        return idx.reshape((1, 1, 1)) if idx.ndim == 0 else idx

    def gather(self, feature, idx):
        return feature[self.rows, idx]

    def lookup(self, table: BuiltTable, token_ids, mask):
        if table.errors.any():
            bad = self._active(table.errors[token_ids], mask)
            if np.any(bad):
                raise ValueError(f"token-string expression failed: {table.first_error}")
        return table.values[token_ids]

    @staticmethod
    def asint(x):
        return np.asarray(x, dtype=np.int64) if not isinstance(x, int) or isinstance(x, bool) else x  # no copy of int64

    @staticmethod
    def asfloat(x):
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def trunc_int(x):
        return np.trunc(np.asarray(x, dtype=np.float64)).astype(np.int64) \
            if np.asarray(x).dtype.kind == "f" else np.asarray(x).astype(np.int64)

    def _check_zero(self, b, mask):
        zero = self._active(np.asarray(b) == 0, mask)
        if np.any(zero):
            raise ZeroDivisionError("division by zero")
        return np.where(np.asarray(b) == 0, 1, b)

    def truediv(self, a, b, mask):
        return np.true_divide(a, self._check_zero(b, mask))

    def floordiv(self, a, b, mask):
        return np.floor_divide(a, self._check_zero(b, mask))

    def mod(self, a, b, mask):
        return np.mod(a, self._check_zero(b, mask))

    def power(self, a, b, mask):
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        zero_neg = self._active((a_arr == 0) & (b_arr < 0), mask)
        if np.any(zero_neg):
            raise ZeroDivisionError("0.0 cannot be raised to a negative power")
        if a_arr.dtype.kind in "iub" and b_arr.dtype.kind in "iub":
            return np.power(a_arr.astype(np.int64), np.maximum(b_arr, 0))
        with np.errstate(over="ignore", invalid="ignore"):
            if a_arr.ndim == 0 and b_arr.dtype.kind in "iu" and b_arr.size >= _POWER_TABLE_MIN:
                # `c ** distance`: few distinct exponents; one pow per exponent, then a gather
                low, high = int(b_arr.min()), int(b_arr.max())
                if high - low < b_arr.size // 8:
                    table = np.power(a_arr.astype(np.float64), np.arange(low, high + 1, dtype=np.float64))
                    return table[b_arr - low]
            return np.power(a_arr.astype(np.float64), b_arr)

    @staticmethod
    def exp(x):
        with np.errstate(over="ignore", under="ignore"):
            return np.exp(np.asarray(x, dtype=np.float64))

    @staticmethod
    def log(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.asarray(x, dtype=np.float64))

    @staticmethod
    def where(c, a, b):
        return np.where(c, a, b)

    @staticmethod
    def minimum(a, b):
        return np.minimum(a, b)

    @staticmethod
    def maximum(a, b):
        return np.maximum(a, b)

    @staticmethod
    def absolute(x):
        return np.abs(x)

    @staticmethod
    def isin(x, items):
        x = np.asarray(x)
        out = np.zeros(x.shape, dtype=bool)
        for item in items:
            out |= x == item
        return out


def run_array_kernel_numpy(kernel, constants, tables: list[BuiltTable], features: dict[str, np.ndarray]) -> np.ndarray:
    """Run an array kernel over a batch; returns the raw matrices float64 [B, n, n]."""
    batch, n = features["ids"].shape
    ops = NumpyOps(batch)
    q = np.arange(n).reshape(1, n, 1)
    k = np.arange(n).reshape(1, 1, n)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        raw = kernel(ops, features, tables, constants, q, k, n)
    return np.broadcast_to(np.asarray(raw, dtype=np.float64), (batch, n, n))
