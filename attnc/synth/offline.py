"""Offline program synthesis: fit, emit and score programs for heads, no LLM.

`synthesize_offline` is the whole pipeline (the CLI ``attnc synth --offline``
is a thin layer over it):

1. take fit windows (a seeded subset) and their attention (given, or
   extracted with `attnc.runtime.extract.iter_attention`);
2. fit a log-linear model per head (offline_fit.py) on the features of
   offline_features.py, in chunks of heads (on a pool's workers when given:
   heads are independent, and the chunks are the same), and score a grid of generic templates
   (offline_templates.py) with the fast scorer;
3. emit each head's model as a native DSL program (offline_emit.py), named
   ``l<layer>_h<head>_w<window>`` (templates ``tpl_..._w<window>``, so runs
   at several window lengths can share one directory); heads whose rounded
   models coincide share one program; a head keeps a template
   instead when the template scores higher on the fit windows;
4. measure every program exactly (compiled with attnc.compiler, scored with
   `attnc.study.iou.iou_reference_batch`) on fit and held-out windows;
5. write one validated ``<name>.py`` per program atomically, plus
   ``offline_report.json``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from attnc.compiler import CompiledProgram
from attnc.parallel.shard_worker import FitHeadsShard, ShardWorker
from attnc.runtime.heads import Head, all_heads, check_heads, head_name
from attnc.study.iou import iou_reference_batch
from attnc.synth.offline_emit import (
    ProgramTerms, build_program, describe_terms, provenance_header, rerender, safe_token, write_atomic,
)
from attnc.synth.offline_features import FEATURES, feature_tensor
from attnc.synth.offline_fit import OBJECTIVES, FitConfig, HeadModel
from attnc.synth.offline_templates import Template, score_templates, template_grid
from attnc.window import window_features

REPORT_FILE = "offline_report.json"
#: Elements (heads x windows x n x n) fitted at once; bounds memory (~40 bytes each).
FIT_CHUNK_ELEMENTS = 12_000_000
#: Extracted attention above this size is kept as float16 (like the attention store).
EXTRACT_FLOAT32_BYTES = 2 * 2**30
#: Longer windows are fitted on this many sampled query rows per window.
ROWS_PER_WINDOW = 24


@dataclass
class OfflineReport:
    """What `synthesize_offline` produced.

    Attributes:
        model: model name; window: tokens per window.
        head_program: head "layer.head" -> name of its program.
        fit_iou, heldout_iou: head -> exact IoU of its program (held-out empty without held-out windows).
        programs: program name -> file written.
        n_fit_windows, n_heldout_windows: windows measured.
        seconds: wall time of the whole run.
    """

    model: str
    window: int
    head_program: dict[str, str]
    fit_iou: dict[str, float]
    heldout_iou: dict[str, float]
    programs: dict[str, str]
    n_fit_windows: int
    n_heldout_windows: int
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_programs(self) -> int:
        return len(self.programs)

    def mean_fit_iou(self) -> float:
        return float(np.mean(list(self.fit_iou.values()))) if self.fit_iou else float("nan")

    def mean_heldout_iou(self) -> float:
        return float(np.mean(list(self.heldout_iou.values()))) if self.heldout_iou else float("nan")

    def to_json(self) -> dict:
        return asdict(self) | {"n_programs": self.n_programs, "mean_fit_iou": self.mean_fit_iou(),
                               "mean_heldout_iou": self.mean_heldout_iou()}


@dataclass
class _Candidate:
    name: str
    terms: ProgramTerms
    heads: list[int]           # indices into the head list
    describe: str
    source: str = ""
    compiled: CompiledProgram | None = None


def default_fit_windows(window: int) -> int:
    """Fit windows used by default: fewer for long windows (cost grows with n^2)."""
    return 200 if window <= 32 else 96 if window <= 64 else 48


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"[synth offline] {message}", file=sys.stderr, flush=True)


def _split_inputs(windows, attention):
    """(fit ids, fit attention or None, held-out ids, held-out attention or None)."""
    if hasattr(windows, "split") and hasattr(windows, "ids"):
        ids, split = np.asarray(windows.ids), np.asarray(windows.split, dtype=bool)
    else:
        ids = np.asarray(windows)
        split = np.zeros(len(ids), dtype=bool)
    if ids.ndim != 2:
        raise ValueError(f"windows must be attnc Windows or int ids [N, n], got shape {ids.shape}")
    if attention is not None and len(attention) != len(ids):
        raise ValueError(f"attention has {len(attention)} windows but there are {len(ids)} windows of ids")
    fit, held = np.flatnonzero(~split), np.flatnonzero(split)
    take = (lambda idx: None) if attention is None else (lambda idx: attention[idx])
    return ids[fit], take(fit), ids[held], take(held)


def _attention_for(loaded, ids: np.ndarray, heads: list[Head], given) -> np.ndarray:
    """Attention [W, H, n, n] as given (any float dtype), else extracted (float32; float16 when large)."""
    if given is not None:
        return np.asarray(given)
    from attnc.runtime.extract import iter_attention

    n = ids.shape[1]
    dtype = np.float32 if len(ids) * len(heads) * n * n * 4 <= EXTRACT_FLOAT32_BYTES else np.float16
    return np.concatenate([attn.astype(dtype) for _, attn in iter_attention(loaded, ids, heads=heads)])


def _terms_from_model(model: HeadModel) -> ProgramTerms:
    weights = tuple((name, round(w, 2)) for name, w in sorted(model.weights.items(),
                    key=lambda kv: [f.name for f in FEATURES].index(kv[0])) if round(w, 2) != 0.0)
    groups = []
    for value, tokens in model.token_groups:
        kept = tuple(sorted(t for t in tokens if safe_token(t)))
        if kept and round(value, 2) != 0.0:
            groups.append((round(value, 2), kept))
    query_groups = []
    for feature, value, tokens in model.query_groups:
        kept = tuple(sorted(t for t in tokens if safe_token(t)))
        if kept and round(value, 2) != 0.0:
            query_groups.append((feature, round(value, 2), kept))
    profile = tuple((d, round(w, 2)) for d, w in enumerate(model.profile) if round(w, 2) != 0.0)
    return ProgramTerms(weights, tuple(groups), query_groups=tuple(query_groups), profile=profile)


def _exact_iou(compiled: CompiledProgram, ids: np.ndarray, attn: np.ndarray, vocab, batch: int = 64) -> np.ndarray:
    """Exact mean IoU of one program against attn [W, h, n, n] -> [h]."""
    total = np.zeros(attn.shape[1])
    for first in range(0, len(ids), batch):
        mats = compiled.evaluate(ids[first:first + batch], vocab)
        total += iou_reference_batch(attn[first:first + batch], mats[:, None]).sum(axis=0)
    return total / max(len(ids), 1)


def synthesize_offline(
    loaded,
    windows,
    *,
    heads: Sequence[Head] | None = None,
    out_dir: str | Path,
    max_programs: int = 1000,
    seed: int = 0,
    progress: bool = True,
    attention: np.ndarray | None = None,
    max_fit_windows: int | None = None,
    max_heldout_windows: int | None = None,
    config: FitConfig | None = None,
    templates: bool = True,
    objective: str | None = None,
    fitted_on: str | None = None,
    pool=None,
) -> OfflineReport:
    """Synthesize one readable program per head (shared where identical) and write them.

    Args:
        loaded: `attnc.runtime.models.LoadedModel` (its name and vocabulary; its
            forward pass only when `attention` is not given).
        windows: `attnc.runtime.corpus.Windows` (fit on its fit split, report
            held-out IoU on its held-out split) or int ids [N, n] (all fit).
        heads: (layer, head) pairs; all heads when None.
        out_dir: directory for the programs and ``offline_report.json``.
        max_programs: most programs written; beyond it the programs serving the
            least gain over a template are dropped (their heads use templates).
        seed: picks the fit subset.
        progress: log steps to stderr.
        attention: optional precomputed attention [N, len(heads), n, n] aligned
            with the windows' rows (skips extraction).
        max_fit_windows: fit windows used (default `default_fit_windows`).
        max_heldout_windows: held-out windows measured (default all).
        config: fit knobs.
        templates: also consider the generic template grid.
        objective: what the fit minimises, "iou", "faithful" or "both" (offline_fit.py;
            default the config's); with "faithful"/"both" a template replaces a fitted
            program only when its exact objective on the fit windows is lower.
        fitted_on: words for the programs' headers saying what text they were fitted on
            (e.g. the corpus file and its window range).
        pool: a shard pool (`attnc.parallel.workers.make_pool`) that fits the chunks of heads
            on its workers (they receive the fit inputs computed here); None: this process.
            The programs and report are the same either way.

    Returns:
        `OfflineReport` (IoUs are exact: compiled programs vs attention).

    Raises:
        ValueError: bad shapes, heads outside the model, max_programs < 1.
        PoolError: a pool worker died and could not be replaced.
    """
    start = time.perf_counter()
    timings: dict[str, float] = {}
    config = replace(config or FitConfig(), **({"objective": objective} if objective else {}))
    if config.objective not in OBJECTIVES:
        raise ValueError(f"objective {config.objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if max_programs < 1:
        raise ValueError(f"max_programs must be >= 1, got {max_programs}")
    head_list = all_heads(loaded.n_layers, loaded.n_heads) if heads is None else check_heads(
        list(heads), loaded.n_layers, loaded.n_heads)
    names = [head_name(*h) for h in head_list]
    if attention is not None and np.shape(attention)[1] != len(head_list):
        raise ValueError(f"attention has {np.shape(attention)[1]} heads, expected {len(head_list)} (one per head)")
    # fail fast: compile one program now (loads every compiler module) rather than after minutes of fitting
    build_program("preflight", ProgramTerms(weights=(("prev1", 1.0),), query_groups=(("sink", 1.0, ("a",)),)),
                  "Preflight.", [])
    fit_ids, fit_attn, held_ids, held_attn = _split_inputs(windows, attention)
    if len(fit_ids) == 0:
        raise ValueError("no fit windows: windows' fit split is empty")
    n = fit_ids.shape[1]
    rng = np.random.default_rng(seed)
    n_fit = min(len(fit_ids), max_fit_windows or default_fit_windows(n))
    chosen = np.sort(rng.choice(len(fit_ids), size=n_fit, replace=False))
    fit_ids = fit_ids[chosen]
    fit_attn = _attention_for(loaded, fit_ids, head_list, None if fit_attn is None else fit_attn[chosen])
    if max_heldout_windows is not None:
        held_ids = held_ids[:max_heldout_windows]
        held_attn = None if held_attn is None else held_attn[:max_heldout_windows]
    vocab = loaded.vocab
    values = None
    if config.objective != "iou":  # the heads' value vectors: what their attention weighs
        from attnc.study.head_outputs import head_values

        values = head_values(loaded, fit_ids, head_list)
    timings["inputs_s"] = time.perf_counter() - start

    # ---- fit --------------------------------------------------------------------------------
    t0 = time.perf_counter()
    feature_names = tuple(f.name for f in FEATURES)
    feats = feature_tensor(window_features(fit_ids, vocab), feature_names)
    rows = None
    if n > ROWS_PER_WINDOW:  # long windows: fit on a sample of query rows (IoU is a mean over rows)
        rows = np.sort(np.stack([rng.choice(n, ROWS_PER_WINDOW, replace=False) for _ in range(n_fit)]), axis=1)
        feats = np.take_along_axis(feats, rows[:, :, None, None], axis=1)
    unique_ids, key_token = np.unique(fit_ids, return_inverse=True)
    key_token = key_token.reshape(fit_ids.shape)
    token_strings = [vocab.tokens[int(i)] for i in unique_ids]
    n_rows = n if rows is None else ROWS_PER_WINDOW
    # Heads are fitted in chunks whose size depends only on the data, never on a pool: fit_heads
    # batches a chunk's heads through GEMMs whose float rounding depends on how many heads are in
    # the batch (measured on a tiny model: the same head fitted in a chunk of 8 or of 1 or 3 heads
    # differs by ~1e-7; 1 or 2 torch threads did not change it), so the same chunks on workers give
    # the same models, and so the same programs, as one process.
    chunk = max(1, FIT_CHUNK_ELEMENTS // (n_fit * n_rows * n))

    def chunk_task(first: int) -> FitHeadsShard:
        part = slice(first, first + chunk)
        attn_part = fit_attn[:, part]
        if rows is not None:
            attn_part = np.take_along_axis(attn_part, rows[:, None, :, None], axis=2)
        return FitHeadsShard(attn_part, feats, feature_names, key_token, token_strings, names[part], config, rows,
                             None if values is None else values[:, part])

    firsts = range(0, len(head_list), chunk)
    if pool is None:  # one chunk at a time, made when its turn comes (bounds memory)
        worker = ShardWorker(loaded)
        fitted = (worker.run(k, chunk_task(first)) for k, first in enumerate(firsts))
    else:
        fitted = pool.map([chunk_task(first) for first in firsts])
    by_chunk: dict[int, list[HeadModel]] = {}
    for k, chunk_models in fitted:  # in chunk order without a pool, as they finish with one
        by_chunk[k] = chunk_models
        done = [m for part in by_chunk.values() for m in part]
        _log(progress, f"fitted {len(done)}/{len(head_list)} heads "
                       f"(mean fit IoU so far {np.mean([m.fit_iou for m in done]):.3f})")
    models = [m for k in range(len(firsts)) for m in by_chunk[k]]
    del feats
    timings["fit_s"] = time.perf_counter() - t0

    # ---- candidates: fitted programs (shared when identical) and templates ---------------------
    t0 = time.perf_counter()
    by_signature: dict[tuple, _Candidate] = {}
    for index, model in enumerate(models):
        terms = _terms_from_model(model)
        sig = terms.signature()
        if sig in by_signature:
            by_signature[sig].heads.append(index)
            continue
        layer, head = head_list[index]
        by_signature[sig] = _Candidate(f"l{layer}_h{head}_w{n}", terms, [index], describe_terms(terms))
    candidates = list(by_signature.values())
    for cand in candidates:
        cand.source, _, cand.compiled = _build(cand, loaded.name, [names[i] for i in cand.heads], n, None, None,
                                               n_fit, 0)
    fit_scores: dict[str, np.ndarray] = {}
    for cand in candidates:
        fit_scores[cand.name] = _exact_iou(cand.compiled, fit_ids, fit_attn[:, cand.heads], vocab)
    head_choice: dict[int, tuple[_Candidate, float]] = {}
    for cand in candidates:
        for j, h in enumerate(cand.heads):
            head_choice[h] = (cand, float(fit_scores[cand.name][j]))

    if templates:
        grid = template_grid()
        tpl_scores = score_templates(grid, fit_attn)  # [T, H] (fast scorer; re-measured exactly below)
        best_tpl = tpl_scores.argmax(axis=0)
        tpl_cands: dict[int, _Candidate] = {}
        better = _template_better(grid, best_tpl, tpl_scores, head_choice, config.objective, fit_ids, fit_attn,
                                  values, vocab)
        for h in range(len(head_list)):
            if better[h]:
                t = int(best_tpl[h])
                if t not in tpl_cands:
                    tpl = grid[t]
                    tpl_cands[t] = _Candidate(f"{tpl.name}_w{n}", ProgramTerms(mixture=tpl.dsl_terms()), [],
                                              "mixture of " + ", ".join(f"{w:g} {p}" for w, p in tpl.terms))
                _reassign(head_choice, h, tpl_cands[t], float(tpl_scores[t, h]))
        for cand in tpl_cands.values():
            cand.source, _, cand.compiled = _build(cand, loaded.name, [names[i] for i in cand.heads], n, None,
                                                   None, n_fit, 0)
    timings["emit_s"] = time.perf_counter() - t0

    # ---- keep at most max_programs --------------------------------------------------------------
    in_use: dict[str, _Candidate] = {}
    for h, (cand, _) in head_choice.items():
        in_use[cand.name] = cand
    if len(in_use) > max_programs:
        _prune(head_choice, in_use, max_programs, fit_ids, fit_attn, vocab, n)

    # ---- exact scores, then write -------------------------------------------------------------
    t0 = time.perf_counter()
    held_attn_arr = None
    if len(held_ids):
        held_attn_arr = _attention_for(loaded, held_ids, head_list, held_attn)
    fit_iou: dict[str, float] = {}
    heldout_iou: dict[str, float] = {}
    programs: dict[str, str] = {}
    out_dir = Path(out_dir)
    for cand in in_use.values():
        heads_here = sorted(h for h, (c, _) in head_choice.items() if c is cand)
        fit_vals = _exact_iou(cand.compiled, fit_ids, fit_attn[:, heads_here], vocab)
        held_vals = (_exact_iou(cand.compiled, held_ids, held_attn_arr[:, heads_here], vocab)
                     if held_attn_arr is not None else None)
        for j, h in enumerate(heads_here):
            fit_iou[names[h]] = float(fit_vals[j])
            if held_vals is not None:
                heldout_iou[names[h]] = float(held_vals[j])
        best = int(np.argmax(fit_vals))
        source = _build(cand, loaded.name, [names[h] for h in heads_here], n, float(fit_vals[best]),
                        None if held_vals is None else float(held_vals[best]), n_fit, len(held_ids), final=True,
                        objective=config.objective, fitted_on=fitted_on)
        programs[cand.name] = str(write_atomic(out_dir, f"{cand.name}.py", source))
    timings["score_write_s"] = time.perf_counter() - t0
    report = OfflineReport(
        model=loaded.name, window=n,
        head_program={names[h]: c.name for h, (c, _) in sorted(head_choice.items())},
        fit_iou=fit_iou, heldout_iou=heldout_iou, programs=programs,
        n_fit_windows=n_fit, n_heldout_windows=int(len(held_ids)),
        seconds=time.perf_counter() - start, timings=timings,
    )
    write_atomic(out_dir, REPORT_FILE, json.dumps(report.to_json(), indent=2) + "\n")
    _log(progress, f"{report.n_programs} programs for {len(names)} heads in {report.seconds:.0f}s; "
                   f"mean fit IoU {report.mean_fit_iou():.3f}, held-out {report.mean_heldout_iou():.3f}")
    return report


def _exact_objective(compiled: CompiledProgram, ids: np.ndarray, attn: np.ndarray, values: np.ndarray | None,
                     objective: str, vocab) -> np.ndarray:
    """Exact per-head loss (lower is better) of one program against attn [W, h, n, n] -> [h]."""
    import torch

    from attnc.synth.offline_fit import output_error

    iou = _exact_iou(compiled, ids, attn, vocab)
    if objective == "iou":
        return 1.0 - iou
    p = torch.from_numpy(np.asarray(compiled.evaluate(ids, vocab), dtype=np.float32))[:, None].expand(attn.shape)
    error = output_error(torch.from_numpy(np.asarray(attn, dtype=np.float32)).transpose(0, 1),
                         p.transpose(0, 1), torch.from_numpy(values).transpose(0, 1)).numpy()
    return error if objective == "faithful" else error + (1.0 - iou)


def _template_better(grid, best_tpl, tpl_scores, head_choice, objective, fit_ids, fit_attn, values, vocab) -> list[bool]:
    """Per head: does its best template (by IoU) beat its fitted program on the objective?"""
    if objective == "iou":
        return [tpl_scores[best_tpl[h], h] > head_choice[h][1] + 1e-9 for h in range(len(head_choice))]
    loss = np.zeros((2, len(head_choice)))
    for cand in {id(c): c for c, _ in head_choice.values()}.values():
        loss[0, cand.heads] = _exact_objective(cand.compiled, fit_ids, fit_attn[:, cand.heads],
                                               values[:, cand.heads], objective, vocab)
    for t in np.unique(best_tpl):
        heads = np.flatnonzero(best_tpl == t)
        cand = _Candidate("tpl_probe", ProgramTerms(mixture=grid[t].dsl_terms()), [], "")
        _, _, compiled = build_program(cand.name, cand.terms, "Template probe.", [])
        loss[1, heads] = _exact_objective(compiled, fit_ids, fit_attn[:, heads], values[:, heads], objective, vocab)
    return [bool(loss[1, h] < loss[0, h] - 1e-9) for h in range(len(head_choice))]


def _reassign(head_choice: dict, h: int, cand: _Candidate, score: float) -> None:
    old = head_choice[h][0]
    if h in old.heads:
        old.heads.remove(h)
    cand.heads.append(h)
    head_choice[h] = (cand, score)


def _build(cand: _Candidate, model: str, heads: list[str], window: int, fit_iou: float | None,
           heldout_iou: float | None, n_fit: int, n_heldout: int, final: bool = False, objective: str = "iou",
           fitted_on: str | None = None):
    layerheads = ", ".join(heads[:6]) + (f" and {len(heads) - 6} more" if len(heads) > 6 else "")
    doc = (f"Head(s) {layerheads or '-'} of {model}: {cand.describe}. "
           "Fitted offline (log-linear attention model)." if not cand.terms.mixture else
           f"Template: {cand.describe}.")
    header = provenance_header(model, heads, window, fit_iou if fit_iou is not None else float("nan"),
                               heldout_iou, n_fit, n_heldout, objective, fitted_on)
    if final:
        return rerender(cand.name, cand.terms, doc, header, cand.source)
    return build_program(cand.name, cand.terms, doc, header)


def _prune(head_choice: dict, in_use: dict[str, _Candidate], max_programs: int, fit_ids, fit_attn, vocab,
           window: int) -> None:
    """Drop the programs whose heads lose least by falling back to a uniform-causal template."""
    fallback = Template(((1.0, "uniform"),))
    fb = _Candidate(f"{fallback.name}_w{window}", ProgramTerms(mixture=fallback.dsl_terms()), [],
                    "uniform over earlier tokens")
    fb.source, _, fb.compiled = build_program(fb.name, fb.terms, "Uniform over earlier tokens.", [])
    fb_scores = _exact_iou(fb.compiled, fit_ids, fit_attn, vocab)
    gains = {name: sum(head_choice[h][1] - fb_scores[h] for h in c.heads) for name, c in in_use.items()}
    keep = set(sorted(gains, key=lambda k: -gains[k])[:max_programs - 1])
    for name in list(in_use):
        if name not in keep:
            for h in list(in_use[name].heads):
                _reassign(head_choice, h, fb, float(fb_scores[h]))
            del in_use[name]
    in_use[fb.name] = fb
