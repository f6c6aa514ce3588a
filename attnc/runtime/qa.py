"""Multiple-choice QA accuracy by log-likelihood (PIQA, SocialIQA), lm-eval-harness style.

Each item is a context and several answer choices. A choice's score is the
sum of the log-probabilities of its continuation tokens given the context:
- `acc`: the item is right when the correct choice has the highest sum;
- `acc_norm`: the same with each sum divided by the choice's length in
  characters (the answer text without the leading space), as lm-eval-harness's
  `acc_norm` does.

Prompt formats (the continuation is " " + answer):
- PIQA: context `"Question: {goal}\\nAnswer:"` (as lm-eval-harness), choices sol1, sol2,
  label 0/1.
- SocialIQA: context `"{context} {question}"`, choices answerA/B/C, correct "A"/"B"/"C".
  (lm-eval-harness uses `"Q: {context} {question}\\nA:"`; numbers are not
  directly comparable with its siqa task.)

Tokenization follows lm-eval-harness for causal LMs: no special tokens; the
continuation's tokens are those of `context + continuation` after the
context's own tokens. Choices are scored in right-padded batches sorted by
length; sequences longer than the model's context are cut on the left.
Rows with missing or malformed fields are skipped and counted, never fatal.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from attnc.runtime.precision import computing_of

TASKS = ("piqa", "socialiqa")
#: How many skipped-row reasons a result keeps (the count is always complete).
MAX_SKIP_REASONS = 10


@dataclass(frozen=True)
class QAItem:
    """One multiple-choice question: the prompt, the answer texts and the right index."""

    context: str
    choices: tuple[str, ...]
    label: int


@dataclass(frozen=True)
class QAResult:
    """Accuracy on `n` items of `task` read from `path`; `skipped` rows were malformed."""

    task: str
    acc: float
    acc_norm: float
    n: int
    seconds: float
    path: str = ""
    skipped: int = 0
    skip_reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def _piqa_item(row: dict) -> QAItem:
    label = row["label"]
    if label not in (0, 1, "0", "1"):
        raise ValueError(f"label {label!r} is not 0 or 1")
    return QAItem(f"Question: {_text(row, 'goal')}\nAnswer:", (_text(row, "sol1"), _text(row, "sol2")), int(label))


def _socialiqa_item(row: dict) -> QAItem:
    correct = str(row["correct"]).strip()
    if correct not in ("A", "B", "C"):
        raise ValueError(f"correct {correct!r} is not A, B or C")
    choices = tuple(_text(row, f"answer{c}") for c in "ABC")
    return QAItem(f"{_text(row, 'context')} {_text(row, 'question')}", choices, "ABC".index(correct))


def _text(row: dict, key: str) -> str:
    value = row[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {key!r} is empty or not text")
    return value.strip()


_PARSERS = {"piqa": _piqa_item, "socialiqa": _socialiqa_item}


def qa_item(task: str, row: dict) -> QAItem:
    """One jsonl row of `task` as a QAItem, in attnc's prompt format.

    Raises:
        ValueError: unknown task or a malformed field. KeyError: a missing field.
    """
    if task not in _PARSERS:
        raise ValueError(f"unknown QA task {task!r}; choose one of {', '.join(TASKS)}")
    return _PARSERS[task](row)


def read_qa(task: str, path: str | Path, *, limit: int | None = None) -> tuple[list[QAItem], list[str]]:
    """Read a QA jsonl file.

    Args:
        task: "piqa" or "socialiqa".
        path: the jsonl file.
        limit: stop after this many valid items.

    Returns:
        (items, reasons): the valid items, and one "line N: why" per skipped row.

    Raises:
        ValueError: unknown task. FileNotFoundError: no such file.
    """
    if task not in _PARSERS:
        raise ValueError(f"unknown QA task {task!r}; choose one of {', '.join(TASKS)}")
    items: list[QAItem] = []
    reasons: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if limit is not None and len(items) >= limit:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("row is not a JSON object")
                items.append(qa_item(task, row))
            except json.JSONDecodeError as error:
                reasons.append(f"line {number}: invalid JSON ({error.msg})")
            except KeyError as error:
                reasons.append(f"line {number}: missing field {error}")
            except (ValueError, TypeError) as error:
                reasons.append(f"line {number}: {error}")
    return items, reasons


def encode_request(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids), lm-eval style: split `context + continuation`'s tokens."""
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    if not context_ids:
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return [start], whole
    return context_ids, whole[len(context_ids):]


def _sequences(loaded, requests: list[tuple[list[int], list[int]]]) -> list[tuple[list[int], int]]:
    """(model inputs, continuation length) of each request, cut on the left to the model's context."""
    max_len = int(getattr(loaded, "max_positions", 0) or 1 << 30)
    sequences = []
    for context, continuation in requests:
        if not continuation:
            raise ValueError("a continuation has no tokens")
        full = (list(context) + list(continuation))[-(max_len + 1):]
        sequences.append((full[:-1], len(continuation)))
    return sequences


def _length_order(sequences: list[tuple[list[int], int]]) -> list[int]:
    """Request indices, longest first (stable: a slice of this order sorts to itself again)."""
    return sorted(range(len(sequences)), key=lambda i: -len(sequences[i][0]))


def continuation_logprobs(
    loaded,
    requests: list[tuple[list[int], list[int]]],
    *,
    batch_size: int = 16,
    progress: bool = False,
) -> np.ndarray:
    """Sum of log p(continuation tokens | context) for each (context ids, continuation ids).

    Requests are sorted by length and scored in right-padded batches; the result
    is in the order of `requests` and does not depend on the batching.
    """
    model, tokenizer = loaded.model, loaded.tokenizer
    computing = computing_of(loaded)  # autocast under bfloat16
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    device = next(model.parameters()).device
    sequences = _sequences(loaded, requests)
    order = _length_order(sequences)
    scores = np.zeros(len(sequences), dtype=np.float64)
    batches = range(0, len(order), batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="qa", unit="batch", file=sys.stderr)
    for start in batches:
        chunk = order[start:start + batch_size]
        length = max(len(sequences[i][0]) for i in chunk)
        ids = torch.full((len(chunk), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), length), dtype=torch.long)
        for row, i in enumerate(chunk):
            inputs = sequences[i][0]
            ids[row, :len(inputs)] = torch.tensor(inputs)
            mask[row, :len(inputs)] = 1
        with torch.inference_mode(), computing():
            logits = model(ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
        logp = torch.log_softmax(logits.float(), -1)
        for row, i in enumerate(chunk):
            inputs, n_cont = sequences[i]
            full_targets = requests[i][0] + requests[i][1]
            targets = torch.tensor(full_targets[-n_cont:], device=logp.device)
            positions = torch.arange(len(inputs) - n_cont, len(inputs), device=logp.device)
            scores[i] = float(logp[row, positions, targets].double().sum())
    return scores


def qa_accuracy(
    loaded,
    task: str,
    path: str | Path,
    *,
    limit: int | None = None,
    batch_size: int = 16,
    surrogate=None,
    progress: bool = False,
) -> QAResult:
    """Multiple-choice accuracy of `loaded.model` on a PIQA or SocialIQA jsonl file.

    Args:
        loaded: a LoadedModel (`.model`, `.tokenizer`, `.max_positions`).
        task: "piqa" or "socialiqa" (prompt formats in the module docstring).
        path: the jsonl file.
        limit: evaluate the first `limit` valid items.
        batch_size: choices per forward.
        surrogate: the SurrogateHandle installed on this model, if any (checked active).
        progress: show a progress bar on stderr.

    Returns:
        QAResult with acc, acc_norm, n, seconds and the skipped-row count and reasons.

    Raises:
        ValueError: unknown task or no valid items.
        SurrogateError: `surrogate` is not active on this model.
    """
    if surrogate is not None:
        surrogate.ensure_installed_on(loaded.model)
    started = time.perf_counter()
    items, reasons, requests = _read_requests(loaded, task, path, limit)
    scores = continuation_logprobs(loaded, requests, batch_size=batch_size, progress=progress)
    return _result(task, path, items, reasons, scores, started)


def _read_requests(loaded, task: str, path: str | Path, limit: int | None):
    """(items, skip reasons, one request per choice of each item, in order)."""
    items, reasons = read_qa(task, path, limit=limit)
    if not items:
        raise ValueError(f"{path}: no valid {task} items ({len(reasons)} skipped; first: {reasons[:1]})")
    requests = [
        encode_request(loaded.tokenizer, item.context, " " + choice) for item in items for choice in item.choices
    ]
    return items, reasons, requests


def _result(task: str, path: str | Path, items: list[QAItem], reasons: list[str], scores: np.ndarray,
            started: float) -> QAResult:
    right = right_norm = 0
    cursor = 0
    for item in items:
        k = len(item.choices)
        s = scores[cursor:cursor + k]
        cursor += k
        norm = s / np.array([len(c) for c in item.choices], dtype=np.float64)
        right += int(np.argmax(s) == item.label)
        right_norm += int(np.argmax(norm) == item.label)
    return QAResult(
        task=task,
        acc=right / len(items),
        acc_norm=right_norm / len(items),
        n=len(items),
        seconds=time.perf_counter() - started,
        path=str(path),
        skipped=len(reasons),
        skip_reasons=reasons[:MAX_SKIP_REASONS],
    )


def continuation_logprobs_on_pool(pool, loaded, requests: list[tuple[list[int], list[int]]], *,
                                  batch_size: int = 16, surrogates=None, shard_batches: int | None = None):
    """`continuation_logprobs` with its batches run on `pool`'s workers; the scores in the order of `requests`.

    A shard is whole batches of the single-process length-sorted order, so its
    batches (and their padding) are the single process's, and so are the scores.

    Args:
        pool: a shard pool whose workers load the model with the caller's attention implementation.
        loaded: this process's model (for the context length the requests are cut to).
        surrogates: `attnc.parallel.shard_worker.Surrogates` to install in each worker (None: stock).
        shard_batches: batches per shard (default: about SHARDS_PER_WORKER shards per worker).

    Returns:
        `attnc.parallel.shard_worker.PooledResult` of the scores (float64 [len(requests)]).

    Raises:
        ValueError: a request without continuation. PoolError: a worker died and could not be replaced.
    """
    from attnc.parallel.shard_worker import LogprobShard, PooledResult, whole_batch_shards

    order = _length_order(_sequences(loaded, requests))
    slices = [order[part] for part in whole_batch_shards(len(order), batch_size, pool.workers, shard_batches)]
    shards = dict(pool.map([LogprobShard([requests[i] for i in part], batch_size, surrogates) for part in slices]))
    scores = np.zeros(len(requests), dtype=np.float64)
    for k, part in enumerate(slices):
        scores[part] = shards[k].values
    return PooledResult.merged(scores, [shards[k] for k in range(len(slices))])


def qa_accuracy_on_pool(pool, loaded, task: str, path: str | Path, *, limit: int | None = None,
                        batch_size: int = 16, surrogates=None):
    """`qa_accuracy` with the requests' batches on `pool`'s workers (`continuation_logprobs_on_pool`).

    Returns:
        `attnc.parallel.shard_worker.PooledResult` of a `QAResult`.

    Raises:
        ValueError: unknown task or no valid items. PoolError: a worker died and could not be replaced.
    """
    started = time.perf_counter()
    items, reasons, requests = _read_requests(loaded, task, path, limit)
    pooled = continuation_logprobs_on_pool(pool, loaded, requests, batch_size=batch_size, surrogates=surrogates)
    return dataclasses.replace(pooled, result=_result(task, path, items, reasons, pooled.result, started))
