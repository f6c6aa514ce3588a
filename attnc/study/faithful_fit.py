"""The study's faithful fit: per head, a mixture fitted to what the head writes, recorded in fits.json.

Stage 4b of `attnc study` (and the start of `attnc tune`): each head's
candidates are its best programs by fit IoU, the programs of its IoU mixture
and the content-free programs; `attnc.study.head_outputs.fit_output_mixtures`
picks the convex mixture of them with the least output error on fit windows.
Each head of fits.json gains a ``faithful`` entry::

    "faithful": {"programs": [...], "weights": [...], "objective": "output",
                 "candidates": [...], "output_error": e,
                 "output_error_mixture": e_iou_mixture, "output_error_best": e_best,
                 "iou_fit": x, "iou_heldout": y}

so IoU and output error can be compared for the same head and mixture.
"""

from __future__ import annotations

import copy
from typing import Mapping

import numpy as np

from attnc.runtime.heads import Head, head_name
from attnc.runtime.replacement import ReplacementMap
from attnc.study.baselines import CONTENT_FREE_PROGRAMS


def faithful_candidates(table, fits: Mapping, n_candidates: int) -> dict[str, list[str]]:
    """Per head: its top `n_candidates` programs by fit IoU, its IoU mixture's, and the content-free ones."""
    from attnc.study.fitting import top_candidates

    top = top_candidates(table, n_candidates)
    content_free = [name for name in CONTENT_FREE_PROGRAMS if name in table.programs]
    out = {}
    for head in table.heads:
        mixture = (fits["heads"].get(head) or {}).get("mixture") or {}
        out[head] = list(dict.fromkeys([*top[head], *mixture.get("programs", []), *content_free]))
    return out


def faithful_fits(loaded, store, library, table, fits: Mapping, rows: np.ndarray, *, n_candidates: int = 6,
                  batch_size: int = 8, progress: bool = False, pool=None) -> tuple[dict, dict]:
    """Fit every head's output mixture on fit windows `rows`; (fits document with ``faithful``, summary).

    IoUs of the new mixtures are exact, over every stored fit and held-out window.
    """
    from attnc.study.head_outputs import fit_output_mixtures
    from attnc.study.mixture_run import mixture_ious, store_heldout

    candidates = faithful_candidates(table, fits, n_candidates)
    found = fit_output_mixtures(loaded, store, library, candidates, [int(r) for r in rows],
                                batch_size=batch_size, progress=progress)
    heldout, _ = store_heldout(store)
    (ious,), _ = mixture_ious(store, [{head: dict(zip(f.programs, f.weights)) for head, f in found.items()}],
                              library.programs, loaded.vocab, heldout, pool=pool,
                              library_dir=getattr(library, "path", None))
    document = copy.deepcopy(dict(fits))
    position = {head: h for h, head in enumerate(store.head_names)}
    for head, fit in found.items():
        entry = document["heads"][head]
        mixture = entry.get("mixture") or {"programs": [entry["program"]], "weights": [1.0]}
        entry["faithful"] = {
            "programs": list(fit.programs), "weights": list(fit.weights), "objective": "output",
            "candidates": list(fit.candidates), "output_error": fit.output_error,
            "output_error_mixture": fit.error_of(dict(zip(mixture["programs"], mixture["weights"]))),
            "output_error_best": fit.candidate_errors[entry["program"]],
            "iou_fit": float(ious[0, position[head]]), "iou_heldout": float(ious[1, position[head]]),
        }
    rows_of = [e["faithful"] for e in document["heads"].values()]
    summary = {
        "n_windows": int(len(rows)),
        "mean_output_error": float(np.mean([r["output_error"] for r in rows_of])),
        "mean_output_error_iou_mixture": float(np.mean([r["output_error_mixture"] for r in rows_of])),
        "mean_output_error_best_program": float(np.mean([r["output_error_best"] for r in rows_of])),
        "mean_iou_heldout": float(np.mean([r["iou_heldout"] for r in rows_of])),
    }
    return document, summary


def tune_candidates(fits: Mapping, start: ReplacementMap) -> dict[Head, list[str]]:
    """Per head of `start`, the programs its faithful fit chose from (tuning may re-weigh all of them)."""
    out = {}
    for key in start.heads:
        entry = fits["heads"][head_name(*key)]
        out[key] = list((entry.get("faithful") or {}).get("candidates") or [n for n, _ in start.heads[key]])
    return out
