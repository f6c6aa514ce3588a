"""The helpers every loop (numba) kernel calls, compiled once per process, not once per kernel.

Generated kernels start with `RUNTIME_IMPORT` (numba_backend.py) instead of
carrying their own copy of these functions: with a copy each, every kernel
JIT-compiled the same dozen helpers again (measured: about half of a kernel's
cold JIT time). A numba cache entry of a kernel does not notice when a helper
it calls changes, so the kernel header names `RUNTIME_VERSION`, a hash of this
module's and output_kernel.py's source: a new attnc gives new kernel files.

`python_namespace()` gives the same helpers as plain Python functions (no
JIT), for running a kernel's own source without numba on the small probe
windows of compile time (kernel_store.load_loop_kernel_python).
"""

from __future__ import annotations

import hashlib
import sys
import types
from functools import lru_cache
from pathlib import Path

import numpy as np
from numba import njit

from attnc.compiler import output_kernel
from attnc.compiler.output_kernel import (  # noqa: F401  (re-exported to kernels)
    _add_normalize_rule_matrix, _add_normalize_rule_tracked, _rule_matrix,
)

_JIT = dict(cache=True, boundscheck=True, nogil=True)
# Inlined into the caller at numba-IR level: no per-call reference counting of array arguments.
_INLINE = dict(_JIT, inline="always")


@njit(**_INLINE)
def _lookup(values, errors, token):
    if errors[token]:
        raise ValueError("a token-string expression failed on this token")
    return values[token]


@njit(**_INLINE)
def _mark(lo, hi, row, col):
    """Record that element (row, col) of a tracked matrix was written (after its bounds-checked write)."""
    n = lo.shape[0]
    if row < 0:
        row += n
    if col < 0:
        col += n
    if col < lo[row]:
        lo[row] = col
    if col >= hi[row]:
        hi[row] = col + 1


@njit(**_INLINE)
def _fill_into(buf, value, zeroed):
    if zeroed and value == 0.0:  # a fresh np.zeros buffer: its pages are zero already
        return buf
    for i in range(buf.shape[0]):
        for j in range(buf.shape[1]):
            buf[i, j] = value
    return buf


@njit(**_JIT)
def _row_normalize(out):
    return _row_normalize_inplace(out.copy())


@njit(**_JIT)
def _add_row_normalize_inplace(out, c):
    for i in range(out.shape[0]):
        s = 0.0
        for j in range(out.shape[1]):
            out[i, j] += c
            s += out[i, j]
        for j in range(out.shape[1]):
            out[i, j] = out[i, j] / s if s != 0.0 else np.nan
    return out


@njit(**_JIT)
def _row_normalize_inplace(out):
    for i in range(out.shape[0]):
        s = 0.0
        for j in range(out.shape[1]):
            s += out[i, j]
        for j in range(out.shape[1]):
            out[i, j] = out[i, j] / s if s != 0.0 else np.nan
    return out


#: What a kernel may name from here (the one import line of every kernel).
KERNEL_NAMES = ("np", "njit", "_JIT", "_INLINE", "_lookup", "_mark", "_fill_into", "_row_normalize",
                "_row_normalize_inplace", "_add_row_normalize_inplace", "_rule_matrix",
                "_add_normalize_rule_matrix", "_add_normalize_rule_tracked")
RUNTIME_IMPORT = f"from attnc.compiler.loop_runtime import {', '.join(KERNEL_NAMES)}"


def _version() -> str:
    """A hash of this module's and output_kernel.py's source files."""
    digest = hashlib.sha256()
    for path in (Path(__file__), Path(output_kernel.__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


RUNTIME_VERSION = _version()


def _plain_njit(*args, **options):
    """`njit` for Python mode: the function itself."""
    if args and callable(args[0]):
        return args[0]
    return lambda function: function


def _fill_into_numpy(buf, value, zeroed):
    if not (zeroed and value == 0.0):
        buf[...] = value
    return buf


def _add_row_normalize_numpy(out, c):
    out += c
    return _row_normalize_numpy(out)


def _row_normalize_numpy(out):
    sums = out.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[...] = np.where(sums != 0.0, out / sums, np.nan)
    return out


#: Whole-matrix helpers as NumPy in Python mode (a Python loop over n x n entries is slow even on
#: probe windows); equal to the loops up to the order of each row sum's additions.
_NUMPY_EQUIVALENTS = {"_fill_into": _fill_into_numpy, "_add_row_normalize_inplace": _add_row_normalize_numpy,
                      "_row_normalize_inplace": _row_normalize_numpy,
                      "_row_normalize": lambda out: _row_normalize_numpy(out.copy())}


@lru_cache(maxsize=1)
def python_namespace() -> dict:
    """The kernel names as plain Python: helpers rebuilt from their Python code (calling plain helpers),
    the whole-matrix ones as NumPy (`_NUMPY_EQUIVALENTS`)."""
    namespace: dict = {}
    for module in (output_kernel, sys.modules[__name__]):
        for name, value in vars(module).items():
            if name.startswith("__"):
                continue
            py_func = getattr(value, "py_func", None)
            if py_func is not None:
                value = types.FunctionType(py_func.__code__, namespace, py_func.__name__, py_func.__defaults__)
            namespace[name] = value
    namespace.update(_NUMPY_EQUIVALENTS)
    namespace["njit"] = _plain_njit
    return namespace
