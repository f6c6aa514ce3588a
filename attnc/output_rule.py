"""The output rule every backend applies to a program's raw matrix.

ARCHITECTURE.md, "Program contract": reject wrong shapes and non-finite values,
clip negatives to 0, apply the causal mask (j <= i) for causal models, divide
each row by its sum; a row whose sum is 0 puts all its weight on position i.
One NumPy and one torch implementation, tested against each other.
"""

from __future__ import annotations

import numpy as np


class OutputContractError(ValueError):
    """A program's raw output broke the contract (shape, NaN or inf)."""


def check_raw_output(raw: np.ndarray, n: int) -> np.ndarray:
    """Return `raw` as float64 [..., n, n], or raise OutputContractError."""
    arr = np.asarray(raw)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise OutputContractError(f"program returned a {arr.dtype} array, expected numbers")
    if arr.shape[-2:] != (n, n):
        raise OutputContractError(f"program returned shape {arr.shape}, expected (..., {n}, {n})")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise OutputContractError(f"program returned {bad} values")
    return arr


def apply_output_rule(raw: np.ndarray, causal: bool = True) -> np.ndarray:
    """Normalise a raw program matrix [..., n, n] into row-stochastic float64."""
    n = np.asarray(raw).shape[-1]
    m = np.clip(check_raw_output(raw, n), 0.0, None)
    if causal:
        m = np.tril(m)
    sums = m.sum(axis=-1, keepdims=True)
    empty = sums == 0.0
    m = m / np.where(empty, 1.0, sums)
    if empty.any():
        eye = np.broadcast_to(np.eye(n, dtype=bool), m.shape)
        m = np.where(empty & eye, 1.0, m)
    return m


def apply_output_rule_torch(raw, causal: bool = True):
    """The same rule on a torch tensor [..., n, n]; keeps device, returns float64."""
    import torch

    n = raw.shape[-1]
    if raw.shape[-2:] != (n, n):
        raise OutputContractError(f"program returned shape {tuple(raw.shape)}, expected (..., {n}, {n})")
    m = raw.to(torch.float64)
    if not torch.isfinite(m).all():
        bad = "NaN" if torch.isnan(m).any() else "inf"
        raise OutputContractError(f"program returned {bad} values")
    m = m.clamp_min(0.0)
    if causal:
        m = torch.tril(m)
    sums = m.sum(dim=-1, keepdim=True)
    empty = sums == 0.0
    m = m / torch.where(empty, torch.ones_like(sums), sums)
    eye = torch.eye(n, dtype=torch.bool, device=m.device)
    return torch.where(empty & eye, torch.ones_like(m), m)
