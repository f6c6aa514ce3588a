"""Per-head program mixtures from an attention store, in bounded memory.

Two stages. The weights of every head's mixture are searched on a seeded
subsample of at most ``search_windows`` fit windows (only those windows'
attention, for all heads, is held: [S, H, n, n]) with ``fit_head_mixture``,
among the head's top candidates of the score table. Then one streaming pass
over the whole store evaluates each needed program once per batch, forms each
head's mixture matrix and accumulates the exact window IoU per split, so the
reported fit and held-out IoUs cover every stored window. A head whose
mixture is not better than its best single candidate on all fit windows keeps
that single program (weight 1), so the fit IoU never drops below it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from attnc.compiler import CompiledProgram
from attnc.runtime.corpus import split_windows
from attnc.runtime.store import AttentionStore, StoreError
from attnc.study.fitting import MixtureFit, fit_head_mixture, top_candidates
from attnc.study.iou import iou_reference_batch
from attnc.study.scoring import ScoreTable
from attnc.window import Vocab, window_features


@dataclass
class MixtureRun:
    """Mixtures of every head, with what the run used.

    Attributes:
        mixtures: head name -> MixtureFit (IoUs over all stored windows of each split).
        n_windows_fit, n_windows_heldout: stored windows in each split.
        search_windows: window indices of the weight-search subsample.
        split_source: "store" (recorded by extract) or "recomputed" (from fraction and seed).
        seconds: wall time.
    """

    mixtures: dict[str, MixtureFit]
    n_windows_fit: int
    n_windows_heldout: int
    search_windows: list[int] = field(default_factory=list)
    split_source: str = "store"
    seconds: float = 0.0


def store_heldout(store: AttentionStore, heldout_fraction: float = 0.5, seed: int = 0) -> tuple[np.ndarray, str]:
    """Held-out flag of every stored row, in storage order.

    The split recorded by ``attnc extract`` (meta windows.heldout_indices) is
    used when present; otherwise it is recomputed with ``split_windows`` over
    the corpus's window count (meta windows.n_windows, else the largest
    stored window index + 1) from ``heldout_fraction`` and ``seed``.

    Returns:
        (bool [N] per stored row, "store" or "recomputed").
    """
    info = store.meta.get("windows") or {}
    indices = store.window_indices
    if "heldout_indices" in info:
        held = set(int(i) for i in info["heldout_indices"])
        return np.array([int(w) in held for w in indices], dtype=bool), "store"
    n_total = int(info.get("n_windows", int(indices.max()) + 1 if len(indices) else 0))
    split = split_windows(n_total, heldout_fraction, seed)
    return split[indices], "recomputed"


def store_heldout_by_window(store: AttentionStore) -> np.ndarray:
    """Held-out flag indexed by window index (the label attention batches carry), from ``store_heldout``."""
    rows, _ = store_heldout(store)
    indices = store.window_indices
    mask = np.zeros(int(indices.max()) + 1 if len(indices) else 0, dtype=bool)
    mask[indices] = rows
    return mask


def _check_inputs(store: AttentionStore, table: ScoreTable, programs: Mapping[str, CompiledProgram]) -> None:
    if store.head_names != list(table.heads):
        missing = [h for h in table.heads if h not in store.head_names]
        raise StoreError(
            f"{store.directory}: stored heads do not match the score table's "
            f"({len(store.head_names)} stored, {len(table.heads)} scored"
            + (f"; not stored: {', '.join(missing[:10])}" if missing else "; same heads, different order")
            + "); extract the same heads the table scored"
        )
    known = set(programs)  # keys only: a lazy library compiles a program on first lookup
    absent = [name for name in table.programs if name not in known]
    if absent:
        raise ValueError(f"programs of the score table missing from the library: {', '.join(absent[:10])}"
                         f"{' ...' if len(absent) > 10 else ''}; use the library the table was scored with")


def _evaluate(programs: Mapping[str, CompiledProgram], names: Sequence[str], ids: np.ndarray, vocab: Vocab) -> dict[str, np.ndarray]:
    features = window_features(ids, vocab)
    return {name: programs[name].evaluate(ids, vocab, features=features) for name in names}


def fit_store_mixtures(
    store: AttentionStore,
    table: ScoreTable,
    programs: Mapping[str, CompiledProgram],
    vocab: Vocab,
    *,
    k: int = 3,
    n_candidates: int = 6,
    search_windows: int = 32,
    seed: int = 0,
    heldout_fraction: float = 0.5,
    split_seed: int = 0,
    pool=None,
    library_dir=None,
) -> MixtureRun:
    """Fit a mixture of at most k programs to every head of the table.

    Args:
        store: attention of the table's heads (same names, same order).
        table: score table; each head's candidates are its top ``n_candidates``.
        programs: program name -> compiled program (e.g. ``library.programs``).
        vocab: the tokenizer's tables.
        k: the most programs per mixture.
        n_candidates: candidates per head.
        search_windows: fit windows (seeded subsample) used to search weights.
        seed: subsample seed.
        heldout_fraction, split_seed: only when the store lacks the recorded split.
        pool, library_dir: sum the exact IoUs of the second pass on a shard pool.

    Returns:
        The run; mixtures' IoUs are exact means over all stored windows of each split.

    Raises:
        StoreError: heads differ from the table's, or a split has no stored window.
        ValueError: a table program is missing from ``programs``; k < 1.
        attnc.compiler.WindowError: a candidate program failed on a window.
    """
    start_time = time.perf_counter()
    if k < 1 or n_candidates < 1 or search_windows < 1:
        raise ValueError(f"need k, candidates and search windows >= 1 (got {k}, {n_candidates}, {search_windows})")
    _check_inputs(store, table, programs)
    heldout, split_source = store_heldout(store, heldout_fraction, split_seed)
    windows = store.window_indices
    fit_windows = windows[~heldout]
    if len(fit_windows) == 0 or heldout.sum() == 0:
        raise StoreError(f"{store.directory}: need stored fit and held-out windows, found {len(fit_windows)} fit and "
                         f"{int(heldout.sum())} held-out; extract with `attnc extract --split all`")
    candidates = top_candidates(table, n_candidates)

    # Stage 1: weights on a seeded subsample of fit windows (only these are held in memory).
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(fit_windows, size=min(search_windows, len(fit_windows)), replace=False))
    ids_parts, attn_parts = [], []
    for _, ids, attn in store.iter_windows(sample):
        ids_parts.append(ids)
        attn_parts.append(attn)
    sample_ids, sample_attn = np.concatenate(ids_parts), np.concatenate(attn_parts)
    needed = list(dict.fromkeys(name for names in candidates.values() for name in names))
    sample_programs = {name: m.astype(np.float32) for name, m in _evaluate(programs, needed, sample_ids, vocab).items()}
    weights: dict[str, dict[str, float]] = {}
    for h, head in enumerate(table.heads):
        found = fit_head_mixture(head, sample_attn[:, h], sample_programs, sample_attn[:, h], sample_programs,
                                 candidates[head], k=k, search_windows=len(sample), seed=seed)
        weights[head] = dict(zip(found.programs, found.weights))
    del sample_attn, sample_programs

    # Stage 2: exact IoU of each mixture and of each head's best single candidate, one pass.
    best = {head: names[0] for head, names in candidates.items()}
    (mix_mean, single_mean), counts = mixture_ious(store, [weights, {h: {n: 1.0} for h, n in best.items()}],
                                                   programs, vocab, heldout, pool=pool,
                                                   library_dir=library_dir)

    mixtures: dict[str, MixtureFit] = {}
    for h, head in enumerate(table.heads):
        if len(weights[head]) > 1 and mix_mean[0, h] >= single_mean[0, h]:
            mixtures[head] = MixtureFit(head, tuple(weights[head]), tuple(weights[head].values()),
                                        float(mix_mean[0, h]), float(mix_mean[1, h]))
        else:
            mixtures[head] = MixtureFit(head, (best[head],), (1.0,), float(single_mean[0, h]), float(single_mean[1, h]))
    return MixtureRun(mixtures, int(counts[0]), int(counts[1]), [int(w) for w in sample], split_source,
                      time.perf_counter() - start_time)


def mixture_ious(
    store: AttentionStore,
    weight_sets: Sequence[Mapping[str, Mapping[str, float]]],
    programs: Mapping[str, CompiledProgram],
    vocab: Vocab,
    heldout: np.ndarray,
    *,
    pool=None,
    library_dir=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean IoU of mixtures on the store's fit and held-out windows, in one pass.

    Args:
        weight_sets: S maps head name -> {program: weight}; each head of the store
            named in a set is scored with that mixture.
        heldout: bool per stored window (storage order), True for held-out.
        pool, library_dir: a shard pool (`attnc.parallel`) and the library's
            directory: each store shard is then summed by a worker (the same sums,
            added in shard order).

    Returns:
        (ious float [S, 2, H]: fit / held-out mean per set and store head (NaN where
        a set does not name the head), window counts [2]).
    """
    heads = store.head_names
    heldout_of = dict(zip(store.window_indices.tolist(), np.asarray(heldout).tolist()))
    sets = [{head: dict(mix) for head, mix in weights.items()} for weights in weight_sets]
    if pool is not None and library_dir is not None and store.n_shards > 1:
        from attnc.parallel.shard_worker import MixtureIouShard

        tasks = [MixtureIouShard(Path(library_dir), store.directory, k, tuple(heads), tuple(sets), heldout_of)
                 for k in range(store.n_shards)]
        parts = dict(pool.map(tasks))
        sums = sum(parts[k][0] for k in range(len(tasks)))
        counts = sum(parts[k][1] for k in range(len(tasks)))
    else:
        sums, counts = mixture_iou_sums(store.iter_windows(), sets, heads, programs, vocab, heldout_of)
    means = sums / np.maximum(counts, 1)[None, :, None]
    for s, weights in enumerate(sets):
        means[s][:, [h for h, head in enumerate(heads) if head not in weights]] = np.nan
    return means, counts


def mixture_iou_sums(batches, weight_sets: Sequence[Mapping[str, Mapping[str, float]]], heads: Sequence[str],
                     programs: Mapping[str, CompiledProgram], vocab: Vocab,
                     heldout_of: Mapping[int, bool]) -> tuple[np.ndarray, np.ndarray]:
    """IoU sums [S, 2, H] and window counts [2] of the mixtures over (window_index, ids, attn) batches."""
    used = list(dict.fromkeys(n for weights in weight_sets for mix in weights.values() for n in mix))
    sums = np.zeros((len(weight_sets), 2, len(heads)))
    counts = np.zeros(2, dtype=np.int64)
    for window_index, ids, attn in batches:
        is_held = np.array([heldout_of[int(w)] for w in window_index], dtype=bool)
        matrices = _evaluate(programs, used, ids, vocab)
        for split, mask in ((0, ~is_held), (1, is_held)):
            if not mask.any():
                continue
            counts[split] += int(mask.sum())
            for h, head in enumerate(heads):
                a = attn[mask, h]
                for s, weights in enumerate(weight_sets):
                    if head in weights:
                        mixture = sum(w * matrices[name][mask] for name, w in weights[head].items())
                        sums[s, split, h] += iou_reference_batch(a, mixture).sum()
    return sums, counts
