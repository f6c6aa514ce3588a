"""Score a program library against attention, window batch by window batch.

``score_window_batch`` is a pure function of (attention batch, program
matrices for the same windows) -> per-(program, head) sums of window IoU.
Sums merge by addition, so batches can be scored in any order, in several
processes or as Ray tasks, and combined with ``ScoreAccumulator.merge``.
``ScoreTable`` holds the final means for the fit and held-out splits.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence, Union

import numpy as np

from attnc.compiler import SparseRows
from attnc.runtime.heads import all_heads, head_name
from attnc.study.iou import prepare_attention, row_iou_sums_dense, row_iou_sums_sparse

__all__ = ["ProgramBatch", "ScoreAccumulator", "ScoreTable", "SparseRows", "accumulate_scores", "head_names",
           "score_window_batch"]


ProgramBatch = Union[np.ndarray, SparseRows]
"""One program's matrices for a window batch: dense [W, n, n] or the compiler's
SparseRows (keys int [W, n, K], weights [W, n, K]; padding has weight 0, and
entries with positive weight have distinct keys within a row)."""


def _check_program(name: str, value: ProgramBatch, n_windows: int, n: int) -> None:
    if isinstance(value, SparseRows):
        if value.keys.shape != value.weights.shape or value.keys.ndim != 3:
            raise ValueError(f"program {name!r}: sparse keys {value.keys.shape} and weights {value.weights.shape} must both be [W, n, K]")
        shape = value.keys.shape[:2]
    elif isinstance(value, np.ndarray) and value.shape != (n_windows, n, n):
        raise ValueError(f"program {name!r}: dense matrices must be [{n_windows}, {n}, {n}] like the attention, got {value.shape}")
    else:
        shape = np.shape(value)[:2]
    if tuple(shape) != (n_windows, n):
        raise ValueError(f"program {name!r}: expected {n_windows} windows of {n} rows, got {tuple(shape)}")


def score_window_batch(attn: np.ndarray, programs: Mapping[str, ProgramBatch]) -> np.ndarray:
    """Sum of window IoU over a batch of windows, for every program and head.

    Args:
        attn: [W, H, n, n] neural attention (float16/float32) of all heads.
        programs: program name -> its normalised matrices for the same W
            windows, dense [W, n, n] or ``SparseRows``. Order is kept.

    Returns:
        float64 [P, H]: sum over the W windows of window IoU (divide by the
        window count for the mean; sums from batches merge by addition).

    Raises:
        ValueError: if a program's shape does not match the attention's.
    """
    attn = np.asarray(attn)
    if attn.ndim != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(f"attention must be [W, H, n, n], got {attn.shape}")
    n_windows, n_heads, n, _ = attn.shape
    names = list(programs)
    for name in names:
        _check_program(name, programs[name], n_windows, n)
    dense_idx = [i for i, k in enumerate(names) if not isinstance(programs[k], SparseRows)]
    sparse_idx = [i for i, k in enumerate(names) if isinstance(programs[k], SparseRows)]
    k_max = max((programs[names[i]].keys.shape[2] for i in sparse_idx), default=0)

    total = np.zeros((len(names), n_heads), dtype=np.float64)
    if sparse_idx:
        keys = np.zeros((n_windows, len(sparse_idx), n, k_max), dtype=np.int64)
        weights = np.zeros((n_windows, len(sparse_idx), n, k_max), dtype=np.float64)
        for row, i in enumerate(sparse_idx):
            sp = programs[names[i]]
            kk = sp.keys.shape[2]
            keys[:, row, :, :kk] = sp.keys
            weights[:, row, :, :kk] = sp.weights
    for w in range(n_windows):
        a_t, sum_a = prepare_attention(attn[w])
        if dense_idx:
            stack = np.stack([programs[names[i]][w] for i in dense_idx])
            total[dense_idx] += row_iou_sums_dense(a_t, sum_a, stack)
        if sparse_idx:
            total[sparse_idx] += row_iou_sums_sparse(a_t, sum_a, keys[w], weights[w])
    return total / n


@dataclass
class ScoreAccumulator:
    """Running sums of window IoU per (program, head); merges by addition.

    Attributes:
        programs: program names (rows); heads: head names "layer.head" (columns).
        sums: float64 [P, H] sums of window IoU; n_windows: windows added.
    """

    programs: list[str]
    heads: list[str]
    sums: np.ndarray = field(default=None)  # type: ignore[assignment]
    n_windows: int = 0

    def __post_init__(self) -> None:
        if self.sums is None:
            self.sums = np.zeros((len(self.programs), len(self.heads)), dtype=np.float64)
        if self.sums.shape != (len(self.programs), len(self.heads)):
            raise ValueError(f"ScoreAccumulator: sums {self.sums.shape} do not match {len(self.programs)} programs x {len(self.heads)} heads")

    def add(self, batch_sums: np.ndarray, n_windows: int) -> "ScoreAccumulator":
        """Add the result of ``score_window_batch`` over ``n_windows`` windows (in place)."""
        if batch_sums.shape != self.sums.shape:
            raise ValueError(f"ScoreAccumulator.add: batch result {batch_sums.shape}, expected {self.sums.shape}")
        self.sums += batch_sums
        self.n_windows += n_windows
        return self

    def merge(self, other: "ScoreAccumulator") -> "ScoreAccumulator":
        """A new accumulator holding both; programs and heads must match."""
        if other.programs != self.programs or other.heads != self.heads:
            raise ValueError("ScoreAccumulator.merge: program or head names differ")
        return ScoreAccumulator(list(self.programs), list(self.heads), self.sums + other.sums, self.n_windows + other.n_windows)

    def mean(self) -> np.ndarray:
        """Head IoU: mean window IoU, float64 [P, H]."""
        if self.n_windows == 0:
            raise ValueError("ScoreAccumulator.mean: no windows were added")
        return self.sums / self.n_windows


def accumulate_scores(
    batches: Iterable[tuple[np.ndarray, Mapping[str, ProgramBatch]]],
    programs: Sequence[str],
    heads: Sequence[str],
) -> ScoreAccumulator:
    """Score a stream of window batches of one split into one accumulator.

    Args:
        batches: yields (attention [W, H, n, n], program name -> matrices for
            those W windows); every batch names the same programs.
        programs: program names, the table's row order.
        heads: head names "layer.head" for the attention's H axis.

    Returns:
        The accumulator (``.mean()`` gives head IoU [P, H]).

    Raises:
        ValueError: if a batch lacks a program or has the wrong head count.
    """
    acc = ScoreAccumulator(list(programs), list(heads))
    for attn, matrices in batches:
        missing = [p for p in programs if p not in matrices]
        if missing:
            raise ValueError(f"accumulate_scores: batch has no matrices for programs {missing[:5]}")
        if np.shape(attn)[1] != len(heads):
            raise ValueError(f"accumulate_scores: attention has {np.shape(attn)[1]} heads, expected {len(heads)}")
        acc.add(score_window_batch(attn, {p: matrices[p] for p in programs}), np.shape(attn)[0])
    return acc


def head_names(n_layers: int, n_heads: int) -> list[str]:
    """Head names "layer.head", zero-based, layer-major."""
    return [head_name(layer, head) for layer, head in all_heads(n_layers, n_heads)]


@dataclass
class ScoreTable:
    """Mean IoU of every program on every head, on fit and held-out windows.

    Attributes:
        programs: P program names; heads: H head names "layer.head".
        iou_fit, iou_heldout: float64 [P, H].
        n_windows_fit, n_windows_heldout: windows averaged in each split.
    """

    programs: list[str]
    heads: list[str]
    iou_fit: np.ndarray
    iou_heldout: np.ndarray
    n_windows_fit: int
    n_windows_heldout: int

    def __post_init__(self) -> None:
        shape = (len(self.programs), len(self.heads))
        for name in ("iou_fit", "iou_heldout"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"ScoreTable.{name} has shape {arr.shape}, expected {shape} (programs x heads)")
            setattr(self, name, arr)

    @classmethod
    def from_accumulators(cls, fit: ScoreAccumulator, heldout: ScoreAccumulator) -> "ScoreTable":
        if fit.programs != heldout.programs or fit.heads != heldout.heads:
            raise ValueError("ScoreTable: fit and held-out accumulators name different programs or heads")
        return cls(list(fit.programs), list(fit.heads), fit.mean(), heldout.mean(), fit.n_windows, heldout.n_windows)

    def save(self, path: str | os.PathLike) -> None:
        """Write as .npz (no pickles), atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            programs=np.array(self.programs, dtype=str),
            heads=np.array(self.heads, dtype=str),
            iou_fit=self.iou_fit,
            iou_heldout=self.iou_heldout,
            n_windows=np.array([self.n_windows_fit, self.n_windows_heldout], dtype=np.int64),
        )
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ScoreTable":
        """Read a table written by ``save``.

        Raises:
            ValueError: if the file lacks a field or its shapes disagree.
        """
        with np.load(path, allow_pickle=False) as data:
            missing = {"programs", "heads", "iou_fit", "iou_heldout", "n_windows"} - set(data.files)
            if missing:
                raise ValueError(f"{path}: not a score table, missing {sorted(missing)}")
            n_fit, n_held = (int(x) for x in data["n_windows"])
            return cls([str(x) for x in data["programs"]], [str(x) for x in data["heads"]],
                       data["iou_fit"], data["iou_heldout"], n_fit, n_held)

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write rows ``program,head,iou_fit,iou_heldout``."""
        with open(path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["program", "head", "iou_fit", "iou_heldout"])
            for p, prog in enumerate(self.programs):
                for h, head in enumerate(self.heads):
                    out.writerow([prog, head, f"{self.iou_fit[p, h]:.6f}", f"{self.iou_heldout[p, h]:.6f}"])

    def subset(self, programs: Sequence[str]) -> "ScoreTable":
        """The rows of the named programs, in the given order."""
        index = {name: i for i, name in enumerate(self.programs)}
        rows = [index[p] for p in programs]
        return ScoreTable(list(programs), list(self.heads), self.iou_fit[rows], self.iou_heldout[rows],
                          self.n_windows_fit, self.n_windows_heldout)
