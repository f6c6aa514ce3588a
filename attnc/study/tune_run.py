"""`attnc tune`: tune existing fits' mixture weights on the model's loss, and report them on held-out windows.

The heads named are tuned jointly (`attnc.study.tuning.tune_mixtures`) on fit
windows, starting from their faithful mixture (else their IoU mixture, else
their best program) and free to re-weigh the candidates their faithful fit
chose from plus the library's content-free programs. The result is the same
programs with new weights: a fits.json whose tuned heads gain a ``tuned``
entry (`ReplacementMap.from_fits(use="faithful")` prefers it), re-scored on
held-out windows (perplexity with all tuned heads replaced, before and after;
each head's IoU against its recorded attention, before and after).

With ``constants=True`` the main programs of each head (weight >=
`CONSTANTS_MIN_WEIGHT` in its start mixture) have their numeric constants
tuned as well (attnc.study.program_constants); the new programs are DSL
source (returned, and written by the CLI), re-validated and compiled, and the
held-out figures are measured with them.
"""

from __future__ import annotations

import copy
import math
from typing import Mapping, Sequence

import numpy as np

from attnc.runtime.heads import head_name, parse_head
from attnc.runtime.overlay import OverlaySource
from attnc.runtime.replacement import ReplacementMap
from attnc.study.attribution import replaced_nll
from attnc.study.baselines import CONTENT_FREE_PROGRAMS
from attnc.study.faithful_fit import tune_candidates
from attnc.study.program_constants import parametric_programs
from attnc.study.tuning import TuneError, tune_mixtures, tuned_program_sources

#: A program's constants are tuned for a head when it carries at least this weight in the start mixture.
CONSTANTS_MIN_WEIGHT = 0.2


def constant_programs(library, start: ReplacementMap, min_weight: float = CONSTANTS_MIN_WEIGHT
                      ) -> tuple[dict, dict[str, str]]:
    """Per head, the ParametricPrograms of its main programs; and program -> why it is not tunable."""
    names = sorted({n for mixture in start.heads.values() for n, w in mixture if w >= min_weight})
    programs, skipped = parametric_programs({n: library.source_text(n) for n in names}, library.vocab)
    per_head = {key: [programs[n] for n, w in mixture if w >= min_weight and n in programs]
                for key, mixture in start.heads.items()}
    return {k: v for k, v in per_head.items() if v}, skipped


def parse_head_list(text: str) -> list[str]:
    """"3.1,4.0" -> ["3.1", "4.0"]; a head named twice is an error."""
    heads = [h.strip() for h in text.split(",") if h.strip()]
    seen: set[str] = set()
    for head in heads:
        name = head_name(*parse_head(head))
        if name in seen:
            raise TuneError(f"head {name} is named twice in --heads")
        seen.add(name)
    if not heads:
        raise TuneError("--heads names no head")
    return [head_name(*parse_head(h)) for h in heads]


def _heldout_nll(loaded, source, replacement: ReplacementMap, ids: np.ndarray, batch_size: int) -> float:
    """Mean next-token NLL on `ids` with every head of `replacement` replaced (none: the stock model)."""
    return replaced_nll(loaded, source, replacement, ids, batch_size=batch_size) / (ids.shape[0] * (ids.shape[1] - 1))


def _heldout_iou(loaded, source, maps: Sequence[ReplacementMap], ids: np.ndarray, batch_size: int) -> list[dict]:
    """Per map, head -> mean IoU of its mixture against the model's attention on `ids`."""
    from attnc.runtime.extract import iter_attention
    from attnc.study.iou import iou_reference_batch

    heads = list(maps[0].heads)
    names = list(dict.fromkeys(n for m in maps for mixture in m.heads.values() for n, _ in mixture))
    sums = [dict.fromkeys(heads, 0.0) for _ in maps]
    for rows, attn in iter_attention(loaded, ids, heads=heads, batch_size=batch_size):
        got = source.matrices(names, ids[rows])
        for position, key in enumerate(heads):
            for m, replacement in enumerate(maps):
                mixed = sum(w * np.asarray(got[n], dtype=np.float64) for n, w in replacement.heads[key])
                sums[m][key] += float(iou_reference_batch(attn[:, position], mixed).sum())
    return [{head_name(*k): v / len(ids) for k, v in s.items()} for s in sums]


def run_tune(loaded, library, fits: Mapping, heads: Sequence[str], fit_ids: np.ndarray, heldout_ids: np.ndarray,
             *, steps: int = 30, lr: float = 0.1, batch_size: int = 4, progress: bool = False,
             constants: bool = False, constants_lr: float = 0.03, note: str = "") -> tuple[dict, dict, dict[str, str]]:
    """Tune `heads` of `fits` jointly on `fit_ids`; (new fits document, report, new program sources).

    The fits document and report are JSON-ready; the sources (name -> DSL) are the
    programs whose constants were tuned (empty unless `constants`), which the new
    fits name; `note` goes into their headers (what they were tuned on).

    Raises:
        TuneError: no fit windows, no heads; ReplacementError: a head not in the fits file.
    """
    start = ReplacementMap.from_fits(fits, heads=list(heads), use="faithful")
    start.validate_for(loaded)
    content_free = [n for n in CONTENT_FREE_PROGRAMS if n in library.names]
    candidates = {key: list(dict.fromkeys([*names, *content_free]))
                  for key, names in tune_candidates(fits, start).items()}
    per_head, skipped = constant_programs(library, start) if constants else ({}, {})
    result = tune_mixtures(loaded, library, start, fit_ids, candidates=candidates, constants=per_head, steps=steps,
                           lr=lr, constants_lr=constants_lr, batch_size=batch_size, progress=progress)
    by_name = {p.name: p for ps in per_head.values() for p in ps}
    mixtures, sources = tuned_program_sources(result, by_name, note or f"tuned by attnc tune on {len(fit_ids)} fit windows")
    tuned = ReplacementMap(mixtures)
    source = OverlaySource.extending(library, sources)
    document = copy.deepcopy(dict(fits))
    for key, mixture in tuned.heads.items():
        document["heads"][head_name(*key)]["tuned"] = {"programs": [n for n, _ in mixture],
                                                       "weights": [w for _, w in mixture],
                                                       "objective": "kl+constants" if sources else "kl"}
    report = {"heads": [head_name(*k) for k in start.heads], **result.to_json(),
              "programs_written": sorted(sources), "not_tunable": skipped}
    if len(heldout_ids):
        stock = _heldout_nll(loaded, library, ReplacementMap({}), heldout_ids, batch_size)
        before = _heldout_nll(loaded, library, start, heldout_ids, batch_size)
        after = _heldout_nll(loaded, source, tuned, heldout_ids, batch_size)
        iou_before, iou_after = _heldout_iou(loaded, source, [start, tuned], heldout_ids, batch_size)
        report["heldout"] = {
            "n_windows": int(len(heldout_ids)), "tokens": int(heldout_ids.shape[0] * (heldout_ids.shape[1] - 1)),
            "ppl_stock": math.exp(stock), "ppl_start": math.exp(before), "ppl_tuned": math.exp(after),
            "ppl_increase_pct_start": 100 * (math.exp(before - stock) - 1),
            "ppl_increase_pct_tuned": 100 * (math.exp(after - stock) - 1),
            "mean_iou_start": float(np.mean(list(iou_before.values()))),
            "mean_iou_tuned": float(np.mean(list(iou_after.values()))),
            "iou_start": iou_before, "iou_tuned": iou_after,
        }
    return document, report, sources
