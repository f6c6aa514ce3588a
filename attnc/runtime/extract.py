"""Attention extraction: run the model once per batch of windows and keep the heads' maps.

`iter_attention` streams float32 maps for a scorer that needs no disk;
`extract_attention` writes them as float16 shards into an attention store
(`attnc.runtime.store`), resumably. Both read the model's own eager
attention weights (``output_attentions=True``): the softmax probabilities
each head applies, causal mask included, for windows of equal length with
no padding and no special tokens added.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from attnc import __version__
from attnc.runtime.corpus import ids_sha256
from attnc.runtime.heads import Head, all_heads, check_heads, head_name
from attnc.runtime.models import LoadedModel
from attnc.runtime.store import (
    META_FILE,
    STORE_FORMAT,
    STORE_FORMAT_VERSION,
    AttentionStore,
    StoreError,
    meta_differences,
    n_shards_for,
    read_meta,
    shard_path,
    write_json_atomic,
    write_shard,
)

#: Target size of one shard when `shard_size` is not given: bounds the memory an
#: extraction holds (one shard) and keeps files easy to move.
DEFAULT_SHARD_BYTES = 256 * 2**20
MAX_SHARD_SIZE = 4096


def auto_shard_size(n_heads: int, window: int, target_bytes: int = DEFAULT_SHARD_BYTES) -> int:
    """Windows per shard so that a float16 shard of `n_heads` maps is about `target_bytes`."""
    per_window = max(1, n_heads * window * window * 2)
    return int(min(MAX_SHARD_SIZE, max(1, target_bytes // per_window)))


@contextmanager
def eager_attention(loaded: LoadedModel):
    """Switch the model to eager attention (the one that returns weights) for the block."""
    model = loaded.model
    previous = getattr(model.config, "_attn_implementation", None)
    if previous != "eager":
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if previous is not None and previous != "eager":
            model.set_attn_implementation(previous)


def _check_ids(loaded: LoadedModel, windows_ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(windows_ids)
    if ids.ndim != 2 or ids.shape[1] < 1:
        raise ValueError(f"windows_ids must be [N, n], got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"windows_ids must be integer token ids, got {ids.dtype}")
    if ids.shape[1] > loaded.max_positions:
        raise ValueError(f"windows of {ids.shape[1]} tokens exceed {loaded.name}'s context of {loaded.max_positions}")
    vocab_size = int(loaded.model.config.get_text_config().vocab_size)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must be in [0, {vocab_size}) for {loaded.name}; got {ids.min()}..{ids.max()}")
    return ids.astype(np.int64, copy=False)


def _resolve_heads(loaded: LoadedModel, heads: Sequence[Head] | None) -> list[Head]:
    if heads is None:
        return all_heads(loaded.n_layers, loaded.n_heads)
    return check_heads(heads, loaded.n_layers, loaded.n_heads)


def _select(attentions: Sequence[torch.Tensor], heads: list[Head]) -> torch.Tensor:
    """Per-layer [B, H, n, n] maps -> [B, len(heads), n, n] in the order of `heads`."""
    layers = sorted({layer for layer, _ in heads})
    for layer in layers:
        if attentions[layer] is None:
            raise RuntimeError(
                f"layer {layer} returned no attention weights; extraction needs eager attention "
                "(load the model with attn_implementation='eager')"
            )
    return torch.stack([attentions[layer][:, head] for layer, head in heads], dim=1)


def _forward_batches(
    loaded: LoadedModel, ids: np.ndarray, heads: list[Head], batch_size: int, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first row, attn [b, H, n, n] float32 tensor) for rows start..stop of `ids`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stop = len(ids) if stop is None else stop
    device = next(loaded.model.parameters()).device
    with eager_attention(loaded) as model, torch.inference_mode(), loaded.computing():
        for first in range(start, stop, batch_size):
            batch = torch.from_numpy(ids[first:min(first + batch_size, stop)]).to(device)
            out = model(input_ids=batch, output_attentions=True, use_cache=False)
            yield first, _select(out.attentions, heads).float().cpu()


def attention_shard(loaded: LoadedModel, ids: np.ndarray, heads: list[Head], batch_size: int) -> np.ndarray:
    """Attention of windows `ids` (one store shard's rows), forwarded in batches from the first: float16 [w, H, n, n]."""
    return np.concatenate([attn.to(torch.float16).numpy()
                           for _, attn in _forward_batches(loaded, _check_ids(loaded, ids), heads, batch_size)])


def iter_attention(
    loaded: LoadedModel,
    windows_ids: np.ndarray,
    *,
    heads: Sequence[Head] | None = None,
    batch_size: int = 8,
    window_indices: Sequence[int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Run the model over windows and yield their attention, without writing anything.

    Args:
        loaded: the model (switched to eager attention while iterating).
        windows_ids: int [N, n] token ids.
        heads: (layer, head) pairs, in the order wanted; all heads when None.
        batch_size: windows per forward pass.
        window_indices: the label of each row (e.g. global window indices);
            ``0..N-1`` when None.

    Yields:
        (window_index int64 [w], attn float32 [w, H, n, n]) per batch.

    Raises:
        ValueError: bad ids shape/range or heads outside the model.
    """
    ids = _check_ids(loaded, windows_ids)
    heads = _resolve_heads(loaded, heads)
    labels = _labels(window_indices, len(ids))
    for first, attn in _forward_batches(loaded, ids, heads, batch_size):
        yield labels[first:first + attn.shape[0]], attn.numpy()


def _labels(window_indices: Sequence[int] | None, n: int) -> np.ndarray:
    if window_indices is None:
        return np.arange(n, dtype=np.int64)
    labels = np.asarray(window_indices, dtype=np.int64)
    if labels.shape != (n,):
        raise ValueError(f"window_indices must have one entry per window ({n}), got shape {labels.shape}")
    if len(np.unique(labels)) != n:
        raise ValueError("window_indices must be distinct")
    return labels


def store_meta(
    loaded: LoadedModel,
    ids: np.ndarray,
    heads: list[Head],
    labels: np.ndarray,
    shard_size: int,
    corpus_sha256: str,
    windows_info: dict | None,
) -> dict:
    """The meta.json content an extraction writes (and a resume must match)."""
    return {
        "format": STORE_FORMAT,
        "format_version": STORE_FORMAT_VERSION,
        "model": loaded.name,
        "model_info": loaded.describe(),
        "tokenizer": loaded.tokenizer_name,
        "window": int(ids.shape[1]),
        "corpus_sha256": corpus_sha256,
        "ids_sha256": ids_sha256(ids),
        "heads": [head_name(layer, head) for layer, head in heads],
        "dtype": "float16",
        "n_windows": int(ids.shape[0]),
        "window_indices": [int(i) for i in labels],
        "shard_size": int(shard_size),
        "n_shards": n_shards_for(int(ids.shape[0]), shard_size),
        "windows": windows_info or {},
        "created_by": f"attnc {__version__}",
    }


def extract_attention(
    loaded: LoadedModel,
    windows_ids: np.ndarray,
    *,
    store_dir: str | Path,
    heads: Sequence[Head] | None = None,
    batch_size: int = 8,
    shard_size: int | None = None,
    window_indices: Sequence[int] | None = None,
    corpus_sha256: str = "",
    windows_info: dict | None = None,
    overwrite: bool = False,
    progress: bool = True,
    on_shard: Callable[[int, Path], None] | None = None,
    pool=None,
) -> AttentionStore:
    """Extract attention maps into a store directory, resuming a previous run.

    Memory is bounded by one shard plus one forward pass: rows are forwarded
    in batches and written as soon as a shard of `shard_size` windows is
    complete. A forward pass with ``output_attentions=True`` holds every
    layer's maps, ``n_layers * batch_size * n_heads * n**2 * 4`` bytes (141 MB
    for SmolLM2 at batch 8, window 128); lower `batch_size` for long windows.

    Args:
        loaded: the model.
        windows_ids: int [N, n] token ids.
        store_dir: the store directory (created if needed).
        heads: (layer, head) pairs to keep; all heads when None.
        batch_size: windows per forward pass.
        shard_size: windows per shard file; by default about 256 MiB of
            float16 maps (`auto_shard_size`: 30 windows for all 270 SmolLM2
            heads at window 128).
        window_indices: label of each row (e.g. its index in `Windows`); 0..N-1 when None.
        corpus_sha256: the corpus hash, recorded and checked on resume.
        windows_info: `Windows.describe()` or similar, recorded in meta.json.
        overwrite: replace a store made by a different request instead of failing.
        progress: show a tqdm progress bar (stderr).
        on_shard: called as ``on_shard(shard_index, path)`` after each shard is
            written (progress reporting; tests use it to simulate interruption).
        pool: a shard pool (`attnc.parallel`) whose workers compute and write the
            missing shards, in any order; None: this process, in order.

    Returns:
        The opened `AttentionStore`.

    Raises:
        StoreError: `store_dir` holds a different store (or other files) and
            `overwrite` is false.
        ValueError: bad ids, heads or sizes.
    """
    ids = _check_ids(loaded, windows_ids)
    heads = _resolve_heads(loaded, heads)
    if shard_size is None:
        shard_size = auto_shard_size(len(heads), ids.shape[1])
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    labels = _labels(window_indices, len(ids))
    directory = Path(store_dir)
    meta = store_meta(loaded, ids, heads, labels, shard_size, corpus_sha256, windows_info)
    _prepare_directory(directory, meta, overwrite)

    n_shards = meta["n_shards"]
    todo = [k for k in range(n_shards) if not shard_path(directory, k).is_file()]
    rows_todo = sum(min(shard_size, len(ids) - k * shard_size) for k in todo)
    from tqdm.auto import tqdm

    bar = tqdm(total=rows_todo, unit="window", desc=f"extract {directory.name}", disable=not progress or not todo)
    try:
        if pool is not None:
            _extract_on_pool(pool, directory, ids, labels, heads, batch_size, shard_size, todo, bar, on_shard,
                             precision=loaded.precision)
            return AttentionStore.open(directory)
        for k in todo:
            start, stop = k * shard_size, min((k + 1) * shard_size, len(ids))
            parts = []
            for _, attn in _forward_batches(loaded, ids, heads, batch_size, start, stop):
                parts.append(attn.to(torch.float16).numpy())
                bar.update(attn.shape[0])
            path = write_shard(directory, k, np.concatenate(parts), labels[start:stop], ids[start:stop])
            if on_shard is not None:
                on_shard(k, path)
    finally:
        bar.close()
    return AttentionStore.open(directory)


def _extract_on_pool(pool, directory: Path, ids: np.ndarray, labels: np.ndarray, heads: list[Head], batch_size: int,
                     shard_size: int, todo: list[int], bar, on_shard, *, precision: str = "float32") -> None:
    """Shards `todo` as pool tasks; each worker writes its shard, so a finished one survives any later failure."""
    from attnc.parallel.shard_worker import ExtractShard

    tasks = [ExtractShard(directory, k, ids[k * shard_size:(k + 1) * shard_size],
                          labels[k * shard_size:(k + 1) * shard_size], tuple(heads), batch_size, precision)
             for k in todo]
    for position, path in pool.map(tasks):
        bar.update(len(tasks[position].ids))
        if on_shard is not None:
            on_shard(tasks[position].shard, Path(path))


def _prepare_directory(directory: Path, meta: dict, overwrite: bool) -> None:
    """Create the store dir or check that the one there is this request's (resume)."""
    directory.mkdir(parents=True, exist_ok=True)
    existing_meta = directory / META_FILE
    if existing_meta.is_file():
        try:
            old = read_meta(directory)
            differences = meta_differences(old, meta)
        except StoreError:
            if not overwrite:
                raise
            differences = ["format"]
        if not differences:
            return  # resume: keep the shards already written
        if not overwrite:
            raise StoreError(
                f"{directory}: holds a different attention store (differs in: {', '.join(differences)}); "
                "choose another --out directory or pass --overwrite / overwrite=True to replace it"
            )
        _remove_store_files(directory)
    else:
        others = [p.name for p in directory.iterdir() if not p.name.startswith(".")]
        if others:
            if not overwrite:
                raise StoreError(
                    f"{directory}: not empty and not an attention store ({', '.join(sorted(others)[:3])}...); "
                    "choose an empty --out directory"
                )
            _remove_store_files(directory)
    write_json_atomic(existing_meta, meta)


def _remove_store_files(directory: Path) -> None:
    """Delete a previous store's files (only those: meta.json and shard-*.safetensors)."""
    for path in directory.glob("shard-*.safetensors"):
        path.unlink()
    meta = directory / META_FILE
    if meta.exists():
        meta.unlink()

