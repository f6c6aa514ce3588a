"""A program's matrix next to a real head's attention on one text (`attnc show`).

The text is tokenized with the model's tokenizer (no special tokens), the
model runs once with eager attention for the chosen head
(`attnc.runtime.extract.iter_attention`), the program runs with the reference
interpreter on the same ids, and the two are compared with the paper's IoU
(`attnc.study.iou.iou_reference`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnc.dsl import CheckedProgram, run_reference
from attnc.runtime.extract import iter_attention
from attnc.runtime.heads import Head, check_heads, head_name
from attnc.runtime.models import LoadedModel
from attnc.study.iou import iou_reference
from attnc.window import NEWLINE_MARKERS, SPACE_MARKERS


@dataclass
class HeadComparison:
    """One program and one head on one text.

    Attributes:
        program: the program's name.
        model: the model's name.
        head: (layer, head), zero-based.
        ids: the text's token ids.
        labels: a readable label per token ("␣cat", "\\n").
        program_matrix: the program's normalised matrix float64 [n, n].
        attention: the head's attention float64 [n, n].
        iou: the window IoU (ARCHITECTURE.md metric).
    """

    program: str
    model: str
    head: Head
    ids: list[int]
    labels: list[str]
    program_matrix: np.ndarray
    attention: np.ndarray
    iou: float

    @property
    def head_name(self) -> str:
        return head_name(*self.head)

    def to_dict(self) -> dict:
        return {"program": self.program, "model": self.model, "head": self.head_name, "ids": self.ids,
                "labels": self.labels, "iou": self.iou}


def token_label(token: str) -> str:
    """A token string as a short readable label: space markers as "␣", newlines as "\\n"."""
    for marker in NEWLINE_MARKERS:
        token = token.replace(marker, "\\n")
    for marker in SPACE_MARKERS:
        if token.startswith(marker):
            token = "␣" + token[len(marker):]
            break
    return token.replace("\t", "\\t")


def tokenize_text(loaded: LoadedModel, text: str) -> list[int]:
    """The model tokenizer's ids for `text`, without special tokens.

    Raises:
        ValueError: the text gives no tokens, or more than the model's context.
    """
    ids = [int(i) for i in loaded.tokenizer(text, add_special_tokens=False)["input_ids"]]
    if not ids:
        raise ValueError("the text gives no tokens; pass a non-empty --text")
    if len(ids) > loaded.max_positions:
        raise ValueError(f"the text gives {len(ids)} tokens, more than {loaded.name}'s context of "
                         f"{loaded.max_positions}; shorten it")
    return ids


def head_attention(loaded: LoadedModel, head: Head, ids: list[int]) -> np.ndarray:
    """One head's attention float64 [n, n] on one window (one forward pass)."""
    batch = np.asarray([ids], dtype=np.int64)
    _, attn = next(iter_attention(loaded, batch, heads=[head], batch_size=1))
    return attn[0, 0].astype(np.float64)


def compare_with_head(program: CheckedProgram, loaded: LoadedModel, head: Head, text: str) -> HeadComparison:
    """Run `program` and the model's `head` on `text` and compare them.

    Args:
        program: a checked program.
        loaded: the model (its tokenizer tokenizes `text`).
        head: (layer, head), zero-based.
        text: the text to show.

    Returns:
        Both matrices, the token labels and the IoU.

    Raises:
        ValueError: the head is outside the model, or the text is empty/too long.
        ProgramRuntimeError: the program failed on this window.
    """
    head = check_heads([head], loaded.n_layers, loaded.n_heads)[0]
    ids = tokenize_text(loaded, text)
    vocab = loaded.vocab
    matrix = run_reference(program, ids, vocab)
    attention = head_attention(loaded, head, ids)
    return HeadComparison(
        program=program.name, model=loaded.name, head=head, ids=ids,
        labels=[token_label(vocab.tokens[i]) for i in ids],
        program_matrix=matrix, attention=attention, iou=iou_reference(attention, matrix),
    )
