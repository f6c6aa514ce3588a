"""One chat request to an OpenAI-compatible server, with our own retries and caps.

The `openai` client runs with `max_retries=0`; this module retries 429, 5xx,
timeouts and connection errors with exponential backoff and full jitter,
honours `Retry-After` (capped), reserves every attempt in the run's `Budget`
before sending it (settled with the real usage after), and never waits past the
run's time cap. Malformed replies are errors, not crashes. One transport may be
used from several threads at once.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

import openai

from attnc.synth.budget import Budget, Spend
from attnc.synth.config import LLMSynthConfig
from attnc.synth.tokens import TokenCounter


@dataclass(frozen=True)
class ChatReply:
    """Choices of one reply and what they cost.

    Attributes:
        texts: message contents of the choices ("" for an empty choice).
        prompt_tokens, completion_tokens: from `usage`, else counted locally.
        usage_reported: whether the server sent `usage`.
    """

    texts: tuple[str, ...]
    prompt_tokens: int
    completion_tokens: int
    usage_reported: bool


class TransportError(Exception):
    """A request failed for good.

    Attributes:
        kind: "http_error" or "timeout" (rejection reasons in the report).
        detail: what happened, for people.
    """

    def __init__(self, kind: str, detail: str):
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


class BudgetExhausted(Exception):
    """A run cap was reached; `.cap` names it."""

    def __init__(self, cap: str):
        self.cap = cap
        super().__init__(f"run cap reached: {cap}")


def prompt_token_estimate(counter: TokenCounter, messages: list[dict]) -> int:
    """Tokens of a chat prompt counted locally: each message's content plus 4 for its framing."""
    return sum(counter.count(m["content"]) + 4 for m in messages)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


def _choices_text(response: object) -> tuple[str, ...]:
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list):
        raise TransportError("http_error", f"malformed reply: no list of choices ({type(response).__name__})")
    texts = []
    for choice in choices:
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        texts.append(content if isinstance(content, str) else "")
    return tuple(texts)


class ChatTransport:
    """Sends chat requests for one run.

    Args:
        config: a resolved LLMSynthConfig.
        budget: the run's budget (attempts and tokens are charged to it).
        counter: counts tokens when the server sends no `usage`.
        client: an `openai.OpenAI`-like client; built from config when None.
        sleep: waits between attempts (tests pass a recorder).
        rng: jitter source (seeded for reproducible runs).
    """

    def __init__(
        self,
        config: LLMSynthConfig,
        budget: Budget,
        counter: TokenCounter,
        *,
        client: object | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.config = config
        self.budget = budget
        self.counter = counter
        self.client = client or openai.OpenAI(
            base_url=config.base_url, api_key=config.api_key, timeout=config.request_timeout_s, max_retries=0
        )
        self.sleep = sleep
        self.rng = rng or random.Random(0)
        self.retries = 0
        self._retries_lock = threading.Lock()

    def reservation(self, messages: list[dict], n: int) -> int:
        """Tokens one request reserves in the budget: its prompt counted locally, plus
        `max_completion_tokens` for each of the `n` choices asked."""
        return prompt_token_estimate(self.counter, messages) + n * self.config.max_completion_tokens

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            delay = min(self.config.backoff_cap_s, retry_after)
        else:
            delay = self.rng.uniform(0, min(self.config.backoff_cap_s, self.config.backoff_base_s * 2**attempt))
        if delay >= self.budget.seconds_left():
            raise BudgetExhausted("max_seconds")
        with self._retries_lock:
            self.retries += 1
        self.sleep(delay)

    def complete(self, messages: list[dict], n: int, spend: Spend | None = None) -> ChatReply:
        """One chat completion with `n` choices asked (the server may send fewer).

        Each attempt reserves one request and `reservation(messages, n)` tokens in
        the budget before it is sent, and settles them with the real usage after.
        `spend`, when given, is charged the same (e.g. one head's account).

        Raises:
            TransportError: the last attempt failed, or a non-retryable error.
            BudgetExhausted: a cap was reached before or between attempts.
        """
        last_error: TransportError | None = None
        reserved = self.reservation(messages, n)
        for attempt in range(self.config.max_attempts):
            cap = self.budget.reserve(reserved, spend)
            if cap is not None:
                raise BudgetExhausted(cap)
            prompt = completion = 0
            retry_after = None
            try:
                timeout = min(self.config.request_timeout_s, self.budget.seconds_left())
                response = self.client.chat.completions.create(
                    model=self.config.model,
                    messages=messages,
                    n=n,
                    temperature=self.config.temperature,
                    max_tokens=self.config.max_completion_tokens,
                    timeout=timeout,
                )
                reply = self._reply(response, messages)
                prompt, completion = reply.prompt_tokens, reply.completion_tokens
                return reply
            except openai.APITimeoutError as exc:
                last_error = TransportError("timeout", f"no reply within {timeout:.1f}s ({exc})")
            except openai.APIConnectionError as exc:
                last_error = TransportError("http_error", f"connection failed: {exc}")
            except (openai.RateLimitError, openai.InternalServerError) as exc:
                last_error = TransportError("http_error", f"HTTP {exc.status_code}: {exc.message}")
                retry_after = _retry_after(exc)
            except openai.APIStatusError as exc:
                raise TransportError("http_error", f"HTTP {exc.status_code}: {exc.message}") from exc
            except (json.JSONDecodeError, UnicodeDecodeError, openai.APIResponseValidationError) as exc:
                raise TransportError("http_error", f"malformed reply: {exc}") from exc
            finally:
                self.budget.settle(reserved, prompt, completion, spend)
            if attempt + 1 < self.config.max_attempts:
                self._backoff(attempt, retry_after)
        assert last_error is not None
        raise last_error

    def _reply(self, response: object, messages: list[dict]) -> ChatReply:
        texts = _choices_text(response)
        usage = getattr(response, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        reported = isinstance(prompt, int) and isinstance(completion, int)
        if not reported:
            prompt = prompt_token_estimate(self.counter, messages)
            completion = sum(self.counter.count(t[: 4 * self.config.max_reply_bytes]) for t in texts)
        return ChatReply(texts=texts, prompt_tokens=prompt, completion_tokens=completion, usage_reported=reported)
