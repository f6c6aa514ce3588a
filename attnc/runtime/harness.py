"""Multiple-choice QA through lm-evaluation-harness on local files, stock or with program heads.

lm-eval (`pip install 'attnc[harness]'`) is the field's reference harness. This
module hands it the already-loaded model (stock, or with surrogate heads
installed) through its Hugging Face model class (`attnc.runtime.harness_lm`),
with task configs built per run that read local jsonl files: nothing touches
the hub (the ``HF_*_OFFLINE`` variables are set before lm-eval is imported).

Tasks (prompts, choices and metrics as lm-eval 0.4's registered ``piqa`` and
``social_iqa``; only the data source differs):

- ``piqa``: ``"Question: {goal}\\nAnswer:"``, choices sol1/sol2, label 0/1; acc, acc_norm.
- ``social_iqa``: ``"Q: {context} {question}\\nA:"``, choices answerA/B/C, the
  correct letter A/B/C (the jsonl's ``correct``; lm-eval's hub copy has ``label`` 1-3); acc.

Unlike `attnc.runtime.qa`, fields are used as written (attnc strips spaces)
and a malformed row is an error, not a skip. `compare_to_attnc` scores the
same items with attnc's own harness and says where and why they differ.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

#: Task names as lm-eval registers them.
HARNESS_TASKS = ("piqa", "social_iqa")
_ALIASES = {"socialiqa": "social_iqa", "siqa": "social_iqa"}
#: The same tasks in `attnc.runtime.qa`.
ATTNC_TASK = {"piqa": "piqa", "social_iqa": "socialiqa"}
EXTRA_HINT = "pip install 'attnc[harness]'"
#: Set before lm-eval (and so `datasets`) is imported: no hub access, ever.
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "HF_EVALUATE_OFFLINE": "1"}


class HarnessMissingError(ImportError):
    """lm-eval is not installed (the message names the extra that installs it)."""


def require_lm_eval():
    """Import lm-eval with the hub switched off; returns the module.

    Raises:
        HarnessMissingError: lm-eval (or its Hugging Face model class) is not installed.
    """
    os.environ.update(OFFLINE_ENVIRONMENT)
    try:
        module = importlib.import_module("lm_eval")
        importlib.import_module("lm_eval.models.huggingface")
    except ImportError as error:
        raise HarnessMissingError(
            f"lm-evaluation-harness is not installed ({error}); install it with {EXTRA_HINT}"
        ) from error
    return module


def task_name(name: str) -> str:
    """The lm-eval name of a task ("socialiqa" -> "social_iqa"); ValueError for others."""
    canonical = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if canonical not in HARNESS_TASKS:
        raise ValueError(f"unknown harness task {name!r}; choose from {', '.join(HARNESS_TASKS)}")
    return canonical


def task_config(task: str, path: str | Path) -> dict:
    """lm-eval task config for `task` reading the jsonl file `path` as its validation split."""
    task = task_name(task)
    data = {"dataset_path": "json", "dataset_name": None,
            "dataset_kwargs": {"data_files": {"validation": str(Path(path).resolve())}},
            "output_type": "multiple_choice", "validation_split": "validation", "test_split": None}
    accuracy = {"metric": "acc", "aggregation": "mean", "higher_is_better": True}
    if task == "piqa":
        return {"task": "piqa", **data, "doc_to_text": "Question: {{goal}}\nAnswer:", "doc_to_target": "label",
                "doc_to_choice": "{{[sol1, sol2]}}",
                "metric_list": [accuracy, {**accuracy, "metric": "acc_norm"}], "metadata": {"version": 1.0}}
    return {"task": "social_iqa", **data, "doc_to_text": "Q: {{context}} {{question}}\nA:", "target_delimiter": " ",
            "doc_to_choice": "{{[answerA, answerB, answerC]}}",
            "doc_to_target": "{{ {'A': 0, 'B': 1, 'C': 2}[correct] }}",
            "metric_list": [accuracy], "metadata": {"version": 0.0}}


@dataclass(frozen=True)
class HarnessTaskResult:
    """lm-eval's numbers for one task; `acc_norm` is None where the task does not report it."""

    task: str
    acc: float
    acc_stderr: float
    n: int
    path: str
    acc_norm: float | None = None
    acc_norm_stderr: float | None = None


@dataclass
class HarnessResult:
    """One lm-eval run: per-task results, wall seconds, and (if kept) lm-eval's per-item samples."""

    tasks: dict[str, HarnessTaskResult]
    seconds: float
    batch_size: int
    lm_eval_version: str
    limit: int | None = None
    samples: dict[str, list[dict]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict:
        record = asdict(self)
        record.pop("samples")
        return record


def run_harness(
    loaded,
    data: Mapping[str, str | Path],
    *,
    limit: int | None = None,
    batch_size: int = 16,
    surrogate=None,
    keep_samples: bool = False,
    progress: bool = False,
) -> HarnessResult:
    """Evaluate `loaded.model` (as it is now: stock or replaced) with lm-eval.

    Args:
        loaded: a LoadedModel.
        data: task -> jsonl file (task names as `task_name` accepts).
        limit: the first `limit` items of each file.
        batch_size: requests per forward.
        surrogate: the SurrogateHandle installed on this model, if any (checked active).
        keep_samples: keep lm-eval's per-item records (`HarnessResult.samples`), for `compare_to_attnc`.
        progress: let lm-eval show its progress bars.

    Returns:
        HarnessResult.

    Raises:
        HarnessMissingError: lm-eval is not installed.
        FileNotFoundError: a data file is missing. ValueError: unknown task.
        SurrogateError: `surrogate` is not active on this model.
    """
    lm_eval = require_lm_eval()
    from lm_eval.tasks import TaskManager

    from attnc.runtime.harness_lm import MaskedHFLM

    configs = []
    for name, path in data.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file (data for task {name})")
        configs.append(task_config(name, path))
    if surrogate is not None:
        surrogate.ensure_installed_on(loaded.model)
    started = time.perf_counter()
    lm = MaskedHFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, backend="causal", batch_size=batch_size,
                    max_length=int(loaded.max_positions))
    output = lm_eval.simple_evaluate(model=lm, tasks=configs, limit=limit, log_samples=keep_samples,
                                     task_manager=TaskManager(include_defaults=False), bootstrap_iters=1000,
                                     verbosity=None if progress else "ERROR")
    seconds = time.perf_counter() - started
    tasks = {}
    for config in configs:
        name, numbers = config["task"], output["results"][config["task"]]
        tasks[name] = HarnessTaskResult(
            task=name, acc=float(numbers["acc,none"]), acc_stderr=float(numbers["acc_stderr,none"]),
            acc_norm=_maybe_float(numbers.get("acc_norm,none")),
            acc_norm_stderr=_maybe_float(numbers.get("acc_norm_stderr,none")),
            n=int(output["n-samples"][name]["effective"]), path=str(data_path(data, name)))
    version = getattr(lm_eval, "__version__", "") or _dist_version("lm-eval")
    return HarnessResult(tasks, seconds, batch_size, version, limit,
                         samples=dict(output.get("samples") or {}) if keep_samples else {})


def data_path(data: Mapping[str, str | Path], task: str) -> Path:
    """The file `data` gives for `task`, whatever alias it was given under."""
    for name, path in data.items():
        if task_name(name) == task:
            return Path(path)
    raise KeyError(task)


def _maybe_float(value) -> float | None:
    return None if value is None or value == "N/A" else float(value)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""


@dataclass(frozen=True)
class Comparison:
    """attnc's own harness against lm-eval's on the same items of one task.

    Attributes:
        n: items compared; same_prompt: of those, items whose (context, continuation)
            strings are identical in both harnesses.
        acc_lm_eval, acc_attnc: accuracy of each on the `n` items, each with its own prompts.
        acc_lm_eval_same, acc_attnc_same: accuracy on the `same_prompt` items only.
        agreement: share of the `n` items where both pick the same choice.
        max_abs_loglik_diff: largest |lm-eval - attnc| log-likelihood over the
            `same_prompt` items' choices (numerics of the two scorers).
        seconds_attnc: attnc's scoring time for the `n` items (lm-eval's is the run's).
        difference: why prompts differ, in words.
    """

    task: str
    n: int
    same_prompt: int
    acc_lm_eval: float
    acc_attnc: float
    acc_lm_eval_same: float | None
    acc_attnc_same: float | None
    agreement: float
    max_abs_loglik_diff: float | None
    seconds_attnc: float
    difference: str

    def to_json(self) -> dict:
        return asdict(self)


_DIFFERENCES = {
    "piqa": "same template; attnc strips spaces around fields (lm-eval keeps them)",
    "social_iqa": 'lm-eval: "Q: {context} {question}\\nA:"; attnc: "{context} {question}"',
}


def compare_to_attnc(loaded, result: HarnessResult, *, batch_size: int = 16) -> dict[str, Comparison]:
    """Score the items of an lm-eval run (`keep_samples=True`) with attnc's harness, item by item.

    Args:
        loaded: the same model, in the same state (stock or replaced) as for `result`.
        result: a `run_harness` result with samples.
        batch_size: attnc's choices per forward.

    Returns:
        task -> Comparison.

    Raises:
        ValueError: `result` has no samples.
    """
    from attnc.runtime.qa import continuation_logprobs, encode_request, qa_item

    if not result.samples:
        raise ValueError("the harness result has no samples; run it with keep_samples=True")
    comparisons = {}
    for task, samples in result.samples.items():
        samples = sorted(samples, key=lambda s: s["doc_id"])
        items = [qa_item(ATTNC_TASK[task], s["doc"]) for s in samples]
        started = time.perf_counter()
        requests = [encode_request(loaded.tokenizer, item.context, " " + c) for item in items for c in item.choices]
        scores = continuation_logprobs(loaded, requests, batch_size=batch_size)
        seconds = time.perf_counter() - started
        ours, theirs, labels, same, diffs, cursor = [], [], [], [], [], 0
        for sample, item in zip(samples, items):
            k = len(item.choices)
            attnc_ll, cursor = scores[cursor:cursor + k], cursor + k
            lm_ll = np.array([float(resp[0][0]) for resp in sample["resps"]])
            ours.append(int(np.argmax(attnc_ll)))
            theirs.append(int(np.argmax(lm_ll)))
            labels.append(int(sample["target"]))
            if [tuple(a) for a in sample["arguments"]] == [(item.context, " " + c) for c in item.choices]:
                same.append(len(ours) - 1)
                diffs.append(float(np.max(np.abs(attnc_ll - lm_ll))))
        ours, theirs, labels = np.array(ours), np.array(theirs), np.array(labels)
        comparisons[task] = Comparison(
            task=task, n=len(items), same_prompt=len(same), acc_lm_eval=float(np.mean(theirs == labels)),
            acc_attnc=float(np.mean(ours == labels)), agreement=float(np.mean(ours == theirs)),
            acc_lm_eval_same=float(np.mean(theirs[same] == labels[same])) if same else None,
            acc_attnc_same=float(np.mean(ours[same] == labels[same])) if same else None,
            max_abs_loglik_diff=max(diffs) if diffs else None, seconds_attnc=seconds, difference=_DIFFERENCES[task])
    return comparisons
