"""Honest baselines for the replacement sweep: what programs must beat to be worth their content.

- ``content_free``: each head replaced by the best (fit IoU) of four programs that
  read no token: uniform causal, first token, self, previous token. They live
  in ``attnc/study/content_free/`` as ordinary DSL programs and are compiled
  into every study's library, so they are scored, fitted and evaluated exactly
  like the user's programs (and fitted mixtures may use them).
- ``mean_ablation``: each head's output replaced by its mean output over fit
  windows (`attnc.study.attribution.MeanAblation`).

Each method gets its own measured head order (the cheapest heads for that
method) and is evaluated on the same held-out windows and fractions as the
programs: the fair comparison at a fixed budget of replaced heads.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from attnc.runtime.heads import Head, parse_head
from attnc.runtime.replacement import ReplacementMap
from attnc.study.attribution import MeanAblation

#: The content-free programs' sources (compiled into every study's library).
CONTENT_FREE_DIR = Path(__file__).resolve().parent / "content_free"
CONTENT_FREE_PROGRAMS = ("content_free_uniform", "content_free_first", "content_free_self", "content_free_previous")
#: Baseline methods a study can run, beside the programs themselves.
BASELINES = ("content_free", "mean_ablation")


def content_free_map(table) -> ReplacementMap:
    """Per head, the content-free program with the best fit IoU (from a ScoreTable holding them)."""
    rows = [table.programs.index(name) for name in CONTENT_FREE_PROGRAMS if name in table.programs]
    if not rows:
        raise ValueError(f"the score table has none of the content-free programs {', '.join(CONTENT_FREE_PROGRAMS)}")
    best = np.asarray(rows)[table.iou_fit[rows].argmax(axis=0)]
    return ReplacementMap.from_programs({head: table.programs[p] for head, p in zip(table.heads, best)})


def ablation_prefix(order: Sequence[str], ablation: MeanAblation, count: int) -> MeanAblation:
    """The first `count` heads of `order`, mean-ablated."""
    keys: list[Head] = [parse_head(head) for head in order[:count]]
    return MeanAblation({key: ablation.means[key] for key in keys})


def ablated_perplexity(loaded, ablation: MeanAblation, ids: np.ndarray, *, fraction: float,
                       batch_size: int = 8, progress: bool = True) -> dict:
    """Held-out perplexity with the heads of `ablation` mean-ablated (a SweepPoint's JSON)."""
    from attnc.runtime.heads import head_name
    from attnc.study.sweep import SweepPoint

    from attnc.study.attribution import replaced_nll

    started = time.perf_counter()
    ids = np.asarray(ids, dtype=np.int64)
    nll = replaced_nll(loaded, None, ablation, ids, batch_size=batch_size, progress=progress)
    tokens = int(ids.shape[0] * (ids.shape[1] - 1))
    return SweepPoint(fraction=float(fraction), n_heads_replaced=len(ablation), ppl=math.exp(nll / tokens),
                      tokens_evaluated=tokens, n_windows=int(len(ids)), seconds=time.perf_counter() - started,
                      heads=[head_name(*key) for key in ablation.means]).to_json()
