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
  implementation (`base`: eager, sdpa, ...) for all heads, then overwrites the
  outputs (and the returned attention weights, if any) of the replaced heads.
- A forward pre-hook on the model's base module captures `input_ids` and
  `attention_mask` of each forward, so the patched model is still called as a
  plain transformers model: `model(input_ids, attention_mask=...)`.
- Program matrices are computed once per forward, at the first layer that
  needs them, for every program the map uses, and shared by all heads/layers.

Padding: each row's real tokens are found from `attention_mask` (they must be
one contiguous run: left or right padding), rows of equal real length are
batched into one `ProgramSource.matrices` call, and each result is placed at
the row's offset. Padded query rows attend to themselves (P[i, i] = 1): finite,
and their outputs never reach a real position.

Limits: full-sequence forwards only (no incremental decoding with a KV cache);
GPT-2's `reorder_and_upcast_attn` eager path is not supported.
"""

from __future__ import annotations

import inspect
import sys
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np
import torch

from attnc.output_rule import apply_output_rule
from attnc.runtime.replacement import Mixture, ReplacementMap, head_name

#: Prefix of the attention implementation names this module registers.
IMPLEMENTATION_PREFIX = "attnc_surrogate_"
#: Row sums of a program matrix may differ from 1 by this much.
ROW_SUM_TOLERANCE = 1e-4
ON_ERROR_MODES = ("fail", "neural")


class SurrogateError(RuntimeError):
    """A surrogate head could not be computed (program failure, unsupported use)."""


class ProgramSource(Protocol):
    """Where program matrices come from (a compiled library, or plain callables)."""

    def matrices(self, names: Sequence[str], ids: np.ndarray) -> dict[str, np.ndarray]:
        """ids: int64 [B, n] windows of real tokens (no padding).

        Returns name -> float [B, n, n], row-stochastic, causal (output rule applied).
        """
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


def _check_matrices(got: Mapping[str, np.ndarray], names: Sequence[str], batch: int, n: int) -> dict[str, np.ndarray]:
    """Validate a ProgramSource result; raise SurrogateError naming the first bad program."""
    out = {}
    for name in names:
        if name not in got:
            raise SurrogateError(f"program source returned no matrix for {name!r}")
        m = np.asarray(got[name])
        if m.shape != (batch, n, n):
            raise SurrogateError(f"program {name!r} gave shape {m.shape}, expected {(batch, n, n)}")
        if not np.isfinite(m).all():
            raise SurrogateError(f"program {name!r} gave non-finite values")
        if n and (np.abs(m.sum(axis=-1) - 1.0).max() > ROW_SUM_TOLERANCE or (m < 0).any()):
            raise SurrogateError(f"program {name!r} gave rows that are not probability distributions")
        if n > 1 and np.abs(np.triu(m, k=1)).max() > 0:
            raise SurrogateError(f"program {name!r} gave weight on future positions (not causal)")
        out[name] = m
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
    matrices: dict[str, torch.Tensor] | None = None
    failed: dict[str, set[int]] = field(default_factory=dict)


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


def _attention_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Self-attention modules: the ones that call the AttentionInterface, with a layer_idx."""
    return [
        m for m in model.modules()
        if type(m).__name__.endswith("Attention")
        and isinstance(getattr(m, "layer_idx", None), int)
        and not getattr(m, "is_cross_attention", False)
    ]


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
        self._base_fns: dict[int, Callable] = {}
        self._hooks: list = []
        self._modules: list[torch.nn.Module] = []

    # -- installation ---------------------------------------------------------------
    def _install(self) -> None:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        if self.base.startswith(IMPLEMENTATION_PREFIX):
            raise SurrogateError("surrogates are already installed on this model; remove() the first handle")
        if self.base == "eager" and getattr(self.model.config, "reorder_and_upcast_attn", False):
            raise SurrogateError("GPT-2 reorder_and_upcast_attn is not supported; use sdpa or disable it")
        modules = _attention_modules(self.model)
        layers = sorted(m.layer_idx for m in modules)
        if layers != list(range(self.model.config.num_hidden_layers)):
            raise SurrogateError(
                f"found attention modules for layers {layers}, expected one per layer "
                f"0..{self.model.config.num_hidden_layers - 1}; unsupported architecture {type(self.model).__name__}"
            )
        for m in modules:
            if self.base in ALL_ATTENTION_FUNCTIONS:
                self._base_fns[id(m)] = ALL_ATTENTION_FUNCTIONS[self.base]
            else:
                self._base_fns[id(m)] = _module_eager(m)
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
        out, weights = self._base_fns[id(module)](module, query, key, value, attention_mask, **kwargs)
        heads = self._by_layer.get(module.layer_idx)
        if not heads:
            return out, weights
        state = self._state
        if state is None:
            raise SurrogateError("surrogate heads need input_ids: call the model with input_ids (not inputs_embeds)")
        batch, length = state.ids.shape
        if query.shape[2] != length or key.shape[2] != length:
            raise SurrogateError(
                f"surrogates support full-sequence forwards only (query {query.shape[2]}, keys {key.shape[2]}, "
                f"ids {length}); pass use_cache=False and no past_key_values"
            )
        if state.matrices is None:
            self._compute_matrices(state, device=value.device)
        groups = query.shape[1] // value.shape[1]
        out = out.clone()
        if weights is not None:
            weights = weights.clone()
        for head, mixture in heads:
            stock_rows = sorted(set().union(*(state.failed.get(name, set()) for name, _ in mixture)))
            for name, _ in mixture:
                if state.failed.get(name):
                    self.fallbacks[(name, head_name(module.layer_idx, head))] += len(state.failed[name])
            p = self._mixture(state, mixture).to(value.dtype)
            head_out = torch.matmul(p, value[:, head // groups])
            if stock_rows:
                keep = torch.ones(batch, dtype=torch.bool, device=out.device)
                keep[stock_rows] = False
                head_out = torch.where(keep[:, None, None], head_out, out[:, :, head])
            out[:, :, head] = head_out.to(out.dtype)
            if weights is not None:
                if stock_rows:
                    p = torch.where(keep[:, None, None], p, weights[:, head])
                weights[:, head] = p.to(weights.dtype)
        return out, weights

    @staticmethod
    def _mixture(state: _ForwardState, mixture: Mixture) -> torch.Tensor:
        (first, w0), *rest = mixture
        p = state.matrices[first] * w0 if rest else state.matrices[first]
        for name, w in rest:
            p = p + w * state.matrices[name]
        return p

    def _compute_matrices(self, state: _ForwardState, device) -> None:
        ids = state.ids.detach().cpu().numpy().astype(np.int64)
        mask = None if state.mask is None else state.mask.detach().cpu().numpy().astype(bool)
        batch, length = ids.shape
        spans = _real_spans(mask, batch, length)
        full = {name: np.zeros((batch, length, length), dtype=np.float32) for name in self._names}
        by_len: dict[int, list[int]] = {}
        for b, (start, stop) in enumerate(spans):
            by_len.setdefault(stop - start, []).append(b)
            pad = np.r_[0:start, stop:length]
            for m in full.values():
                m[b, pad, pad] = 1.0
        for n, rows in by_len.items():
            if n == 0:
                continue
            windows = np.stack([ids[b, spans[b][0]:spans[b][1]] for b in rows])
            got = self._call_source(state, windows, rows)
            for name, m in got.items():
                for k, b in enumerate(rows):
                    start, stop = spans[b]
                    full[name][b, start:stop, start:stop] = m[k]
        state.matrices = {name: torch.from_numpy(m).to(device) for name, m in full.items()}

    def _call_source(self, state: _ForwardState, windows: np.ndarray, rows: list[int]) -> dict[str, np.ndarray]:
        """Matrices for `windows` (one batch call); on failure, isolate and handle each (program, window)."""
        batch, n = windows.shape
        try:
            return _check_matrices(self.source.matrices(self._names, windows), self._names, batch, n)
        except Exception as batch_error:  # isolated below: each failure is raised or counted
            first_error = batch_error
        out = {name: np.eye(n, dtype=np.float32)[None].repeat(batch, axis=0) for name in self._names}
        isolated = 0
        for name in self._names:
            for k, b in enumerate(rows):
                try:
                    got = _check_matrices(self.source.matrices([name], windows[k:k + 1]), [name], 1, n)
                    out[name][k] = got[name][0]
                except Exception as exc:  # raised (fail) or recorded in failures/fallbacks (neural)
                    isolated += 1
                    self._program_failed(state, name, b, windows[k], exc)
        if isolated == 0:
            raise SurrogateError(
                f"program source failed on a batch of {batch} windows but on none alone: {first_error}"
            ) from first_error
        return out

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
