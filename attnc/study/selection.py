"""Choose a small program library that explains the heads almost as well as all of it.

The value of a set S of programs: for each head take the program of S with the
highest fit IoU, read its held-out IoU, average over heads. Selection finds a
small S whose value is within ``tolerance`` of the full library's: greedy
forward selection (add the program that raises the value most) until within
tolerance, then a backward pass dropping any program whose removal keeps the
set within tolerance (least harmful first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnc.study.scoring import ScoreTable


@dataclass(frozen=True)
class LibrarySelection:
    """A selected library and how well it does.

    Attributes:
        programs: the selected names, in the order greedy selection added them.
        value: mean held-out IoU of the fit-chosen program per head, for the set.
        full_value: the same for the whole library.
        tolerance: the allowed shortfall.
    """

    programs: tuple[str, ...]
    value: float
    full_value: float
    tolerance: float

    @property
    def size(self) -> int:
        return len(self.programs)


def library_value(table: ScoreTable, rows: list[int] | np.ndarray) -> float:
    """Mean over heads of the held-out IoU of the fit-best program among ``rows``."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return 0.0
    best = rows[table.iou_fit[rows].argmax(axis=0)]
    return float(table.iou_heldout[best, np.arange(len(table.heads))].mean())


def select_library(table: ScoreTable, tolerance: float = 0.01) -> LibrarySelection:
    """The smallest set found by forward selection then backward pruning.

    Args:
        table: fit and held-out IoU of every program on every head.
        tolerance: the set's value may be at most this far below the full library's.

    Returns:
        The selection, its value and the full library's value.

    Raises:
        ValueError: if the table has no programs or no heads.
    """
    n_prog, n_heads = table.iou_fit.shape
    if n_prog == 0 or n_heads == 0:
        raise ValueError("select_library: the score table has no programs or no heads")
    full = library_value(table, np.arange(n_prog))
    target = full - tolerance
    chosen: list[int] = []
    value = 0.0
    # Incremental forward pass: track each head's current fit-best program.
    cur_fit = np.full(n_heads, -np.inf)
    cur_held = np.zeros(n_heads)
    while value < target and len(chosen) < n_prog:
        better = table.iou_fit > cur_fit[None, :]  # [P, H]
        held = np.where(better, table.iou_heldout, cur_held[None, :])
        gains = held.mean(axis=1)
        gains[chosen] = -np.inf
        p = int(np.argmax(gains))
        chosen.append(p)
        cur_held = held[p]
        cur_fit = np.maximum(cur_fit, table.iou_fit[p])
        value = float(gains[p])
    # Backward pass: drop programs while the set stays within tolerance.
    improved = True
    while improved and len(chosen) > 1:
        improved = False
        trials = [(library_value(table, [q for q in chosen if q != p]), p) for p in chosen]
        trial_value, p = max(trials)
        if trial_value >= target:
            chosen.remove(p)
            value = trial_value
            improved = True
    return LibrarySelection(tuple(table.programs[p] for p in chosen), library_value(table, chosen), full, tolerance)
