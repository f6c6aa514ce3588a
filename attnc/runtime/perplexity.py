"""Token-weighted perplexity of a model (stock or with surrogate heads) on windows.

Each window of n tokens predicts its tokens 1..n-1 from their prefixes inside
the window; perplexity = exp(sum of negative log-likelihoods / token count),
so every predicted token weighs the same.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, ContextManager

import numpy as np
import torch

from attnc.runtime.precision import computing_of


@dataclass(frozen=True)
class PerplexityResult:
    """Perplexity over `tokens_evaluated` = n_windows * (window - 1) predicted tokens."""

    ppl: float
    nll_sum: float
    tokens_evaluated: int
    n_windows: int
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


def window_nll(model, ids: torch.Tensor, computing: Callable[[], ContextManager] = contextlib.nullcontext
               ) -> torch.Tensor:
    """Sum over each window's predicted tokens of -log p(token | prefix): float64 [B].

    `computing`: the context the forward runs in (`LoadedModel.computing`: its precision).
    """
    with torch.inference_mode(), computing():
        logits = model(ids, use_cache=False).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    target = ids[:, 1:].to(logits.device)
    token_logp = logp.gather(-1, target[..., None])[..., 0]
    return -token_logp.double().sum(dim=-1)


def _window_ids(windows_ids) -> torch.Tensor:
    ids = torch.as_tensor(np.asarray(windows_ids), dtype=torch.long)
    if ids.ndim != 2 or ids.shape[1] < 2 or ids.shape[0] == 0:
        raise ValueError(f"windows_ids must be [N >= 1, n >= 2], got shape {tuple(ids.shape)}")
    return ids


def batch_nll_sums(loaded, windows_ids, *, batch_size: int = 8, surrogate=None, progress: bool = False
                   ) -> list[float]:
    """The NLL summed over each batch of `batch_size` consecutive windows, in order.

    This is perplexity's unit of work: a window shard whose size is a multiple of
    `batch_size` gives exactly the sums the whole run gives for those batches, so
    shards computed apart add up to the single-process result (see `perplexity_on_pool`).

    Raises:
        ValueError: bad shapes.
        SurrogateError: `surrogate` is not active on this model.
    """
    model = loaded if isinstance(loaded, torch.nn.Module) else loaded.model
    computing = computing_of(loaded)
    ids = _window_ids(windows_ids)
    if surrogate is not None:
        surrogate.ensure_installed_on(model)
    device = next(model.parameters()).device
    batches = range(0, ids.shape[0], batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="perplexity", unit="batch", file=sys.stderr)
    return [float(window_nll(model, ids[start:start + batch_size].to(device), computing).sum()) for start in batches]


def _result(batch_sums: list[float], shape: tuple[int, int], started: float) -> PerplexityResult:
    nll = 0.0
    for batch in batch_sums:  # in batch order, as one process adds them
        nll += batch
    tokens = shape[0] * (shape[1] - 1)
    return PerplexityResult(ppl=math.exp(nll / tokens), nll_sum=nll, tokens_evaluated=tokens, n_windows=int(shape[0]),
                            seconds=time.perf_counter() - started)


def perplexity(
    loaded,
    windows_ids,
    *,
    batch_size: int = 8,
    surrogate=None,
    progress: bool = True,
) -> PerplexityResult:
    """Perplexity of `loaded.model` on windows of token ids.

    Args:
        loaded: a LoadedModel (or anything with `.model`).
        windows_ids: int array/tensor [N, n], n >= 2, no padding.
        batch_size: windows per forward.
        surrogate: the SurrogateHandle installed on this model, if any (checked to be
            active on it, so a result is never silently the stock model's).
        progress: show a progress bar on stderr.

    Raises:
        ValueError: bad shapes.
        SurrogateError: `surrogate` is not active on this model.
    """
    started = time.perf_counter()
    ids = _window_ids(windows_ids)
    sums = batch_nll_sums(loaded, ids, batch_size=batch_size, surrogate=surrogate, progress=progress)
    return _result(sums, tuple(ids.shape), started)


def perplexity_on_pool(pool, windows_ids, *, batch_size: int = 8, surrogates=None,
                       shard_batches: int | None = None):
    """`perplexity` with window shards run on `pool`'s workers; the same batch sums, added in the same order.

    Args:
        pool: a shard pool (`attnc.parallel.workers.make_pool`) whose workers load the model
            with the attention implementation the caller evaluates.
        surrogates: `attnc.parallel.shard_worker.Surrogates` to install in each worker (None: stock).
        shard_batches: batches per shard (default: about SHARDS_PER_WORKER shards per worker).

    Returns:
        `attnc.parallel.shard_worker.PooledResult` of a `PerplexityResult`.

    Raises:
        ValueError: bad shapes.
        PoolError: a worker died and could not be replaced.
    """
    from attnc.parallel.shard_worker import PerplexityShard, PooledResult, whole_batch_shards

    started = time.perf_counter()
    ids = np.asarray(_window_ids(windows_ids))
    parts = whole_batch_shards(len(ids), batch_size, pool.workers, shard_batches)
    shards = dict(pool.map([PerplexityShard(ids[part], batch_size, surrogates) for part in parts]))
    ordered = [shards[k] for k in range(len(parts))]
    return PooledResult.merged(_result([s for shard in ordered for s in shard.values], ids.shape, started), ordered)
