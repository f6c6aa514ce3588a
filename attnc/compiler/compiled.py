"""A compiled program and the batch API: dense, sparse and whole-library evaluation.

`CompiledProgram.evaluate(ids [B, n], vocab)` returns float64 [B, n, n]
matrices with the output rule applied (attnc/output_rule.py), equal to
`attnc.dsl.run_reference` on every window to 1e-6 (tests/test_compiler_equivalence.py).
The rule is applied by a fused kernel (output_kernel.py; inside the kernel for
loop kernels) equal to attnc.output_rule's to 1e-12, instead of its several
full passes over [B, n, n].
float64 is kept so scores computed downstream match the reference exactly;
cast to float32 at the point of use if memory matters.

A program that fails on some window (index out of range, NaN, inf, ...)
raises `WindowError` (an attnc.dsl.ProgramRuntimeError) naming the program, the window index and the
error; `evaluate_library` turns that into a per-program error entry instead of
failing the whole library. Nothing is ever replaced by zeros.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from numba.core.errors import NumbaError

from attnc.compiler.hoisting import build_table
from attnc.compiler.ir import TableSpec
from attnc.compiler.output_kernel import apply_output_rule_fused
from attnc.dsl.errors import GuardError, ProgramRuntimeError
from attnc.dsl.program import CheckedProgram
from attnc.output_rule import OutputContractError, apply_output_rule
from attnc.window import Vocab, window_features
from attnc.window_syntax import with_syntax_features

#: Windows are evaluated in chunks of about this many matrix entries (8 MB of
#: float64): one [64, 512, 512] batch at once is several times slower per
#: window than chunks that stay in cache (measured in benchmarks/compile_bench.py).
CHUNK_ELEMENTS = 1 << 20

#: Results of window-independent programs (CompiledProgram.window_independent) are kept,
#: least recently used first out, up to this many bytes in all (programs with the same
#: kernel and constants share entries): dense matrices, narrow sparse rows (K * 4 <= n)
#: and row supports, by (kernel, constants, backend, kind, n, causal).
CACHE_BYTES = 256 << 20


class ByteBudgetCache:
    """An LRU cache with a byte budget (thread-safe): `put(key, value, nbytes)`, `get(key)`."""

    def __init__(self, budget: int):
        self.budget = budget
        self.used = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key, value, nbytes: int) -> None:
        if nbytes > self.budget:
            return
        with self._lock:
            if key in self._items:
                return
            while self._items and self.used + nbytes > self.budget:
                _, (_, size) = self._items.popitem(last=False)
                self.used -= size
            self._items[key] = (value, nbytes)
            self.used += nbytes


_RESULTS = ByteBudgetCache(CACHE_BYTES)

#: Errors a program can raise at run time (the interpreter's and the kernels').
RUNTIME_ERRORS = (IndexError, ZeroDivisionError, ValueError, TypeError, OverflowError,
                  OutputContractError, ArithmeticError, KeyError)


class WindowError(ProgramRuntimeError):
    """A program failed on window `window` of a batch (the DSL's ProgramRuntimeError, plus the index)."""

    def __init__(self, name: str, window: int, ids, error: BaseException, text: str = ""):
        if isinstance(error, ProgramRuntimeError):  # from the interpreter: unwrap
            error = error.cause
        super().__init__(name, ids, error, text)
        self.name, self.window, self.error = name, window, error
        self.args = (f"window {window}: {self.args[0]}",)

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class SparseRows:
    """Row-sparse matrices: `weights[b, i, r]` on key `keys[b, i, r]`; padding has weight 0."""

    keys: np.ndarray     # int32 [B, n, K]
    weights: np.ndarray  # float32 [B, n, K]

    def to_dense(self) -> np.ndarray:
        batch, n, _ = self.keys.shape
        out = np.zeros((batch, n, n), dtype=np.float64)
        b = np.arange(batch)[:, None, None]
        i = np.arange(n)[None, :, None]
        np.add.at(out, (b, i, self.keys), self.weights.astype(np.float64))
        return out


@dataclass
class CompiledProgram:
    """A program with the backend chosen and its kernel generated.

    Attributes:
        program: the checked program it came from.
        backend: "numpy", "numba", "torch" or "interpreted".
        kernel_source: generated kernel text (None when interpreted).
        constants: numeric constants lifted into the kernel's arguments.
        tables: hoisted per-vocabulary tables the kernel reads.
        messages: why a backend was (not) chosen, fallbacks.
        compile_s: seconds the compiler spent.
        kernel_dir: where loop kernels are written/imported from.
        device: torch device for the torch backend.
        sparse_k: the most non-zeros of any row on the probe windows, when
            that is at most n/4 (the sparse form's default K), else None.
        reads: the window features the kernel reads besides `ids` (None:
            unknown). When empty, `evaluate` skips computing window features.
        library_name: the program's unique name in a library (`file.function`
            when another file defines the same function); `name` is this when set.
    """

    program: CheckedProgram
    backend: str
    kernel_source: str | None
    constants: tuple = ()
    tables: tuple[TableSpec, ...] = ()
    messages: tuple[str, ...] = ()
    compile_s: float = 0.0
    kernel_dir: Path | None = None
    device: str = "cpu"
    sparse_k: int | None = None
    reads: tuple[str, ...] | None = None
    library_name: str | None = None
    _kernel: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.library_name or self.program.name

    @property
    def window_independent(self) -> bool:
        """Whether the matrix depends on the window length only (no token, feature or table read).

        Such programs (previous token, first token, decays, ...) are computed for
        one window per length and reused: `evaluate` copies the cached matrix,
        `evaluate_sparse` repeats the cached rows (O(B n K), no n x n work).
        """
        return self.backend in ("numpy", "torch") and self.kernel_source is not None and self.reads == () \
            and "F[" not in self.kernel_source and "L[" not in self.kernel_source

    def _one_window(self, ids: np.ndarray, vocab: Vocab, causal: bool) -> np.ndarray:
        """The read-only rule-applied [n, n] matrix of a window-independent program (cached by n, causal)."""
        n = ids.shape[1]
        key = self._key("dense", n, causal)
        matrix = _RESULTS.get(key)
        if matrix is None:
            matrix = np.empty((1, n, n), dtype=np.float64)
            try:
                self._evaluate_chunk(ids[:1], vocab, {"ids": ids[:1]}, causal, matrix)
            except RUNTIME_ERRORS as exc:  # the same for every window: the first one fails
                raise WindowError(self.name, 0, ids[0], exc, vocab.decode(ids[0])) from exc
            matrix = matrix[0]
            matrix.setflags(write=False)
            _RESULTS.put(key, matrix, matrix.nbytes)
        return matrix

    def row_support(self, ids: np.ndarray, vocab: Vocab, *, causal: bool = True) -> int | None:
        """The most non-zeros of any row for windows of ids' length, for a window-independent
        program (cached by length); None for other programs (it depends on the window)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not self.window_independent or ids.ndim != 2 or not ids.shape[0]:
            return None
        key = self._key("support", ids.shape[1], causal)
        support = _RESULTS.get(key)
        if support is None:
            matrix = self._one_window(ids, vocab, causal)
            support = int((matrix != 0).sum(axis=-1).max()) if matrix.size else 0
            _RESULTS.put(key, support, 64)
        return support

    def _key(self, kind: str, n: int, causal: bool) -> tuple:
        constants = tuple((type(c).__name__, c) for c in self.constants)  # 1 and 1.0 are equal keys
        return (self.kernel_source, constants, self.backend, self.device, kind, n, bool(causal))

    @property
    def form(self) -> str:
        return self.program.form

    def kernel(self):
        """The kernel callable (imported or JIT-loaded on first use)."""
        if self._kernel is None and self.kernel_source is not None:
            from attnc.compiler.kernel_store import load_array_kernel, load_loop_kernel

            if self.backend == "numba":
                self._kernel = load_loop_kernel(self.kernel_source, self.kernel_dir)
            else:
                self._kernel = load_array_kernel(self.kernel_source)
        return self._kernel

    # ---- raw and dense evaluation ---------------------------------------------------------------
    def raw(self, ids: np.ndarray, vocab: Vocab, features: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The program's raw matrices float64 [B, n, n] (before the output rule).

        Raises the program's own error (IndexError, ...) for the batch.
        """
        ids = np.asarray(ids, dtype=np.int64)
        features = self._features(ids, vocab, features)
        try:
            return self._raw_kernel(ids, vocab, features)
        except NumbaError as exc:  # numba could not type the kernel: from now on interpreted
            self._jit_failed(exc)
            raise ValueError(f"program {self.name!r} is interpreted: it has no raw kernel") from exc

    def _raw_kernel(self, ids: np.ndarray, vocab: Vocab, features: Mapping[str, np.ndarray]) -> np.ndarray:
        tables = [build_table(spec, vocab) for spec in self.tables]
        if self.backend == "numpy":
            from attnc.compiler.numpy_backend import run_array_kernel_numpy

            return run_array_kernel_numpy(self.kernel(), self.constants, tables, features)
        if self.backend == "torch":
            from attnc.compiler.torch_backend import run_array_kernel_torch

            return run_array_kernel_torch(self.kernel(), self.constants, tables, features, self.device).cpu().numpy()
        if self.backend == "numba":
            from attnc.compiler.numba_backend import run_loop_kernel

            return run_loop_kernel(self.kernel(), self.constants, tables, features)
        raise ValueError(f"program {self.name!r} is interpreted: it has no raw kernel")

    def evaluate(self, ids: np.ndarray, vocab: Vocab, *, causal: bool = True,
                 features: Mapping[str, np.ndarray] | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Matrices float64 [B, n, n] with the output rule applied.

        Args:
            ids: int array [B, n] of token ids (one window per row).
            vocab: the tokenizer's tables.
            causal: apply the causal mask (j <= i).
            features: window_features(ids, vocab), if already computed.
            out: a writable C-contiguous float64 [B, n, n] array to write the
                result into (every entry is overwritten), e.g. one buffer reused
                for many batches of one shape: a new [B, n, n] array costs page
                faults on first touch (about 0.1 ms per 512 x 512 window here,
                benchmarks/compile_bench.py). A new array when None.

        Returns:
            The matrices (`out` itself when given). When a WindowError is raised,
            `out` holds partial results.

        Raises:
            WindowError: the program failed on a window (the first failing one).
            ValueError: ids is not [B, n], or `out` is not as described.
        """
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 2:
            raise ValueError(f"ids must be [B, n], got shape {ids.shape}")
        batch, n = ids.shape
        if out is not None:
            _check_out(out, (batch, n, n), self.name)
        if self.backend == "interpreted":
            return self._evaluate_interpreted(ids, vocab, causal, out)
        if self.window_independent and batch:
            if out is None:
                out = np.empty((batch, n, n), dtype=np.float64)
            out[...] = self._one_window(ids, vocab, causal)
            return out
        features = self._features(ids, vocab, features)
        # zeros (lazily zeroed pages, no extra pass): paper-form loop kernels build each
        # window's matrix in its slice of out and then need not zero it themselves
        # (a caller's buffer holds old values: the kernels zero each window's slice)
        zeroed = out is None
        if out is None:
            out = np.zeros((batch, n, n), dtype=np.float64)
        step = max(1, CHUNK_ELEMENTS // max(1, n * n))
        for lo in range(0, batch, step):
            hi = min(batch, lo + step)
            part = {key: value[lo:hi] for key, value in features.items()}
            try:
                self._evaluate_chunk(ids[lo:hi], vocab, part, causal, out[lo:hi], zeroed=zeroed)
            except RUNTIME_ERRORS as exc:
                self._raise_first_failure(ids, vocab, features, causal, lo, hi, exc)
            except NumbaError as exc:  # at the first call (the JIT): nothing was written yet
                self._jit_failed(exc)
                return self._evaluate_interpreted(ids, vocab, causal, out)
        return out

    def _features(self, ids: np.ndarray, vocab: Vocab, given: Mapping[str, np.ndarray] | None = None
                  ) -> dict[str, np.ndarray]:
        """The window features the kernel reads: `given` (or window_features) plus the syntax features it reads.

        Position-only programs get ids alone (the features would cost more than
        the kernel). Syntax features come from the windows' one cached parse
        (attnc/window_syntax.py), and only for programs that read them.

        Raises:
            WindowError: the program reads syntax features and the spaCy extra is missing.
        """
        if given is not None:
            features = dict(given)
        elif self.reads == ():
            return {"ids": ids}
        else:
            features = window_features(ids, vocab)
        try:
            return with_syntax_features(features, ids, vocab, self.reads or ())
        except GuardError as exc:  # not installed, or an install that cannot load the model
            raise WindowError(self.name, 0, ids[0], RuntimeError(str(exc)), vocab.decode(ids[0])) from None

    def _jit_failed(self, error: Exception) -> None:
        """numba could not compile the loop kernel (found at its first use): run interpreted from now on."""
        reason = str(error).strip().splitlines()[0][:300]
        message = f"interpreted: numba could not compile the kernel: {reason}"
        warnings.warn(f"program {self.name!r}: {message}", RuntimeWarning, stacklevel=3)
        self.backend, self._kernel = "interpreted", None
        self.messages += (message,)

    def probe_evaluate(self, ids: np.ndarray, vocab: Vocab, *, causal: bool = True) -> np.ndarray:
        """`evaluate` for the compiler's small probe windows, JIT-compiling nothing.

        A loop (numba) kernel runs its own generated text as plain Python
        (kernel_store.load_loop_kernel_python) with the oracle output rule, one
        window at a time; numba compiles it at its first `evaluate`. Plain
        Python differs from numba only where numba is silent (int64 overflow
        wraps) or NumPy scalars are (float division by zero, made an error
        here as in numba). Other backends: `evaluate`.

        Raises:
            WindowError: the program failed on a window (the first failing one).
        """
        if self.backend != "numba":
            return self.evaluate(ids, vocab, causal=causal)
        from attnc.compiler.kernel_store import load_loop_kernel_python
        from attnc.compiler.numba_backend import run_loop_kernel

        ids = np.asarray(ids, dtype=np.int64)
        features = self._features(ids, vocab)
        tables = [build_table(spec, vocab) for spec in self.tables]
        kernel = load_loop_kernel_python(self.kernel_source)
        out = np.empty(ids.shape + (ids.shape[1],), dtype=np.float64)
        for b in range(ids.shape[0]):
            part = {key: value[b:b + 1] for key, value in features.items()}
            try:
                with np.errstate(divide="raise"):
                    raw = run_loop_kernel(kernel, self.constants, tables, part)
                out[b] = apply_output_rule(raw, causal=causal)[0]
            except RUNTIME_ERRORS as exc:
                raise WindowError(self.name, b, ids[b], exc, vocab.decode(ids[b])) from exc
        return out

    def _evaluate_chunk(self, ids: np.ndarray, vocab: Vocab, features: Mapping[str, np.ndarray], causal: bool,
                        out: np.ndarray, zeroed: bool = False) -> None:
        """Rule-applied matrices of one chunk into out, with no extra full passes over [B, n, n].

        Loop kernels apply the rule inside the kernel, per window; array kernels'
        raw output goes through the fused rule (output_kernel.py). NaN/inf raw
        values are re-run through the oracle rule, which raises with its message.
        """
        if self.backend == "numba":
            from attnc.compiler.numba_backend import run_loop_kernel_with_rule

            tables = [build_table(spec, vocab) for spec in self.tables]
            if not run_loop_kernel_with_rule(self.kernel(), self.constants, tables, dict(features), causal, out,
                                             zeroed):
                out[...] = apply_output_rule(self.raw(ids, vocab, features), causal=causal)
            return
        apply_output_rule_fused(self.raw(ids, vocab, features), causal=causal, out=out)

    def _raise_first_failure(self, ids, vocab, features, causal, lo, hi, batch_error) -> None:
        """Re-run windows lo..hi one at a time and raise WindowError for the first that fails."""
        for b in range(lo, hi):
            part = {key: value[b:b + 1] for key, value in features.items()}
            try:
                apply_output_rule(self.raw(ids[b:b + 1], vocab, part), causal=causal)
            except RUNTIME_ERRORS as exc:
                raise WindowError(self.name, b, ids[b], exc, vocab.decode(ids[b])) from exc
        raise WindowError(self.name, lo, ids[lo], batch_error, vocab.decode(ids[lo])) from batch_error

    def evaluate_tensor(self, ids: np.ndarray, vocab: Vocab, *, causal: bool = True):
        """Like `evaluate`, as a float64 torch tensor on `self.device`.

        The torch backend computes and normalises on the device (no host
        round trip); other backends compute on the host and move the result.
        """
        import torch

        from attnc.output_rule import apply_output_rule_torch

        if self.backend != "torch":
            return torch.from_numpy(self.evaluate(ids, vocab, causal=causal)).to(self.device)
        from attnc.compiler.torch_backend import run_array_kernel_torch

        ids = np.asarray(ids, dtype=np.int64)
        features = self._features(ids, vocab)
        tables = [build_table(spec, vocab) for spec in self.tables]
        try:
            raw = run_array_kernel_torch(self.kernel(), self.constants, tables, features, self.device)
            return apply_output_rule_torch(raw, causal=causal)
        except RUNTIME_ERRORS:
            # Name the failing window exactly as `evaluate` does.
            self.evaluate(ids, vocab, causal=causal, features=features)
            raise

    def _evaluate_interpreted(self, ids: np.ndarray, vocab: Vocab, causal: bool,
                              out: np.ndarray | None = None) -> np.ndarray:
        from attnc.dsl import run_reference

        if out is None:
            out = np.empty(ids.shape + (ids.shape[1],), dtype=np.float64)
        for b in range(ids.shape[0]):
            try:
                out[b] = run_reference(self.program, ids[b], vocab, causal=causal)
            except ProgramRuntimeError as exc:
                raise WindowError(self.name, b, ids[b], exc, exc.text) from exc
        return out

    def evaluate_sparse(self, ids: np.ndarray, vocab: Vocab, *, causal: bool = True, k: int | str | None = None,
                        features: Mapping[str, np.ndarray] | None = None) -> SparseRows:
        """The same matrices as `evaluate`, as the K largest-index-ordered non-zeros per row.

        Args:
            k: entries kept per row; default `self.sparse_k` (probed at compile
                time), else the largest row support in this batch; "support":
                the largest row support in this batch.

        Raises:
            ValueError: a row has more than `k` non-zeros (nothing is dropped silently).
        """
        ids = np.asarray(ids, dtype=np.int64)
        if self.window_independent and ids.ndim == 2 and ids.shape[0]:
            batch, n = ids.shape
            key = self._key("sparse", n, causal)
            rows = _RESULTS.get(key)
            if rows is None:
                rows = dense_to_sparse(self._one_window(ids, vocab, causal)[None], None, self.name)
                if rows.keys.shape[2] * 4 <= n:
                    rows.keys.setflags(write=False)
                    rows.weights.setflags(write=False)
                    _RESULTS.put(key, rows, rows.keys.nbytes + rows.weights.nbytes)
            support = rows.keys.shape[2]
            if k is None:
                k = self.sparse_k if self.sparse_k is not None else support
            elif k == "support":
                k = support
            if support > k:
                raise ValueError(f"program {self.name!r}: a row has {support} non-zeros, more than K={k}")
            keys, weights = rows.keys, rows.weights
            if k > support:  # pad to K as dense_to_sparse does: the next keys in order, weight 0
                keys, weights = _pad_rows(keys, weights, k, n)
            keys = np.ascontiguousarray(np.broadcast_to(keys, (batch,) + keys.shape[1:]))
            weights = np.ascontiguousarray(np.broadcast_to(weights, (batch,) + weights.shape[1:]))
            return SparseRows(keys=keys, weights=weights)
        dense = self.evaluate(ids, vocab, causal=causal, features=features)
        return dense_to_sparse(dense, None if k == "support" else k if k is not None else self.sparse_k, self.name)


def _check_out(out: object, shape: tuple[int, int, int], name: str) -> None:
    """Raise ValueError unless `out` is a writable C-contiguous float64 array of `shape`."""
    if not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.shape != shape \
            or not out.flags.c_contiguous or not out.flags.writeable:
        got = f"{type(out).__name__} {getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}"
        raise ValueError(f"program {name!r}: out= must be a writable C-contiguous float64 array of shape "
                         f"{shape}, got {got.strip()}")


def _pad_rows(keys: np.ndarray, weights: np.ndarray, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Widen rows to K slots: the extra slots hold the smallest keys not in the row, weight 0."""
    batch, rows, width = keys.shape
    taken = np.zeros((batch, rows, n), dtype=bool)
    np.put_along_axis(taken, keys.astype(np.int64), True, axis=-1)
    free = np.argsort(taken, axis=-1, kind="stable")[..., :k - width]
    return (np.concatenate([keys, free.astype(np.int32)], axis=-1),
            np.concatenate([weights, np.zeros(free.shape, dtype=weights.dtype)], axis=-1))


def dense_to_sparse(dense: np.ndarray, k: int | None, name: str = "program") -> SparseRows:
    """Keep each row's non-zeros (in key order), padded with weight 0 to K."""
    nonzero = dense != 0.0
    support = int(nonzero.sum(axis=-1).max()) if dense.size else 0
    if k is None:
        k = max(support, 1)
    if support > k:
        raise ValueError(f"program {name!r}: a row has {support} non-zeros, more than K={k}")
    order = np.argsort(~nonzero, axis=-1, kind="stable")[..., :k]
    weights = np.take_along_axis(dense, order, axis=-1)
    return SparseRows(keys=order.astype(np.int32), weights=weights.astype(np.float32))


@dataclass
class LibraryOutput:
    """Per-program results of `evaluate_library`.

    Attributes:
        matrices: name -> float64 [B, n, n] (or SparseRows when sparse=True).
        errors: name -> message, for programs that failed (with the window index).
        exceptions: name -> the exception (a WindowError, or ValueError for sparse K).
    """

    matrices: dict[str, object]
    errors: dict[str, str]
    exceptions: dict[str, Exception] = field(default_factory=dict)


def evaluate_library(programs: Sequence[CompiledProgram] | Mapping[str, CompiledProgram], ids: np.ndarray,
                     vocab: Vocab, *, causal: bool = True, sparse: bool = False,
                     out: Mapping[str, np.ndarray] | None = None) -> LibraryOutput:
    """Evaluate many programs on one batch of windows; one failure never stops the rest.

    Window features are computed once and shared by all programs.

    Args:
        out: name -> float64 [B, n, n] buffer to write that program's dense result
            into (see CompiledProgram.evaluate); programs not named get new arrays.
            Ignored when sparse=True.
    """
    items = list(programs.values()) if isinstance(programs, Mapping) else list(programs)
    ids = np.asarray(ids, dtype=np.int64)
    features = window_features(ids, vocab)
    try:  # syntax features once for all programs that read them (one cached parse per window)
        features = with_syntax_features(features, ids, vocab, sorted({n for p in items for n in p.reads or ()}))
    except GuardError:  # the spaCy extra is missing: each program reading them reports it
        pass
    matrices: dict[str, object] = {}
    errors: dict[str, str] = {}
    exceptions: dict[str, Exception] = {}
    for program in items:
        try:
            if sparse:
                matrices[program.name] = program.evaluate_sparse(ids, vocab, causal=causal, features=features)
            else:
                matrices[program.name] = program.evaluate(ids, vocab, causal=causal, features=features,
                                                          out=None if out is None else out.get(program.name))
        except WindowError as exc:
            errors[program.name], exceptions[program.name] = str(exc), exc
        except ValueError as exc:  # sparse: more non-zeros than K
            errors[program.name], exceptions[program.name] = str(exc), exc
    return LibraryOutput(matrices=matrices, errors=errors, exceptions=exceptions)
