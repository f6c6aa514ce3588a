"""Fit programs to heads: the best single program, and small mixtures.

The best single program per head comes straight from a ``ScoreTable`` (chosen
on fit IoU, reported with held-out IoU). A mixture's IoU cannot be derived
from the table, so ``fit_head_mixture`` works on one head's attention and its
candidates' matrices: greedy forward selection, each added program's weight
found by a line search on the true IoU over a subsample of fit windows, then
one polishing pass over the weights; the result is evaluated with the exact
metric on all fit and held-out windows. Per-head inputs are small
(600 windows x 128^2 float32 = 40 MB), so whole studies stream head by head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from attnc.study.iou import EPS, iou_reference_batch
from attnc.study.scoring import ProgramBatch, ScoreTable, SparseRows


@dataclass(frozen=True)
class SingleFit:
    """The best single program of a head (chosen on fit IoU)."""

    head: str
    program: str
    iou_fit: float
    iou_heldout: float


@dataclass(frozen=True)
class MixtureFit:
    """A convex mixture of programs for one head.

    Attributes:
        programs: names, by decreasing weight; weights: non-negative, sum to 1.
        iou_fit, iou_heldout: exact mean window IoU of the mixture matrix.
    """

    head: str
    programs: tuple[str, ...]
    weights: tuple[float, ...]
    iou_fit: float
    iou_heldout: float


def best_single_fits(table: ScoreTable) -> dict[str, SingleFit]:
    """Per head, the program with the highest fit IoU, with its held-out IoU."""
    best = table.iou_fit.argmax(axis=0)
    return {
        head: SingleFit(head, table.programs[p], float(table.iou_fit[p, h]), float(table.iou_heldout[p, h]))
        for h, (head, p) in enumerate(zip(table.heads, best))
    }


def top_candidates(table: ScoreTable, m: int) -> dict[str, list[str]]:
    """Per head, the names of the m programs with the highest fit IoU, best first."""
    order = np.argsort(-table.iou_fit, axis=0, kind="stable")[:m]
    return {head: [table.programs[p] for p in order[:, h]] for h, head in enumerate(table.heads)}


def _dense(value: ProgramBatch, dtype=np.float32) -> np.ndarray:
    return (value.to_dense() if isinstance(value, SparseRows) else np.asarray(value)).astype(dtype, copy=False)


class _LowerTriangle:
    """Proxy IoU on the causal lower triangle only, for the weight search.

    Dropping the upper triangle changes each row's sums by ~n*EPS (1e-10):
    harmless for comparing mixtures; final numbers use the exact metric.
    """

    def __init__(self, attn: np.ndarray):
        n = attn.shape[-1]
        self.rows, self.cols = np.tril_indices(n)
        self.starts = np.concatenate([[0], np.cumsum(np.arange(1, n + 1))[:-1]])
        self.a = np.clip(attn[:, self.rows, self.cols].astype(np.float32), EPS, 1.0)
        self.sum_a = np.add.reduceat(self.a, self.starts, axis=1, dtype=np.float64)

    def flatten(self, matrices: np.ndarray) -> np.ndarray:
        return matrices[:, self.rows, self.cols].astype(np.float32)

    def iou(self, p_flat: np.ndarray) -> float:
        p = np.clip(p_flat, EPS, 1.0)
        sum_min = np.add.reduceat(np.minimum(self.a, p), self.starts, axis=1, dtype=np.float64)
        sum_p = np.add.reduceat(p, self.starts, axis=1, dtype=np.float64)
        return float((sum_min / (self.sum_a + sum_p - sum_min)).mean())


def _line_search(f: Callable[[float], float], grid: int, refine: int) -> tuple[float, float]:
    """Maximise f on [0, 1]: a grid, then golden-section steps around the best point."""
    alphas = np.linspace(0.0, 1.0, grid)
    values = [f(a) for a in alphas]
    best = int(np.argmax(values))
    lo, hi = alphas[max(best - 1, 0)], alphas[min(best + 1, grid - 1)]
    best_a, best_v = float(alphas[best]), float(values[best])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(refine):
        if f1 >= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - ratio * (hi - lo)
            f1 = f(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + ratio * (hi - lo)
            f2 = f(x2)
    for a, v in ((x1, f1), (x2, f2)):
        if v > best_v:
            best_a, best_v = float(a), float(v)
    return best_a, best_v


def fit_head_mixture(
    head: str,
    attn_fit: np.ndarray,
    programs_fit: Mapping[str, ProgramBatch],
    attn_heldout: np.ndarray,
    programs_heldout: Mapping[str, ProgramBatch],
    candidates: Sequence[str],
    k: int = 3,
    search_windows: int = 32,
    grid: int = 11,
    refine: int = 8,
    seed: int = 0,
) -> MixtureFit:
    """Fit a convex mixture of at most k candidate programs to one head.

    Args:
        head: the head's name "layer.head" (recorded in the result).
        attn_fit, attn_heldout: the head's attention [W, n, n] on each split.
        programs_fit, programs_heldout: program name -> matrices for the same
            windows (dense [W, n, n] or SparseRows); only candidates are read.
        candidates: programs to choose from (e.g. ``top_candidates``).
        k: the most programs in the mixture.
        search_windows: fit windows (seeded subsample) used for the search.
        grid, refine: line-search grid points and golden-section steps.
        seed: subsample seed.

    Returns:
        The mixture; its fit IoU is never below the best single candidate's,
        because the best single candidate is kept when the mixture is not
        better on all fit windows. Candidates are held as float32 (memory),
        so reported IoUs match a float64 evaluation to ~1e-7.

    Raises:
        ValueError: if there are no candidates or k < 1.
    """
    if not candidates or k < 1:
        raise ValueError(f"head {head}: need at least one candidate and k >= 1 (got {len(candidates)} candidates, k={k})")
    names = list(dict.fromkeys(candidates))
    fit = {name: _dense(programs_fit[name]) for name in names}
    held = {name: _dense(programs_heldout[name]) for name in names}
    exact_fit = {name: float(iou_reference_batch(attn_fit, fit[name]).mean()) for name in names}
    start = max(names, key=lambda name: exact_fit[name])

    rng = np.random.default_rng(seed)
    n_fit = attn_fit.shape[0]
    sample = np.sort(rng.choice(n_fit, size=min(search_windows, n_fit), replace=False))
    proxy = _LowerTriangle(np.asarray(attn_fit)[sample])
    flat = {name: proxy.flatten(fit[name][sample]) for name in names}

    def mix(weights: dict[str, float]) -> np.ndarray:
        return sum(w * flat[name] for name, w in weights.items())

    weights = {start: 1.0}
    current = proxy.iou(mix(weights))
    while len(weights) < k:
        base = mix(weights)
        best = (current + 1e-7, None, 0.0)
        for name in names:
            if name in weights:
                continue
            a, v = _line_search(lambda t: proxy.iou((1.0 - t) * base + t * flat[name]), grid, refine)
            if v > best[0]:
                best = (v, name, a)
        value, name, a = best
        if name is None:
            break
        weights = {n: w * (1.0 - a) for n, w in weights.items()}
        weights[name] = a
        current = value
    if len(weights) > 1:  # one polishing pass: re-fit each weight against the rest
        for name in list(weights):
            rest = {n: w for n, w in weights.items() if n != name}
            total = sum(rest.values())
            if total <= 0:
                continue
            rest_mix = mix({n: w / total for n, w in rest.items()})
            a, v = _line_search(lambda t: proxy.iou((1.0 - t) * rest_mix + t * flat[name]), grid, refine)
            if v > current:
                weights = {n: w / total * (1.0 - a) for n, w in rest.items()}
                weights[name] = a
                current = v
    weights = {n: w for n, w in weights.items() if w > 1e-6}
    total = sum(weights.values())
    weights = {n: w / total for n, w in sorted(weights.items(), key=lambda item: -item[1])}

    def exact(matrices: dict[str, np.ndarray], attn: np.ndarray, ws: dict[str, float]) -> float:
        m = sum(w * matrices[n].astype(np.float64) for n, w in ws.items())
        return float(iou_reference_batch(attn, m).mean())

    iou_fit = exact(fit, attn_fit, weights) if len(weights) > 1 else exact_fit[next(iter(weights))]
    if iou_fit < exact_fit[start]:
        weights, iou_fit = {start: 1.0}, exact_fit[start]
    return MixtureFit(head, tuple(weights), tuple(float(w) for w in weights.values()), iou_fit,
                      exact(held, attn_heldout, weights))


def fit_mixtures(
    head_attention: Iterable[tuple[str, np.ndarray, np.ndarray]],
    programs_fit: Mapping[str, ProgramBatch],
    programs_heldout: Mapping[str, ProgramBatch],
    candidates_per_head: Mapping[str, Sequence[str]],
    k: int = 3,
    **search: int,
) -> dict[str, MixtureFit]:
    """``fit_head_mixture`` for a stream of heads.

    Args:
        head_attention: yields (head name, attention fit [W, n, n], attention
            held-out [W', n, n]) one head at a time, so only one head's
            attention needs to be in memory.
        programs_fit, programs_heldout: program matrices per split (a lazy
            Mapping works: only each head's candidates are read).
        candidates_per_head: head name -> candidate program names.
        k, search: passed to ``fit_head_mixture``.

    Returns:
        head name -> MixtureFit, in the order heads were yielded.
    """
    return {
        head: fit_head_mixture(head, a_fit, programs_fit, a_held, programs_heldout, candidates_per_head[head], k=k, **search)
        for head, a_fit, a_held in head_attention
    }
