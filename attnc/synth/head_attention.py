"""The recorded attention of the heads being synthesised, and the real scorer over it.

The model runs once over the fit and held-out windows for the selected heads;
every candidate program is then compiled, evaluated on the same windows with
the compiled library's batch API, and scored with the reference IoU
(ARCHITECTURE.md "Fidelity metric"). Only validated programs ever reach here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnc.compiler import compile_program
from attnc.dsl.program import CheckedProgram
from attnc.runtime.heads import Head, head_name
from attnc.study.iou import iou_reference_batch
from attnc.synth.scoring import CandidateScore
from attnc.window import Vocab


@dataclass
class HeadAttention:
    """Attention of selected heads on fit and held-out windows.

    Attributes:
        heads: "layer.head" names, in the order of the attention's head axis.
        fit_ids, heldout_ids: int64 [W, n] windows.
        fit_attn, heldout_attn: float32 [W, H, n, n].
        vocab: the tokenizer's tables.
    """

    heads: list[str]
    fit_ids: np.ndarray
    heldout_ids: np.ndarray
    fit_attn: np.ndarray
    heldout_attn: np.ndarray
    vocab: Vocab

    @classmethod
    def record(cls, loaded, windows, heads: list[Head], *, max_fit: int = 64, max_heldout: int = 64,
               batch_size: int = 8) -> "HeadAttention":
        """Run the model once over (a prefix of) each split for these heads."""
        from attnc.runtime.extract import iter_attention

        def run(ids: np.ndarray) -> np.ndarray:
            parts = [attn for _, attn in iter_attention(loaded, ids, heads=heads, batch_size=batch_size)]
            return np.concatenate(parts) if parts else np.zeros((0, len(heads), ids.shape[1], ids.shape[1]), np.float32)

        fit_ids, held_ids = windows.fit_ids[:max_fit], windows.heldout_ids[:max_heldout]
        return cls([head_name(*h) for h in heads], fit_ids, held_ids, run(fit_ids), run(held_ids), loaded.vocab)

    def index(self, head: str) -> int:
        try:
            return self.heads.index(head)
        except ValueError:
            raise KeyError(f"head {head} was not recorded; recorded: {', '.join(self.heads)}") from None

    def samples(self, head: str, count: int = 3) -> list[tuple[list[str], np.ndarray]]:
        """(token strings, attention [n, n]) of the first fit windows, for head summaries."""
        h = self.index(head)
        return [([self.vocab.tokens[int(i)] for i in self.fit_ids[w]], self.fit_attn[w, h])
                for w in range(min(count, len(self.fit_ids)))]


class HeadAttentionScorer:
    """The synthesis loop's Scorer: compile, evaluate on the recorded windows, IoU."""

    def __init__(self, recorded: HeadAttention):
        self.recorded = recorded

    def score(self, program: CheckedProgram, head: str) -> CandidateScore:
        h = self.recorded.index(head)
        compiled = compile_program(program)
        vocab = self.recorded.vocab
        fit = iou_reference_batch(self.recorded.fit_attn[:, h], compiled.evaluate(self.recorded.fit_ids, vocab))
        held = (iou_reference_batch(self.recorded.heldout_attn[:, h], compiled.evaluate(self.recorded.heldout_ids, vocab))
                if len(self.recorded.heldout_ids) else np.array([np.nan]))
        return CandidateScore(iou_fit=float(np.mean(fit)), iou_heldout=float(np.mean(held)))
