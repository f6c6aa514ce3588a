"""Which heads can be replaced most cheaply: each head's loss impact, measured or estimated.

Ranking heads by IoU alone ignores how much the model relies on the part of
a head's pattern a program misses. This module measures, for every candidate
head at once, the derivative of the language-model loss with respect to a
gate g_h that blends the head's output from neural (g = 0) to program (g = 1):

    out_h(g) = out_h + g_h * (P_h @ V_h - out_h)

``dL/dg_h`` at g = 0 is the first-order change of the mean token loss when
head h alone is replaced (attribution patching). One forward and one backward
pass per batch of windows give it for all heads, instead of one forward per
head. The gates and program matrices reach the attention function as forward
keyword arguments (transformers' AttentionInterface); no model class is
patched and the model's weights get no gradients.

The first-order estimate is cheap but, for heads whose program differs a lot
from the neural pattern, poorly calibrated (measured on SmolLM2: estimates of
-0.04 nats for heads whose replacement costs +0.015). `measured_impact`
therefore measures the exact single-head change (g = 1) on a few windows, many
heads per forward pass: each stacked copy of the windows opens one head's gate.
It measures either that change of loss or, with ``criterion="kl"``, the
divergence KL(stock || replaced) of the next-token distributions, which is never
negative and so is not led astray by noise: on a few windows many heads' loss
changes come out negative by chance (SmolLM2, 8 windows: the 27 cheapest of 136
measured summed to -0.058 nats, while replacing them together cost +0.05), and the
cheapest heads by a noisy measure are partly the luckiest ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from attnc.runtime.precision import computing_of
from attnc.runtime.replacement import Mixture, ReplacementMap
from attnc.runtime.surrogate import base_attention_function, attention_modules

#: The attention implementation name this module registers (one per base implementation).
IMPLEMENTATION_PREFIX = "attnc_gated_"


@dataclass(frozen=True)
class LossImpact:
    """Per head, what replacing it alone costs (nats per predicted token).

    Attributes:
        impact: head name -> the estimated change of mean token loss (dL/dg at g = 0;
            negative: replacing is expected to help), the measured change, or the
            measured KL(stock || replaced), as `criterion` says.
        n_windows, tokens: what the estimate was averaged over.
        seconds: wall time.
        criterion: "loss" (a change of loss) or "kl" (a divergence).
    """

    impact: dict[str, float]
    n_windows: int
    tokens: int
    seconds: float
    criterion: str = "loss"

    def order(self) -> list[str]:
        """Heads from the cheapest to replace (lowest estimated loss increase) to the dearest."""
        return sorted(self.impact, key=lambda head: (self.impact[head], head))


def _gated_attention(module, query, key, value, attention_mask, *, attnc_gate=None, **kwargs):
    """Stock attention on all heads, then each gated head blended toward its replacement.

    A head's replacement is ``P @ V_h`` (its entry names a matrix of the payload) or a
    constant output vector (mean ablation: its entry is that vector). With a
    ``record`` dict in the payload, each layer's value vectors and per-head outputs
    are kept there (detached), for fits that need V_h.
    """
    base = kwargs.pop("attnc_base")
    out, weights = base(module, query, key, value, attention_mask, **kwargs)
    record = attnc_gate.get("record")
    if record is not None:
        record[module.layer_idx] = (value.detach(), out.detach())
    layer_heads = attnc_gate["heads"].get(module.layer_idx)
    if not layer_heads:
        return out, weights
    groups = query.shape[1] // value.shape[1]
    columns = []
    for h in range(query.shape[1]):
        column = out[:, :, h]
        if h in layer_heads:
            target, g = layer_heads[h]
            if isinstance(target, int):
                p = attnc_gate["matrices"][target]  # [B, L, L]
                replaced = torch.matmul(p, value[:, h // groups])  # [B, L, d]
            else:
                replaced = target.to(column.dtype).expand_as(column)  # a constant output [d]
            gate = attnc_gate["gates"][g]  # a scalar, or one value per batch row
            column = column + (gate[:, None, None] if gate.ndim else gate) * (replaced - column)
        columns.append(column)
    return torch.stack(columns, dim=2), weights


def _mixture_matrix(matrices: dict[str, torch.Tensor], mixture: Mixture) -> torch.Tensor:
    return sum(weight * matrices[name] for name, weight in mixture)


@dataclass(frozen=True)
class MeanAblation:
    """Heads replaced by a constant: each head's mean output over some windows (mean ablation).

    Attributes:
        means: (layer, head) -> float32 [head_dim], the head's output (before the
            output projection) averaged over every token of the windows it was taken on.
    """

    means: Mapping[tuple[int, int], np.ndarray]

    def __len__(self) -> int:
        return len(self.means)


class GatedModel:
    """The model switched to the gated attention implementation while inside `with`.

    Every forward runs stock attention on all heads and blends each listed head,
    by its gate, toward its replacement: a program (or mixture) matrix times
    V_h, or a constant output vector (`MeanAblation`).
    """

    def __init__(self, loaded, replacement: "ReplacementMap | MeanAblation | None" = None):
        self.model = loaded.model
        self.computing = computing_of(loaded)  # the context its forwards run in: autocast under bfloat16
        means = replacement.means if isinstance(replacement, MeanAblation) else {}
        self.heads = ([(key, None) for key in sorted(means)] if isinstance(replacement, MeanAblation)
                      else list((replacement or ReplacementMap({})).heads.items()))
        self.base_name = self.model.config._attn_implementation
        self.implementation = IMPLEMENTATION_PREFIX + "".join(c if c.isalnum() else "_" for c in self.base_name)
        bases = {base_attention_function(m, self.base_name) for m in attention_modules(self.model)}
        if len(bases) != 1:
            raise ValueError("gated attention needs one base attention function for every layer")
        self.base = bases.pop()
        self.device = next(self.model.parameters()).device
        self.means = {key: torch.as_tensor(np.asarray(v), dtype=torch.float32, device=self.device)
                      for key, v in means.items()}

    def __enter__(self) -> "GatedModel":
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

        AttentionInterface.register(self.implementation, _gated_attention)
        if self.base_name in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
            AttentionMaskInterface.register(self.implementation, ALL_MASK_ATTENTION_FUNCTIONS[self.base_name])
        self._requires = [p.requires_grad for p in self.model.parameters()]
        for p in self.model.parameters():
            p.requires_grad_(False)  # gradients reach the gates (and tuned constants) only
        self.model.set_attn_implementation(self.implementation)
        return self

    def __exit__(self, *exc) -> None:
        self.model.set_attn_implementation(self.base_name)
        for p, flag in zip(self.model.parameters(), self._requires):
            p.requires_grad_(flag)

    def payload(self, source, ids: np.ndarray, gates: torch.Tensor, *, repeat: int = 1) -> dict:
        """What the attention function reads for windows `ids` (stacked `repeat` times).

        Program matrices come from `source` (computed once, repeated); only heads
        whose gate is non-zero somewhere get a replacement.
        """
        chunk = np.asarray(ids, dtype=np.int64)
        active = range(len(self.heads)) if gates.ndim == 1 else [g for g in range(len(self.heads)) if gates[g].any()]
        layer_heads: dict[int, dict[int, tuple]] = {}
        mixtures = list(dict.fromkeys(self.heads[g][1] for g in active if self.heads[g][1] is not None))
        matrices: list[torch.Tensor] = []
        if mixtures:
            names = list(dict.fromkeys(name for mixture in mixtures for name, _ in mixture))
            got = source.matrices(names, chunk)
            tensors = {name: torch.as_tensor(np.asarray(got[name]), dtype=torch.float32, device=self.device)
                       for name in names}
            matrices = [_mixture_matrix(tensors, m).repeat(repeat, 1, 1) for m in mixtures]
        for g in active:  # heads whose gate is 0 on every row run stock: no program matmul for them
            (layer, head), mixture = self.heads[g]
            target = self.means[(layer, head)] if mixture is None else mixtures.index(mixture)
            layer_heads.setdefault(layer, {})[head] = (target, g)
        return {"heads": layer_heads, "gates": gates, "matrices": matrices}

    def logits(self, ids: np.ndarray | torch.Tensor, payload: dict, *, repeat: int = 1,
               grad: bool = False) -> torch.Tensor:
        """Logits [repeat * B, n, V] of windows `ids` (stacked `repeat` times) under `payload`.

        Args:
            grad: record the graph (for gradients to the gates or to tuned constants).
        """
        batch = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=self.device).repeat(repeat, 1)
        with torch.inference_mode(False), torch.set_grad_enabled(grad), self.computing():
            logits = self.model(batch, use_cache=False, attnc_gate=payload, attnc_base=self.base).logits
        return logits.float()  # a no-op in float32; bfloat16 logits are never log-softmaxed as such

    def nll(self, source, ids: np.ndarray, gates: torch.Tensor, *, repeat: int = 1,
            per_window: bool = False, grad: bool = False) -> torch.Tensor:
        """Next-token NLL of windows `ids` with head g blended by gates[g] toward its replacement.

        Args:
            gates: [n_heads] (one gate per head) or [n_heads, repeat * len(ids)] (per batch row).
            repeat: the batch is `ids` stacked `repeat` times (program matrices computed once).
            per_window: return one summed NLL per batch row instead of the total.
            grad: keep the graph, for a backward pass.
        """
        logits = self.logits(ids, self.payload(source, ids, gates, repeat=repeat), repeat=repeat, grad=grad)
        target = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=self.device).repeat(repeat, 1)[:, 1:]
        with torch.inference_mode(False), torch.set_grad_enabled(grad):
            token_nll = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), target,
                                                          reduction="none")
            return token_nll.sum(dim=-1) if per_window else token_nll.sum()


#: Where the decoder layers and the final norm live, per model type, for `_LayerReplay`
#: (others run whole forwards).
_REPLAY_MODULES = {"llama": ("model.layers", "model.norm"), "gpt2": ("transformer.h", "transformer.ln_f")}


def _repeat_batch(value, batch: int, repeat: int):
    """`value` with every tensor whose first dimension is the batch stacked `repeat` times (tuples too)."""
    if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == batch:
        return value.repeat(repeat, *([1] * (value.ndim - 1)))
    if isinstance(value, tuple):
        return tuple(_repeat_batch(v, batch, repeat) for v in value)
    return value


class _LayerReplay:
    """Runs a model from decoder layer l on, from the inputs that layer got in one stock forward.

    Replacing heads of layer l changes nothing before it, so a forward that only
    measures them can start there: the stock pass records each layer's
    arguments (forward pre-hooks), and `logits_from` re-runs layers l.. with
    another gating payload, then the final norm and the LM head.
    """

    def __init__(self, model, layers, norm):
        self.model, self.layers, self.norm = model, layers, norm
        self.inputs: list[tuple[tuple, dict]] = []

    @classmethod
    def for_model(cls, model) -> "_LayerReplay | None":
        paths = _REPLAY_MODULES.get(getattr(model.config, "model_type", None))
        if paths is None:
            return None
        try:
            layers, norm = (model.get_submodule(path) for path in paths)
        except AttributeError:
            return None
        return cls(model, layers, norm)

    def record(self, gated: "GatedModel", ids: np.ndarray, payload: dict) -> torch.Tensor:
        """The stock logits of `ids`, keeping each layer's inputs."""
        self.inputs = [None] * len(self.layers)

        def keep(index):
            def hook(module, args, kwargs):
                self.inputs[index] = (args, kwargs)
            return hook

        handles = [layer.register_forward_pre_hook(keep(i), with_kwargs=True) for i, layer in enumerate(self.layers)]
        try:
            return gated.logits(ids, payload)
        finally:
            for handle in handles:
                handle.remove()

    def logits_from(self, first: int, payload: dict, batch: int, repeat: int) -> torch.Tensor:
        """Logits with layers `first`.. re-run under `payload`, the recorded batch stacked `repeat` times."""
        args, kwargs = self.inputs[first]
        hidden = _repeat_batch(args[0], batch, repeat)
        rest = _repeat_batch(tuple(args[1:]), batch, repeat)
        kwargs = {k: _repeat_batch(v, batch, repeat) for k, v in kwargs.items()}
        kwargs["attnc_gate"] = payload
        with torch.inference_mode(False), torch.no_grad():
            for index in range(first, len(self.layers)):
                hidden = self.layers[index](hidden, *(rest if index == first else _repeat_batch(
                    tuple(self.inputs[index][0][1:]), batch, repeat)), **kwargs)
            return self.model.get_output_embeddings()(self.norm(hidden))


def _window_nll(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Summed next-token NLL per row: logits [B, n, V], ids [B, n] -> [B]."""
    return torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), ids[:, 1:],
                                             reduction="none").sum(dim=-1)


def loss_impact(
    loaded,
    source,
    replacement: ReplacementMap,
    ids: np.ndarray,
    *,
    batch_size: int = 8,
    progress: bool = False,
) -> LossImpact:
    """Estimate each replaced head's loss impact on windows `ids` (see module docstring).

    Args:
        loaded: a LoadedModel (`.model`).
        source: a ProgramSource (e.g. a compiled Library) with `matrices(names, ids)`.
        replacement: the candidate heads and the program (or mixture) each would use.
        ids: int [N, n] windows (use fit windows: the estimate chooses heads).
        batch_size: windows per forward/backward pass.
        progress: show a progress bar on stderr.

    Returns:
        LossImpact over all windows (token-weighted mean).
    """
    from attnc.runtime.heads import head_name

    started = time.perf_counter()
    gated = GatedModel(loaded, replacement)
    grad_sum = torch.zeros(len(gated.heads), dtype=torch.float64)
    tokens = 0
    batches = range(0, len(ids), batch_size)
    if progress:
        import sys

        from tqdm import tqdm

        batches = tqdm(batches, desc="loss impact", unit="batch", file=sys.stderr)
    with gated:
        for start in batches:
            chunk = ids[start:start + batch_size]
            gates = torch.zeros(len(gated.heads), dtype=torch.float32, device=gated.device, requires_grad=True)
            gated.nll(source, chunk, gates, grad=True).backward()
            grad_sum += gates.grad.double().cpu()
            tokens += chunk.shape[0] * (chunk.shape[1] - 1)
    mean = (grad_sum / max(tokens, 1)).numpy()
    impact = {head_name(layer, head): float(mean[g]) for g, ((layer, head), _) in enumerate(gated.heads)}
    return LossImpact(impact, int(len(ids)), tokens, time.perf_counter() - started)


def measured_impact(
    loaded,
    source,
    replacement: ReplacementMap,
    ids: np.ndarray,
    *,
    max_batch: int = 16,
    progress: bool = False,
    criterion: str = "loss",
) -> LossImpact:
    """Each head's exact change of mean token loss when it alone is replaced, on windows `ids`
    (``criterion="kl"``: the mean KL(stock || replaced) per predicted token instead).

    Several heads are measured per forward pass: the windows are stacked once
    per head and each copy opens only its own head's gate (g = 1), so the cost
    is one window-forward per (head, window), without a backward pass. For
    Llama- and GPT-2-type models each pass starts at the first layer it
    replaces (`_LayerReplay`): the layers before it are the stock model's, so
    on average half of the model is not run again.

    Args:
        max_batch: most windows per forward pass (bounds the logits' memory).
        criterion: "loss" or "kl" (MEASURED_CRITERIA).

    Returns:
        LossImpact with measured (not estimated) changes.
    """
    from attnc.runtime.heads import head_name

    if criterion not in MEASURED_CRITERIA:
        raise ValueError(f"criterion {criterion!r}: choose one of {', '.join(MEASURED_CRITERIA)}")
    started = time.perf_counter()
    gated = GatedModel(loaded, replacement)
    n_gates, n_windows = len(gated.heads), len(ids)
    tokens = n_windows * (ids.shape[1] - 1)
    per_pass = max(1, max_batch // max(n_windows, 1))
    deltas = np.zeros(n_gates)
    groups = range(0, n_gates, per_pass)
    if progress:
        import sys

        from tqdm import tqdm

        groups = tqdm(groups, desc="loss impact", unit="pass", file=sys.stderr)
    replay = _LayerReplay.for_model(loaded.model)
    batch_ids = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=gated.device)
    with gated:
        none = gated.payload(source, ids, torch.zeros((n_gates, n_windows), device=gated.device))
        stock_logits = replay.record(gated, ids, none) if replay else gated.logits(ids, none)
        if criterion == "kl":
            stock = _StockDistribution(stock_logits)
        else:
            stock = float(_window_nll(stock_logits, batch_ids).double().sum())
        del stock_logits
        for first in groups:
            members = list(range(first, min(first + per_pass, n_gates)))
            gates = torch.zeros((n_gates, len(members) * n_windows), device=gated.device)
            for j, g in enumerate(members):
                gates[g, j * n_windows:(j + 1) * n_windows] = 1.0
            payload = gated.payload(source, ids, gates, repeat=len(members))
            if replay:  # layers before the group's first replaced layer are the stock model's
                start = min(gated.heads[g][0][0] for g in members)
                with gated.computing():
                    logits = replay.logits_from(start, payload, n_windows, len(members)).float()
            else:
                logits = gated.logits(ids, payload, repeat=len(members))
            if criterion == "kl":
                totals = stock.kl(logits, len(members)).detach().double()
            else:
                rows = _window_nll(logits, batch_ids.repeat(len(members), 1))
                totals = rows.detach().double().view(len(members), n_windows).sum(dim=1) - stock
            for j, g in enumerate(members):
                deltas[g] = float(totals[j]) / tokens
    impact = {head_name(layer, head): float(deltas[g]) for g, ((layer, head), _) in enumerate(gated.heads)}
    return LossImpact(impact, int(n_windows), tokens, time.perf_counter() - started, criterion)


#: What `measured_impact` can measure per head.
MEASURED_CRITERIA = ("loss", "kl")


class _StockDistribution:
    """The stock next-token distribution of W windows (log p and p, computed once), for the
    KL(p || replaced) of many passes. Summed term by term, p (log p - log q): the split
    sum p log p - sum p log q cancels badly in float32."""

    def __init__(self, logits: torch.Tensor):
        self.logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        self.p = self.logp.exp()

    def kl(self, logits: torch.Tensor, copies: int) -> torch.Tensor:
        """Summed KL over predicted positions per stacked copy: logits [copies * W, n, V] (copy-major,
        as the passes stack them) -> [copies]."""
        logq = torch.log_softmax(logits[:, :-1].float(), dim=-1).view(copies, *self.p.shape)
        return (self.p * (self.logp - logq)).sum(dim=(1, 2, 3))


def screened_impact(
    loaded,
    source,
    replacement: "ReplacementMap | MeanAblation",
    ids: np.ndarray,
    *,
    measure: int,
    progress: bool = False,
    criterion: str = "loss",
) -> tuple[list[str], LossImpact, LossImpact]:
    """A measured order of the `measure` heads the first-order estimate finds cheapest.

    Only the first heads of an order are ever replaced (the sweep's largest
    share), so measuring every head exactly is mostly spent on heads no point
    uses. `loss_impact` (one forward and backward pass) screens all heads;
    `measured_impact` then measures the `measure` most promising exactly. The
    estimate errs mostly by calling a poorly matched head cheap, and such a
    head is measured and sinks; a cheap head it calls dear is lost, hence a
    margin (the study measures twice the heads it replaces). `criterion` is what is
    measured ("loss" or "kl"); the screen is always the loss estimate, which is
    what finds the heads whose replacement would clearly cost much.

    Returns:
        (order, measured, estimated): the measured heads by measured impact, then
        the rest by their estimate; the two LossImpacts.
    """
    estimated = loss_impact(loaded, source, replacement, ids, batch_size=8, progress=progress)
    by_estimate = estimated.order()
    candidates = set(by_estimate[:measure])
    measured = measured_impact(loaded, source, restrict(replacement, candidates), ids, progress=progress,
                               criterion=criterion)
    return measured.order() + by_estimate[measure:], measured, estimated


def restrict(replacement: "ReplacementMap | MeanAblation", heads: set[str]) -> "ReplacementMap | MeanAblation":
    """`replacement` for the named heads only."""
    from attnc.runtime.heads import head_name

    if isinstance(replacement, MeanAblation):
        return MeanAblation({key: v for key, v in replacement.means.items() if head_name(*key) in heads})
    return ReplacementMap({key: m for key, m in replacement.heads.items() if head_name(*key) in heads})


def window_batches(ids: np.ndarray, batch_size: int, progress: bool = False, label: str = "batch"):
    """`ids` in consecutive batches of `batch_size` windows (with a progress bar on stderr if asked)."""
    starts = range(0, len(ids), batch_size)
    if progress:
        import sys

        from tqdm import tqdm

        starts = tqdm(starts, desc=label, unit="batch", file=sys.stderr)
    for start in starts:
        yield ids[start:start + batch_size]


def replaced_nll(loaded, source, replacement: "ReplacementMap | MeanAblation", ids: np.ndarray, *,
                 batch_size: int = 8, progress: bool = False) -> float:
    """Summed next-token NLL of windows `ids` with every head of `replacement` replaced (gates at 1)."""
    total = 0.0
    with GatedModel(loaded, replacement) as gated:
        for chunk in window_batches(np.asarray(ids, dtype=np.int64), batch_size, progress, "perplexity"):
            total += float(gated.nll(source, chunk, torch.ones(len(gated.heads), device=gated.device)).double())
    return total


def order_by_iou(iou: dict[str, float]) -> list[str]:
    """Heads from the best-explained (highest held-out IoU) to the worst."""
    return sorted(iou, key=lambda head: (-iou[head], head))


def replacement_prefix(order: Sequence[str], replacement: ReplacementMap, count: int) -> ReplacementMap:
    """The first `count` heads of `order`, each with its program from `replacement`."""
    from attnc.runtime.heads import parse_head

    chosen = {parse_head(head): replacement.heads[parse_head(head)] for head in order[:count]}
    return ReplacementMap(chosen)
