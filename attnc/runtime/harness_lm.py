"""lm-eval's Hugging Face model class, with the attention mask a replaced model needs.

lm-eval's `HFLM` scores a batch of log-likelihood requests by right-padding
their token sequences with zeros and calling the model without an attention
mask: harmless for a stock causal model (a real position never sees the
padding after it), wrong for program heads, whose matrix for a real query may
depend on every token of the window (a program reads the whole sentence).
`MaskedHFLM` gives each forward the mask of its real tokens, so the
surrogate runtime (`attnc.runtime.surrogate`) runs programs on the real tokens
only and a request's score does not depend on what it was batched with.

Import this module only after `attnc.runtime.harness.require_lm_eval()`.
"""

from __future__ import annotations

import torch
from lm_eval.models.huggingface import HFLM


class MaskedHFLM(HFLM):
    """`HFLM` over an already-built causal LM whose forwards carry an attention mask.

    The real length of each padded row is looked up among the inputs of the
    requests being scored (lm-eval builds a request's input as
    ``(context + continuation)[-(max_length + 1):][:-1]``), so the mask is
    exact even when the padding id also occurs in real text. A row that
    matches no request (another lm-eval code path) counts as all real.
    """

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        inputs: dict[int, set[tuple[int, ...]]] = {}
        for _, context, continuation in requests:
            tokens = tuple((list(context) + list(continuation))[-(self.max_length + 1):][:-1])
            inputs.setdefault(len(tokens), set()).add(tokens)
        self._request_inputs = inputs
        try:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        finally:
            self._request_inputs = {}

    def _model_call(self, inps: torch.Tensor, attn_mask: torch.Tensor | None = None,
                    labels: torch.Tensor | None = None) -> torch.Tensor:
        if attn_mask is not None or labels is not None or not getattr(self, "_request_inputs", None):
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)
        mask = torch.ones_like(inps)
        for row, tokens in enumerate(inps.tolist()):
            mask[row, real_length(tokens, self._request_inputs):] = 0
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            return self.model(inps, attention_mask=mask.to(inps.device)).logits


def real_length(row: list[int], inputs: dict[int, set[tuple[int, ...]]], pad_id: int = 0) -> int:
    """Length of the longest request input that `row` is, followed by `pad_id` padding only.

    Args:
        row: one padded row of token ids.
        inputs: request inputs by length.
        pad_id: the id lm-eval pads with (zero).

    Returns:
        That length, or ``len(row)`` when no request input matches.
    """
    for length in sorted((n for n in inputs if n <= len(row)), reverse=True):
        if all(token == pad_id for token in row[length:]) and tuple(row[:length]) in inputs[length]:
            return length
    return len(row)
