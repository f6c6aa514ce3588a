"""What heads write, and programs fitted to write the same: the local faithfulness objective.

A program can match a head's pattern (IoU) and still change what the head
writes, because pattern errors on keys whose value vectors differ matter and
errors among similar values do not. This module measures the head's *output*
error: for head h with neural attention A, value vectors V_h (the shared
key/value head under grouped-query attention) and a program matrix P,

    error(P) = sum_windows ||(P - A) V_h||^2 / sum_windows ||A V_h||^2

(0: the head writes exactly what it wrote; 1: as far off as writing nothing).
For a convex mixture P = sum_k w_k P_k the error is a quadratic in w, so its
Gram matrix over candidates is accumulated in one streaming pass over fit
windows (the stock model runs once per batch to give V; attention comes from
the store) and the best weights on the simplex are a small constrained
least-squares problem per head (SciPy's SLSQP).

Also here: the heads' mean outputs, for mean ablation (`MeanAblation`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from attnc.runtime.heads import parse_head
from attnc.study.attribution import GatedModel, MeanAblation, window_batches

#: Weights below this are dropped from a fitted mixture (and the rest renormalised).
MIN_WEIGHT = 1e-3


@dataclass(frozen=True)
class OutputFit:
    """The mixture of candidate programs whose output is closest to the head's, on fit windows.

    Attributes:
        programs, weights: the mixture, by decreasing weight (weights sum to 1).
        output_error: relative output error of the mixture (see module docstring).
        candidate_errors: each candidate's own relative output error, by name.
        candidates, gram, cross, norm: the quadratic the error is (for `error_of`).
    """

    head: str
    programs: tuple[str, ...]
    weights: tuple[float, ...]
    output_error: float
    candidate_errors: dict[str, float]
    candidates: tuple[str, ...] = ()
    gram: np.ndarray | None = None
    cross: np.ndarray | None = None
    norm: float = 0.0

    def error_of(self, weights: Mapping[str, float]) -> float:
        """Relative output error of another mixture of the candidates (e.g. the IoU fit's).

        Raises:
            KeyError: a program that is not a candidate.
        """
        w = np.zeros(len(self.candidates))
        for name, weight in weights.items():
            if name not in self.candidates:
                raise KeyError(f"head {self.head}: {name!r} is not a candidate of its output fit")
            w[self.candidates.index(name)] += weight
        return max(float((w @ self.gram @ w - 2 * self.cross @ w + self.norm) / self.norm), 0.0)


def _record(gated: GatedModel, ids: np.ndarray) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """One stock forward; layer -> (value [B, kvH, n, d], per-head output [B, n, H, d])."""
    record: dict = {}
    payload = {"heads": {}, "gates": torch.zeros(0), "matrices": [], "record": record}
    with torch.no_grad():
        gated.logits(ids, payload)
    return record


def head_means(loaded, ids: np.ndarray, *, batch_size: int = 8, progress: bool = False) -> MeanAblation:
    """Every head's output averaged over every token of windows `ids` (use fit windows)."""
    sums: dict[tuple[int, int], torch.Tensor] = {}
    count = 0
    with GatedModel(loaded) as gated:
        for chunk in window_batches(np.asarray(ids), batch_size, progress, "head means"):
            for layer, (_, out) in _record(gated, chunk).items():
                total = out.double().sum(dim=(0, 1))  # [H, d]
                for head in range(total.shape[0]):
                    sums[(layer, head)] = sums.get((layer, head), 0) + total[head]
            count += chunk.shape[0] * chunk.shape[1]
    return MeanAblation({key: (value / count).float().cpu().numpy() for key, value in sorted(sums.items())})


def head_values(loaded, ids: np.ndarray, heads: Sequence[tuple[int, int]], *, batch_size: int = 8) -> np.ndarray:
    """Each head's value vectors on windows `ids` (its key/value head's): float32 [N, len(heads), n, d]."""
    groups = loaded.n_heads // loaded.n_kv_heads
    parts = []
    with GatedModel(loaded) as gated:
        for chunk in window_batches(np.asarray(ids), batch_size):
            record = _record(gated, chunk)
            parts.append(torch.stack([record[layer][0][:, head // groups] for layer, head in heads], dim=1)
                         .float().cpu().numpy())
    return np.concatenate(parts)


def _simplex_least_squares(gram: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """argmin over the simplex of w' G w - 2 b' w (G positive semi-definite, K small)."""
    from scipy.optimize import minimize

    k = len(cross)
    scale = max(float(np.abs(gram).max()), 1e-30)
    g, b = gram / scale, cross / scale
    start = np.zeros(k)
    start[int(np.argmin(np.diag(g) - 2 * b))] = 1.0  # the best single candidate
    found = minimize(lambda w: w @ g @ w - 2 * b @ w, start, jac=lambda w: 2 * (g @ w - b), method="SLSQP",
                     bounds=[(0.0, 1.0)] * k, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                                            "jac": lambda w: np.ones_like(w)}],
                     options={"ftol": 1e-12, "maxiter": 200})
    w = np.clip(found.x if found.success else start, 0.0, None)
    if (w @ g @ w - 2 * b @ w) > (start @ g @ start - 2 * b @ start):
        w = start  # never worse than the best single candidate
    w[w < MIN_WEIGHT] = 0.0
    return w / w.sum()


def fit_output_mixtures(
    loaded,
    store,
    source,
    candidates: Mapping[str, Sequence[str]],
    window_indices: Sequence[int],
    *,
    batch_size: int = 8,
    progress: bool = False,
) -> dict[str, OutputFit]:
    """Per head, the convex mixture of its candidates with the least output error on the windows.

    Args:
        loaded: the model the store was extracted from.
        store: an AttentionStore holding the heads of `candidates` and the windows.
        source: a ProgramSource (e.g. the compiled Library) for the candidates.
        candidates: head name -> program names (a few: the cost is K^2 per head).
        window_indices: the (fit) windows to fit on, by window index.

    Returns:
        head name -> OutputFit.
    """
    heads = list(candidates)
    keys = {head: parse_head(head) for head in heads}
    names = list(dict.fromkeys(n for head in heads for n in candidates[head]))
    gram = {head: np.zeros((len(candidates[head]),) * 2) for head in heads}
    cross = {head: np.zeros(len(candidates[head])) for head in heads}
    norm = dict.fromkeys(heads, 0.0)
    position = {head: store.head_position(*keys[head]) for head in heads}
    groups = loaded.n_heads // loaded.n_kv_heads
    by_layer: dict[int, list[str]] = {}
    for head in heads:
        by_layer.setdefault(keys[head][0], []).append(head)
    with GatedModel(loaded) as gated:
        batches = store.iter_windows(list(window_indices))
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="output fit", unit="shard", file=sys.stderr)
        for _, ids, attn in batches:
            for chunk in range(0, len(ids), batch_size):
                part_ids, part_attn = ids[chunk:chunk + batch_size], attn[chunk:chunk + batch_size]
                record = _record(gated, part_ids)
                got = source.matrices(names, part_ids)
                matrices = {n: torch.as_tensor(np.asarray(got[n]), dtype=torch.float32) for n in names}
                for layer, layer_heads in by_layer.items():
                    values = record[layer][0].float().cpu()  # [B, kvH, n, d]
                    outputs: dict[tuple[str, int], torch.Tensor] = {}  # (program, kv head) -> P V
                    for head in layer_heads:
                        kv = keys[head][1] // groups
                        v = values[:, kv]
                        target = torch.matmul(torch.as_tensor(part_attn[:, position[head]]), v)
                        ys = []
                        for name in candidates[head]:
                            if (name, kv) not in outputs:
                                outputs[(name, kv)] = torch.matmul(matrices[name], v)
                            ys.append(outputs[(name, kv)].reshape(-1))
                        y = torch.stack(ys).double()
                        t = target.reshape(-1).double()
                        gram[head] += (y @ y.T).numpy()
                        cross[head] += (y @ t).numpy()
                        norm[head] += float(t @ t)
    fits = {}
    for head in heads:
        g, b, c = gram[head], cross[head], max(norm[head], 1e-30)
        w = _simplex_least_squares(g, b)
        order = np.argsort(-w, kind="stable")
        kept = [int(i) for i in order if w[i] > 0]
        error = float((w @ g @ w - 2 * b @ w + c) / c)
        singles = {name: float((g[i, i] - 2 * b[i] + c) / c) for i, name in enumerate(candidates[head])}
        fits[head] = OutputFit(head, tuple(candidates[head][i] for i in kept), tuple(float(w[i]) for i in kept),
                               max(error, 0.0), singles, tuple(candidates[head]), g, b, c)
    return fits

