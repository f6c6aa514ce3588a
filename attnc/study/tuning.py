"""Loss-faithful tuning: fit the constants of replaced heads' programs to the model's own output.

The heads that will be replaced together (say the cheapest 25%) are tuned
jointly, because their errors compound across layers: with all of them
replaced, the mixture weights of every head (the constants this program family
exposes) are fitted by autograd so that the model's next-token distribution
stays close to the stock model's, i.e. they minimise

    KL(stock || replaced) = mean over predicted tokens of sum_v p_stock(v) log(p_stock(v) / p_replaced(v))

on fit windows. Gradients flow through the gated attention of
`attnc.study.attribution` (the model's weights are frozen; each head's output
is sum_k w_k P_k V_h, w = softmax(theta_h)); the program matrices P_k are
computed once per window by the compiled library and stay fixed, so the
result is still the same readable programs, with new weights.

Bad input is refused before any work (no windows, a head named twice, a head
with no candidate); a NaN loss stops the run with the last good weights kept
and the head(s) whose weights went bad named.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from attnc.runtime.heads import Head, head_name
from attnc.runtime.replacement import Mixture, ReplacementMap
from attnc.study.attribution import GatedModel
from attnc.study.head_outputs import MIN_WEIGHT


class TuneError(ValueError):
    """Tuning input that cannot work (found before any forward pass)."""


@dataclass
class TuneResult:
    """Tuned mixtures and how the objective moved.

    Attributes:
        mixtures: the tuned heads' mixtures (weights < MIN_WEIGHT dropped, renormalised).
        start: the mixtures tuning started from.
        kl_start, kl_end: mean KL(stock || replaced) per predicted token (nats) on the
            tuning windows, all tuned heads replaced, before and after.
        history: the objective on each step's batch.
        untunable: heads left as they were (a single candidate: nothing to fit).
        stopped: why tuning stopped early (NaN loss), or None.
    """

    mixtures: dict[Head, Mixture]
    start: dict[Head, Mixture]
    kl_start: float
    kl_end: float
    history: list[float] = field(default_factory=list)
    untunable: list[str] = field(default_factory=list)
    stopped: str | None = None
    n_windows: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        def mixtures(m: Mapping[Head, Mixture]) -> dict:
            return {head_name(*k): [[n, w] for n, w in v] for k, v in m.items()}

        return {"objective": "kl", "kl_start": self.kl_start, "kl_end": self.kl_end,
                "history": self.history, "untunable": self.untunable, "stopped": self.stopped,
                "n_windows": self.n_windows, "tokens": self.tokens, "seconds": self.seconds,
                "start": mixtures(self.start), "tuned": mixtures(self.mixtures)}


def _check(start: ReplacementMap, candidates: Mapping[Head, Sequence[str]], ids: np.ndarray) -> None:
    if ids.ndim != 2 or len(ids) == 0 or ids.shape[1] < 2:
        raise TuneError(f"tuning needs fit windows of >= 2 tokens; got ids of shape {ids.shape}")
    if len(start) == 0:
        raise TuneError("no heads to tune")
    for key, names in candidates.items():
        if key not in start.heads:
            raise TuneError(f"candidates name head {head_name(*key)}, which is not being tuned")
        if len(set(names)) != len(names):
            raise TuneError(f"head {head_name(*key)}: a candidate program is named twice")


def _kl(logits: torch.Tensor, stock_logp: torch.Tensor) -> torch.Tensor:
    """Summed KL(stock || replaced) over predicted positions: logits/stock_logp [B, n, V]."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    target = stock_logp[:, :-1]
    return (target.exp() * (target - logp)).sum()


def tune_mixtures(
    loaded,
    source,
    start: ReplacementMap,
    ids: np.ndarray,
    *,
    candidates: Mapping[Head, Sequence[str]] | None = None,
    steps: int = 30,
    lr: float = 0.1,
    batch_size: int = 4,
    progress: bool = False,
) -> TuneResult:
    """Tune the mixture weights of every head in `start` jointly, on windows `ids`.

    Args:
        loaded: a LoadedModel.
        source: a ProgramSource with `matrices(names, ids)` for every program named.
        start: the heads to tune (replaced together) and the mixtures to start from.
        ids: int [N, n] fit windows (never held-out ones: the result is reported on those).
        candidates: per head, programs to mix (the start mixture's are always included);
            default the start mixture's own programs.
        steps: Adam steps (one batch of `batch_size` windows each, cycling).
        lr: Adam learning rate on the weights' logits.

    Raises:
        TuneError: no windows or heads, a head named twice, candidates for an unknown head.
    """
    started = time.perf_counter()
    ids = np.asarray(ids, dtype=np.int64)
    candidates = dict(candidates or {})
    _check(start, candidates, ids)
    heads = list(start.heads)
    pools = {key: list(dict.fromkeys([n for n, _ in start.heads[key]] + list(candidates.get(key, ()))))
             for key in heads}
    untunable = [head_name(*key) for key in heads if len(pools[key]) < 2]
    names = list(dict.fromkeys(n for key in heads for n in pools[key]))
    device = next(loaded.model.parameters()).device
    got = source.matrices(names, ids)
    matrices = {n: torch.as_tensor(np.asarray(got[n]), dtype=torch.float32, device=device) for n in names}
    del got
    bad = [n for n, m in matrices.items() if not torch.isfinite(m).all()]
    if bad:
        raise TuneError(f"program(s) {', '.join(bad)} gave non-finite matrices on the tuning windows")
    def start_logits(key: Head) -> torch.Tensor:
        """The start mixture's weights as logits over the head's pool (absent programs at MIN_WEIGHT)."""
        weight = dict(start.heads[key])
        return torch.tensor([math.log(max(weight.get(n, 0.0), MIN_WEIGHT)) for n in pools[key]],
                            dtype=torch.float32, device=device)

    theta = [start_logits(key).requires_grad_(len(pools[key]) > 1) for key in heads]
    batches = [np.arange(s, min(s + batch_size, len(ids))) for s in range(0, len(ids), batch_size)]
    gates = torch.ones(len(heads), device=device)
    layer_heads: dict[int, dict[int, tuple[int, int]]] = {}
    for g, (layer, head) in enumerate(heads):
        layer_heads.setdefault(layer, {})[head] = (g, g)

    def payload(rows: np.ndarray, params: list[torch.Tensor]) -> dict:
        mixed = [sum(w * matrices[n][rows] for w, n in zip(torch.softmax(t, 0), pools[key]))
                 for t, key in zip(params, heads)]
        return {"heads": layer_heads, "gates": gates, "matrices": mixed}

    tokens = int(ids.shape[0] * (ids.shape[1] - 1))
    with GatedModel(loaded, start) as gated:
        with torch.no_grad():
            none = {"heads": {}, "gates": gates, "matrices": []}
            stock = [torch.log_softmax(gated.logits(ids[rows], none).float(), dim=-1) for rows in batches]

        def total_kl(params: list[torch.Tensor]) -> float:
            with torch.no_grad():
                return sum(float(_kl(gated.logits(ids[rows], payload(rows, params)), stock[b]))
                           for b, rows in enumerate(batches)) / tokens

        kl_start = total_kl(theta)
        tunable = [t for t in theta if t.requires_grad]
        history: list[float] = []
        stopped = None
        if tunable and steps > 0:
            optimizer = torch.optim.Adam(tunable, lr=lr)
            good = [t.detach().clone() for t in theta]
            loop = range(steps)
            if progress:
                from tqdm import tqdm

                loop = tqdm(loop, desc="tune", unit="step", file=sys.stderr)
            for step in loop:
                b = step % len(batches)
                rows = batches[b]
                optimizer.zero_grad(set_to_none=True)
                loss = _kl(gated.logits(ids[rows], payload(rows, theta), grad=True), stock[b]) / (len(rows) * (ids.shape[1] - 1))
                if not torch.isfinite(loss):
                    bad = [head_name(*key) for key, t in zip(heads, theta) if not torch.isfinite(t).all()]
                    stopped = (f"step {step}: loss is {float(loss)}"
                               + (f" (non-finite weights for head(s) {', '.join(bad)})" if bad else "")
                               + "; kept the last weights with a finite loss")
                    break
                loss.backward()
                bad = [head_name(*key) for key, t in zip(heads, theta)
                       if t.grad is not None and not torch.isfinite(t.grad).all()]
                if bad:
                    stopped = f"step {step}: non-finite gradient for head(s) {', '.join(bad)}; kept the last good weights"
                    break
                good = [t.detach().clone() for t in theta]  # these weights gave a finite loss
                optimizer.step()
                history.append(float(loss.detach()))
            theta = good if stopped else [t.detach() for t in theta]
        kl_end = total_kl(theta)
    if not kl_end <= kl_start:  # never hand back weights that fit worse than the start (or NaN)
        theta = [start_logits(key) for key in heads]
        kl_end = kl_start
    tuned: dict[Head, Mixture] = {}
    for key, t in zip(heads, theta):
        w = torch.softmax(t.float(), 0).cpu().numpy().astype(np.float64)
        kept = [(n, float(x)) for n, x in zip(pools[key], w) if x >= MIN_WEIGHT]
        total = sum(x for _, x in kept)
        tuned[key] = tuple(sorted(((n, x / total) for n, x in kept), key=lambda item: -item[1]))
    return TuneResult(tuned, dict(start.heads), kl_start, kl_end, history, untunable, stopped,
                      int(len(ids)), tokens, round(time.perf_counter() - started, 3))
