"""The study's stages, each a function of its inputs that writes one cache directory.

Every function here takes the stage's output directory first, then exactly
what its output depends on (the same things its cache key hashes, see
`attnc.study.study_run`), writes its files into the directory and returns the
stage's record (a JSON-able summary; the executor adds the seconds). None reads
the study's configuration or another stage's cache entry: `run_study` wires
them, `attnc.study.executor.StageExecutor` runs them. The window-parallel ones
(`extract_stage`, `score_stage`, and the exact-IoU passes of `fit_stage` and
`faithful_stage`) take the executor's shard pool.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

#: Replacement orders: what each ranks heads by.
ORDER_CRITERIA = {"measured": "measured_loss_impact", "kl": "measured_kl", "loss": "estimated_loss_impact",
                  "iou": "heldout_iou"}
#: The orders that measure each head replaced alone (the rest estimate or read IoU), and what they measure.
MEASURED_ORDERS = {"measured": "loss", "kl": "kl"}


def compile_stage(directory: Path, program_paths: Sequence[Path], backend: str) -> dict:
    """Compile the program files into ``directory/lib``.

    The stage runs only when unfinished, so a ``lib`` already there is a run's torn
    output (interrupted mid-compile): it is this stage's own and is compiled afresh.
    """
    from attnc.compiler.library_build import build_library

    lib = directory / "lib"
    if lib.exists():
        shutil.rmtree(lib)
    built = build_library(list(program_paths), lib, backend=backend)
    return {"n_programs": len(built.records) - len(built.failed),
            "failed": {r.name: "; ".join(r.messages)[:500] for r in built.failed}}


def extract_stage(directory: Path, loaded, windows, *, batch_size: int, progress: bool, pool=None) -> dict:
    """Every head's attention on every window into the store ``directory/store`` (resumable by shard)."""
    from attnc.runtime.extract import extract_attention

    store = extract_attention(loaded, windows.ids, store_dir=directory / "store", batch_size=batch_size,
                              window_indices=np.arange(len(windows)), corpus_sha256=windows.corpus_sha256,
                              windows_info=windows.describe(), progress=progress, pool=pool)
    size = sum(p.stat().st_size for p in store.directory.iterdir())
    return {"n_windows": store.n_windows, "bytes": size}


def score_stage(directory: Path, store, library, vocab, *, progress: bool, pool=None) -> dict:
    """Program x head IoU on both splits into ``directory/scores.npz`` (resumable by shard on a pool)."""
    from attnc.study.mixture_run import store_heldout_by_window
    from attnc.study.score_run import score_library

    heldout = store_heldout_by_window(store)
    if pool is not None:
        from attnc.study.score_run import score_store_shards

        run = score_store_shards(pool, store, library.path, heldout, progress=progress,
                                 checkpoint=directory / "shards")
    else:
        batches = store.iter_windows()
        if progress:
            batches = progress_bar(batches, store.n_windows, "score")
        run = score_library(batches, library.programs, vocab, store.head_names, heldout)
    run.table.save(directory / "scores.npz")
    if (directory / "shards").is_dir():
        import shutil

        shutil.rmtree(directory / "shards")  # merged into scores.npz
    return {"failed": run.failures, "n_programs": len(run.table.programs)}


def fit_stage(directory: Path, store, table, library, vocab, *, model_name: str, window: int, mixtures: int,
              candidates: int, search_windows: int, seed: int, tolerance: float, pool=None) -> dict:
    """Best program and mixture per head into ``directory/fits.json``; the selected library in the record."""
    from attnc.study.fits_file import fits_from_results, write_fits
    from attnc.study.fitting import best_single_fits
    from attnc.study.mixture_run import fit_store_mixtures
    from attnc.study.selection import select_library

    singles = best_single_fits(table)
    fitted_mixtures = None
    if mixtures >= 2:
        fitted_mixtures = fit_store_mixtures(store, table, library.programs, vocab, k=mixtures,
                                             n_candidates=candidates, search_windows=search_windows,
                                             seed=seed, pool=pool, library_dir=library.path).mixtures
    fits = fits_from_results(model_name, window, table.n_windows_fit, table.n_windows_heldout, singles,
                             mixtures=fitted_mixtures)
    write_fits(fits, directory / "fits.json")
    selection = select_library(table, tolerance=tolerance)
    return {"selected_programs": list(selection.programs), "selected_value": selection.value,
            "full_value": selection.full_value}


def faithful_stage(directory: Path, loaded, store, library, table, fits: dict, rows: np.ndarray, *,
                   candidates: int, batch_size: int, progress: bool, pool=None) -> dict:
    """Per head, the candidates' mixture whose output is closest to the head's, into ``directory/fits.json``."""
    from attnc.study.faithful_fit import faithful_fits

    document, summary = faithful_fits(loaded, store, library, table, fits, rows, n_candidates=candidates,
                                      batch_size=batch_size, progress=progress, pool=pool)
    (directory / "fits.json").write_text(json.dumps(document, indent=2))
    return {"summary": summary, "windows": [int(r) for r in rows]}


def order_stage(directory: Path, loaded, library, target, ids: np.ndarray, rows: np.ndarray, *, criterion: str,
                iou: dict[str, float] | None, progress: bool, measure: int | None = None) -> dict:
    """The order heads are replaced in: by held-out IoU (`iou` given), or by each head's cost on
    windows `ids` (its change of loss estimated or measured, or its measured KL; ORDER_CRITERIA).

    With `measure` (a measured criterion, fewer than all heads), only the `measure` heads the
    first-order estimate finds cheapest are measured (`screened_impact`); ``values`` then holds
    measured values for them and loss estimates for the rest, ``measured_heads`` says which.
    """
    from attnc.study.attribution import loss_impact, measured_impact, order_by_iou, screened_impact

    if criterion == "iou":
        return {"order": order_by_iou(iou), "criterion": ORDER_CRITERIA["iou"], "values": iou}
    if criterion in MEASURED_ORDERS and measure is not None and measure < len(target):
        order, measured, estimated = screened_impact(loaded, library, target, ids, measure=measure,
                                                     progress=progress, criterion=MEASURED_ORDERS[criterion])
        return {"order": order, "criterion": ORDER_CRITERIA[criterion],
                "values": {**estimated.impact, **measured.impact}, "measured_heads": sorted(measured.impact),
                "estimated_values": estimated.impact,
                "impact_windows": [int(r) for r in rows], "impact_tokens": measured.tokens}
    if criterion in MEASURED_ORDERS:
        impact = measured_impact(loaded, library, target, ids, progress=progress, criterion=MEASURED_ORDERS[criterion])
    else:
        impact = loss_impact(loaded, library, target, ids, progress=progress)
    return {"order": impact.order(), "criterion": ORDER_CRITERIA[criterion], "values": impact.impact,
            "impact_windows": [int(r) for r in rows], "impact_tokens": impact.tokens}


def tune_stage(directory: Path, loaded, library, start, candidates, ids: np.ndarray, rows: np.ndarray, *,
               steps: int, lr: float, progress: bool, constants: bool = False, constants_lr: float = 0.03,
               constants_min_weight: float = 0.2, note: str = "") -> dict:
    """Mixture weights of the heads in `start` tuned jointly to the stock model's next-token distribution.

    With `constants`, each head's main programs' constants too: the record's ``tuned``
    mixtures then name new programs, whose DSL sources are in ``sources``.
    """
    from attnc.runtime.heads import head_name
    from attnc.study.tune_run import constant_programs
    from attnc.study.tuning import tune_mixtures, tuned_program_sources

    per_head, skipped = constant_programs(library, start, constants_min_weight) if constants else ({}, {})
    result = tune_mixtures(loaded, library, start, ids, candidates=candidates, constants=per_head, steps=steps,
                           lr=lr, constants_lr=constants_lr, progress=progress)
    mixtures, sources = tuned_program_sources(result, {p.name: p for ps in per_head.values() for p in ps}, note)
    return {**result.to_json(), "windows": [int(r) for r in rows], "not_tunable": skipped,
            "tuned": {head_name(*k): [[n, w] for n, w in m] for k, m in mixtures.items()}, "sources": sources}


def means_stage(directory: Path, loaded, ids: np.ndarray, rows: np.ndarray, *, batch_size: int) -> dict:
    """Every head's mean output on fit windows `ids`, into ``directory/means.npz`` (mean ablation)."""
    from attnc.study.head_outputs import head_means

    ablation = head_means(loaded, ids, batch_size=batch_size)
    np.savez(directory / "means.npz", **{f"{l}.{h}": v for (l, h), v in ablation.means.items()})
    return {"windows": [int(r) for r in rows]}


def replaced_sweep_stage(directory: Path, loaded, library, replacement, ids: np.ndarray, *, fraction: float,
                         batch_size: int, on_program_error: str, progress: bool) -> dict:
    """Held-out perplexity with `replacement` installed (one sweep point)."""
    from attnc.study.sweep import replaced_perplexity

    return replaced_perplexity(loaded, library, replacement, ids, fraction=fraction, batch_size=batch_size,
                               on_program_error=on_program_error, progress=progress).to_json()


def ablated_sweep_stage(directory: Path, loaded, ablation, ids: np.ndarray, *, fraction: float, batch_size: int,
                        progress: bool) -> dict:
    """Held-out perplexity with the heads of `ablation` mean-ablated (one sweep point)."""
    from attnc.study.baselines import ablated_perplexity

    return ablated_perplexity(loaded, ablation, ids, fraction=fraction, batch_size=batch_size, progress=progress)


def qa_stage(directory: Path, loaded, library, replacement, task: str, path: Path, *, limit: int | None,
             on_program_error: str, progress: bool) -> dict:
    """QA accuracy on `task` with `replacement` installed."""
    from attnc.study.sweep import replaced_qa

    return replaced_qa(loaded, library, replacement, task, path, limit=limit, on_program_error=on_program_error,
                       progress=progress)


def progress_bar(batches, total: int, label: str):
    """Yield `batches` (window_index, ids, attn) with a tqdm bar counting windows."""
    import sys

    from tqdm import tqdm

    with tqdm(total=total, unit="window", desc=label, file=sys.stderr) as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch[0]))


def stage(fn: Callable, *args, **kwargs) -> Callable[[Path, object], dict]:
    """``compute(directory, pool)`` for a stage function that takes no pool."""
    return lambda directory, pool: fn(directory, *args, **kwargs)


def pooled(fn: Callable, *args, **kwargs) -> Callable[[Path, object], dict]:
    """``compute(directory, pool)`` for a window-parallel stage function (it gets the pool)."""
    return lambda directory, pool: fn(directory, *args, pool=pool, **kwargs)
