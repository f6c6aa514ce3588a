"""The precision model forward passes compute in: float32, or bfloat16 autocast.

Under ``bfloat16`` the model's weights stay float32 and every forward pass runs
in `torch.autocast`: matrix products in bfloat16 (accumulated in float32 by the
CPU kernels), norms, softmax and the residual stream in float32. On CPUs with
AVX512-BF16 or AMX this is about twice as fast as float32 (measured here: a
forward of 8 x 128 tokens of SmolLM2-135M, 2.8 s -> 1.3 s), at the cost of
bfloat16 rounding in every product (mean NLL moved by ~2e-4 relative).
Logits are handed on as float32, so log-softmax, NLL and KL are float32.
Only forward passes of the model are affected: program kernels, IoU and the
fits never run under autocast.
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager

import torch

#: Names `--precision` accepts, the default first.
PRECISIONS = ("float32", "bfloat16")


class PrecisionError(ValueError):
    """A precision attnc does not know."""


def check_precision(precision: str) -> str:
    """`precision` if it is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return precision


def computing(precision: str, device: torch.device | str = "cpu"):
    """A context in which model forwards on `device` compute in `precision` (a no-op for float32)."""
    check_precision(precision)
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def computing_of(model) -> Callable[[], ContextManager]:
    """`model.computing` for a LoadedModel; for a bare torch module (no precision of its own), a no-op."""
    return getattr(model, "computing", contextlib.nullcontext)
