"""The attention store: a directory of float16 attention maps written shard by shard.

Layout::

    meta.json                  what was extracted (model, tokenizer, window,
                               corpus hash, window-ids hash, heads, shard size)
    shard-00000.safetensors    attn [W, H, n, n] float16, window_index [W] int64,
    shard-00001.safetensors    ids [W, n] int64 (the windows' token ids)
    ...

Shard k holds rows k*shard_size .. (k+1)*shard_size-1 of the extraction, in
order. Each shard and meta.json is written to a temporary name and renamed
into place, so a file that exists is complete: an interrupted extraction
resumes by skipping the shards already there.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from attnc.runtime.heads import Head, head_name, parse_head

STORE_FORMAT = "attnc-attention-store"
STORE_FORMAT_VERSION = 1
META_FILE = "meta.json"
#: Meta keys that describe the run rather than its content; they may differ on resume.
VOLATILE_META_KEYS = ("created_by",)


class StoreError(RuntimeError):
    """An attention store that is missing, incomplete, or does not match a request."""


def shard_path(directory: Path, index: int) -> Path:
    return Path(directory) / f"shard-{index:05d}.safetensors"


def n_shards_for(n_windows: int, shard_size: int) -> int:
    return (n_windows + shard_size - 1) // shard_size


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to a temporary file beside `path`, then rename it into place."""
    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it into place (no torn files)."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_shard(directory: Path, index: int, attn: np.ndarray, window_index: np.ndarray, ids: np.ndarray) -> Path:
    """Write one shard atomically.

    Args:
        attn: [W, H, n, n] (stored as float16).
        window_index: [W] window indices.
        ids: [W, n] token ids.
    """
    from safetensors.numpy import save_file

    target = shard_path(directory, index)
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        save_file(
            {
                "attn": np.ascontiguousarray(attn, dtype=np.float16),
                "window_index": np.ascontiguousarray(window_index, dtype=np.int64),
                "ids": np.ascontiguousarray(ids, dtype=np.int64),
            },
            tmp,
        )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def read_meta(directory: Path) -> dict:
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise StoreError(f"{directory}: not an attention store (no {META_FILE}); create one with `attnc extract`")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise StoreError(f"{path}: unreadable ({error.msg} at line {error.lineno})") from error
    if meta.get("format") != STORE_FORMAT:
        raise StoreError(f"{path}: not an attnc attention store (format {meta.get('format')!r})")
    if meta.get("format_version") != STORE_FORMAT_VERSION:
        raise StoreError(
            f"{path}: store format version {meta.get('format_version')} is not supported "
            f"(this attnc reads {STORE_FORMAT_VERSION}); re-extract with `attnc extract --overwrite`"
        )
    return meta


def meta_differences(old: dict, new: dict) -> list[str]:
    """Keys whose values differ between two metas (volatile keys ignored)."""
    keys = (set(old) | set(new)) - set(VOLATILE_META_KEYS)
    return sorted(k for k in keys if old.get(k) != new.get(k))


@dataclass
class AttentionStore:
    """Read access to an attention store directory (open with `AttentionStore.open`).

    Attributes:
        directory: the store directory.
        meta: the parsed meta.json.
    """

    directory: Path
    meta: dict

    @classmethod
    def open(cls, directory: str | Path) -> "AttentionStore":
        """Open a complete store.

        Raises:
            StoreError: no store there, unsupported version, or shards missing
                (an interrupted extraction: rerun it to resume).
        """
        directory = Path(directory)
        meta = read_meta(directory)
        missing = [i for i in range(meta["n_shards"]) if not shard_path(directory, i).is_file()]
        if missing:
            raise StoreError(
                f"{directory}: incomplete store, {len(missing)} of {meta['n_shards']} shards missing "
                f"(first: {shard_path(directory, missing[0]).name}); rerun the same `attnc extract` to resume"
            )
        return cls(directory=directory, meta=meta)

    @property
    def n_windows(self) -> int:
        return int(self.meta["n_windows"])

    @property
    def window(self) -> int:
        return int(self.meta["window"])

    @property
    def heads(self) -> list[Head]:
        """Stored heads as (layer, head), in the order of the attn head axis."""
        return [parse_head(name) for name in self.meta["heads"]]

    @property
    def head_names(self) -> list[str]:
        return list(self.meta["heads"])

    @property
    def window_indices(self) -> np.ndarray:
        """Window index of every stored row, in storage order."""
        return np.asarray(self.meta["window_indices"], dtype=np.int64)

    def head_position(self, layer: int, head: int) -> int:
        """Index of head (layer, head) on the attn head axis."""
        name = head_name(layer, head)
        try:
            return self.meta["heads"].index(name)
        except ValueError:
            raise StoreError(f"{self.directory}: head {name} was not extracted; stored: {', '.join(self.meta['heads'])}") from None

    def _load_shard(self, index: int) -> dict[str, np.ndarray]:
        from safetensors.numpy import load_file

        return load_file(shard_path(self.directory, index))

    def _load_rows(self, index: int, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Some rows of one shard, read from the memory-mapped file (a shard can be GBs; a few rows are not)."""
        from safetensors import safe_open

        out = {}
        with safe_open(str(shard_path(self.directory, index)), framework="numpy") as shard:
            for name in ("attn", "window_index", "ids"):
                tensor = shard.get_slice(name)
                out[name] = np.concatenate([tensor[int(r):int(r) + 1] for r in rows])
        return out

    def _locate(self, window_indices: Sequence[int]) -> dict[int, list[tuple[int, int]]]:
        """shard -> [(row in shard, position in request)] for the requested window indices."""
        row_of = {int(w): row for row, w in enumerate(self.window_indices)}
        size = int(self.meta["shard_size"])
        by_shard: dict[int, list[tuple[int, int]]] = {}
        for position, w in enumerate(window_indices):
            row = row_of.get(int(w))
            if row is None:
                raise StoreError(f"{self.directory}: window {int(w)} is not in this store")
            by_shard.setdefault(row // size, []).append((row % size, position))
        return by_shard

    def iter_batches(self, window_indices: Sequence[int] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (window_index [w] int64, attn [w, H, n, n] float32), one shard at a time.

        Args:
            window_indices: the windows to read (by window index, as
                recorded); all when None. Rows come shard by shard in
                storage order, whatever the order asked.
        """
        for window_index, _, attn in self.iter_windows(window_indices):
            yield window_index, attn

    def iter_windows(
        self, window_indices: Sequence[int] | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Like `iter_batches`, with the token ids: (window_index [w], ids [w, n], attn [w, H, n, n] float32)."""
        if window_indices is None:
            plan = [(index, None) for index in range(int(self.meta["n_shards"]))]
        else:
            plan = [
                (index, np.asarray([row for row, _ in rows], dtype=np.int64))
                for index, rows in sorted(self._locate(window_indices).items())
            ]
        for index, take in plan:
            if take is None:
                yield self.read_shard(index)
            else:
                shard = self._load_rows(index, take)
                yield shard["window_index"], shard["ids"], shard["attn"].astype(np.float32)

    def read_shard(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Shard `index` whole: (window_index [w], ids [w, n], attn [w, H, n, n] float32)."""
        shard = self._load_shard(index)
        return shard["window_index"], shard["ids"], shard["attn"].astype(np.float32)

    @property
    def n_shards(self) -> int:
        return int(self.meta["n_shards"])

    def get(self, window_index: int) -> np.ndarray:
        """Attention of one window: float32 [H, n, n]."""
        ((_, attn),) = self.iter_batches([window_index])
        return attn[0]

    def ids(self) -> np.ndarray:
        """Token ids of every stored window, [N, n] int64, in storage order (attention not read)."""
        from safetensors import safe_open

        parts = []
        for index in range(int(self.meta["n_shards"])):
            with safe_open(str(shard_path(self.directory, index)), framework="numpy") as shard:
                parts.append(shard.get_tensor("ids"))
        return np.concatenate(parts) if parts else np.zeros((0, self.window), dtype=np.int64)
