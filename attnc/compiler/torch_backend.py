"""torch backend: the array kernel (array_codegen.py) on torch tensors, on any device.

Same kernel source as the numpy backend; `TorchOps` supplies the same
operations with Python's value and error semantics on float64/int64 tensors,
so results equal the numpy backend's and the reference interpreter's.
Features and tables are moved to `device` per call (tables are cached per
device).
"""

from __future__ import annotations

import numpy as np
import torch

from attnc.compiler.hoisting import BuiltTable


def _t(x, device):
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(np.asarray(x), device=device)


class TorchOps:
    """Array operations with Python's value and error semantics (torch tensors)."""

    def __init__(self, batch: int, device):
        self.device = device
        self.rows = torch.arange(batch, device=device).reshape(batch, 1, 1)

    @staticmethod
    def _active(bad, mask):
        return bad if mask is None else bad & mask

    def index(self, idx, n, mask):
        idx = _t(idx, self.device).to(torch.int64)
        bad = self._active((idx < -n) | (idx >= n), mask)
        if bool(torch.any(bad)):
            values, flags = torch.broadcast_tensors(idx, bad)
            raise IndexError(f"position {int(values[flags][0])} out of range for a window of {n} tokens")
        idx = torch.where(idx < 0, idx + n, idx).clamp(0, n - 1)
        return idx.reshape(1, 1, 1) if idx.ndim == 0 else idx

    def gather(self, feature, idx):
        return feature[self.rows, idx]

    def lookup(self, table, token_ids, mask):
        values, errors, any_error, first_error = table
        if any_error:
            bad = self._active(errors[token_ids], mask)
            if bool(torch.any(bad)):
                raise ValueError(f"token-string expression failed: {first_error}")
        return values[token_ids]

    def asint(self, x):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return _t(x, self.device).to(torch.int64)
        return x

    def asfloat(self, x):
        return _t(x, self.device).to(torch.float64)

    def trunc_int(self, x):
        x = _t(x, self.device)
        return torch.trunc(x).to(torch.int64) if x.is_floating_point() else x.to(torch.int64)

    def _safe(self, b, mask):
        b = _t(b, self.device)
        zero = self._active(b == 0, mask)
        if bool(torch.any(zero)):
            raise ZeroDivisionError("division by zero")
        return torch.where(b == 0, torch.ones_like(b), b)

    def truediv(self, a, b, mask):
        return torch.true_divide(_t(a, self.device).to(torch.float64), self._safe(b, mask))

    def floordiv(self, a, b, mask):
        return torch.div(_t(a, self.device), self._safe(b, mask), rounding_mode="floor")

    def mod(self, a, b, mask):
        return torch.remainder(_t(a, self.device), self._safe(b, mask))

    def power(self, a, b, mask):
        a, b = _t(a, self.device), _t(b, self.device)
        zero_neg = self._active((a == 0) & (b < 0), mask)
        if bool(torch.any(zero_neg)):
            raise ZeroDivisionError("0.0 cannot be raised to a negative power")
        if not a.is_floating_point() and not b.is_floating_point():
            return torch.pow(a.to(torch.int64), b.clamp_min(0).to(torch.int64))
        return torch.pow(a.to(torch.float64), b.to(torch.float64))

    def where(self, c, a, b):
        a, b = _t(a, self.device), _t(b, self.device)
        dtype = torch.promote_types(a.dtype, b.dtype)
        return torch.where(_t(c, self.device), a.to(dtype), b.to(dtype))

    def minimum(self, a, b):
        a, b = _t(a, self.device), _t(b, self.device)
        dtype = torch.promote_types(a.dtype, b.dtype)
        return torch.minimum(a.to(dtype), b.to(dtype))

    def maximum(self, a, b):
        a, b = _t(a, self.device), _t(b, self.device)
        dtype = torch.promote_types(a.dtype, b.dtype)
        return torch.maximum(a.to(dtype), b.to(dtype))

    def exp(self, x):
        return torch.exp(_t(x, self.device).to(torch.float64))

    def log(self, x):
        return torch.log(_t(x, self.device).to(torch.float64))

    def absolute(self, x):
        return torch.abs(_t(x, self.device))

    def isin(self, x, items):
        x = _t(x, self.device)
        out = torch.zeros(x.shape, dtype=torch.bool, device=self.device)
        for item in items:
            out |= x == item
        return out


_TABLES: dict = {}


def _device_table(table: BuiltTable, device) -> tuple:
    key = (id(table), str(device))
    cached = _TABLES.get(key)
    if cached is None or cached[0] is not table:
        values = torch.as_tensor(table.values, device=device)
        errors = torch.as_tensor(table.errors, device=device)
        cached = _TABLES[key] = (table, (values, errors, bool(table.errors.any()), table.first_error))
    return cached[1]


def run_array_kernel_torch(kernel, constants, tables: list[BuiltTable], features: dict[str, np.ndarray],
                           device="cpu") -> torch.Tensor:
    """Run an array kernel on torch; returns raw matrices float64 [B, n, n] on `device`."""
    device = torch.device(device)
    batch, n = features["ids"].shape
    ops = TorchOps(batch, device)
    feats = {name: torch.as_tensor(np.array(v), device=device) for name, v in features.items()}
    q = torch.arange(n, device=device).reshape(1, n, 1)
    k = torch.arange(n, device=device).reshape(1, 1, n)
    raw = kernel(ops, feats, [_device_table(t, device) for t in tables], constants, q, k, n)
    return _t(raw, device).to(torch.float64).expand(batch, n, n)
