"""`attnc study`: the paper's experiment end to end, one cached stage at a time.

Stages (each output lives in ``<cache>/<stage>-<key>/``, keyed by the hash of
what it depends on; see `attnc.study.stage_cache`):

1. compile  the program files into a library           key: sources, backend
2. extract  every head's attention on every window     key: model, window ids
3. score    program x head IoU on fit / held-out       key: compile, extract
4. fit      best program and mixture per head; the     key: score, fit settings
            selected library
4b. faithful per head, the mixture of candidates whose   key: fit, extract, settings
            output (P V_h) is closest to the head's
            (`--use faithful`, the default)
5. order    the order heads are replaced in (measured  key: fit, order settings
            loss impact on fit windows, or held-out IoU)
5b. tune    the first --tune-fraction of that order:  key: order, tune settings
            their mixture weights fitted jointly to
            the stock model's next-token distribution
6. sweep    held-out perplexity per fraction replaced  key: model, windows, heads
7. qa       QA accuracy at 0 and 25% replaced          key: model, task file, heads

Baselines (`--baselines`, `attnc.study.baselines`): content-free programs and
mean ablation, each with its own measured order (stage 5) and sweep (stage 6)
on the same windows and fractions, so the programs are judged against them.

Bad input (empty corpus, a window longer than the model's context, no valid
program, no held-out window) is reported before any long stage starts.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from attnc.runtime.replacement import USES
from attnc.study.baselines import BASELINES
from attnc.study.stage_cache import StageCache, StageEntry
from attnc.study.sweep import DEFAULT_FRACTIONS

QA_TASKS = ("piqa", "socialiqa")
#: Replacement orders: what each ranks heads by.
ORDER_CRITERIA = {"measured": "measured_loss_impact", "loss": "estimated_loss_impact", "iou": "heldout_iou"}
#: Fit windows the loss impact is measured (exactly, per head) or estimated (gradient) on.
DEFAULT_IMPACT_WINDOWS = {"measured": 4, "loss": 32, "iou": 0}
#: Fractions at which QA accuracy is measured.
QA_FRACTIONS = (0.0, 0.25)


class StudyError(ValueError):
    """Bad study input, found before the long stages start."""


@dataclass
class StudyConfig:
    """Everything `run_study` needs; the CLI fills it from its options.

    Attributes:
        programs: program files or directories (searched recursively).
        out: the report directory; cache: stage outputs (default ``out/cache``).
        order: "measured" (each head's loss change when replaced alone, on a few
            fit windows), "loss" (its first-order estimate) or "iou" (held-out IoU).
        use: "faithful" (the mixture fitted to the head's output, then tuned on the
            model's loss), "mixture" (the mixture fitted on IoU) or "best".
        mixtures: most programs per mixture (< 2: no mixtures).
        impact_windows: fit windows the loss impact is measured on (default per order).
        ppl_windows: at most this many held-out windows per sweep point (all when None).
        qa: task -> jsonl file; qa_limit: items per task.
        faithful_windows: fit windows the output fit runs on; faithful_candidates: top
            programs per head (by fit IoU) it mixes, beside the content-free ones.
        tune_fraction: share of heads (the first of the order) tuned jointly on the
            model's loss; tune_steps, tune_windows, tune_lr: the tuning run (0 steps: none);
            tune_constants: also tune each head's main programs' constants (new programs,
            a private copy per head, at learning rate tune_constants_lr, for programs
            with at least tune_constants_min_weight in the head's start mixture).
        baselines: baseline methods swept beside the programs (see attnc.study.baselines).
    """

    corpus: Path
    out: Path
    programs: list[Path] = field(default_factory=lambda: [Path("programs")])
    model: str = "smollm2-135m"
    window: int = 128
    mode: str = "fixed"
    text_field: str = "text"
    heldout_fraction: float = 0.5
    max_windows: int | None = None
    skip_windows: int = 0
    seed: int = 0
    batch_size: int = 8
    backend: str = "auto"
    mixtures: int = 3
    mixture_candidates: int = 6
    mixture_search_windows: int = 32
    tolerance: float = 0.01
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    order: str = "measured"
    use: str = "faithful"
    faithful_windows: int = 32
    faithful_candidates: int = 6
    tune_fraction: float = 0.25
    tune_steps: int = 30
    tune_windows: int = 8
    tune_lr: float = 0.1
    tune_constants: bool = True
    tune_constants_lr: float = 0.03
    tune_constants_min_weight: float = 0.2
    baselines: tuple[str, ...] = BASELINES
    impact_windows: int | None = None
    ppl_windows: int | None = None
    qa: dict[str, Path] = field(default_factory=dict)
    qa_limit: int | None = 500
    on_program_error: str = "neural"
    plot_heads: int = 3
    cache: Path | None = None
    progress: bool = True


@dataclass
class StudyRun:
    """Where a study's outputs are and its headline numbers (results.json holds the rest)."""

    results: dict
    out: Path


class _Stages:
    """Runs stages through the cache, timing each and telling the user what happens."""

    def __init__(self, cache: StageCache, say: Callable[[str], None]):
        self.cache = cache
        self.say = say
        self.seconds: dict[str, float] = {}
        self.computed: dict[str, float] = {}  # what each stage cost when it ran (cached or not)

    def run(self, stage: str, label: str, inputs: dict, compute: Callable[[StageEntry], dict]) -> StageEntry:
        entry = self.cache.entry(stage, inputs)
        started = time.perf_counter()
        if entry.done:
            self.say(f"[{label}] cached ({entry.directory.name}, computed in {entry.record.get('seconds', 0):.1f} s)")
        else:
            self.say(f"[{label}] running ...")
            record = compute(entry)
            record["seconds"] = round(time.perf_counter() - started, 3)
            entry = self.cache.finish(entry, record)
            self.say(f"[{label}] done in {record['seconds']:.1f} s")
        self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
        self.computed[label] = self.computed.get(label, 0.0) + float(entry.record.get("seconds", 0.0))
        return entry


def _check_config(config: StudyConfig) -> None:
    if config.order not in ORDER_CRITERIA:
        raise StudyError(f"order {config.order!r}: choose one of {', '.join(ORDER_CRITERIA)}")
    if config.use not in USES:
        raise StudyError(f"use {config.use!r}: choose one of {', '.join(USES)}")
    unknown = [b for b in config.baselines if b not in BASELINES]
    if unknown:
        raise StudyError(f"baseline(s) {', '.join(unknown)}: choose from {', '.join(BASELINES)}")
    if not 0.0 <= config.tune_fraction <= 1.0:
        raise StudyError(f"tune fraction {config.tune_fraction} is outside [0, 1]")
    if config.tune_steps < 0 or config.tune_windows < 0 or config.faithful_windows < 1:
        raise StudyError("tune steps and windows must be >= 0 and faithful windows >= 1")
    for task, path in config.qa.items():
        if task not in QA_TASKS:
            raise StudyError(f"--qa {task}=...: unknown task; choose {' or '.join(QA_TASKS)}")
        if not Path(path).is_file():
            raise StudyError(f"--qa {task}={path}: no such file")
    for fraction in config.fractions:
        if not 0.0 <= fraction <= 1.0:
            raise StudyError(f"sweep fraction {fraction} is outside [0, 1]")
    from attnc.dsl import iter_program_files

    missing = [str(p) for p in config.programs if not Path(p).exists()]
    if missing:
        raise StudyError(f"program path(s) not found: {', '.join(missing)}")
    if not iter_program_files(config.programs):
        raise StudyError(f"no program files (*.py) under {', '.join(map(str, config.programs))}")


def _program_inputs(paths: list[Path]) -> list[tuple[str, str]]:
    from attnc.dsl import iter_program_files
    from attnc.dsl.program import source_sha256

    return [(path.name, source_sha256(path.read_text(encoding="utf-8", errors="replace")))
            for path in iter_program_files(paths)]


def _compiler_fingerprint() -> str:
    """Hash of the compiler's code: a library built by other code generation is rebuilt, not reused."""
    import hashlib

    import attnc.compiler

    digest = hashlib.sha256()
    for path in sorted(Path(attnc.compiler.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _model_identity(loaded) -> dict:
    identity = loaded.describe()
    source = Path(identity.get("source") or "")
    if source.exists():
        stat = source.stat()
        identity["source_stat"] = [stat.st_size, stat.st_mtime_ns]
    identity.pop("attn_implementation", None)
    return identity


def run_study(config: StudyConfig, *, say: Callable[[str], None] | None = None) -> StudyRun:
    """Run (or resume) the study and write its report directory.

    Raises:
        StudyError, CorpusError, ModelNotFoundError, ModelLoadError, LibraryError:
            bad input, before any long stage.
    """
    from attnc.compiler.library_build import build_library
    from attnc.runtime.corpus import check_window_fits, ids_sha256, make_windows, read_corpus
    from attnc.runtime.library import load_library
    from attnc.runtime.models import file_sha256, load_model
    from attnc.study import report
    from attnc.study.baselines import CONTENT_FREE_DIR, CONTENT_FREE_PROGRAMS

    say = say or (lambda text: print(text, file=sys.stderr))
    started = time.perf_counter()
    _check_config(config)
    corpus = read_corpus(config.corpus, text_field=config.text_field)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = _Stages(StageCache(config.cache or out / "cache"), say)

    # -- inputs: model and windows (fast; everything later is keyed by them) ----------
    load_started = time.perf_counter()
    loaded = load_model(config.model)
    check_window_fits(config.window, loaded)
    windows = make_windows(corpus, loaded.tokenizer, window=config.window, mode=config.mode,
                           heldout_fraction=config.heldout_fraction, seed=config.seed,
                           max_windows=config.max_windows, skip_windows=config.skip_windows)
    if len(windows.fit_indices) == 0 or len(windows.heldout_indices) == 0:
        raise StudyError(f"{config.corpus}: {len(windows)} windows of {config.window} tokens give "
                         f"{len(windows.fit_indices)} fit and {len(windows.heldout_indices)} held-out windows; "
                         "need both (a longer corpus, a shorter --window or another --heldout-fraction)")
    stages.seconds["load"] = time.perf_counter() - load_started
    model_id = _model_identity(loaded)
    say(f"model {loaded.name}: {loaded.n_layers} layers x {loaded.n_heads} heads; {len(windows)} windows of "
        f"{config.window} tokens ({len(windows.fit_indices)} fit, {len(windows.heldout_indices)} held-out)")

    # -- 1. compile (the user's programs and the content-free baselines) ------------------
    program_paths = [*config.programs, CONTENT_FREE_DIR]
    def compile_stage(entry: StageEntry) -> dict:
        built = build_library(program_paths, entry.directory / "lib", backend=config.backend)
        return {"n_programs": len(built.records) - len(built.failed),
                "failed": {r.name: "; ".join(r.messages)[:500] for r in built.failed}}

    compiled = stages.run("compile", "compile", {"programs": _program_inputs(program_paths),
                                                 "backend": config.backend, "compiler": _compiler_fingerprint()},
                          compile_stage)
    library = load_library(compiled.directory / "lib", vocab=loaded.vocab)
    if not [name for name in library.names if name not in CONTENT_FREE_PROGRAMS]:
        raise StudyError(f"no valid program in {', '.join(map(str, config.programs))} "
                         f"({len(compiled.record['failed'])} failed); see `attnc check`")

    # -- 2. extract ---------------------------------------------------------------------
    def extract_stage(entry: StageEntry) -> dict:
        from attnc.runtime.extract import extract_attention

        store = extract_attention(loaded, windows.ids, store_dir=entry.directory / "store",
                                  batch_size=config.batch_size, window_indices=np.arange(len(windows)),
                                  corpus_sha256=windows.corpus_sha256, windows_info=windows.describe(),
                                  progress=config.progress)
        size = sum(p.stat().st_size for p in store.directory.iterdir())
        return {"n_windows": store.n_windows, "bytes": size}

    extracted = stages.run("extract", "extract", {"model": model_id, "ids": windows.ids_sha256,
                                                  "split": windows.describe()["heldout_indices"]}, extract_stage)
    from attnc.runtime.store import AttentionStore

    store = AttentionStore.open(extracted.directory / "store")

    # -- 3. score -----------------------------------------------------------------------
    def score_stage(entry: StageEntry) -> dict:
        from attnc.study.mixture_run import store_heldout_by_window
        from attnc.study.score_run import score_library

        batches = store.iter_windows()
        if config.progress:
            batches = _progress(batches, store.n_windows, "score")
        run = score_library(batches, library.programs, loaded.vocab, store.head_names, store_heldout_by_window(store))
        run.table.save(entry.directory / "scores.npz")
        return {"failed": run.failures, "n_programs": len(run.table.programs)}

    scored = stages.run("score", "score", {"compile": compiled.key, "extract": extracted.key}, score_stage)
    from attnc.study.scoring import ScoreTable

    table = ScoreTable.load(scored.directory / "scores.npz")
    if not table.programs:
        raise StudyError(f"every program failed while scoring: {scored.record['failed']}")

    # -- 4. fit -------------------------------------------------------------------------
    def fit_stage(entry: StageEntry) -> dict:
        from attnc.study.fits_file import fits_from_results, write_fits
        from attnc.study.fitting import best_single_fits
        from attnc.study.mixture_run import fit_store_mixtures
        from attnc.study.selection import select_library

        singles = best_single_fits(table)
        mixtures = None
        if config.mixtures >= 2:
            mixtures = fit_store_mixtures(store, table, library.programs, loaded.vocab, k=config.mixtures,
                                          n_candidates=config.mixture_candidates,
                                          search_windows=config.mixture_search_windows, seed=config.seed).mixtures
        fits = fits_from_results(loaded.name, config.window, table.n_windows_fit, table.n_windows_heldout,
                                 singles, mixtures=mixtures)
        write_fits(fits, entry.directory / "fits.json")
        selection = select_library(table, tolerance=config.tolerance)
        return {"selected_programs": list(selection.programs), "selected_value": selection.value,
                "full_value": selection.full_value}

    fitted = stages.run("fit", "fit", {"score": scored.key, "mixtures": config.mixtures,
                                       "candidates": config.mixture_candidates,
                                       "search_windows": config.mixture_search_windows, "seed": config.seed,
                                       "tolerance": config.tolerance}, fit_stage)
    fits_json = json.loads((fitted.directory / "fits.json").read_text())
    from attnc.runtime.replacement import ReplacementMap
    from attnc.study.attribution import replacement_prefix
    from attnc.study.sweep import heads_for_fraction

    n_heads = loaded.n_layers * loaded.n_heads

    # -- 4b. faithful: mixtures fitted to what each head writes ---------------------------
    faithful = None
    if config.use == "faithful":
        def faithful_stage(entry: StageEntry) -> dict:
            from attnc.study.faithful_fit import faithful_fits

            rows = _fit_sample(windows, config.faithful_windows, config.seed)
            document, summary = faithful_fits(loaded, store, library, table, fits_json, rows,
                                              n_candidates=config.faithful_candidates,
                                              batch_size=config.batch_size, progress=config.progress)
            (entry.directory / "fits.json").write_text(json.dumps(document, indent=2))
            return {"summary": summary, "windows": [int(r) for r in rows]}

        faithful = stages.run("faithful", "faithful", {"fit": fitted.key, "extract": extracted.key,
                                                       "windows": config.faithful_windows,
                                                       "candidates": config.faithful_candidates,
                                                       "seed": config.seed, "v": 1}, faithful_stage)
        fits_json = json.loads((faithful.directory / "fits.json").read_text())
    full_map = ReplacementMap.from_fits(fits_json, use=config.use)

    # -- 5. order, for the programs and for each baseline ----------------------------------
    def order_heads(method: str, target, key: dict) -> StageEntry:
        def order_stage(entry: StageEntry) -> dict:
            from attnc.study.attribution import loss_impact, measured_impact, order_by_iou

            criterion = "measured" if (method == "mean_ablation" and config.order == "iou") else config.order
            if criterion == "iou":
                iou = ({head: _used_iou(fit, config.use) for head, fit in fits_json["heads"].items()}
                       if method == "programs" else _content_free_iou(table, target))
                return {"order": order_by_iou(iou), "criterion": ORDER_CRITERIA["iou"], "values": iou}
            count = config.impact_windows or DEFAULT_IMPACT_WINDOWS[criterion]
            rows = _fit_sample(windows, count, config.seed)
            measure = measured_impact if criterion == "measured" else loss_impact
            impact = measure(loaded, library, target, windows.ids[rows], progress=config.progress)
            return {"order": impact.order(), "criterion": ORDER_CRITERIA[criterion], "values": impact.impact,
                    "impact_windows": [int(r) for r in rows], "impact_tokens": impact.tokens}

        return stages.run("order", f"order {method}", {**key, "order": config.order, "impact_windows":
                                                       config.impact_windows or DEFAULT_IMPACT_WINDOWS[config.order],
                                                       "seed": config.seed}, order_stage)

    ordered = order_heads("programs", full_map, {"fit": (faithful or fitted).key, "use": config.use})
    order = ordered.record["order"]

    # -- 5b. tune: each set of heads replaced together, fitted jointly to the model's output --
    # Every sweep (and QA) point up to --tune-fraction gets weights tuned for exactly its own
    # set of heads: weights tuned for 68 heads together compensate for each other, and are
    # not the best weights for the first 27 alone.
    tuned: dict[int, StageEntry] = {}
    counts = sorted({heads_for_fraction(f, n_heads) for f in (*config.fractions, *(QA_FRACTIONS if config.qa else ()))})
    n_tuned = heads_for_fraction(config.tune_fraction, n_heads)
    if config.use == "faithful" and config.tune_steps > 0 and config.tune_windows > 0:
        for count in [c for c in counts if 0 < c <= n_tuned]:
            def tune_stage(entry: StageEntry, count=count) -> dict:
                from attnc.study.faithful_fit import tune_candidates
                from attnc.runtime.heads import head_name
                from attnc.study.tune_run import constant_programs
                from attnc.study.tuning import tune_mixtures, tuned_program_sources

                say(f"  tuning the first {count} heads of the order together")
                rows = _fit_sample(windows, config.tune_windows, config.seed + 1)
                start = replacement_prefix(order, full_map, count)
                per_head, skipped = (constant_programs(library, start, config.tune_constants_min_weight)
                                     if config.tune_constants else ({}, {}))
                result = tune_mixtures(loaded, library, start, windows.ids[rows],
                                       candidates=tune_candidates(fits_json, start), constants=per_head,
                                       steps=config.tune_steps, lr=config.tune_lr,
                                       constants_lr=config.tune_constants_lr, progress=config.progress)
                note = (f"tuned by attnc study on {len(rows)} fit windows of {config.corpus} "
                        f"({config.window} tokens), {count} heads replaced together")
                mixtures, sources = tuned_program_sources(
                    result, {p.name: p for ps in per_head.values() for p in ps}, note)
                return {**result.to_json(), "windows": [int(r) for r in rows], "not_tunable": skipped,
                        "tuned": {head_name(*k): [[n, w] for n, w in m] for k, m in mixtures.items()},
                        "sources": sources}

            tuned[count] = stages.run("tune", "tune", {"order": ordered.key, "count": count,
                                                       "steps": config.tune_steps, "windows": config.tune_windows,
                                                       "lr": config.tune_lr, "seed": config.seed,
                                                       "constants": config.tune_constants,
                                                       "constants_lr": config.tune_constants_lr,
                                                       "constants_min_weight": config.tune_constants_min_weight,
                                                       "v": 3}, tune_stage)
    tuned_maps = {count: ReplacementMap({**full_map.heads, **ReplacementMap(
        {head: [tuple(p) for p in mixture] for head, mixture in entry.record["tuned"].items()}).heads})
        for count, entry in tuned.items()}
    tuned_sources = {count: _tuned_source(library, entry.record.get("sources") or {})
                     for count, entry in tuned.items()}
    if tuned:
        for head, mixture in tuned[max(tuned)].record["tuned"].items():
            fits_json["heads"][head]["tuned"] = {"programs": [p for p, _ in mixture], "weights": [w for _, w in mixture]}

    def programs_map(count: int) -> ReplacementMap:
        """What replaces the first `count` heads: weights tuned for that set when it was tuned."""
        return tuned_maps.get(count, full_map)

    def programs_source(count: int):
        """Where that replacement's programs come from: the library, plus the set's tuned programs."""
        return tuned_sources.get(count, library)

    def tuned_inputs(count: int) -> dict:
        """The tuned programs' sources are part of what a point depends on."""
        return {"tuned": tuned[count].key} if count in tuned and tuned[count].record.get("sources") else {}

    # -- 6. sweep: the same held-out windows and fractions for every method ------------------
    from attnc.study.sweep import replaced_perplexity, replaced_qa

    ppl_rows = windows.heldout_indices[:config.ppl_windows] if config.ppl_windows else windows.heldout_indices
    ppl_ids = windows.ids[ppl_rows]
    fractions = sorted(set(config.fractions) | {0.0})

    def sweep(method: str, order: list[str], target) -> list[dict]:
        points = []
        for fraction in fractions:
            count = heads_for_fraction(fraction, n_heads)
            if method == "mean_ablation" and count > 0:
                from attnc.study.baselines import ablated_perplexity, ablation_prefix

                ablation = ablation_prefix(order, target, count)

                def sweep_stage(entry: StageEntry, ablation=ablation, fraction=fraction) -> dict:
                    say(f"  perplexity with {len(ablation)} of {n_heads} heads mean-ablated ({fraction:.0%})")
                    return ablated_perplexity(loaded, ablation, ppl_ids, fraction=fraction,
                                              batch_size=config.batch_size, progress=config.progress)

                inputs = {"model": model_id, "ids": ids_sha256(ppl_ids), "mean_ablation": means_entry.key,
                          "heads": order[:count]}
            else:
                replacement = replacement_prefix(order, programs_map(count) if method == "programs" else target, count)
                source = programs_source(count) if method == "programs" else library

                def sweep_stage(entry: StageEntry, replacement=replacement, fraction=fraction, source=source) -> dict:
                    say(f"  perplexity with {len(replacement)} of {n_heads} heads replaced ({fraction:.0%})")
                    point = replaced_perplexity(loaded, source, replacement, ppl_ids, fraction=fraction,
                                                batch_size=config.batch_size,
                                                on_program_error=config.on_program_error, progress=config.progress)
                    return point.to_json()

                inputs = {"model": model_id, "ids": ids_sha256(ppl_ids),
                          **_replacement_inputs(replacement, compiled.key, config),
                          **(tuned_inputs(count) if method == "programs" else {})}
            entry = stages.run("sweep", f"sweep {method}", inputs, sweep_stage)
            points.append({k: v for k, v in entry.record.items() if k != "seconds"} | {"fraction": fraction})
        stock = next(p["ppl"] for p in points if p["n_heads_replaced"] == 0)
        for point in points:
            point["ppl_increase_pct"] = 100.0 * (point["ppl"] / stock - 1.0)
        return points

    points = sweep("programs", order, full_map)
    baselines = {"programs": {"order": ordered.record, "points": points}}
    means_entry = None
    for method in config.baselines:
        if method == "content_free":
            from attnc.study.baselines import content_free_map

            target = content_free_map(table)
            method_order = order_heads(method, target, {"content_free": target.to_json(), "compile": compiled.key})
        else:
            def means_stage(entry: StageEntry) -> dict:
                from attnc.study.head_outputs import head_means

                rows = _fit_sample(windows, config.faithful_windows, config.seed)
                ablation = head_means(loaded, windows.ids[rows], batch_size=config.batch_size)
                np.savez(entry.directory / "means.npz", **{f"{l}.{h}": v for (l, h), v in ablation.means.items()})
                return {"windows": [int(r) for r in rows]}

            means_entry = stages.run("means", "head means", {"model": model_id, "ids": windows.ids_sha256,
                                                             "windows": config.faithful_windows,
                                                             "seed": config.seed}, means_stage)
            from attnc.runtime.heads import parse_head
            from attnc.study.attribution import MeanAblation

            with np.load(means_entry.directory / "means.npz") as saved:
                target = MeanAblation({parse_head(k): saved[k] for k in saved.files})
            method_order = order_heads(method, target, {"mean_ablation": means_entry.key})
        baselines[method] = {"order": method_order.record,
                             "points": sweep(method, method_order.record["order"], target)}

    # -- 7. QA ----------------------------------------------------------------------------
    qa: dict[str, dict] = {}
    for task, path in config.qa.items():
        per_fraction = {}
        for fraction in QA_FRACTIONS:
            count = heads_for_fraction(fraction, n_heads)
            replacement = replacement_prefix(order, programs_map(count), count)

            def qa_stage(entry: StageEntry, replacement=replacement, task=task, path=path,
                         source=programs_source(count)) -> dict:
                say(f"  {task} with {len(replacement)} heads replaced")
                return replaced_qa(loaded, source, replacement, task, path, limit=config.qa_limit,
                                   on_program_error=config.on_program_error, progress=config.progress)

            entry = stages.run("qa", "qa", {"model": model_id, "task": task, "file": file_sha256(path),
                                            "limit": config.qa_limit,
                                            **_replacement_inputs(replacement, compiled.key, config),
                                            **tuned_inputs(count)}, qa_stage)
            per_fraction[fraction] = entry.record
        qa[task] = {"n": per_fraction[0.0]["n"], "file": str(path),
                    "acc_baseline": per_fraction[0.0]["acc"], "acc_replaced_25": per_fraction[0.25]["acc"],
                    "acc_norm_baseline": per_fraction[0.0]["acc_norm"],
                    "acc_norm_replaced_25": per_fraction[0.25]["acc_norm"],
                    "n_heads_replaced_25": per_fraction[0.25]["n_heads_replaced"]}

    # -- report ---------------------------------------------------------------------------
    report_started = time.perf_counter()
    context = report.StudyContext(
        programs_source=tuned_sources[max(tuned)] if tuned else None,
        config=config, loaded=loaded, windows=windows, library=library, store=store, table=table,
        fits=fits_json, selection=fitted.record, order=ordered.record, points=points, qa=qa,
        baselines=baselines, faithful=faithful.record if faithful else None,
        tuning={"by_count": {str(c): e.record for c, e in tuned.items()}} if tuned else None,
        compile_record=compiled.record, score_record=scored.record, stage_keys={
            "compile": compiled.key, "extract": extracted.key, "score": scored.key, "fit": fitted.key,
            "faithful": faithful.key if faithful else None, "order": ordered.key,
            "tune": {str(c): e.key for c, e in tuned.items()}},
    )
    results = report.build_results(context)
    stages.seconds["report"] = time.perf_counter() - report_started
    results["stage_seconds"] = {k: round(v, 2) for k, v in stages.seconds.items()}
    results["stage_computed_seconds"] = {k: round(v, 2) for k, v in stages.computed.items()}
    results["wall_seconds"] = round(time.perf_counter() - started, 2)
    report.write_report(context, results, out)
    return StudyRun(results, out)


def _tuned_source(library, sources: dict[str, str]):
    """The library, or the library plus a tuned set's new programs (validated and compiled here)."""
    if not sources:
        return library
    from attnc.runtime.overlay import OverlaySource

    return OverlaySource.from_sources(library, sources, library.vocab)


def _replacement_inputs(replacement, compile_key: str, config: StudyConfig) -> dict:
    """What an evaluation with `replacement` depends on; the stock model (nothing replaced) not on the library."""
    if len(replacement) == 0:
        return {"replacement": {}}
    return {"replacement": replacement.to_json(), "compile": compile_key, "on_error": config.on_program_error}


def _used_iou(fit: dict, use: str) -> float:
    """Held-out IoU of what replaces a head: its faithful mixture or mixture (when used) or its best program."""
    from attnc.study.report import mixture_iou

    if use == "faithful" and fit.get("faithful"):
        return float(fit["faithful"]["iou_heldout"])
    return mixture_iou(fit) if use in ("mixture", "faithful") else float(fit["iou_heldout"])


def _content_free_iou(table, replacement) -> dict[str, float]:
    """Held-out IoU of each head's content-free program."""
    from attnc.runtime.heads import head_name

    return {head_name(*key): float(table.iou_heldout[table.programs.index(mixture[0][0]),
                                                     table.heads.index(head_name(*key))])
            for key, mixture in replacement.heads.items()}


def _fit_sample(windows, count: int, seed: int) -> np.ndarray:
    """A seeded sample of `count` fit windows (row indices), sorted."""
    rng = np.random.default_rng(seed)
    fit_rows = windows.fit_indices
    return np.sort(rng.choice(fit_rows, size=min(count, len(fit_rows)), replace=False))


def _progress(batches, total: int, label: str):
    from tqdm import tqdm

    with tqdm(total=total, unit="window", desc=label, file=sys.stderr) as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch[0]))
