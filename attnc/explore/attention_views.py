"""Neural and program attention on a few held-out windows, cut down for a web page.

Every head is shown on the same windows (evenly spread over the held-out
split), so pages compare. A matrix is shipped as its first `tokens` rows and
keys only, lower triangle (the matrices are causal), each weight quantized to
1/255 and the bytes base64-encoded: half the size of 2-decimal JSON floats at
twice their precision. IoU and statistics are computed on the whole window.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from attnc.authoring.show import token_label
from attnc.compiler import LibraryError
from attnc.dsl import ProgramRuntimeError
from attnc.runtime.heads import parse_head
from attnc.runtime.store import AttentionStore, StoreError
from attnc.study.iou import iou_reference
from attnc.study.mixture_run import store_heldout
from attnc.synth.summary import head_statistics
from attnc.window import Vocab

if TYPE_CHECKING:
    from attnc.runtime.library import Library

#: Held-out windows shown per head, and tokens shown per window.
DEFAULT_WINDOWS = 3
DEFAULT_TOKENS = 64
#: Quantization steps of a shipped weight (one byte).
LEVELS = 255


@dataclass
class ShownWindow:
    """A held-out window as the pages show it.

    Attributes:
        window: its window index in the study.
        labels: readable labels of the shown tokens (space as "␣", see `token_label`).
        n_tokens: the whole window's length (IoU and statistics use all of it).
    """

    window: int
    labels: list[str]
    n_tokens: int


@dataclass
class HeadView:
    """One head on the shown windows.

    Attributes:
        neural, program: per window, the encoded matrix (see `encode_matrix`);
            program is empty when no program matrix could be made.
        iou: per window, the IoU of neural vs program on the whole window.
        stats: "neural" / "program" -> mean attention statistics (`head_statistics`).
    """

    neural: list[str]
    program: list[str] = field(default_factory=list)
    iou: list[float] = field(default_factory=list)
    stats: dict[str, dict] = field(default_factory=dict)


@dataclass
class AttentionViews:
    """The shown windows, each head's view, and what could not be made (one sentence each)."""

    windows: list[ShownWindow]
    heads: dict[str, HeadView]
    problems: list[str] = field(default_factory=list)


def encode_matrix(matrix: np.ndarray, tokens: int) -> str:
    """The lower triangle of ``matrix[:tokens, :tokens]``, row by row, as base64 bytes of round(w * 255)."""
    crop = np.asarray(matrix, dtype=np.float64)[:tokens, :tokens]
    rows, cols = np.tril_indices(crop.shape[0])
    levels = np.clip(np.rint(crop[rows, cols] * LEVELS), 0, LEVELS).astype(np.uint8)
    return base64.b64encode(levels.tobytes()).decode("ascii")


def decode_matrix(text: str, tokens: int) -> np.ndarray:
    """The inverse of `encode_matrix` (to quantization): a [tokens, tokens] float array."""
    levels = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    out = np.zeros((tokens, tokens))
    out[np.tril_indices(tokens)] = levels / LEVELS
    return out


def _statistics(labels: Sequence[str], matrices: Sequence[np.ndarray]) -> dict:
    stats = head_statistics([(labels_, m) for labels_, m in zip(labels, matrices)])
    record = asdict(stats)
    record["previous"] = stats.by_offset.get(1, 0.0)
    record.pop("by_offset")
    return {k: round(float(v), 4) for k, v in record.items()}


def heldout_sample(store: AttentionStore, count: int) -> list[int]:
    """`count` held-out window indices, evenly spread over the held-out split (storage order)."""
    rows, _ = store_heldout(store)
    held = store.window_indices[rows]
    if len(held) == 0:
        return []
    picks = np.unique(np.linspace(0, len(held) - 1, num=min(count, len(held))).round().astype(int))
    return [int(held[p]) for p in picks]


def attention_views(store: AttentionStore, used: Mapping[str, tuple[list[str], list[float]]], *,
                    library: Library | None = None, vocab: Vocab | None = None, count: int = DEFAULT_WINDOWS,
                    tokens: int = DEFAULT_TOKENS) -> AttentionViews:
    """Neural and program attention of every head in `used` on `count` held-out windows.

    Args:
        store: the study's attention store.
        used: head -> (program names, weights) that replace it (a mixture or one program).
        library: the compiled library, its vocab set; None: neural only.
        vocab: the tokenizer's tables (token labels); None: ids as labels, and neural only.
        count: windows shown; tokens: tokens shown per window.
    """
    problems: list[str] = []
    chosen = heldout_sample(store, count)
    if not chosen:
        return AttentionViews([], {}, [f"{store.directory}: the store has no held-out window"])
    batches = list(store.iter_windows(chosen))
    ids = np.concatenate([b[1] for b in batches])
    attn = np.concatenate([b[2] for b in batches])
    order = np.concatenate([b[0] for b in batches])
    token_strings = [[vocab.tokens[int(t)] if vocab else f"#{int(t)}" for t in row] for row in ids]
    windows = [ShownWindow(int(w), [token_label(t) for t in strings[:tokens]], len(strings))
               for w, strings in zip(order, token_strings)]
    matrices: dict[str, np.ndarray] = {}
    if library is None or vocab is None:
        problems.append("program matrices need the compiled library and the model's tokenizer: "
                        + ("the library is not on disk" if library is None else "the tokenizer could not be loaded"))
    else:
        for name in sorted({n for names, _ in used.values() for n in names}):
            try:
                matrices[name] = library.matrices([name], ids)[name]
            except (ProgramRuntimeError, LibraryError, KeyError) as error:
                problems.append(f"program {name}: {error}")
    heads: dict[str, HeadView] = {}
    for head, (names, weights) in used.items():
        try:
            position = store.head_position(*parse_head(head))
        except StoreError as error:
            problems.append(str(error))
            continue
        neural = attn[:, position].astype(np.float64)
        view = HeadView(neural=[encode_matrix(m, tokens) for m in neural])
        view.stats["neural"] = _statistics(token_strings, neural)
        if all(n in matrices for n in names):
            program = sum(w * matrices[n] for n, w in zip(names, weights))
            view.program = [encode_matrix(m, tokens) for m in program]
            view.iou = [round(iou_reference(a, p), 4) for a, p in zip(neural, program)]
            view.stats["program"] = _statistics(token_strings, program)
        heads[head] = view
    return AttentionViews(windows, heads, problems)
