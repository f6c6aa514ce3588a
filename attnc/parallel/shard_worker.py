"""One worker's state and tasks: the model and compiled libraries, loaded once, and the shard tasks.

A task is a small record (which shard, which rows, which library); the worker
reads or computes the attention itself, so only ids and results travel. Eval
shards (perplexity windows, QA request batches) name the heads to replace and
the library, which the worker loads once. An offline-synthesis fit chunk is the
exception: it carries the arrays the caller already computed (attention rows,
features; tens of MB, against minutes of fitting), so the worker needs no model
for it. The same `ShardWorker` runs in the main process, in a local worker
process, or as a Ray actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ExtractShard:
    """Write shard `shard` of the store at `store_dir`: attention of windows `ids` (rows of that shard),
    the model computing in `precision` (the caller's: `LoadedModel.precision`)."""

    store_dir: Path
    shard: int
    ids: np.ndarray
    window_indices: np.ndarray
    heads: tuple[tuple[int, int], ...]
    batch_size: int
    precision: str = "float32"


@dataclass(frozen=True)
class ScoreShard:
    """Score the library at `library_dir` on one shard of windows.

    The attention comes from store shard `store_shard` of `store_dir`, or, when
    `store_dir` is None, from the model run over `ids` (labelled `window_indices`)
    in batches of `batch_size`. `heldout` is the split of every window index.
    """

    library_dir: Path
    heads: tuple[str, ...]
    heldout: np.ndarray
    store_dir: Path | None = None
    store_shard: int = 0
    ids: np.ndarray | None = None
    window_indices: np.ndarray | None = None
    batch_size: int = 8


@dataclass(frozen=True)
class MixtureIouShard:
    """IoU sums of mixtures (`attnc.study.mixture_run.mixture_iou_sums`) on store shard `store_shard`.

    `weight_sets` are S maps head -> {program: weight} over programs of the library
    at `library_dir`; `heldout_of` maps each window index to its split.
    """

    library_dir: Path
    store_dir: Path
    store_shard: int
    heads: tuple[str, ...]
    weight_sets: tuple[dict, ...]
    heldout_of: dict


@dataclass(frozen=True)
class Surrogates:
    """Heads to replace by programs of the library at `library_dir` (`attnc.runtime.surrogate`)."""

    library_dir: Path
    replacement: object  # attnc.runtime.replacement.ReplacementMap
    on_program_error: str = "fail"


@dataclass(frozen=True)
class PerplexityShard:
    """Per-batch NLL sums (`attnc.runtime.perplexity.batch_nll_sums`) of windows `ids`, in batches of
    `batch_size`, on the stock model or with `surrogates` installed for the task."""

    ids: np.ndarray
    batch_size: int
    surrogates: Surrogates | None = None


@dataclass(frozen=True)
class LogprobShard:
    """Continuation log-probabilities (`attnc.runtime.qa.continuation_logprobs`) of QA `requests`
    (whole batches of the length-sorted order), stock or with `surrogates` installed for the task."""

    requests: list
    batch_size: int
    surrogates: Surrogates | None = None


@dataclass(frozen=True)
class SurrogateShardResult:
    """An eval shard's values (batch NLL sums, or request log-probabilities), and the program
    fallbacks and failures its surrogates saw."""

    values: list
    fallbacks: dict
    failures: list


#: Whole-batch shards per worker for eval's pooled runs (more: better balance, smaller retries).
SHARDS_PER_WORKER = 4


def whole_batch_shards(n_items: int, batch_size: int, workers: int, shard_batches: int | None = None) -> list[slice]:
    """Consecutive slices of `n_items` ordered items, each whole batches of `batch_size` (the last
    may be short): shards whose batches are exactly the single process's, about
    SHARDS_PER_WORKER per worker unless `shard_batches` says how many batches each holds."""
    n_batches = -(-n_items // batch_size)
    step = (shard_batches or max(1, -(-n_batches // (workers * SHARDS_PER_WORKER)))) * batch_size
    return [slice(first, first + step) for first in range(0, n_items, step)]


@dataclass(frozen=True)
class PooledResult:
    """A pooled evaluation's result, and what the workers' surrogates recorded over all its shards.

    Attributes:
        fallbacks: (program, "layer.head") -> windows that used stock attention.
        failures: every `ProgramFailure`, in shard order (their forward numbers count within a worker).
    """

    result: object
    fallbacks: dict
    failures: list

    @classmethod
    def merged(cls, result, shards: "list[SurrogateShardResult]") -> "PooledResult":
        """`result` with the surrogate records of `shards` (in shard order) added up."""
        from collections import Counter

        fallbacks: Counter = Counter()
        for shard in shards:
            fallbacks.update(shard.fallbacks)
        return cls(result, dict(fallbacks), [f for shard in shards for f in shard.failures])


@dataclass(frozen=True)
class FitHeadsShard:
    """One chunk of heads for `attnc.synth.offline_fit.fit_heads`: its arguments, as the single-process
    synthesis computed them (the worker needs no model for it)."""

    attn: np.ndarray
    feats: np.ndarray
    feature_names: tuple[str, ...]
    key_token: np.ndarray
    token_strings: list
    head_names: list
    config: object  # attnc.synth.offline_fit.FitConfig
    rows: np.ndarray | None = None
    values: np.ndarray | None = None


@dataclass(frozen=True)
class Ready:
    """Load the model and answer (a pool's warm-up: start-up is then not counted as work)."""


class ShardWorker:
    """Holds a model (loaded on first use) and libraries by path; runs shard tasks.

    Args:
        model: what `load_model` loads (a name or directory), or an already loaded model.
        threads: torch and numba threads of this worker (None: leave their defaults);
            the IoU kernels are numba `parallel=True`, so N workers on N cores want 1 each.
        attn_implementation: the attention a model loaded here runs ("eager" for extraction,
            which reads attention weights; eval passes its --attn).
    """

    def __init__(self, model, threads: int | None = None, attn_implementation: str = "eager"):
        if threads:
            import numba
            import torch

            torch.set_num_threads(threads)
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        self._spec = model if isinstance(model, str) else None
        self._attn = attn_implementation
        self._loaded = None if isinstance(model, str) else model
        self._libraries: dict[str, object] = {}

    def loaded(self):
        if self._loaded is None:
            from attnc.runtime.models import load_model

            self._loaded = load_model(self._spec, attn_implementation=self._attn)
        return self._loaded

    def library(self, path: Path):
        key = str(path)
        if key not in self._libraries:
            from attnc.runtime.library import load_library

            self._libraries[key] = load_library(path, vocab=self.loaded().vocab)
        return self._libraries[key]

    def run(self, index: int, task):
        """(index, result) of one task; `index` is the caller's label of it."""
        if isinstance(task, ExtractShard):
            return index, self.extract(task)
        if isinstance(task, ScoreShard):
            return index, self.score(task)
        if isinstance(task, MixtureIouShard):
            return index, self.mixture_iou(task)
        if isinstance(task, PerplexityShard):
            return index, self.perplexity(task)
        if isinstance(task, LogprobShard):
            return index, self.logprobs(task)
        if isinstance(task, FitHeadsShard):
            return index, self.fit_heads(task)
        if isinstance(task, Ready):
            return index, self.ready()
        raise TypeError(f"ShardWorker: unknown task {type(task).__name__}")

    def ready(self) -> bool:
        """Load the model now (a pool calls this once, so loading is not timed as work)."""
        self.loaded()
        return True

    def extract(self, task: ExtractShard) -> str:
        """Compute and write one store shard; its path."""
        from attnc.runtime.extract import attention_shard
        from attnc.runtime.store import write_shard

        attn = attention_shard(self.loaded().with_precision(task.precision), task.ids, list(task.heads),
                               task.batch_size)
        return str(write_shard(Path(task.store_dir), task.shard, attn, task.window_indices, task.ids))

    def score(self, task: ScoreShard):
        """Per-batch IoU sums of one shard (`attnc.study.score_run.ShardScores`)."""
        from attnc.study.score_run import score_shard

        library = self.library(Path(task.library_dir))
        if task.store_dir is not None:
            from attnc.runtime.store import AttentionStore

            batches = [AttentionStore.open(task.store_dir).read_shard(task.store_shard)]
        else:
            batches = self._model_batches(task)
        return score_shard(batches, library.programs, self.loaded().vocab, task.heads, task.heldout)

    def mixture_iou(self, task: MixtureIouShard):
        """(IoU sums [S, 2, H], window counts [2]) of the task's mixtures on one store shard."""
        from attnc.runtime.store import AttentionStore
        from attnc.study.mixture_run import mixture_iou_sums

        library = self.library(Path(task.library_dir))
        batches = [AttentionStore.open(task.store_dir).read_shard(task.store_shard)]
        return mixture_iou_sums(batches, task.weight_sets, task.heads, library.programs, self.loaded().vocab,
                                task.heldout_of)

    def perplexity(self, task: PerplexityShard) -> SurrogateShardResult:
        """Batch NLL sums of the task's windows, its surrogates installed only while it runs."""
        from attnc.runtime.perplexity import batch_nll_sums

        return self._with_surrogates(task.surrogates, lambda loaded, handle: batch_nll_sums(
            loaded, task.ids, batch_size=task.batch_size, surrogate=handle))

    def logprobs(self, task: LogprobShard) -> SurrogateShardResult:
        """Log-probabilities of the task's requests, in its order, its surrogates installed only while it runs."""
        from attnc.runtime.qa import continuation_logprobs

        return self._with_surrogates(task.surrogates, lambda loaded, handle: list(continuation_logprobs(
            loaded, task.requests, batch_size=task.batch_size)))

    def _with_surrogates(self, spec: Surrogates | None, compute) -> SurrogateShardResult:
        """compute(model, handle or None) with `spec`'s surrogates installed (then removed), and their record."""
        loaded = self.loaded()
        handle = None
        if spec is not None:
            from attnc.runtime.surrogate import install_surrogates

            handle = install_surrogates(loaded, self.library(Path(spec.library_dir)), spec.replacement,
                                        on_program_error=spec.on_program_error)
        try:
            values = compute(loaded, handle)
        finally:
            if handle is not None:
                handle.remove()
        return SurrogateShardResult(values, dict(handle.fallbacks) if handle else {},
                                    list(handle.failures) if handle else [])

    def fit_heads(self, task: FitHeadsShard) -> list:
        """`fit_heads` on the task's chunk of heads: one `HeadModel` per head, in order."""
        from attnc.synth.offline_fit import fit_heads

        return fit_heads(task.attn, task.feats, task.feature_names, task.key_token, task.token_strings,
                         task.head_names, task.config, task.rows, task.values)

    def _model_batches(self, task: ScoreShard):
        """(window_index, ids, attn) batches of the model run over the task's windows."""
        from attnc.runtime.extract import iter_attention
        from attnc.runtime.heads import parse_head

        first = 0
        for window_index, attn in iter_attention(self.loaded(), task.ids, heads=[parse_head(h) for h in task.heads],
                                                 batch_size=task.batch_size, window_indices=task.window_indices):
            yield window_index, task.ids[first:first + len(window_index)], attn
            first += len(window_index)
