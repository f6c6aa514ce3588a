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
            loss impact or KL on fit windows, or
            held-out IoU)
5b. tune    the first --tune-fraction of that order:  key: order, tune settings
            their mixture weights fitted jointly to
            the stock model's next-token distribution
6. sweep    held-out perplexity per fraction replaced  key: model, windows, heads
7. qa       QA accuracy at 0 and 25% replaced          key: model, task file, heads

Baselines (`--baselines`, `attnc.study.baselines`): content-free programs and
mean ablation, each with its own measured order (stage 5) and sweep (stage 6)
on the same windows and fractions, so the programs are judged against them.

`run_study` reads as that list: each step builds a `Stage` (its name, its cache
inputs, and the function of `attnc.study.study_stages` that computes it) and
hands it to a `StageExecutor`, which owns the cache, the timing and the shard
pool (one process, local worker processes, or Ray actors; `attnc.parallel`).

Bad input (empty corpus, a window longer than the model's context, no valid
program, no held-out window) is reported before any long stage starts.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from attnc.runtime.overlay import OverlaySource
from attnc.runtime.precision import PrecisionError, check_precision
from attnc.runtime.replacement import USES, ReplacementMap
from attnc.study import report
from attnc.study import study_stages as stages
from attnc.study.baselines import BASELINES
from attnc.study.executor import Stage, StageExecutor
from attnc.study.stage_cache import StageCache, StageEntry
from attnc.study.study_stages import MEASURED_ORDERS, ORDER_CRITERIA
from attnc.study.sweep import DEFAULT_FRACTIONS, heads_for_fraction

if TYPE_CHECKING:
    from attnc.parallel.pools import ShardPool

QA_TASKS = ("piqa", "socialiqa")
#: Fit windows the loss impact is measured (exactly, per head) or estimated (gradient) on.
DEFAULT_IMPACT_WINDOWS = {"measured": 4, "kl": 8, "loss": 32, "iou": 0}
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
        order: "kl" (the default: the KL(stock || replaced) each head causes alone,
            measured on a few fit windows: never negative, so less noisy than the loss
            change, and the tuning's own objective), "measured" (the loss change when
            replaced alone, measured the same way), "loss" (the loss change's
            first-order estimate) or "iou" (held-out IoU). On the 51k-token valid-dev
            study kl with 8 windows gave +1.1% / +4.2% at 10% / 25% replaced, measured
            with 4 windows +5.5% / +10.1% (README).
        use: "faithful" (the mixture fitted to the head's output, then tuned on the
            model's loss), "mixture" (the mixture fitted on IoU) or "best".
        precision: what the model's forward passes compute in (`attnc.runtime.precision`:
            float32, or bfloat16 autocast); recorded in every stage key that runs the model.
        mixtures: most programs per mixture (< 2: no mixtures).
        impact_windows: fit windows the loss impact is measured on (default per order).
        measure_heads: the measured order measures only this many heads exactly, those
            the first-order estimate finds cheapest (None: `measure_margin` times the most
            heads any sweep, QA or tuning point replaces, all when that is every head; 0: all).
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
    precision: str = "float32"
    mixtures: int = 3
    mixture_candidates: int = 6
    mixture_search_windows: int = 32
    tolerance: float = 0.01
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    order: str = "kl"
    use: str = "faithful"
    faithful_windows: int = 32
    faithful_candidates: int = 6
    tune_fraction: float = 0.25
    tune_steps: int = 60
    tune_windows: int = 64
    tune_lr: float = 0.1
    tune_constants: bool = True
    tune_constants_lr: float = 0.03
    tune_constants_min_weight: float = 0.2
    baselines: tuple[str, ...] = BASELINES
    impact_windows: int | None = None
    measure_heads: int | None = None
    measure_margin: float = 2.0
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


def _check_config(config: StudyConfig) -> None:
    try:
        check_precision(config.precision)
    except PrecisionError as error:
        raise StudyError(str(error)) from None
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
    if not config.measure_margin >= 1.0:
        raise StudyError(f"--measure-margin {config.measure_margin}: give 1 or more (the heads replaced, and a margin)")
    if config.measure_heads is not None and config.measure_heads < 0:
        raise StudyError(f"--measure-heads {config.measure_heads}: give 0 (all heads) or more")
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


def run_study(config: StudyConfig, *, say: Callable[[str], None] | None = None,
              pool: "ShardPool | None" = None) -> StudyRun:
    """Run (or resume) the study and write its report directory.

    Args:
        config: the study's settings.
        say: where progress lines go (stderr by default).
        pool: the shard pool extraction and scoring run on (`attnc.parallel`:
            local processes or Ray actors); None: this process.

    Raises:
        StudyError, CorpusError, ModelNotFoundError, ModelLoadError, LibraryError:
            bad input, before any long stage.
    """
    say = say or (lambda text: print(text, file=sys.stderr))
    started = time.perf_counter()
    _check_config(config)
    from attnc.runtime.corpus import read_corpus

    corpus = read_corpus(config.corpus, text_field=config.text_field)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    executor = StageExecutor(StageCache(config.cache or out / "cache"), say, pool)

    inputs = _load_inputs(config, corpus, executor, say)
    compiled, library = _compile(config, executor, inputs)
    extracted, store = _extract(config, executor, inputs)
    scored, table = _score(config, executor, inputs, compiled, extracted, store, library)
    fitted, fits_json = _fit(config, executor, inputs, scored, store, table, library)
    faithful, fits_json = _faithful(config, executor, inputs, fitted, extracted, store, table, library, fits_json)
    full_map = ReplacementMap.from_fits(fits_json, use=config.use)
    ordered = _order(config, executor, inputs, library, table, "programs", full_map,
                     {"fit": (faithful or fitted).key, "use": config.use}, fits_json)
    tuned = _tune(config, executor, inputs, library, ordered, full_map, fits_json)
    programs = _TunedPrograms(tuned, full_map, fits_json, library)
    baselines = _sweeps(config, executor, inputs, library, table, compiled, ordered, full_map, programs)
    qa = _qa(config, executor, inputs, library, compiled, ordered.record["order"], programs)

    report_started = time.perf_counter()
    context = report.StudyContext(
        programs_source=programs.source(max(tuned)) if tuned else None,
        config=config, loaded=inputs.loaded, windows=inputs.windows, library=library, store=store, table=table,
        fits=fits_json, selection=fitted.record, order=ordered.record, points=baselines["programs"]["points"],
        qa=qa, baselines=baselines, faithful=faithful.record if faithful else None,
        tuning={"by_count": {str(c): e.record for c, e in tuned.items()}} if tuned else None,
        compile_record=compiled.record, score_record=scored.record, stage_keys={
            "compile": compiled.key, "extract": extracted.key, "score": scored.key, "fit": fitted.key,
            "faithful": faithful.key if faithful else None, "order": ordered.key,
            "tune": {str(c): e.key for c, e in tuned.items()}},
    )
    results = report.build_results(context)
    executor.seconds["report"] = time.perf_counter() - report_started
    results["stage_seconds"] = {k: round(v, 2) for k, v in executor.seconds.items()}
    results["stage_computed_seconds"] = {k: round(v, 2) for k, v in executor.computed.items()}
    results["wall_seconds"] = round(time.perf_counter() - started, 2)
    report.write_report(context, results, out)
    return StudyRun(results, out)


@dataclass
class _Inputs:
    """The model and windows every stage reads, with the identity their cache keys use."""

    loaded: object
    windows: object
    model_id: dict

    @property
    def n_heads(self) -> int:
        return self.loaded.n_layers * self.loaded.n_heads


def _load_inputs(config: StudyConfig, corpus, executor: StageExecutor, say: Callable[[str], None]) -> _Inputs:
    """Load the model and cut the corpus into windows (fast; everything later is keyed by them)."""
    from attnc.runtime.corpus import check_window_fits, make_windows
    from attnc.runtime.models import load_model

    load_started = time.perf_counter()
    loaded = load_model(config.model).with_precision(config.precision)
    check_window_fits(config.window, loaded)
    windows = make_windows(corpus, loaded.tokenizer, window=config.window, mode=config.mode,
                           heldout_fraction=config.heldout_fraction, seed=config.seed,
                           max_windows=config.max_windows, skip_windows=config.skip_windows)
    if len(windows.fit_indices) == 0 or len(windows.heldout_indices) == 0:
        raise StudyError(f"{config.corpus}: {len(windows)} windows of {config.window} tokens give "
                         f"{len(windows.fit_indices)} fit and {len(windows.heldout_indices)} held-out windows; "
                         "need both (a longer corpus, a shorter --window or another --heldout-fraction)")
    executor.seconds["load"] = time.perf_counter() - load_started
    say(f"model {loaded.name}: {loaded.n_layers} layers x {loaded.n_heads} heads; {len(windows)} windows of "
        f"{config.window} tokens ({len(windows.fit_indices)} fit, {len(windows.heldout_indices)} held-out)")
    return _Inputs(loaded, windows, _model_identity(loaded))


def _compile(config: StudyConfig, executor: StageExecutor, inputs: _Inputs):
    """1. compile the user's programs and the content-free baselines; (entry, library)."""
    from attnc.runtime.library import load_library
    from attnc.study.baselines import CONTENT_FREE_DIR, CONTENT_FREE_PROGRAMS

    program_paths = [*config.programs, CONTENT_FREE_DIR]
    compiled = executor.run(Stage("compile", {"programs": _program_inputs(program_paths), "backend": config.backend,
                                              "compiler": _compiler_fingerprint()},
                                  stages.stage(stages.compile_stage, program_paths, config.backend)))
    library = load_library(compiled.directory / "lib", vocab=inputs.loaded.vocab)
    if not [name for name in library.names if name not in CONTENT_FREE_PROGRAMS]:
        raise StudyError(f"no valid program in {', '.join(map(str, config.programs))} "
                         f"({len(compiled.record['failed'])} failed); see `attnc check`")
    return compiled, library


def _extract(config: StudyConfig, executor: StageExecutor, inputs: _Inputs):
    """2. every head's attention on every window; (entry, store)."""
    from attnc.runtime.store import AttentionStore

    windows = inputs.windows
    extracted = executor.run(Stage("extract", {"model": inputs.model_id, "ids": windows.ids_sha256,
                                               "split": windows.describe()["heldout_indices"]},
                                   stages.pooled(stages.extract_stage, inputs.loaded, windows,
                                                 batch_size=config.batch_size, progress=config.progress)))
    return extracted, AttentionStore.open(extracted.directory / "store")


def _score(config: StudyConfig, executor: StageExecutor, inputs: _Inputs, compiled, extracted, store, library):
    """3. program x head IoU on fit and held-out windows; (entry, table)."""
    from attnc.study.scoring import ScoreTable

    scored = executor.run(Stage("score", {"compile": compiled.key, "extract": extracted.key},
                                stages.pooled(stages.score_stage, store, library, inputs.loaded.vocab,
                                              progress=config.progress)))
    table = ScoreTable.load(scored.directory / "scores.npz")
    if not table.programs:
        raise StudyError(f"every program failed while scoring: {scored.record['failed']}")
    return scored, table


def _fit(config: StudyConfig, executor: StageExecutor, inputs: _Inputs, scored, store, table, library):
    """4. best program and mixture per head, and the selected library; (entry, fits document)."""
    fitted = executor.run(Stage("fit", {"score": scored.key, "mixtures": config.mixtures,
                                        "candidates": config.mixture_candidates,
                                        "search_windows": config.mixture_search_windows, "seed": config.seed,
                                        "tolerance": config.tolerance},
                                stages.pooled(stages.fit_stage, store, table, library, inputs.loaded.vocab,
                                              model_name=inputs.loaded.name, window=config.window,
                                              mixtures=config.mixtures, candidates=config.mixture_candidates,
                                              search_windows=config.mixture_search_windows, seed=config.seed,
                                              tolerance=config.tolerance)))
    return fitted, json.loads((fitted.directory / "fits.json").read_text())


def _faithful(config: StudyConfig, executor: StageExecutor, inputs: _Inputs, fitted, extracted, store, table,
              library, fits_json: dict):
    """4b. (`--use faithful`) mixtures fitted to what each head writes; (entry or None, fits document)."""
    if config.use != "faithful":
        return None, fits_json
    rows = _fit_sample(inputs.windows, config.faithful_windows, config.seed)
    faithful = executor.run(Stage("faithful", {"fit": fitted.key, "extract": extracted.key,
                                               "windows": config.faithful_windows,
                                               "candidates": config.faithful_candidates, "seed": config.seed,
                                               "v": 1},
                                  stages.pooled(stages.faithful_stage, inputs.loaded, store, library, table,
                                                fits_json, rows, candidates=config.faithful_candidates,
                                                batch_size=config.batch_size, progress=config.progress)))
    return faithful, json.loads((faithful.directory / "fits.json").read_text())


def _order(config: StudyConfig, executor: StageExecutor, inputs: _Inputs, library, table, method: str, target,
           key: dict, fits_json: dict | None = None):
    """5. the order `method`'s heads are replaced in (mean ablation has no IoU: measured then)."""
    criterion = "measured" if (method == "mean_ablation" and config.order == "iou") else config.order
    iou = rows = None
    n_impact = config.impact_windows or DEFAULT_IMPACT_WINDOWS[criterion]
    if criterion == "iou":
        iou = ({head: _used_iou(fit, config.use) for head, fit in fits_json["heads"].items()}
               if method == "programs" else _content_free_iou(table, target))
    else:
        rows = _fit_sample(inputs.windows, n_impact, config.seed)
    ids = inputs.windows.ids[rows] if rows is not None else None
    measure = _measured_heads(config, inputs.n_heads) if criterion in MEASURED_ORDERS else None
    screening = {"measure_heads": measure} if measure is not None else {}  # earlier caches stay valid
    return executor.run(Stage("order", {**key, "order": config.order, "impact_windows": n_impact,
                                        "seed": config.seed, **screening},
                              stages.stage(stages.order_stage, inputs.loaded, library, target, ids, rows,
                                           criterion=criterion, iou=iou, progress=config.progress,
                                           measure=measure),
                              label=f"order {method}"))


def _measured_heads(config: StudyConfig, n_heads: int) -> int | None:
    """How many heads a measured order measures exactly (None: all of them)."""
    if config.measure_heads == 0:
        return None
    if config.measure_heads is not None:
        return config.measure_heads if config.measure_heads < n_heads else None
    most = max([*_replaced_counts(config, n_heads), heads_for_fraction(config.tune_fraction, n_heads)
                if config.tune_steps else 0])
    measure = math.ceil(config.measure_margin * most)
    return measure if measure < n_heads else None


def _tune(config: StudyConfig, executor: StageExecutor, inputs: _Inputs, library, ordered, full_map,
          fits_json: dict) -> dict[int, StageEntry]:
    """5b. each set of heads replaced together (a sweep or QA point up to --tune-fraction), tuned jointly.

    Weights tuned for 68 heads together compensate for each other and are not the
    best weights for the first 27 alone: every point gets its own tuning.
    """
    from attnc.study.attribution import replacement_prefix
    from attnc.study.faithful_fit import tune_candidates

    if not (config.use == "faithful" and config.tune_steps > 0 and config.tune_windows > 0):
        return {}
    n_tuned = heads_for_fraction(config.tune_fraction, inputs.n_heads)
    rows = _fit_sample(inputs.windows, config.tune_windows, config.seed + 1)
    tuned: dict[int, StageEntry] = {}
    for count in [c for c in _replaced_counts(config, inputs.n_heads) if 0 < c <= n_tuned]:
        start = replacement_prefix(ordered.record["order"], full_map, count)
        note = (f"tuned by attnc study on {len(rows)} fit windows of {config.corpus} "
                f"({config.window} tokens), {count} heads replaced together")
        compute = stages.stage(stages.tune_stage, inputs.loaded, library, start, tune_candidates(fits_json, start),
                               inputs.windows.ids[rows], rows, steps=config.tune_steps, lr=config.tune_lr,
                               constants=config.tune_constants, constants_lr=config.tune_constants_lr,
                               constants_min_weight=config.tune_constants_min_weight, note=note,
                               progress=config.progress)
        tuned[count] = executor.run(Stage("tune", {"order": ordered.key, "count": count, "steps": config.tune_steps,
                                                   "windows": config.tune_windows, "lr": config.tune_lr,
                                                   "seed": config.seed, "constants": config.tune_constants,
                                                   "constants_lr": config.tune_constants_lr,
                                                   "constants_min_weight": config.tune_constants_min_weight,
                                                   "v": 3},
                                          _saying(executor.say, f"  tuning the first {count} heads of the order "
                                                  "together", compute)))
    return tuned


class _TunedPrograms:
    """What replaces the first `count` heads: the weights (and new programs) tuned for that set.

    `map(count)` is the replacement, `source(count)` where its programs come from
    (the library, plus the set's tuned programs compiled beside it), `inputs(count)`
    what a point using them depends on beyond the replacement (the tuned sources).
    Records the largest tuned set's weights in `fits_json` (the report shows them).
    """

    def __init__(self, tuned: dict[int, StageEntry], full_map, fits_json: dict, library):
        self.tuned, self.full_map, self.library = tuned, full_map, library
        self.maps = {count: ReplacementMap({**full_map.heads, **ReplacementMap(
            {head: [tuple(p) for p in mixture] for head, mixture in entry.record["tuned"].items()}).heads})
            for count, entry in tuned.items()}
        self.sources = {count: OverlaySource.extending(library, entry.record.get("sources") or {})
                        for count, entry in tuned.items()}
        if tuned:
            for head, mixture in tuned[max(tuned)].record["tuned"].items():
                fits_json["heads"][head]["tuned"] = {"programs": [p for p, _ in mixture],
                                                     "weights": [w for _, w in mixture]}

    def map(self, count: int) -> "ReplacementMap":
        return self.maps.get(count, self.full_map)

    def source(self, count: int):
        return self.sources.get(count, self.library)

    def inputs(self, count: int) -> dict:
        entry = self.tuned.get(count)
        return {"tuned": entry.key} if entry is not None and entry.record.get("sources") else {}


def _sweeps(config: StudyConfig, executor: StageExecutor, inputs: _Inputs, library, table, compiled, ordered,
            full_map, programs: _TunedPrograms) -> dict[str, dict]:
    """6. held-out perplexity per fraction replaced, for the programs and each baseline (each in its own
    order, and in the programs' order)."""
    from attnc.runtime.heads import parse_head
    from attnc.study.attribution import MeanAblation
    from attnc.study.baselines import content_free_map

    sweep = _Sweep(config, executor, inputs, library, compiled.key)
    methods = {"programs": {"order": ordered.record, "points": sweep.points(
        "programs", ordered.record["order"], programs.map, source_for=programs.source, inputs_for=programs.inputs)}}
    for method in config.baselines:
        if method == "content_free":
            target = content_free_map(table)
            method_order = _order(config, executor, inputs, library, table, method, target,
                                  {"content_free": target.to_json(), "compile": compiled.key})
            points = sweep.points(method, method_order.record["order"], lambda count, target=target: target)
            in_programs_order = sweep.points(method, ordered.record["order"], lambda count, target=target: target)
        else:
            rows = _fit_sample(inputs.windows, config.faithful_windows, config.seed)
            means = executor.run(Stage("means", {"model": inputs.model_id, "ids": inputs.windows.ids_sha256,
                                                 "windows": config.faithful_windows, "seed": config.seed},
                                       stages.stage(stages.means_stage, inputs.loaded, inputs.windows.ids[rows], rows,
                                                    batch_size=config.batch_size), label="head means"))
            with np.load(means.directory / "means.npz") as saved:
                target = MeanAblation({parse_head(k): saved[k] for k in saved.files})
            method_order = _order(config, executor, inputs, library, table, method, target,
                                  {"mean_ablation": means.key})
            points = sweep.points(method, method_order.record["order"], lambda count, target=target: target,
                                  means_key=means.key)
            in_programs_order = sweep.points(method, ordered.record["order"], lambda count, target=target: target,
                                             means_key=means.key)
        # A method's own measured order is noisy (a few impact windows): it is also swept in the
        # programs' order, and the verdict holds the programs against the better of the two.
        methods[method] = {"order": method_order.record, "points": points, "points_in_programs_order": in_programs_order}
    return methods


class _Sweep:
    """The sweep points of one method: the same held-out windows and fractions for every method."""

    def __init__(self, config: StudyConfig, executor: StageExecutor, inputs: _Inputs, library, compile_key: str):
        from attnc.runtime.corpus import ids_sha256

        self.config, self.executor, self.inputs, self.library, self.compile_key = (
            config, executor, inputs, library, compile_key)
        windows = inputs.windows
        rows = windows.heldout_indices[:config.ppl_windows] if config.ppl_windows else windows.heldout_indices
        self.ids = windows.ids[rows]
        self.ids_sha256 = ids_sha256(self.ids)
        self.fractions = sorted(set(config.fractions) | {0.0})

    def points(self, method: str, order: list[str], target_for: Callable[[int], object],
               means_key: str | None = None, source_for: Callable[[int], object] | None = None,
               inputs_for: Callable[[int], dict] | None = None) -> list[dict]:
        """Perplexity at every fraction; `target_for(count)` replaces the first `count` heads of `order`,
        with programs from `source_for(count)` (default the library), and `inputs_for(count)` in the key."""
        from attnc.study.attribution import replacement_prefix
        from attnc.study.baselines import ablation_prefix

        config, inputs, n_heads = self.config, self.inputs, self.inputs.n_heads
        points = []
        for fraction in self.fractions:
            count = heads_for_fraction(fraction, n_heads)
            if means_key is not None and count > 0:
                ablation = ablation_prefix(order, target_for(count), count)
                message = f"  perplexity with {len(ablation)} of {n_heads} heads mean-ablated ({fraction:.0%})"
                key = {"model": inputs.model_id, "ids": self.ids_sha256, "mean_ablation": means_key,
                       "heads": order[:count]}
                compute = stages.stage(stages.ablated_sweep_stage, inputs.loaded, ablation, self.ids,
                                       fraction=fraction, batch_size=config.batch_size, progress=config.progress)
            else:
                replacement = replacement_prefix(order, target_for(count), count)
                message = f"  perplexity with {len(replacement)} of {n_heads} heads replaced ({fraction:.0%})"
                key = {"model": inputs.model_id, "ids": self.ids_sha256,
                       **_replacement_inputs(replacement, self.compile_key, config),
                       **(inputs_for(count) if inputs_for else {})}
                source = source_for(count) if source_for else self.library
                compute = stages.stage(stages.replaced_sweep_stage, inputs.loaded, source, replacement,
                                       self.ids, fraction=fraction, batch_size=config.batch_size,
                                       on_program_error=config.on_program_error, progress=config.progress)
            entry = self.executor.run(Stage("sweep", key, _saying(self.executor.say, message, compute),
                                            label=f"sweep {method}"))
            points.append({k: v for k, v in entry.record.items() if k != "seconds"} | {"fraction": fraction})
        stock = next(p["ppl"] for p in points if p["n_heads_replaced"] == 0)
        for point in points:
            point["ppl_increase_pct"] = 100.0 * (point["ppl"] / stock - 1.0)
        return points


def _qa(config: StudyConfig, executor: StageExecutor, inputs: _Inputs, library, compiled, order: list[str],
        programs: _TunedPrograms) -> dict[str, dict]:
    """7. QA accuracy at 0 and 25% replaced, per task."""
    from attnc.runtime.models import file_sha256
    from attnc.study.attribution import replacement_prefix

    qa: dict[str, dict] = {}
    for task, path in config.qa.items():
        per_fraction = {}
        for fraction in QA_FRACTIONS:
            count = heads_for_fraction(fraction, inputs.n_heads)
            replacement = replacement_prefix(order, programs.map(count), count)
            compute = stages.stage(stages.qa_stage, inputs.loaded, programs.source(count), replacement, task, path,
                                   limit=config.qa_limit, on_program_error=config.on_program_error,
                                   progress=config.progress)
            entry = executor.run(Stage("qa", {"model": inputs.model_id, "task": task, "file": file_sha256(path),
                                              "limit": config.qa_limit,
                                              **_replacement_inputs(replacement, compiled.key, config),
                                              **programs.inputs(count)},
                                       _saying(executor.say, f"  {task} with {len(replacement)} heads replaced",
                                               compute)))
            per_fraction[fraction] = entry.record
        qa[task] = {"n": per_fraction[0.0]["n"], "file": str(path),
                    "acc_baseline": per_fraction[0.0]["acc"], "acc_replaced_25": per_fraction[0.25]["acc"],
                    "acc_norm_baseline": per_fraction[0.0]["acc_norm"],
                    "acc_norm_replaced_25": per_fraction[0.25]["acc_norm"],
                    "n_heads_replaced_25": per_fraction[0.25]["n_heads_replaced"]}
    return qa


def _saying(say: Callable[[str], None], message: str, compute):
    """`compute` that first tells the user what it measures (only when it runs, not when cached)."""
    def run(directory, pool):
        say(message)
        return compute(directory, pool)
    return run


def _replaced_counts(config: StudyConfig, n_heads: int) -> list[int]:
    """Head counts replaced at the sweep's (and QA's) points."""
    return sorted({heads_for_fraction(f, n_heads)
                   for f in (*config.fractions, *(QA_FRACTIONS if config.qa else ()))})


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
