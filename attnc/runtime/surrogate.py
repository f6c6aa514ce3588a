"""Program matrices as drop-in attention heads, through transformers' AttentionInterface.

ARCHITECTURE.md, "Replacement semantics": for a replaced head h of layer l the
head's output is `P @ V_h` (V_h: the head's value vectors; with grouped-query
attention the shared key/value head `h // num_key_value_groups`), followed by
the layer's usual output projection. Everything else is the stock model.

How it is wired (no model class is patched):
- `install_surrogates` registers an attention function and its mask function
  under a new name (`attnc_surrogate_<base>`) in `AttentionInterface` /
  `AttentionMaskInterface` and switches the model to it with
  `set_attn_implementation`. The function runs the model's original
  implementation (`base`: eager, sdpa, ...) on the heads that are not
  replaced only (none when a whole layer is replaced; eager runs on all heads,
  so that kept heads stay bitwise equal to stock), and fills in the replaced
  heads' outputs (and the returned attention weights, if any: P for them).
- A forward pre-hook on the model's base module captures `input_ids` and
  `attention_mask` of each forward, so the patched model is still called as a
  plain transformers model: `model(input_ids, attention_mask=...)`.
- Program matrices are computed once per forward, at the first layer that
  needs them, for every program the map uses, and shared by all heads/layers.
  One compiled pass per matrix validates it (finite, rows are distributions,
  causal) and finds its widest row K. Narrow programs (K * SPARSE_RATIO <= n:
  previous token, first token, ...) are kept as K (key, weight) pairs per row
  and P @ V gathers V at those keys, O(n K d) instead of O(n^2 d); a source
  with `sparse_matrices` (SparseProgramSource) can hand over such rows directly.
  Programs a source calls window-independent (WindowIndependentSource) are
  validated once per layout and reused by later forwards of any handle on
  that source (cached per source, ROWS_CACHE_BYTES).
  Heads sharing a mixture share one P @ V call (their V heads side by side).
  Matrices are float32, like the model.

Padding: each row's real tokens are found from `attention_mask` (they must be
one contiguous run: left or right padding), rows of equal real length are
batched into one `ProgramSource.matrices` call, and each result is placed at
the row's offset. Padded query rows attend to themselves (P[i, i] = 1): finite,
and their outputs never reach a real position.

Limits: full-sequence forwards only (no incremental decoding with a KV cache);
GPT-2's `reorder_and_upcast_attn` eager path is not supported.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

import numba
import numpy as np
import torch

from attnc.compiler.compiled import ByteBudgetCache, SparseRows
from attnc.output_rule import apply_output_rule
from attnc.runtime.replacement import Mixture, ReplacementMap, head_name

#: Prefix of the attention implementation names this module registers.
IMPLEMENTATION_PREFIX = "attnc_surrogate_"
#: Row sums of a program matrix may differ from 1 by this much.
ROW_SUM_TOLERANCE = 1e-4
ON_ERROR_MODES = ("fail", "neural")
#: Base implementations always run on every head (see SurrogateHandle._attend); the
#: others (sdpa, ...) run only on the heads that are not replaced.
ALL_HEADS_BASES = frozenset({"eager"})


class SurrogateError(RuntimeError):
    """A surrogate head could not be computed (program failure, unsupported use)."""


class ProgramSource(Protocol):
    """Where program matrices come from (a compiled library, or plain callables)."""

    def matrices(self, names: Sequence[str], ids: np.ndarray) -> dict[str, np.ndarray]:
        """ids: int64 [B, n] windows of real tokens (no padding).

        Returns name -> float [B, n, n], row-stochastic, causal (output rule applied).
        """
        ...


class SparseProgramSource(ProgramSource, Protocol):
    """A ProgramSource that can also give row-sparse matrices (optional; checked with hasattr).

    The surrogate then computes P @ V by gathering V at each row's K keys,
    O(n K d) instead of O(n^2 d), and never builds the n x n matrix.
    """

    def sparse_matrices(self, names: Sequence[str], ids: np.ndarray) -> dict[str, SparseRows | None]:
        """ids: int64 [B, n] windows. Returns name -> SparseRows (keys int [B, n, K] with
        key <= row wherever the weight is non-zero, weights float [B, n, K] >= 0, rows
        summing to 1), or None (or no entry) for a program given only densely by `matrices`.
        """
        ...


class WindowIndependentSource(ProgramSource, Protocol):
    """A ProgramSource that can say which programs depend on the window length only (optional).

    The surrogate then validates such a program's rows once per layout (rows'
    real spans, length, device) and reuses them in later forwards, with no
    call to the source (previous token, first token, decays, ...). Answering
    True promises the matrices of `name` for windows of n tokens are the same
    for every window, for the source's lifetime.
    """

    def window_independent(self, name: str) -> bool:
        ...


class CallableProgramSource:
    """A ProgramSource over plain functions `ids (n,) -> raw matrix (n, n)`.

    The output rule is applied to each result, so the functions may return raw
    weights. Used by tests and for oracle runs.
    """

    def __init__(self, fns: Mapping[str, Callable[[np.ndarray], np.ndarray]], *, causal: bool = True):
        self.fns = dict(fns)
        self.causal = causal

    @property
    def names(self) -> list[str]:
        return sorted(self.fns)

    def matrices(self, names: Sequence[str], ids: np.ndarray) -> dict[str, np.ndarray]:
        ids = np.asarray(ids, dtype=np.int64)
        out = {}
        for name in names:
            if name not in self.fns:
                raise KeyError(f"no program named {name!r}; known: {', '.join(self.names)}")
            raw = np.stack([np.asarray(self.fns[name](row)) for row in ids])
            out[name] = apply_output_rule(raw, causal=self.causal)
        return out


@dataclass(frozen=True)
class ProgramFailure:
    """One program failing on one window of one forward."""

    program: str
    heads: tuple[str, ...]
    forward: int
    row: int
    message: str


#: A program's heads use the sparse P @ V (gather V at each row's K keys) when
#: its largest row support K satisfies K * SPARSE_RATIO <= the sequence length.
SPARSE_RATIO = 8
_PROBLEMS = {
    1: "non-finite values",
    2: "rows that are not probability distributions",
    3: "weight on future positions (not causal)",
}


@dataclass(frozen=True)
class _Checked:
    """A validated result for a batch of b windows of n tokens: a dense matrix
    [b, n, n] or sparse rows [b, n, K], and its largest row support (K bounds it)."""

    matrix: np.ndarray | None
    support: int
    sparse: SparseRows | None = None

    def dense(self) -> np.ndarray:
        return self.sparse.to_dense() if self.matrix is None else self.matrix


def _check_sparse(got: object, name: str, batch: int, n: int, tolerance: float = ROW_SUM_TOLERANCE) -> _Checked:
    """Validate SparseRows from `sparse_matrices` (O(n K)); raise SurrogateError naming the program."""
    keys, weights = np.asarray(getattr(got, "keys", None)), np.asarray(getattr(got, "weights", None))
    if keys.ndim != 3 or keys.shape[:2] != (batch, n) or weights.shape != keys.shape:
        raise SurrogateError(f"program {name!r} gave sparse rows of shapes {keys.shape} / {weights.shape}, "
                             f"expected keys and weights [{batch}, {n}, K]")
    if not np.issubdtype(keys.dtype, np.integer) or (keys.size and (keys.min() < 0 or keys.max() >= n)):
        raise SurrogateError(f"program {name!r} gave sparse keys that are not positions 0..{n - 1}")
    weights = weights.astype(np.float32, copy=False)
    if not np.isfinite(weights).all():
        raise SurrogateError(f"program {name!r} gave {_PROBLEMS[1]}")
    if (weights < 0).any() or (n and np.abs(weights.sum(axis=-1, dtype=np.float64) - 1.0).max() > tolerance):
        raise SurrogateError(f"program {name!r} gave {_PROBLEMS[2]}")
    if ((weights != 0) & (keys > np.arange(n)[None, :, None])).any():
        raise SurrogateError(f"program {name!r} gave {_PROBLEMS[3]}")
    return _Checked(None, keys.shape[2], SparseRows(keys.astype(np.int64), weights))


@numba.njit(cache=True, nogil=True)
def _scan_matrices(m, tolerance):  # pragma: no cover - compiled by numba
    """One pass over float [b, n, n]: (problem code, largest row support).

    Codes by priority: 1 non-finite, 2 a row that is not a distribution
    (negative entry, or sum off 1 by more than `tolerance`), 3 a non-zero
    entry above the diagonal; 0 when valid.
    """
    batch, n, _ = m.shape
    nonfinite = False
    not_distribution = False
    not_causal = False
    support = 0
    for b in range(batch):
        for i in range(n):
            total = 0.0
            count = 0
            for j in range(n):
                x = m[b, i, j]
                if not np.isfinite(x):
                    nonfinite = True
                elif x != 0.0:
                    if x < 0.0:
                        not_distribution = True
                    if j > i:
                        not_causal = True
                    total += x
                    count += 1
            if abs(total - 1.0) > tolerance:
                not_distribution = True
            if count > support:
                support = count
    if nonfinite:
        return 1, 0
    if not_distribution:
        return 2, 0
    if not_causal:
        return 3, 0
    return 0, support


@numba.njit(cache=True, nogil=True)
def _fill_sparse(m, rows, starts, keys, weights):  # pragma: no cover - compiled by numba
    """Write the non-zeros of validated causal m [k, n, n] (window k -> batch row rows[k],
    offset starts[k]) into keys/weights [B, L, K]; unused slots keep weight 0."""
    windows, n, _ = m.shape
    width = keys.shape[2]
    for k in range(windows):
        b = rows[k]
        s = starts[k]
        for i in range(n):
            r = 0
            for j in range(i + 1):
                x = m[k, i, j]
                if x != 0.0:
                    keys[b, s + i, r] = s + j
                    weights[b, s + i, r] = x
                    r += 1
            while r < width:
                keys[b, s + i, r] = s + i
                weights[b, s + i, r] = 0.0
                r += 1


@dataclass
class _ProgramRows:
    """One program's matrices for a whole (padded) batch, on the model's device.

    Either dense float32 [B, L, L], or sparse: `keys` int64 [B, L, K] and
    `weights` float32 [B, L, K] (row i of window b puts weights[b, i, r] on key
    keys[b, i, r]; unused slots have weight 0). Padded rows attend to themselves.
    """

    dense: torch.Tensor | None = None
    keys: torch.Tensor | None = None
    weights: torch.Tensor | None = None

    @property
    def sparse(self) -> bool:
        return self.dense is None

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.dense, self.keys, self.weights) if t is not None)

    def to_dense(self) -> torch.Tensor:
        """The dense float32 [B, L, L] form (built from the sparse one on each call)."""
        if self.dense is None:
            batch, length, _ = self.keys.shape
            dense = self.weights.new_zeros((batch, length, length))
            dense.scatter_add_(2, self.keys, self.weights)
            return dense
        return self.dense


#: Per source, validated rows of its window-independent programs, by (program, layout),
#: least recently used out first, up to this many bytes per source.
ROWS_CACHE_BYTES = 64 << 20


_ROWS_CACHES: "weakref.WeakKeyDictionary[object, ByteBudgetCache]" = weakref.WeakKeyDictionary()
_ROWS_CACHES_LOCK = threading.Lock()


def _rows_cache(source: object) -> ByteBudgetCache | None:
    """The rows cache of `source` (None when it names no window-independent programs or
    cannot be weakly referenced)."""
    if getattr(source, "window_independent", None) is None:
        return None
    with _ROWS_CACHES_LOCK:
        try:
            cache = _ROWS_CACHES.get(source)
            if cache is None:
                cache = _ROWS_CACHES[source] = ByteBudgetCache(ROWS_CACHE_BYTES)
        except TypeError:  # not weakly referenceable: no reuse across forwards
            return None
    return cache


def _check_matrices(got: Mapping[str, np.ndarray], names: Sequence[str], batch: int, n: int) -> dict[str, _Checked]:
    """Validate a ProgramSource result in one pass per matrix; raise SurrogateError naming the first bad program.

    Returns name -> (matrix, its largest row support), the support deciding whether
    the program's heads use the sparse P @ V.
    """
    out = {}
    for name in names:
        if name not in got:
            raise SurrogateError(f"program source returned no matrix for {name!r}")
        m = np.asarray(got[name])
        if m.shape != (batch, n, n):
            raise SurrogateError(f"program {name!r} gave shape {m.shape}, expected {(batch, n, n)}")
        if m.dtype not in (np.float32, np.float64):
            m = m.astype(np.float64)
        m = np.ascontiguousarray(m)
        problem, support = _scan_matrices(m, ROW_SUM_TOLERANCE)
        if problem:
            raise SurrogateError(f"program {name!r} gave {_PROBLEMS[problem]}")
        out[name] = _Checked(m, int(support))
    return out


def _real_spans(mask: np.ndarray | None, batch: int, length: int) -> list[tuple[int, int]]:
    """(start, stop) of each row's real tokens; they must be contiguous."""
    if mask is None:
        return [(0, length)] * batch
    spans = []
    for b in range(batch):
        real = np.flatnonzero(mask[b])
        if real.size == 0:
            spans.append((0, 0))
            continue
        start, stop = int(real[0]), int(real[-1]) + 1
        if real.size != stop - start:
            raise SurrogateError(
                f"batch row {b}: attention_mask has holes; the surrogate supports left or right padding only"
            )
        spans.append((start, stop))
    return spans


@dataclass
class _ForwardState:
    """What one forward needs: its ids, mask and (lazily) its program matrices."""

    index: int
    ids: torch.Tensor
    mask: torch.Tensor | None
    programs: dict[str, _ProgramRows] | None = None
    failed: dict[str, set[int]] = field(default_factory=dict)


class _KeyValueGroupsOverride:
    """Stands for an attention module with another `num_key_value_groups` (all else delegated)."""

    def __init__(self, module: torch.nn.Module, groups: int):
        self._module = module
        self.num_key_value_groups = groups

    def __getattr__(self, name: str):
        return getattr(self._module, name)


def _attention_on_heads(base: Callable, module, query, key, value, attention_mask, heads: list[int],
                        groups: int, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The base attention on query heads `heads` only: (out [B, L, len(heads), d], weights or None).

    With grouped-query attention, when `heads` are whole groups their key/value
    heads are passed as they are; otherwise each query head gets its own copy of
    its key/value head and the base function sees `num_key_value_groups == 1`.
    """
    if len(heads) == query.shape[1]:
        return base(module, query, key, value, attention_mask, **kwargs)
    q_index, kv_index, whole_groups = _head_selection(tuple(heads), groups, str(query.device))
    q = query.index_select(1, q_index)
    k, v = key.index_select(1, kv_index), value.index_select(1, kv_index)
    return base(module if whole_groups else _KeyValueGroupsOverride(module, 1), q, k, v, attention_mask, **kwargs)


@functools.lru_cache(maxsize=1024)
def _head_selection(heads: tuple[int, ...], groups: int, device: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(query head index, key/value head index, whether `heads` are whole key/value groups)."""
    kv_heads = sorted({h // groups for h in heads})
    whole_groups = groups == 1 or len(heads) == len(kv_heads) * groups
    kv = kv_heads if whole_groups else [h // groups for h in heads]
    with torch.inference_mode(False):  # cached: usable with and without inference mode
        return torch.tensor(heads, device=device), torch.tensor(kv, device=device), whole_groups


def _as_index(heads: list[int]) -> slice | list[int]:
    """A slice for a run of consecutive heads (a plain copy, not an indexed scatter), else the list."""
    if heads and heads[-1] - heads[0] == len(heads) - 1:
        return slice(heads[0], heads[-1] + 1)
    return heads


def _group_by_mixture(heads: Sequence[tuple[int, Mixture]]) -> dict[Mixture, list[int]]:
    """mixture -> the heads using it (one P @ V call serves them all)."""
    out: dict[Mixture, list[int]] = {}
    for head, mixture in heads:
        out.setdefault(mixture, []).append(head)
    return out


def _sparse_matmul(keys: torch.Tensor, weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Row-sparse P @ values: keys/weights [B, L, K], values [B, L, c] -> [B, L, c], O(L K c)."""
    batch, length, width = keys.shape
    rows = torch.arange(batch, device=values.device)[:, None, None]
    gathered = values[rows, keys]  # [B, L, K, c]
    if width == 1:
        return gathered[:, :, 0] * weights
    if width <= 4:  # a few multiply-adds beat B*L tiny matmuls
        out = gathered[:, :, 0] * weights[:, :, :1]
        for r in range(1, width):
            out += gathered[:, :, r] * weights[:, :, r:r + 1]
        return out
    return torch.matmul(weights.unsqueeze(2), gathered).squeeze(2)


def _program_rows(name: str, parts: list[tuple[list[int], dict[str, _Checked]]], spans: list[tuple[int, int]],
                  batch: int, length: int, device) -> _ProgramRows:
    """Place one program's per-length results at each row's offset, sparse when its rows are narrow."""
    support = max([1] + [got[name].support for _, got in parts])
    if support * SPARSE_RATIO <= length:
        keys = np.zeros((batch, length, support), dtype=np.int64)
        weights = np.zeros((batch, length, support), dtype=np.float32)
        keys[:] = np.arange(length)[None, :, None]
        weights[:, :, 0] = 1.0  # padded rows attend to themselves; real rows are overwritten
        for rows, got in parts:
            starts = np.array([spans[b][0] for b in rows], dtype=np.int64)
            part = got[name]
            if part.sparse is None:
                _fill_sparse(part.matrix, np.asarray(rows, dtype=np.int64), starts, keys, weights)
                continue
            width = part.sparse.keys.shape[2]
            for k, b in enumerate(rows):
                start, stop = spans[b]
                keys[b, start:stop, :width] = part.sparse.keys[k] + start
                weights[b, start:stop, :width] = part.sparse.weights[k]
                weights[b, start:stop, width:] = 0.0  # keys there stay the row itself
        return _ProgramRows(keys=torch.from_numpy(keys).to(device), weights=torch.from_numpy(weights).to(device))
    if len(parts) == 1 and len(parts[0][0]) == batch and parts[0][1][name].matrix.shape[1] == length:
        rows, got = parts[0]
        dense = got[name].dense().astype(np.float32, copy=False)
        if rows != list(range(batch)):
            dense = dense[np.argsort(rows)]
        return _ProgramRows(dense=torch.from_numpy(np.ascontiguousarray(dense)).to(device))
    full = np.zeros((batch, length, length), dtype=np.float32)
    for b, (start, stop) in enumerate(spans):
        pad = np.r_[0:start, stop:length]
        full[b, pad, pad] = 1.0
    for rows, got in parts:
        matrix = got[name].dense()
        for k, b in enumerate(rows):
            start, stop = spans[b]
            full[b, start:stop, start:stop] = matrix[k]
    return _ProgramRows(dense=torch.from_numpy(full).to(device))


#: attention module -> the handle that owns it (modules are only weakly held).
_BINDINGS: "weakref.WeakKeyDictionary[torch.nn.Module, SurrogateHandle]" = weakref.WeakKeyDictionary()


def _surrogate_attention(module, query, key, value, attention_mask, **kwargs):
    """The function registered in AttentionInterface; dispatches to the module's handle."""
    handle = _BINDINGS.get(module)
    if handle is None:
        raise SurrogateError(
            f"{type(module).__name__} (layer {getattr(module, 'layer_idx', '?')}) uses the attnc surrogate "
            "implementation but no surrogate handle is bound to it; call install_surrogates again"
        )
    return handle._attend(module, query, key, value, attention_mask, **kwargs)


def _module_eager(module) -> Callable:
    fn = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if fn is None:
        raise SurrogateError(
            f"{type(module).__name__} has no module-level eager_attention_forward; load the model with "
            "attn_implementation='sdpa' to use surrogates"
        )
    return fn


def attention_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Self-attention modules: the ones that call the AttentionInterface, with a layer_idx."""
    return [
        m for m in model.modules()
        if type(m).__name__.endswith("Attention")
        and isinstance(getattr(m, "layer_idx", None), int)
        and not getattr(m, "is_cross_attention", False)
    ]


def base_attention_function(module: torch.nn.Module, base: str) -> Callable:
    """The attention function `module` runs under implementation `base` (eager: its module's own)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    return ALL_ATTENTION_FUNCTIONS[base] if base in ALL_ATTENTION_FUNCTIONS else _module_eager(module)


def _torch_model(loaded_or_model) -> torch.nn.Module:
    """The torch model of a LoadedModel, or the model itself."""
    if isinstance(loaded_or_model, torch.nn.Module):
        return loaded_or_model
    model = getattr(loaded_or_model, "model", None)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a LoadedModel or a torch model, got {type(loaded_or_model).__name__}")
    return model


class SurrogateHandle:
    """An installed set of surrogate heads on one model.

    Attributes:
        model: the transformers model.
        replacement: the head -> program map in use.
        base: the attention implementation wrapped (e.g. "eager", "sdpa").
        fallbacks: Counter of (program, "layer.head") -> windows that used stock
            attention because the program failed (on_program_error="neural").
        failures: every ProgramFailure seen, in order.
    """

    def __init__(self, model, source: ProgramSource, replacement: ReplacementMap, on_program_error: str):
        self.model = model
        self.source = source
        self.replacement = replacement
        self.on_program_error = on_program_error
        self.base = model.config._attn_implementation
        self.implementation = IMPLEMENTATION_PREFIX + "".join(c if c.isalnum() else "_" for c in self.base)
        self.fallbacks: Counter = Counter()
        self.failures: list[ProgramFailure] = []
        self.forwards = 0
        self.active = False
        self._by_layer = replacement.by_layer()
        self._names = replacement.program_names()
        self._heads_of = {
            name: tuple(head_name(l, h) for (l, h), mix in replacement.heads.items() if name in dict(mix))
            for name in self._names
        }
        self._state: _ForwardState | None = None
        self._independent: set[str] | None = None
        self._base_fns: dict[int, Callable] = {}
        self._hooks: list = []
        self._modules: list[torch.nn.Module] = []

    # -- installation ---------------------------------------------------------------
    def _install(self) -> None:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

        if self.base.startswith(IMPLEMENTATION_PREFIX):
            raise SurrogateError("surrogates are already installed on this model; remove() the first handle")
        if self.base == "eager" and getattr(self.model.config, "reorder_and_upcast_attn", False):
            raise SurrogateError("GPT-2 reorder_and_upcast_attn is not supported; use sdpa or disable it")
        modules = attention_modules(self.model)
        layers = sorted(m.layer_idx for m in modules)
        if layers != list(range(self.model.config.num_hidden_layers)):
            raise SurrogateError(
                f"found attention modules for layers {layers}, expected one per layer "
                f"0..{self.model.config.num_hidden_layers - 1}; unsupported architecture {type(self.model).__name__}"
            )
        for m in modules:
            self._base_fns[id(m)] = base_attention_function(m, self.base)
        AttentionInterface.register(self.implementation, _surrogate_attention)
        if self.base in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
            AttentionMaskInterface.register(self.implementation, ALL_MASK_ATTENTION_FUNCTIONS[self.base])
        base_module = getattr(self.model, "base_model", self.model)
        signature = inspect.signature(base_module.forward)
        self._hooks = [
            base_module.register_forward_pre_hook(self._capture_inputs(signature), with_kwargs=True),
            base_module.register_forward_hook(self._release_inputs),
        ]
        for m in modules:
            _BINDINGS[m] = self
        self._modules = modules
        self.model.set_attn_implementation(self.implementation)
        if self.model.config._attn_implementation != self.implementation:
            self.remove()
            raise SurrogateError(f"{type(self.model).__name__} refused set_attn_implementation({self.implementation!r})")
        self.active = True

    def remove(self) -> None:
        """Restore the stock attention implementation and drop the hooks."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        for m in self._modules:
            if _BINDINGS.get(m) is self:
                del _BINDINGS[m]
        self._modules = []
        if self.model.config._attn_implementation == self.implementation:
            self.model.set_attn_implementation(self.base)
        self._state = None
        self.active = False

    def ensure_installed_on(self, model) -> None:
        """Raise SurrogateError unless this handle is active on `model` (or its LoadedModel)."""
        if self.model is not _torch_model(model) or not self.active:
            raise SurrogateError("the surrogate handle is not installed on this model (removed, or another model)")

    def __enter__(self) -> "SurrogateHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def _capture_inputs(self, signature: inspect.Signature):
        def hook(module, args, kwargs):
            bound = signature.bind_partial(*args, **kwargs).arguments
            ids, mask = bound.get("input_ids"), bound.get("attention_mask")
            self.forwards += 1
            if ids is None:
                self._state = None
                return None
            if mask is not None and (mask.ndim != 2 or mask.shape != ids.shape):
                raise SurrogateError(f"surrogates need a 2D attention_mask shaped like input_ids, got {tuple(mask.shape)}")
            self._state = _ForwardState(index=self.forwards, ids=ids, mask=mask)
            return None

        return hook

    def _release_inputs(self, module, args, output) -> None:
        self._state = None

    # -- per forward ----------------------------------------------------------------
    def _attend(self, module, query, key, value, attention_mask, **kwargs):
        heads = self._by_layer.get(module.layer_idx)
        base = self._base_fns[id(module)]
        if not heads:
            return base(module, query, key, value, attention_mask, **kwargs)
        state = self._state
        if state is None:
            raise SurrogateError("surrogate heads need input_ids: call the model with input_ids (not inputs_embeds)")
        batch, length = state.ids.shape
        if query.shape[2] != length or key.shape[2] != length:
            raise SurrogateError(
                f"surrogates support full-sequence forwards only (query {query.shape[2]}, keys {key.shape[2]}, "
                f"ids {length}); pass use_cache=False and no past_key_values"
            )
        if state.programs is None:
            self._compute_matrices(state, device=value.device)
        n_heads = query.shape[1]
        groups = n_heads // value.shape[1]
        replaced = [h for h, _ in heads]
        stock_rows = {
            h: sorted(set().union(*(state.failed.get(name, set()) for name, _ in mixture))) for h, mixture in heads
        }
        for h, mixture in heads:
            for name, _ in mixture:
                if state.failed.get(name):
                    self.fallbacks[(name, head_name(module.layer_idx, h))] += len(state.failed[name])
        # Stock attention runs only on the heads it is needed for: the kept ones, plus
        # replaced ones whose program failed on some window (on_program_error="neural").
        # Eager runs on all heads: its batched matmuls round differently for a subset
        # of heads, and eager is the bitwise reference (kept heads equal stock exactly).
        if self.base in ALL_HEADS_BASES:
            stock_heads = list(range(n_heads))
        else:
            stock_heads = sorted(set(range(n_heads)) - set(replaced) | {h for h, r in stock_rows.items() if r})
        stock_out, stock_weights = (None, None)
        if stock_heads:
            stock_out, stock_weights = _attention_on_heads(base, module, query, key, value, attention_mask,
                                                           stock_heads, groups, kwargs)
        want_weights = stock_weights is not None  # eager gives weights (and runs on every head), sdpa none
        if len(stock_heads) == n_heads:
            out = stock_out.contiguous()  # the base's own new tensor: its replaced heads are overwritten in place
        else:
            out = query.new_empty((batch, length, n_heads, value.shape[-1]))
            if stock_heads:
                out[:, :, _as_index(stock_heads)] = stock_out
        weights = None
        if want_weights:
            weights = query.new_empty((batch, n_heads, length, length))
            if stock_heads:
                weights[:, _as_index(stock_heads)] = stock_weights
        position = {h: k for k, h in enumerate(stock_heads)}
        for mixture, group in _group_by_mixture(heads).items():
            kv = [h // groups for h in group]
            head_out = self._apply_mixture(state, mixture, value, kv)  # [B, L, len(group), d]
            p = self._mixture_dense(state, mixture) if want_weights else None
            for k, h in enumerate(group):
                this = head_out[:, :, k]
                if stock_rows[h]:
                    keep = torch.ones(batch, dtype=torch.bool, device=out.device)
                    keep[stock_rows[h]] = False
                    this = torch.where(keep[:, None, None], this, stock_out[:, :, position[h]])
                out[:, :, h] = this.to(out.dtype)
                if weights is not None:
                    ph = p
                    if stock_rows[h]:
                        ph = torch.where(keep[:, None, None], p.to(weights.dtype), stock_weights[:, position[h]])
                    weights[:, h] = ph.to(weights.dtype)
        return out, weights

    @staticmethod
    def _mixture_dense(state: _ForwardState, mixture: Mixture) -> torch.Tensor:
        (first, w0), *rest = mixture
        p = state.programs[first].to_dense()
        p = p * w0 if rest else p
        for name, w in rest:
            p = p + w * state.programs[name].to_dense()
        return p

    def _apply_mixture(self, state: _ForwardState, mixture: Mixture, value: torch.Tensor,
                       kv: list[int]) -> torch.Tensor:
        """P @ V for the heads of one mixture at once: value [B, KV, L, d] -> [B, L, len(kv), d]."""
        batch, _, length, dim = value.shape
        if len(kv) == 1:
            values = value[:, kv[0]]  # a view, [B, L, d]
        else:
            values = value[:, kv].transpose(1, 2).reshape(batch, length, len(kv) * dim)  # [B, L, h*d]
        rows = [state.programs[name] for name, _ in mixture]
        if all(r.sparse for r in rows):
            if len(rows) == 1:
                keys, weights = rows[0].keys, rows[0].weights
            else:
                keys = torch.cat([r.keys for r in rows], dim=2)
                weights = torch.cat([r.weights * w for r, (_, w) in zip(rows, mixture)], dim=2)
            out = _sparse_matmul(keys, weights.to(value.dtype), values)
        else:
            out = torch.matmul(self._mixture_dense(state, mixture).to(value.dtype), values)
        return out.view(batch, length, len(kv), dim)

    def _compute_matrices(self, state: _ForwardState, device) -> None:
        ids = state.ids.detach().cpu().numpy().astype(np.int64, copy=False)
        mask = None if state.mask is None else state.mask.detach().cpu().numpy().astype(bool, copy=False)
        batch, length = ids.shape
        spans = _real_spans(mask, batch, length)
        # Programs the source calls window-independent are reused across forwards
        # of the same layout (rows' real spans), validated once: no source call.
        cache = _rows_cache(self.source)
        layout = (tuple(spans), length, str(device))
        programs: dict[str, _ProgramRows] = {}
        independent = set()
        if cache is not None:
            independent = self._window_independent()
            for name in independent:
                cached = cache.get((name, layout))
                if cached is not None:
                    programs[name] = cached
        names = [name for name in self._names if name not in programs]
        if names:
            by_len: dict[int, list[int]] = {}
            for b, (start, stop) in enumerate(spans):
                by_len.setdefault(stop - start, []).append(b)
            parts: list[tuple[list[int], dict[str, _Checked]]] = []
            for n, rows in by_len.items():
                if n == 0:
                    continue
                windows = np.stack([ids[b, spans[b][0]:spans[b][1]] for b in rows])
                parts.append((rows, self._call_source(state, windows, rows, names)))
            for name in names:
                keep = cache is not None and name in independent and not state.failed.get(name)
                if keep:  # shared by later forwards, with or without inference mode
                    with torch.inference_mode(False):
                        rows_of = _program_rows(name, parts, spans, batch, length, device)
                        if rows_of.dense is not None:  # may share memory with the source's array
                            rows_of = _ProgramRows(dense=rows_of.dense.clone())
                    programs[name] = rows_of
                    cache.put((name, layout), rows_of, rows_of.nbytes)
                else:
                    programs[name] = _program_rows(name, parts, spans, batch, length, device)
        state.programs = programs

    def _window_independent(self) -> set[str]:
        """The programs the source says depend on the window length only (WindowIndependentSource)."""
        if self._independent is None:
            ask = getattr(self.source, "window_independent", None)
            self._independent = {name for name in self._names if ask is not None and ask(name)}
        return self._independent

    def _call_source(self, state: _ForwardState, windows: np.ndarray, rows: list[int],
                     names: list[str]) -> dict[str, _Checked]:
        """Matrices of `names` for `windows` (one batch call); on failure, isolate and handle each
        (program, window)."""
        batch, n = windows.shape
        sparse_source = getattr(self.source, "sparse_matrices", None)
        got_sparse: dict = {}
        try:
            if sparse_source is not None:
                got_sparse = sparse_source(names, windows)
        except Exception as batch_error:  # isolated below (per program and window, densely)
            first_error = batch_error
        else:
            # A malformed sparse result is a source bug, not a program failure: raised as is.
            checked = {name: _check_sparse(rows_of, name, batch, n)
                       for name, rows_of in got_sparse.items() if rows_of is not None and name in self._heads_of}
            dense_names = [name for name in names if name not in checked]
            try:
                if dense_names:
                    got = self.source.matrices(dense_names, windows)
                    checked.update(_check_matrices(got, dense_names, batch, n))
                return checked
            except Exception as batch_error:  # isolated below: each failure is raised or counted
                first_error = batch_error
        out = {name: np.eye(n, dtype=np.float32)[None].repeat(batch, axis=0) for name in names}
        isolated = 0
        for name in names:
            for k, b in enumerate(rows):
                try:
                    got = _check_matrices(self.source.matrices([name], windows[k:k + 1]), [name], 1, n)
                    out[name][k] = got[name].matrix[0]
                except Exception as exc:  # raised (fail) or recorded in failures/fallbacks (neural)
                    isolated += 1
                    self._program_failed(state, name, b, windows[k], exc)
        if isolated == 0:
            raise SurrogateError(
                f"program source failed on a batch of {batch} windows but on none alone: {first_error}"
            ) from first_error
        return {name: _Checked(m, int(_scan_matrices(m, ROW_SUM_TOLERANCE)[1])) for name, m in out.items()}

    def _program_failed(self, state: _ForwardState, name: str, row: int, window: np.ndarray, exc: Exception) -> None:
        heads = self._heads_of[name]
        failure = ProgramFailure(name, heads, state.index, row, f"{type(exc).__name__}: {exc}")
        self.failures.append(failure)
        if self.on_program_error == "fail":
            preview = " ".join(str(int(t)) for t in window[:8])
            raise SurrogateError(
                f"program {name!r} (heads {', '.join(heads)}) failed on window {row} of forward {state.index} "
                f"(n={window.shape[0]}, ids {preview} ...): {failure.message}; "
                "use on_program_error='neural' to fall back to the stock head"
            ) from exc
        state.failed.setdefault(name, set()).add(row)


def install_surrogates(
    loaded_or_model,
    source: ProgramSource,
    replacement: ReplacementMap,
    *,
    on_program_error: str = "fail",
) -> SurrogateHandle:
    """Replace heads of a model by program matrices.

    Args:
        loaded_or_model: a LoadedModel (`.model`) or a transformers causal LM / base model
            using AttentionInterface (GPT-2, Llama family, ...).
        source: gives program matrices for windows of ids.
        replacement: which heads use which program(s).
        on_program_error: "fail" raises SurrogateError naming program, heads and window;
            "neural" makes the head use its stock attention for that window and counts it
            in `handle.fallbacks` (and `handle.failures`).

    Returns:
        A SurrogateHandle; `handle.remove()` (or `with handle:`) restores the stock model.

    Raises:
        ReplacementError: a head the model does not have.
        SurrogateError: unsupported model, unknown program, or surrogates already installed.
    """
    if on_program_error not in ON_ERROR_MODES:
        raise ValueError(f"on_program_error={on_program_error!r}: expected one of {ON_ERROR_MODES}")
    model = _torch_model(loaded_or_model)
    replacement.validate_for(model)
    known = getattr(source, "names", None)
    if known is not None:
        missing = [n for n in replacement.program_names() if n not in set(known)]
        if missing:
            raise SurrogateError(f"programs {', '.join(missing)} are not in the program source")
    handle = SurrogateHandle(model, source, replacement, on_program_error)
    handle._install()
    return handle
