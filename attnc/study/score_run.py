"""Score a compiled library against a model's heads, streaming over windows.

The model runs once per window (never once per program or head): each batch
of windows yields every selected head's attention, every program's matrices
for the same windows come from the compiled library's batch API, and the fast
IoU kernel turns both into per-(program, head) sums that merge by addition.
Programs whose rows are sparse (few non-zeros per row on the probe windows)
are evaluated in the sparse form, so their cost is O(n * support), not O(n^2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from attnc.compiler import CompiledProgram, WindowError
from attnc.compiler.compiled import dense_to_sparse
from attnc.study.scoring import ProgramBatch, ScoreAccumulator, ScoreTable, score_window_batch
from attnc.window import Vocab, window_features

#: Rows with at most this many non-zeros are scored in the sparse form.
SPARSE_MAX_SUPPORT = 16

AttentionBatches = Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]
"""(window_index [w], ids [w, n], attention float32 [w, H, n, n]) batches."""


@dataclass
class ScoreRun:
    """A score table with what happened on the way.

    Attributes:
        table: program x head IoU on both splits (failed programs left out).
        failures: program -> first error message (the program is left out).
        seconds: wall time of the scoring pass.
    """

    table: ScoreTable
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def program_matrices(
    programs: Mapping[str, CompiledProgram], ids: np.ndarray, vocab: Vocab, failures: dict[str, str]
) -> dict[str, ProgramBatch]:
    """Every program's matrices for one batch of windows, sparse where rows are sparse.

    A program that fails on a window is recorded in `failures` (name -> message)
    and left out of this and later batches; it never stops the others.
    """
    features = window_features(ids, vocab)
    out: dict[str, ProgramBatch] = {}
    for name, program in programs.items():
        if name in failures:
            continue
        try:
            dense = program.evaluate(ids, vocab, features=features)
        except WindowError as exc:
            failures[name] = str(exc)
            continue
        support = int(np.count_nonzero(dense, axis=-1).max()) if dense.size else 0
        out[name] = dense_to_sparse(dense, support, name) if 0 < support <= SPARSE_MAX_SUPPORT else dense
    return out


def score_batches(
    batches: AttentionBatches,
    programs: Mapping[str, CompiledProgram],
    vocab: Vocab,
    heads: Sequence[str],
    heldout: np.ndarray,
    failures: dict[str, str] | None = None,
) -> tuple[ScoreAccumulator, ScoreAccumulator]:
    """Accumulate IoU sums per split over attention batches.

    Args:
        batches: (window_index, ids, attention [w, H, n, n]) with H = len(heads).
        programs: name -> compiled program.
        vocab: the tokenizer's tables.
        heads: head names "layer.head" in the attention's head order.
        heldout: bool per window index (True = held-out split).
        failures: filled with programs that failed (left out of the sums).

    Returns:
        (fit accumulator, held-out accumulator) over all programs; rows of
        failed programs are meaningless and must be dropped by the caller.
    """
    failures = {} if failures is None else failures
    names = list(programs)
    fit_acc, held_acc = ScoreAccumulator(names, list(heads)), ScoreAccumulator(names, list(heads))
    row_of = {name: i for i, name in enumerate(names)}
    for window_index, ids, attn in batches:
        matrices = program_matrices(programs, ids, vocab, failures)
        is_held = heldout[np.asarray(window_index)]
        for split_mask, acc in ((~is_held, fit_acc), (is_held, held_acc)):
            if not split_mask.any():
                continue
            part = {name: _take(value, split_mask) for name, value in matrices.items()}
            sums = np.zeros((len(names), len(heads)))
            got = score_window_batch(attn[split_mask], part)
            sums[[row_of[name] for name in part]] = got
            acc.add(sums, int(split_mask.sum()))
    return fit_acc, held_acc


def _take(value: ProgramBatch, mask: np.ndarray) -> ProgramBatch:
    if isinstance(value, np.ndarray):
        return value[mask]
    return type(value)(keys=value.keys[mask], weights=value.weights[mask])


def score_library(
    batches: AttentionBatches,
    programs: Mapping[str, CompiledProgram],
    vocab: Vocab,
    heads: Sequence[str],
    heldout: np.ndarray,
) -> ScoreRun:
    """Score every program against every head; see `score_batches`."""
    start = time.perf_counter()
    failures: dict[str, str] = {}
    fit_acc, held_acc = score_batches(batches, programs, vocab, heads, heldout, failures)
    table = ScoreTable.from_accumulators(fit_acc, held_acc)
    kept = [name for name in table.programs if name not in failures]
    return ScoreRun(table=table.subset(kept), failures=failures, seconds=time.perf_counter() - start)


def model_attention_batches(loaded, ids: np.ndarray, *, heads=None, batch_size: int = 8,
                            window_indices: Sequence[int] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Attention batches straight from the model (one forward per window batch).

    Args:
        ids: all windows [N, n]; window_indices: the rows to run (all when None).
    """
    from attnc.runtime.extract import iter_attention

    rows = np.arange(len(ids)) if window_indices is None else np.asarray(window_indices, dtype=np.int64)
    for window_index, attn in iter_attention(loaded, ids[rows], heads=heads, batch_size=batch_size,
                                             window_indices=rows):
        yield window_index, ids[window_index], attn


def store_attention_batches(store) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Attention batches read back from an attention store (`attnc extract`), shard by shard."""
    yield from store.iter_windows()

