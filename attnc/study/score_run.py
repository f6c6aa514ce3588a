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
from pathlib import Path
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


@dataclass
class BatchScores:
    """One attention batch's IoU sums per split: float64 [P, H] sums and window counts (None: no window)."""

    fit: tuple[np.ndarray, int] | None
    heldout: tuple[np.ndarray, int] | None


@dataclass
class ShardScores:
    """A shard's per-batch sums, in batch order, and the programs that failed on it (name -> message)."""

    programs: list[str]
    batches: list[BatchScores]
    failures: dict[str, str]


def score_batch(window_index: np.ndarray, ids: np.ndarray, attn: np.ndarray, programs: Mapping[str, CompiledProgram],
                vocab: Vocab, heldout: np.ndarray, failures: dict[str, str]) -> BatchScores:
    """Per-split IoU sums of every program (rows, in `programs` order) and head on one attention batch.

    A pure function of the batch and the library, but for `failures`: programs
    already in it are skipped, new failures are added (their rows stay 0).
    """
    names = list(programs)
    row_of = {name: i for i, name in enumerate(names)}
    matrices = program_matrices(programs, ids, vocab, failures)
    is_held = heldout[np.asarray(window_index)]
    splits = []
    for split_mask in (~is_held, is_held):
        if not split_mask.any():
            splits.append(None)
            continue
        part = {name: _take(value, split_mask) for name, value in matrices.items()}
        sums = np.zeros((len(names), attn.shape[1]))
        sums[[row_of[name] for name in part]] = score_window_batch(attn[split_mask], part)
        splits.append((sums, int(split_mask.sum())))
    return BatchScores(*splits)


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
    accumulators = ScoreAccumulator(names, list(heads)), ScoreAccumulator(names, list(heads))
    for window_index, ids, attn in batches:
        _add(accumulators, score_batch(window_index, ids, attn, programs, vocab, heldout, failures))
    return accumulators


def _add(accumulators: tuple[ScoreAccumulator, ScoreAccumulator], scores: BatchScores) -> None:
    for acc, split in zip(accumulators, (scores.fit, scores.heldout)):
        if split is not None:
            acc.add(*split)


def score_shard(batches: AttentionBatches, programs: Mapping[str, CompiledProgram], vocab: Vocab,
                heads: Sequence[str], heldout: np.ndarray) -> ShardScores:
    """One shard's per-batch sums (a worker's task; `merge_shards` adds them up in shard order)."""
    failures: dict[str, str] = {}
    scores = [score_batch(window_index, ids, attn, programs, vocab, heldout, failures)
              for window_index, ids, attn in batches]
    return ShardScores(list(programs), scores, failures)


def merge_shards(shards: Sequence[ShardScores], heads: Sequence[str], seconds: float = 0.0) -> ScoreRun:
    """The score run of shards given in window order: exactly what one pass over all their batches gives.

    Batch sums are added in the order a single process adds them, and a
    program that failed on any shard is left out (its first message kept).
    """
    if not shards:
        raise ValueError("merge_shards: no shard to merge")
    names = shards[0].programs
    accumulators = ScoreAccumulator(names, list(heads)), ScoreAccumulator(names, list(heads))
    failures: dict[str, str] = {}
    for shard in shards:
        if shard.programs != names:
            raise ValueError("merge_shards: the shards were scored with different libraries")
        for name, message in shard.failures.items():
            failures.setdefault(name, message)
        for scores in shard.batches:
            _add(accumulators, scores)
    return _score_run(*accumulators, failures, seconds)


def score_store_shards(pool, store, library_dir, heldout: np.ndarray, *, progress: bool = False,
                       checkpoint: Path | None = None) -> ScoreRun:
    """`score_library` over an attention store, one pool task per store shard.

    Args:
        checkpoint: a directory each finished shard's sums are kept in: a run that
            stops (a worker killed for memory, Ctrl-C) resumes there, and only the
            shards not finished are scored again. The caller keys it to the store
            and the library (the study: its stage directory).
    """
    from attnc.parallel.shard_worker import ScoreShard

    tasks = [ScoreShard(Path(library_dir), tuple(store.head_names), heldout, store_dir=store.directory,
                        store_shard=k) for k in range(store.n_shards)]
    return _score_on_pool(pool, tasks, store.head_names, progress, checkpoint)


def score_model_shards(pool, ids: np.ndarray, heads: Sequence[str], library_dir, heldout: np.ndarray, *,
                       batch_size: int = 8, shard_windows: int | None = None, progress: bool = False) -> ScoreRun:
    """`score_library` over the model's attention on windows `ids` (labelled 0..N-1), one task per shard.

    Shards are whole numbers of batches, so every forward pass sees the same
    windows as in one process: `shard_windows` (default: what an extraction
    puts in one store shard, about 256 MiB of float16 maps) is rounded up to a
    multiple of `batch_size`.
    """
    from attnc.parallel.shard_worker import ScoreShard
    from attnc.runtime.extract import auto_shard_size

    if shard_windows is None:
        shard_windows = auto_shard_size(len(heads), ids.shape[1])
    size = batch_size * max(1, -(-shard_windows // batch_size))
    tasks = [ScoreShard(Path(library_dir), tuple(heads), heldout, ids=ids[first:first + size],
                        window_indices=np.arange(first, min(first + size, len(ids))), batch_size=batch_size)
             for first in range(0, len(ids), size)]
    return _score_on_pool(pool, tasks, heads, progress)


def _score_on_pool(pool, tasks: list, heads: Sequence[str], progress: bool,
                   checkpoint: Path | None = None) -> ScoreRun:
    from tqdm.auto import tqdm

    start = time.perf_counter()
    results: dict[int, ShardScores] = _finished_shards(checkpoint, len(tasks)) if checkpoint else {}
    todo = [k for k in range(len(tasks)) if k not in results]
    with tqdm(total=len(tasks), initial=len(results), unit="shard", desc="score", disable=not progress) as bar:
        for position, shard in pool.map([tasks[k] for k in todo]):
            results[todo[position]] = shard
            if checkpoint:
                _keep_shard(checkpoint, todo[position], shard)
            bar.update(1)
    return merge_shards([results[k] for k in range(len(tasks))], heads, time.perf_counter() - start)


def _shard_path(checkpoint: Path, position: int) -> Path:
    return Path(checkpoint) / f"shard-{position:05d}.pkl"


def _keep_shard(checkpoint: Path, position: int, shard: ShardScores) -> None:
    """Write one finished shard's sums atomically (a torn file is never read back)."""
    import pickle

    from attnc.runtime.store import write_bytes_atomic

    Path(checkpoint).mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(_shard_path(checkpoint, position), pickle.dumps(shard, protocol=pickle.HIGHEST_PROTOCOL))


def _finished_shards(checkpoint: Path, n_tasks: int) -> dict[int, ShardScores]:
    """The shards an earlier, stopped run finished (only files this module wrote, in the stage's own cache)."""
    import pickle

    found: dict[int, ShardScores] = {}
    for position in range(n_tasks):
        path = _shard_path(checkpoint, position)
        if path.is_file():
            try:
                with path.open("rb") as handle:
                    shard = pickle.load(handle)
            except Exception:  # a torn or unreadable file (unpickling raises many kinds): scored again
                continue
            if isinstance(shard, ShardScores):
                found[position] = shard
    return found


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
    return _score_run(fit_acc, held_acc, failures, time.perf_counter() - start)


def _score_run(fit_acc: ScoreAccumulator, held_acc: ScoreAccumulator, failures: dict[str, str],
               seconds: float) -> ScoreRun:
    table = ScoreTable.from_accumulators(fit_acc, held_acc)
    kept = [name for name in table.programs if name not in failures]
    return ScoreRun(table=table.subset(kept), failures=failures, seconds=seconds)


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

