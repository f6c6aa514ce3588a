"""LLM-driven program synthesis: ask, extract, validate, score, keep the best.

For each head and round: build a prompt from the head summary (and, in
feedback rounds, the best program so far and why candidates were rejected),
collect `n_candidates` replies (cache first, then HTTP), extract program
sources, validate each with the DSL, score the valid ones, and write a
candidate that beats the head's best by `margin` to `out_dir` at once,
atomically. A rejected candidate is never scored or run. Caps on requests,
tokens and seconds end the run cleanly; the report says which.

With `concurrency` N > 1 the heads of a round collect their replies in a pool
of N threads (one head's own follow-up requests stay in order), while the
calling thread validates, scores and writes each head's candidates in head
order as soon as that head's replies are in; rounds follow one another. So,
given a deterministic server, the programs, names and report do not depend on
N, unless a cap ends the run (which heads got the last requests then depends on
timing). Every HTTP attempt reserves its request and tokens in the budget
before it is sent (see `Budget.reserve`).
"""

from __future__ import annotations

import math
import random
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from attnc.synth.budget import Budget, Spend
from attnc.synth.cache import ReplyCache, request_key
from attnc.synth.config import LLMSynthConfig
from attnc.synth.extraction import extract_sources
from attnc.synth.output import clean_name, provenance_header, rename_entry, unique_name, write_program
from attnc.synth.prompting import Feedback, build_messages, prompt_sha256
from attnc.synth.report import HeadReport, SynthReport
from attnc.synth.scoring import CandidateScore, Scorer
from attnc.synth.tokens import token_counter
from attnc.synth.transport import BudgetExhausted, ChatTransport, TransportError
from attnc.synth.validation import Validator, as_failure, dsl_validate


@dataclass(frozen=True)
class HeadTask:
    """A head to synthesize for.

    Attributes:
        head: "layer.head".
        summary: the head summary text (`attnc.synth.summary.summarize_head(...).text`).
        best_iou: fit IoU of the best existing program (0 when none).
        best_name, best_source: that program, quoted in feedback rounds.
    """

    head: str
    summary: str
    best_iou: float = 0.0
    best_name: str | None = None
    best_source: str | None = None


@dataclass
class _HeadState:
    task: HeadTask
    report: HeadReport
    best_iou: float
    best_name: str | None
    best_source: str | None
    file_name: str | None = None
    file_base: str | None = None
    rejections: list[str] | None = None


class _Run:
    def __init__(self, config, scorer, validate, transport, budget, cache, now):
        self.config = config
        self.scorer = scorer
        self.validate = validate
        self.transport = transport
        self.budget = budget
        self.cache = cache
        self.now = now
        self.taken: set[str] = set()
        self.stopped_by: str | None = None  # the first cap that stopped the run; no head is asked after it
        self._stop_lock = threading.Lock()

    # -- replies -----------------------------------------------------------
    def ask(self, state: _HeadState, messages: list[dict], round_index: int) -> list[str]:
        """The head's reply texts for this round; none once a cap has stopped the run.
        Runs in a worker thread when concurrency > 1 (it touches only this head's state)."""
        with self._stop_lock:
            if self.stopped_by is None:
                self.stopped_by = self.budget.exhausted()
            if self.stopped_by is not None:
                return []
        texts, cap = self.collect(state, messages, round_index)
        if cap is not None:
            with self._stop_lock:
                self.stopped_by = self.stopped_by or cap
        return texts

    def replies(self, asks: list[tuple[_HeadState, list[dict]]], round_index: int,
                pool: Executor | None) -> Iterator[list[str]]:
        """Each head's reply texts, in head order. Without a pool a head is asked only
        when the previous one's texts were taken (one request at a time); with one, all
        heads are submitted at once and the pool's size bounds how many are in flight."""
        if pool is None:
            for state, messages in asks:
                yield self.ask(state, messages, round_index)
            return
        futures = [pool.submit(self.ask, state, messages, round_index) for state, messages in asks]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def collect(self, state: _HeadState, messages: list[dict], round_index: int) -> tuple[list[str], str | None]:
        """Up to n_candidates reply texts: cached ones, then HTTP requests (a server
        that ignores `n` gets follow-up requests, one slot each). Also returns the
        cap that stopped collection early, if any (texts so far are still returned)."""
        config = self.config
        texts: list[str] = []
        for slot in range(config.n_candidates):
            need = config.n_candidates - len(texts)
            if need <= 0:
                break
            n = need if config.use_n else 1
            key = request_key({
                "base_url": config.base_url, "model": config.model, "messages": messages, "n": n,
                "temperature": config.temperature, "max_tokens": config.max_completion_tokens,
                "slot": slot, "round": round_index,
            })
            entry = self.cache.get(key) if self.cache else None
            if entry is not None and isinstance(entry.get("texts"), list):
                self.budget.count_cached_reply()
                state.report.cached_replies += 1
                texts += [str(t) for t in entry["texts"]][:need]
                continue
            spend = Spend()
            try:
                reply = self.transport.complete(messages, n, spend)
            except TransportError as exc:
                state.report.reject(exc.kind, exc.detail)
                break
            except BudgetExhausted as exc:
                return texts, exc.cap
            finally:
                state.report.requests += spend.requests
                state.report.prompt_tokens += spend.prompt_tokens
                state.report.completion_tokens += spend.completion_tokens
            kept = [t[: 4 * config.max_reply_bytes + 1] for t in reply.texts][:need]
            if self.cache:
                self.cache.put(key, {"texts": kept, "prompt_tokens": reply.prompt_tokens,
                                     "completion_tokens": reply.completion_tokens, "model": config.model})
            texts += kept
            if not kept:
                state.report.reject("no_code", "reply had no choices")
        return texts, None

    # -- candidates --------------------------------------------------------
    def consider(self, state: _HeadState, text: str, prompt_hash: str, label: str) -> None:
        extraction = extract_sources(text, max_bytes=self.config.max_reply_bytes)
        for _ in range(extraction.oversized):
            state.report.reject("too_large", f"{label}: code over {self.config.max_reply_bytes} bytes")
        if extraction.problem == "no_code":
            state.report.reject("no_code", f"{label}: no code block defining a function")
        for index, source in enumerate(extraction.sources):
            self.consider_source(state, source, prompt_hash, f"{label}.{index}")

    def consider_source(self, state: _HeadState, source: str, prompt_hash: str, label: str) -> None:
        result = self.validate(source, f"<llm {label}>")
        failure = as_failure(result)
        if failure is not None:
            state.report.reject(failure.reason, f"{label}: {failure.messages[0]}", failure.rules)
            state.rejections.append(f"{failure.reason} ({', '.join(failure.rules)}): {failure.messages[0][:200]}")
            return
        program = result
        try:
            score = self.scorer.score(program, state.task.head)
            iou_fit, iou_heldout = float(score.iou_fit), float(score.iou_heldout)
        except Exception as exc:  # the scorer runs program code: any failure rejects the candidate
            state.report.reject("runtime", f"{label} {program.name}: {type(exc).__name__}: {exc}")
            state.rejections.append(f"runtime error in {program.name}: {type(exc).__name__}: {str(exc)[:200]}")
            return
        if not (math.isfinite(iou_fit) and math.isfinite(iou_heldout)):
            state.report.reject("runtime", f"{label} {program.name}: non-finite IoU {iou_fit}, {iou_heldout}")
            return
        if iou_fit <= state.best_iou + self.config.margin:
            state.report.reject("not_better", f"{label} {program.name}: IoU {iou_fit:.4f} <= best {state.best_iou:.4f} + margin")
            return
        written = self.write(state, program, CandidateScore(iou_fit, iou_heldout), prompt_hash)
        if written is None:
            return
        state.report.accept()
        state.best_iou, state.best_name, state.best_source = iou_fit, written[0], written[1]
        state.report.best_after, state.report.best_name = iou_fit, written[0]

    def write(self, state: _HeadState, program, score: CandidateScore, prompt_hash: str) -> tuple[str, str] | None:
        """Write the accepted program as out_dir/<name>.py, named after its entry point
        (made unique); a head's earlier file from this run is removed once the new one
        is on disk. Returns (name, text), or None if the written text no longer
        validates (counted as a validation rejection)."""
        out_dir = self.config.out_dir
        previous = state.file_name
        if previous is not None and clean_name(program.name) == state.file_base:
            name = previous  # same program name as this head's file: overwrite it
        else:
            name = unique_name(program.name, state.task.head, out_dir, self.taken)
        header = provenance_header({
            "model": self.config.model,
            "head": state.task.head,
            "date": self.now(),
            "prompt sha256": prompt_hash,
            "iou fit": f"{score.iou_fit:.4f}",
            "iou held-out": f"{score.iou_heldout:.4f}",
            "original name": program.name,
        })
        text = header + rename_entry(program.source, program.name, name)
        path = out_dir / f"{name}.py"
        failure = as_failure(self.validate(text, str(path)))
        if failure is not None:
            state.report.reject("validation", f"{name}: written file does not validate: {failure.messages[0]}", failure.rules)
            return None
        write_program(path, text)
        self.taken.add(name)
        if str(path) not in state.report.files:
            state.report.files.append(str(path))
        if previous is not None and previous != name:
            # the new best is on disk; only now drop the file it supersedes
            old_path = out_dir / f"{previous}.py"
            old_path.unlink(missing_ok=True)
            state.report.files.remove(str(old_path))
        state.file_name, state.file_base = name, clean_name(program.name)
        return name, text


def _utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def run_llm_synthesis(
    config: LLMSynthConfig,
    heads: Sequence[HeadTask],
    scorer: Scorer,
    *,
    validate: Validator = dsl_validate,
    client: object | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    seed: int = 0,
) -> SynthReport:
    """Synthesize programs for `heads` with an LLM; write the accepted ones.

    Args:
        config: settings; endpoint values missing here come from the environment.
        heads: the heads, each with its summary and current best IoU.
        scorer: scores validated programs against a head (see attnc.synth.scoring).
        validate: source, path -> CheckedProgram or failure (default: the DSL).
        client: an `openai.OpenAI`-like client (default: built from config).
        sleep, clock, seed: injectable for tests (backoff waits, time caps, jitter).

    Returns:
        The run's report; caps that stopped it are in `stopped_by`.

    Raises:
        SynthConfigError: no endpoint/model configured, or settings out of range.
    """
    config = config.resolved()
    budget = Budget(config.max_requests, config.max_tokens, config.max_seconds, clock=clock)
    counter = token_counter()
    transport = ChatTransport(config, budget, counter, client=client, sleep=sleep, rng=random.Random(seed))
    cache = ReplyCache(config.cache_dir) if config.cache_dir is not None else None
    report = SynthReport(model=config.model, base_url=config.base_url, started=_utc_now(),
                         rounds=config.rounds, token_counter=counter.name)
    run = _Run(config, scorer, validate, transport, budget, cache, _utc_now)
    states = []
    for task in heads:
        head_report = HeadReport(head=task.head, best_before=task.best_iou, best_after=task.best_iou, best_name=task.best_name)
        report.heads.append(head_report)
        states.append(_HeadState(task, head_report, task.best_iou, task.best_name, task.best_source, rejections=[]))
    pool = None
    if config.concurrency > 1:
        pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="attnc-synth")
    try:
        for round_index in range(config.rounds):
            if run.stopped_by is not None:
                break
            asks = []
            for state in states:
                feedback = None
                if round_index > 0:
                    feedback = Feedback(state.best_name, state.best_source, state.best_iou, tuple(state.rejections))
                state.rejections = []
                asks.append((state, build_messages(state.task.summary, feedback)))
            for (state, messages), texts in zip(asks, run.replies(asks, round_index, pool)):
                prompt_hash = prompt_sha256(messages)
                for index, text in enumerate(texts):
                    run.consider(state, text, prompt_hash, f"{state.task.head} r{round_index} c{index}")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    report.stopped_by = run.stopped_by
    report.spend = budget.to_json()
    report.spend["retries"] = transport.retries
    return report
