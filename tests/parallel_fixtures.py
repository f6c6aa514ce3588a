"""A tiny saved model, its windows, a compiled library and a many-shard store, for the pool tests."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnc.cli import main
from attnc.runtime.corpus import make_windows, read_corpus
from attnc.runtime.extract import extract_attention
from attnc.runtime.library import load_library
from attnc.runtime.models import load_model, tiny_model
from attnc.runtime.store import AttentionStore

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
STORY = ("Tom had a red ball. He threw the ball to his dog, and the dog ran after it. "
         "\"Good dog!\" said Tom. The dog was happy. ")
SHARD = 4  # windows per store shard: 24 windows give 6 shards, so every pool has tasks queued


@dataclass
class Case:
    root: Path
    model: str
    loaded: object
    windows: object
    lib: Path
    library: object
    store: AttentionStore


def build_case(root: Path) -> Case:
    tiny = tiny_model("llama", n_layers=2, n_heads=4)
    tiny.model.save_pretrained(root / "model")
    tiny.tokenizer.save_pretrained(root / "model")
    (root / "corpus.txt").write_text("\n\n".join([STORY * 3] * 3))
    progs = root / "programs"
    progs.mkdir()
    for name in ("first_token", "previous_token", "uniform_causal", "self_token"):
        (progs / f"{name}.py").write_text((PROGRAMS / f"{name}.py").read_text())
    assert main(["compile", str(progs), "-o", str(root / "lib")]) == 0
    loaded = load_model(str(root / "model"))
    windows = make_windows(read_corpus(root / "corpus.txt"), loaded.tokenizer, window=16)
    store = extract_attention(loaded, windows.ids, store_dir=root / "store", batch_size=3, shard_size=SHARD,
                              progress=False)
    return Case(root, str(root / "model"), loaded, windows, root / "lib",
                load_library(root / "lib", vocab=loaded.vocab), store)


def store_arrays(directory: Path) -> list[np.ndarray]:
    """Every array of every shard, in order (equal stores give equal lists)."""
    store = AttentionStore.open(directory)
    return [array for k in range(store.n_shards) for array in store.read_shard(k)]
